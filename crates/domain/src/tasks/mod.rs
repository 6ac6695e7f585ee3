//! Dispatch: officers, geography, tasks and their state machine, and the use cases that own
//! every task rule (who may do what, what a write changes, which audit row and events it leaves).

pub mod geo;
pub mod input;
pub mod officer;
pub mod record;
pub mod state;
pub mod task;
pub mod use_cases;
