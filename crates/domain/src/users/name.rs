use super::InvalidValue;

/// A first or last name: 1..=100 characters of letters, spaces, `'`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        let length = value.chars().count();
        if length == 0 {
            return Err(InvalidValue("must not be empty"));
        }
        if length > 100 {
            return Err(InvalidValue("must be at most 100 characters"));
        }
        if !value.chars().all(|c| c.is_alphabetic() || matches!(c, ' ' | '\'' | '-' | '.')) {
            return Err(InvalidValue("may contain only letters, spaces, ', - and ."));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    fn rejects_empty_long_and_symbolic_names() {
        let long = "a".repeat(101);
        for raw in ["", "  ", "R2D2", "<script>", "a_b", long.as_str()] {
            assert!(PersonName::parse(raw).is_err(), "{raw:?} should be rejected");
        }
        assert!(PersonName::parse(&"a".repeat(100)).is_ok());
    }
}
