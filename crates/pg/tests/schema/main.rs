//! The schema's guarantees, proven against a real PostgreSQL + PostGIS, and the adapter's
//! translation of database outcomes into the domain's errors.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod adapters;
mod append_only;
mod constraints;
mod data_map;
mod event_log;
mod fixtures;
mod in_progress_rule;
mod migrations;
