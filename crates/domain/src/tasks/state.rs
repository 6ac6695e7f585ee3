//! The task state machine (SPEC §4): one table, every status × action.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::users::InvalidValue;

/// What a transition does to the task's officers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficerMove {
    /// Work started or resumed: they are on task.
    Occupy,
    /// Work ended: they are available again, unless another running task holds them.
    Release,
    /// Nothing changes for them (a pause keeps them on the task).
    Stay,
}

/// The whole effect of an allowed action, computed from the task as it stands: the store
/// writes it and decides nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub from: TaskStatus,
    pub to: TaskStatus,
    /// Set `actual_start` to this (a start).
    pub actual_start: Option<OffsetDateTime>,
    /// Set `actual_end` to this (a completion or cancellation).
    pub actual_end: Option<OffsetDateTime>,
    /// The new `paused_at`: the moment of a pause, cleared by anything else.
    pub paused_at: Option<OffsetDateTime>,
    /// Whole seconds to add to `total_paused_seconds`: the pause that this action ends.
    pub paused_seconds: i64,
    pub officers: OfficerMove,
}

/// The refusal of an action that the state machine does not allow from `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    pub from: TaskStatus,
    pub allowed: Vec<TaskAction>,
}

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

    /// The effect of `action` at `now` on a task in this status, paused since `paused_at` (if
    /// it is paused). Paused time is added when the pause ends (resume, complete or cancel).
    pub fn effect(
        self,
        action: TaskAction,
        paused_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Effect, NotAllowed> {
        let to = self.apply(action).ok_or_else(|| NotAllowed { from: self, allowed: self.allowed_actions() })?;
        let ends_a_pause = action != TaskAction::Pause;
        let paused_seconds = match paused_at {
            Some(since) if ends_a_pause => (now - since).whole_seconds().max(0),
            _ => 0,
        };
        Ok(Effect {
            from: self,
            to,
            actual_start: (action == TaskAction::Start).then_some(now),
            actual_end: to.is_final().then_some(now),
            paused_at: (action == TaskAction::Pause).then_some(now),
            paused_seconds,
            officers: match to {
                TaskStatus::InProgress => OfficerMove::Occupy,
                TaskStatus::Completed | TaskStatus::Cancelled => OfficerMove::Release,
                TaskStatus::Scheduled | TaskStatus::Paused => OfficerMove::Stay,
            },
        })
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
    fn every_allowed_action_has_its_whole_effect() {
        let now = time::macros::datetime!(2026-03-01 12:00 UTC);
        let since = now - time::Duration::seconds(90);
        // (from, action, paused since, start set, end set, paused_at set, paused seconds, officers)
        let table = [
            (Scheduled, Start, None, true, false, false, 0, OfficerMove::Occupy),
            (InProgress, Pause, None, false, false, true, 0, OfficerMove::Stay),
            (Paused, Resume, Some(since), false, false, false, 90, OfficerMove::Occupy),
            (InProgress, Complete, None, false, true, false, 0, OfficerMove::Release),
            (Paused, Complete, Some(since), false, true, false, 90, OfficerMove::Release),
            (Scheduled, Cancel, None, false, true, false, 0, OfficerMove::Release),
            (InProgress, Cancel, None, false, true, false, 0, OfficerMove::Release),
            (Paused, Cancel, Some(since), false, true, false, 90, OfficerMove::Release),
        ];
        for (from, action, paused_at, start, end, pause, seconds, officers) in table {
            let effect = from.effect(action, paused_at, now).expect("allowed");
            let case = format!("{from:?} × {action:?}");
            assert_eq!(effect.from, from, "{case}");
            assert_eq!(Some(effect.to), from.apply(action), "{case}");
            assert_eq!(effect.actual_start, start.then_some(now), "{case}");
            assert_eq!(effect.actual_end, end.then_some(now), "{case}");
            assert_eq!(effect.paused_at, pause.then_some(now), "{case}");
            assert_eq!(effect.paused_seconds, seconds, "{case}");
            assert_eq!(effect.officers, officers, "{case}");
        }
        let allowed = table.len();
        let refused = TaskStatus::ALL
            .into_iter()
            .flat_map(|from| TaskAction::ALL.into_iter().map(move |action| (from, action)))
            .filter(|(from, action)| from.effect(*action, None, now).is_err())
            .count();
        assert_eq!(allowed + refused, TaskStatus::ALL.len() * TaskAction::ALL.len(), "the table covers every pair");
    }

    #[test]
    fn a_refused_action_names_the_allowed_ones_and_clock_skew_adds_no_negative_pause() {
        let now = time::macros::datetime!(2026-03-01 12:00 UTC);
        let refusal = Completed.effect(Start, None, now).expect_err("final");
        assert_eq!(refusal, NotAllowed { from: Completed, allowed: vec![] });
        let refusal = Scheduled.effect(Pause, None, now).expect_err("not running");
        assert_eq!(refusal.allowed, [Start, Cancel]);
        let in_the_future = now + time::Duration::seconds(5);
        assert_eq!(Paused.effect(Resume, Some(in_the_future), now).map(|effect| effect.paused_seconds), Ok(0));
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
