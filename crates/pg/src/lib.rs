//! The PostgreSQL + PostGIS adapter: the generated `schema`, the connection pool, the embedded
//! migrations and the implementations of the domain's storage ports.

mod admins;
mod audit;
pub mod auth;
mod consent;
mod enums;
mod errors;
mod events;
#[cfg(test)]
mod fixtures;
pub mod health;
mod idempotency;
pub mod migrations;
mod officers;
pub mod pool;
mod prepared;
pub mod privacy;
#[rustfmt::skip]
pub mod schema;
mod stats;
mod tasks;
mod telegram;
mod tickets;
mod transaction;
pub mod users;

pub use audit::PgAuditLog;
pub use auth::PgAuthStore;
pub use consent::PgConsentStore;
pub use events::EventNumbering;
pub use events::PgEventLog;
pub use health::PostgresCheck;
pub use idempotency::PgIdempotencyStore;
pub use officers::PgOfficerStore;
pub use pool::{PgPool, PgSettings, build_pool, build_worker_pool};
pub use privacy::{PgPersonalDataStore, PgRetentionStore};
pub use stats::PgStatsStore;
pub use tasks::PgTaskStore;
pub use telegram::PgTelegramStore;
pub use tickets::PgTicketStore;
pub use users::PgUserStore;
