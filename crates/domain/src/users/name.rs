use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::InvalidValue;

/// A first or last name: 1..=100 characters of letters (with their accents), spaces, `'`, `-`
/// and `.`. Names are stored in Unicode NFC: a keyboard that sends `a` + U+0301 and one that
/// sends `á` give the same name, which compares, searches and counts alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value: String = raw.trim().nfc().collect();
        if value.is_empty() {
            return Err(InvalidValue("must not be empty"));
        }
        // Counted as sent, so that a schema's `maxLength` states the limit exactly.
        if raw.chars().count() > 100 {
            return Err(InvalidValue("must be at most 100 characters"));
        }
        if !is_name(&value) {
            return Err(InvalidValue("may contain only letters, spaces, ', - and ."));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Letters, spaces, `'`, `-` and `.`; an accent that has no precomposed form stays a combining
/// mark after NFC and is accepted on a letter.
fn is_name(value: &str) -> bool {
    let mut after_letter = false;
    value.chars().all(|c| {
        let accepted =
            c.is_alphabetic() || matches!(c, ' ' | '\'' | '-' | '.') || (after_letter && is_combining_mark(c));
        after_letter = c.is_alphabetic() || (after_letter && is_combining_mark(c));
        accepted
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names() {
        for raw in ["Ana", "José María", "O'Neill", "Jean-Luc", "St. John", "Ñúñez"] {
            assert_eq!(PersonName::parse(raw).expect("valid").as_str(), raw);
        }
    }

    #[test]
    fn decomposed_accents_are_composed_before_the_rules_apply() {
        let name = PersonName::parse("Jose\u{301} Nun\u{303}ez").expect("valid once composed");
        assert_eq!(name.as_str(), "José Nuñez");
        assert_eq!(name, PersonName::parse("José Nuñez").expect("valid"));
        let composed = PersonName::parse(&"e\u{301}".repeat(50)).expect("100 characters as sent");
        assert_eq!(composed.as_str().chars().count(), 50, "50 once composed");
        assert!(PersonName::parse("n\u{308}a").is_ok(), "an accent without a precomposed form");
        assert!(PersonName::parse("\u{301}a").is_err(), "an accent on nothing");
        assert!(PersonName::parse("a-\u{301}").is_err(), "an accent on a dash");
    }

    #[test]
    fn rejects_empty_long_and_symbolic_names() {
        let long = "a".repeat(101);
        for raw in ["", "  ", "R2D2", "<script>", "a_b", long.as_str()] {
            assert!(PersonName::parse(raw).is_err(), "{raw:?} should be rejected");
        }
        assert!(PersonName::parse(&"a".repeat(100)).is_ok());
    }
}
