//! Dispatch: officers, geography and the task state machine (tasks themselves come next).

pub mod geo;
pub mod officer;
pub mod state;
