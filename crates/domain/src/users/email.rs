use super::InvalidValue;

/// An e-mail address, trimmed and lower-cased so that uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(InvalidValue("must not be empty"));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(InvalidValue("must be at most 254 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidValue("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(InvalidValue("must be an e-mail address"));
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.chars().count() > 64 || !domain_ok {
            return Err(InvalidValue("must be an e-mail address"));
        }
        Ok(Self(value.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_addresses_and_normalises_case() {
        let email = EmailAddress::parse("  Ana.Garcia@Example.ES ").expect("valid");
        assert_eq!(email.as_str(), "ana.garcia@example.es");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        let long = format!("{}@example.com", "a".repeat(250));
        for raw in [
            "",
            "   ",
            "plain",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example..com",
            "a@.example.com",
            "a@example.com.",
            long.as_str(),
        ] {
            assert!(EmailAddress::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }
}
