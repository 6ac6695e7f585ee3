//! Dispatch: officers, geography, tasks and their state machine.

pub mod geo;
pub mod officer;
pub mod state;
pub mod task;
