//! The domain of GAD: what an operations centre does, independent of how it is stored, served or
//! delivered. Adapters (`gad-pg`, `gad-redis`, `gad-http`, …) depend on this crate, never the
//! other way round; CI proves it with `cargo tree -e normal -i <crate>`.
//!
//! Ports are `async_trait` traits so that the wiring can hold them as `Arc<dyn Port>` without
//! generics leaking into routing.

pub mod audit;
pub mod background;
pub mod clock;
pub mod consent;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
mod ids;
pub mod limits;
pub mod settings;
pub mod stats;
pub mod tasks;
pub mod telegram;
pub mod users;
