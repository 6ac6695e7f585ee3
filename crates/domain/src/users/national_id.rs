use super::InvalidValue;

/// A national identity document number: 5..=20 letters, digits and `-` (formats differ by
/// country), stored upper-cased so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NationalId(String);

impl NationalId {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if !(5..=20).contains(&value.len()) {
            return Err(InvalidValue("must be 5 to 20 characters"));
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(InvalidValue("may contain only letters, digits and -"));
        }
        Ok(Self(value.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164: `+` then 8..=15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        let digits = value.strip_prefix('+').ok_or(InvalidValue("must be in E.164 format: + then 8 to 15 digits"))?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue("must be in E.164 format: + then 8 to 15 digits"));
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
    fn national_ids_are_normalised_and_checked() {
        assert_eq!(NationalId::parse(" 12345678z ").expect("valid").as_str(), "12345678Z");
        assert!(NationalId::parse("X-1234567-L").is_ok());
        for raw in ["1234", "123456789012345678901", "1234 5678", "12345678Z!"] {
            assert!(NationalId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn phones_must_be_e164() {
        assert!(PhoneNumber::parse("+34600111222").is_ok());
        assert!(PhoneNumber::parse("+12345678").is_ok());
        for raw in ["600111222", "+1234567", "+1234567890123456", "+34 600 111 222", "+34-600"] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw:?}");
        }
    }
}
