//! The `gad` application: configuration, wiring of adapters into the HTTP layer, and the
//! commands of the command line. The only crate that sees every other.

pub mod commands;
pub mod config;
pub mod realtime;
pub mod retention;
pub mod startup;
pub mod telegram;
pub mod telemetry;
