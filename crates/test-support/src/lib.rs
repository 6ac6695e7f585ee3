//! Isolation for tests that talk to real PostgreSQL and Redis.
//!
//! Every test gets its own database, `CREATE DATABASE … TEMPLATE` of a template that is migrated
//! once per set of migrations (its name carries a hash of the migration files, so editing a
//! migration builds a new one), and dropped when the test's handle is dropped. Test binaries
//! run in parallel processes; building the template is serialised with an advisory lock.
//! Redis isolation is a unique key prefix per test, whose keys are deleted on drop.
//!
//! `TEST_DATABASE_URL` (else `DATABASE_URL`, else the local default) names the server and an
//! existing database to administer from; `TEST_REDIS_URL` (else `REDIS_URL`) the Redis server.

#![expect(clippy::unwrap_used, reason = "a test harness fails loudly on broken infrastructure")]

mod database;
mod fake_bot_api;
mod redis_prefix;

pub use database::TestDatabase;
pub use fake_bot_api::{BotCall, Failure, FakeBotApi};
pub use redis_prefix::TestRedis;
