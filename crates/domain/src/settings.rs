//! What every adapter's settings type shares: durations written as people write them, secrets
//! that never show, and URLs whose passwords never show.
//!
//! Each adapter owns its settings type and the app's configuration composes them; these helpers
//! keep the sections alike without a settings crate of their own.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// A secret read from the environment: never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Shows whether a secret is set, never the secret (`serialize_with`).
pub fn redacted<S: Serializer>(value: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if value.is_some() { "<set>" } else { "<unset>" })
}

/// Shows a URL with its password masked (`serialize_with`).
pub fn redacted_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// Like `redacted_url`, for an optional URL.
pub fn redacted_optional_url<S: Serializer>(url: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

/// `scheme://user:password@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
            let masked = if credentials.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}")
        }
        None => url.to_owned(),
    }
}

/// A duration in human form: `"250ms"`, `"30s"`, `"15m"`, `"24h"`, `"14d"`, or several parts
/// (`"1h 30m"`). A bare number is also accepted, in the unit its key names (`timeout_ms = 500`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("a duration must not be empty".into());
    }
    let mut total = Duration::ZERO;
    for part in raw.split_whitespace() {
        let digits = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
        let (number, unit) = part.split_at(digits);
        let number: u64 = number.parse().map_err(|_| format!("{raw:?} is not a duration like \"30s\" or \"250ms\""))?;
        let unit = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(format!("{raw:?} has no unit of ms, s, m, h or d")),
        };
        let part = unit.checked_mul(u32::try_from(number).map_err(|_| format!("{raw:?} is too long"))?);
        total = part.and_then(|part| total.checked_add(part)).ok_or_else(|| format!("{raw:?} is too long"))?;
    }
    Ok(total)
}

/// A number in `unit`, or a duration in human form.
fn deserialize_in<'de, D: Deserializer<'de>>(deserializer: D, unit: Duration) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(number) => u32::try_from(number)
            .ok()
            .and_then(|number| unit.checked_mul(number))
            .ok_or_else(|| serde::de::Error::custom("the duration is too long")),
        Raw::Text(text) => match text.trim().parse::<u64>() {
            Ok(number) => u32::try_from(number)
                .ok()
                .and_then(|number| unit.checked_mul(number))
                .ok_or_else(|| serde::de::Error::custom("the duration is too long")),
            Err(_) => parse_duration(&text).map_err(serde::de::Error::custom),
        },
    }
}

/// Generates a `serde(with = …)` module for durations whose key names `$unit`: a bare number
/// counts in that unit, text is a duration in human form, and the value shows in that unit
/// (so `gad check-config` prints what the key says).
macro_rules! duration_in {
    ($(#[$meta:meta])* $module:ident, $unit:expr, $show:expr) => {
        $(#[$meta])*
        pub mod $module {
            use std::time::Duration;

            use serde::{Deserializer, Serializer};

            pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
                super::deserialize_in(deserializer, $unit)
            }

            pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
                let show: fn(&Duration) -> u128 = $show;
                serializer.serialize_u64(u64::try_from(show(value)).unwrap_or(u64::MAX))
            }
        }
    };
}

duration_in!(
    /// Keys ending in `_ms`.
    millis,
    Duration::from_millis(1),
    |value| value.as_millis()
);
duration_in!(
    /// Keys ending in `_s`.
    seconds,
    Duration::from_secs(1),
    |value| u128::from(value.as_secs())
);
duration_in!(
    /// Keys ending in `_h`.
    hours,
    Duration::from_secs(3600),
    |value| u128::from(value.as_secs() / 3600)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, serde::Serialize)]
    struct Example {
        #[serde(with = "millis")]
        timeout_ms: Duration,
        #[serde(with = "seconds")]
        ttl_s: Duration,
        #[serde(with = "hours")]
        retention_h: Duration,
    }

    #[test]
    fn durations_read_as_numbers_in_the_keys_unit_or_in_human_form() {
        let parsed: Example =
            serde_json::from_str(r#"{"timeout_ms": 250, "ttl_s": "15m", "retention_h": "2d"}"#).expect("valid");
        assert_eq!(parsed.timeout_ms, Duration::from_millis(250));
        assert_eq!(parsed.ttl_s, Duration::from_secs(900));
        assert_eq!(parsed.retention_h, Duration::from_secs(48 * 3600));
        let shown = serde_json::to_value(&parsed).expect("serialises");
        assert_eq!(shown, serde_json::json!({"timeout_ms": 250, "ttl_s": 900, "retention_h": 48}));
        let from_env: Example =
            serde_json::from_str(r#"{"timeout_ms": "1s 500ms", "ttl_s": "30", "retention_h": 1}"#).expect("valid");
        assert_eq!(from_env.timeout_ms, Duration::from_millis(1500));
        assert_eq!(from_env.ttl_s, Duration::from_secs(30), "a number in text is still in the key's unit");
        for bad in [r#""soon""#, r#""5 parsecs""#, r#""""#, r#""-1s""#] {
            let json = format!(r#"{{"timeout_ms": {bad}, "ttl_s": 1, "retention_h": 1}}"#);
            assert!(serde_json::from_str::<Example>(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_and_passwords_never_show() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(<redacted>)");
        assert_eq!(redact_url("postgres://gad:pw@db/gad"), "postgres://gad:***@db/gad");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
