//! The Redis adapter. Redis is optional: without `REDIS_URL` the app runs as a single instance
//! with in-process implementations of the same ports.

mod announcements;
mod cache;
mod health;
mod limits;
mod pool;
mod revocation_hub;
mod revocations;

pub use announcements::RedisCommitAnnouncements;
pub use cache::RedisResponseCache;
pub use health::RedisCheck;
pub use limits::RedisRateLimiter;
pub use pool::{Redis, RedisPool, RedisSettings};
pub use revocation_hub::RevocationHub;
pub use revocations::RevocationChannel;
