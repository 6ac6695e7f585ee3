//! Task input as value types: each rule exists once, here, and a value that exists is valid.

use time::OffsetDateTime;

use super::geo::GeoPoint;
use super::officer::OfficerId;
use super::task::{Priority, TaskKind};
use crate::users::{InvalidValue, UserId};

/// A short identifier people type and read out: 1..=32 letters, digits and `-`, unique
/// regardless of case. Task codes and badge numbers follow this one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(InvalidValue("must be 1 to 32 letters, digits or -"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A task title: at most 200 characters as sent, at least 3 once trimmed, on one line.
/// (Maximum lengths count what was sent, so that a schema's `maxLength` states them exactly.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.chars().any(char::is_control) {
            return Err(InvalidValue("must not contain control characters"));
        }
        if raw.chars().count() > 200 {
            return Err(InvalidValue("must be at most 200 characters"));
        }
        if value.chars().count() < 3 {
            return Err(InvalidValue("must be at least 3 characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The title of a task dispatched without one.
    pub fn emergency() -> Self {
        Self("Emergency".to_owned())
    }

    /// A title the store already holds (it was valid when written).
    pub(crate) fn stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of at most `MAX` characters as sent, stored trimmed. Line breaks and tabs are text;
/// other control characters (NUL above all, which PostgreSQL cannot store) are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// The text, or `None` when it is empty.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidValue> {
        let value = raw.trim();
        if raw.chars().count() > MAX {
            return Err(InvalidValue("is too long"));
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(InvalidValue("must not contain control characters other than line breaks and tabs"));
        }
        Ok((!value.is_empty()).then(|| Self(value.to_owned())))
    }

    /// A text the store already holds.
    pub(crate) fn stored(value: Option<String>) -> Option<Self> {
        value.map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A task's description, and its notes.
pub type LongText = Text<10_000>;
/// Where exactly, in words.
pub type LocationDescription = Text<500>;
/// Why a transition was made.
pub type Reason = Text<1_000>;

/// When a task is planned: its end, if any, follows its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    start: OffsetDateTime,
    end: Option<OffsetDateTime>,
}

/// The refusal of a schedule, for the `scheduled_end` field.
pub const END_BEFORE_START: InvalidValue = InvalidValue("must be after scheduled_start");

impl Schedule {
    pub fn new(start: OffsetDateTime, end: Option<OffsetDateTime>) -> Result<Self, InvalidValue> {
        if end.is_some_and(|end| end <= start) {
            return Err(END_BEFORE_START);
        }
        Ok(Self { start, end })
    }

    /// A schedule that starts at `start` with no planned end.
    pub fn starting(start: OffsetDateTime) -> Self {
        Self { start, end: None }
    }

    /// A schedule the store already holds.
    pub(crate) fn stored(start: OffsetDateTime, end: Option<OffsetDateTime>) -> Self {
        Self { start, end }
    }

    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    pub fn end(&self) -> Option<OffsetDateTime> {
        self.end
    }
}

/// A new task, as its creator describes it.
#[derive(Debug, Clone)]
pub struct TaskInput {
    /// Generated (`T-000123`) when absent.
    pub code: Option<Code>,
    pub title: Title,
    pub description: Option<LongText>,
    pub kind: TaskKind,
    /// `medium` when absent.
    pub priority: Option<Priority>,
    pub schedule: Schedule,
    pub location: Option<GeoPoint>,
    pub location_description: Option<LocationDescription>,
    /// The creator when absent.
    pub delegate_id: Option<UserId>,
    pub officer_ids: Vec<OfficerId>,
    pub notes: Option<LongText>,
}

/// A change to the descriptive fields: `None` leaves a field as it is, `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<Title>,
    pub description: Option<Option<LongText>>,
    pub kind: Option<TaskKind>,
    pub priority: Option<Priority>,
    pub scheduled_start: Option<OffsetDateTime>,
    pub scheduled_end: Option<Option<OffsetDateTime>>,
    pub location: Option<Option<GeoPoint>>,
    pub location_description: Option<Option<LocationDescription>>,
    pub delegate_id: Option<UserId>,
    pub notes: Option<Option<LongText>>,
}

/// An emergency: where, and optionally what.
#[derive(Debug, Clone)]
pub struct EmergencyInput {
    pub point: GeoPoint,
    /// `Emergency` when absent.
    pub title: Option<Title>,
    pub description: Option<LongText>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_type_holds_its_rule() {
        assert!(Title::parse("ab").is_err() && Title::parse(&"x".repeat(201)).is_err());
        assert_eq!(Title::parse("  Night patrol ").map(|title| title.as_str().to_owned()), Ok("Night patrol".into()));
        assert!(Title::parse("Night\0patrol").is_err() && Title::parse("Night\npatrol").is_err());
        assert!(Code::parse("T-2026-1").is_ok() && Code::parse("bad code").is_err() && Code::parse("").is_err());
        assert!(Code::parse(&"x".repeat(33)).is_err() && Code::parse("ÄÖ").is_err());
        assert_eq!(LongText::parse("  "), Ok(None));
        assert!(Text::<3>::parse("too long").is_err() && LongText::parse("a\0b").is_err());
        let kept = LongText::parse("line one\nline two\tend").map(|text| text.map(Text::into_string));
        assert_eq!(kept, Ok(Some("line one\nline two\tend".into())));
        assert_eq!(LocationDescription::parse(&"x".repeat(501)), Err(InvalidValue("is too long")));
    }

    #[test]
    fn a_schedule_ends_after_it_starts() {
        let start = time::macros::datetime!(2026-03-01 08:00 UTC);
        assert!(Schedule::new(start, None).is_ok());
        assert!(Schedule::new(start, Some(start + time::Duration::hours(1))).is_ok());
        assert_eq!(Schedule::new(start, Some(start)), Err(END_BEFORE_START));
        assert_eq!(Schedule::new(start, Some(start - time::Duration::minutes(1))), Err(END_BEFORE_START));
    }
}
