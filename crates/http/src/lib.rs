//! The HTTP API: routes, the error envelope, the middleware stack of SPEC §2 and the OpenAPI
//! document. Only this crate maps errors to statuses.

pub mod auth;
pub mod cache;
mod contract;
pub mod error;
mod extract;
mod idempotency;
mod middleware;
pub mod openapi;
mod pagination;
pub mod rate_limit;
mod routes;
mod server;
mod state;
mod validation;

pub use middleware::{HttpMetrics, LATENCY_BUCKETS};
pub use routes::telegram::TelegramLinking;
pub use routes::ws_tickets::{TICKET_LIFETIME, Tickets, socket_owner};
pub use server::{ExtraRoutes, HttpSettings, api_server, is_socket_address, metrics_server};
pub use state::{AppState, HealthSettings, MetricsEndpoint, MetricsSettings, RecentHealth, Services};
