//! Black-box tests of the `gad` application against real PostgreSQL and Redis: one binary,
//! one module per concern.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod auth;
mod cli;
mod contract;
mod faults;
mod health;
mod helpers;
mod limits;
mod metrics;
mod officers;
mod privacy;
mod records;
mod shutdown;
mod stats;
mod tasks;
mod telegram;
mod users;
mod wire;
mod ws;
