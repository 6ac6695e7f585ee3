//! Work that runs for the life of the process (the relay, the event numbering, revocation
//! synchronisation). Adapters describe it; the app starts every job, stops them all through one
//! cancellation signal at shutdown and waits for them.

use std::future::Future;
use std::pin::Pin;

/// A named, never-ending loop. It holds no state that a stop between two awaits could break:
/// the app stops it by dropping it.
pub struct BackgroundJob {
    pub name: &'static str,
    pub run: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl BackgroundJob {
    pub fn new(name: &'static str, run: impl Future<Output = ()> + Send + 'static) -> Self {
        Self { name, run: Box::pin(run) }
    }
}

impl std::fmt::Debug for BackgroundJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundJob").field("name", &self.name).finish_non_exhaustive()
    }
}
