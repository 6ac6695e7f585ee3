//! The task state machine (SPEC §4): one table, every status × action.

use serde::{Deserialize, Serialize};

use crate::users::InvalidValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Scheduled,
    InProgress,
    Paused,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskAction {
    Start,
    Pause,
    Resume,
    Complete,
    Cancel,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] =
        [Self::Scheduled, Self::InProgress, Self::Paused, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::InProgress => "in_progress",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Where `action` leads from here, if it is allowed at all.
    pub fn apply(self, action: TaskAction) -> Option<TaskStatus> {
        use TaskAction::*;
        use TaskStatus::*;
        match (self, action) {
            (Scheduled, Start) => Some(InProgress),
            (InProgress, Pause) => Some(Paused),
            (Paused, Resume) => Some(InProgress),
            (InProgress | Paused, Complete) => Some(Completed),
            (Scheduled | InProgress | Paused, Cancel) => Some(Cancelled),
            _ => None,
        }
    }

    /// The actions allowed from here, for the 409 that refuses any other.
    pub fn allowed_actions(self) -> Vec<TaskAction> {
        TaskAction::ALL.into_iter().filter(|action| self.apply(*action).is_some()).collect()
    }

    /// Completed and cancelled tasks never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

impl TaskAction {
    pub const ALL: [TaskAction; 5] = [Self::Start, Self::Pause, Self::Resume, Self::Complete, Self::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
        }
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(InvalidValue("must be one of scheduled, in_progress, paused, completed, cancelled"))
    }
}

impl std::str::FromStr for TaskAction {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or(InvalidValue("must be one of start, pause, resume, complete, cancel"))
    }
}

#[cfg(test)]
mod tests {
    use super::TaskAction::*;
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn every_status_and_action_of_the_spec() {
        let table = [
            (Scheduled, [Some(InProgress), None, None, None, Some(Cancelled)]),
            (InProgress, [None, Some(Paused), None, Some(Completed), Some(Cancelled)]),
            (Paused, [None, None, Some(InProgress), Some(Completed), Some(Cancelled)]),
            (Completed, [None, None, None, None, None]),
            (Cancelled, [None, None, None, None, None]),
        ];
        for (status, outcomes) in table {
            for (action, expected) in TaskAction::ALL.into_iter().zip(outcomes) {
                assert_eq!(status.apply(action), expected, "{status:?} × {action:?}");
            }
            assert_eq!(status.is_final(), outcomes.iter().all(Option::is_none));
        }
        assert_eq!(Paused.allowed_actions(), [Resume, Complete, Cancel]);
        assert!(Completed.allowed_actions().is_empty());
    }

    #[test]
    fn names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(status));
        }
        for action in TaskAction::ALL {
            assert_eq!(action.as_str().parse::<TaskAction>(), Ok(action));
        }
        assert!("done".parse::<TaskStatus>().is_err() && "stop".parse::<TaskAction>().is_err());
    }
}
