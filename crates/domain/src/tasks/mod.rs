//! Dispatch: officers and geography (tasks, their state machine and assignment come next).

pub mod geo;
pub mod officer;
