//! Readiness of the dependencies the service cannot work without.

use async_trait::async_trait;

/// A dependency whose state decides whether this instance may receive traffic.
///
/// Error contract: `check` never panics and never hangs past the adapter's own timeouts; every
/// failure is reported as [`DependencyStatus::Down`] with a short, non-sensitive reason.
#[async_trait]
pub trait DependencyCheck: Send + Sync {
    /// Stable name used in health reports and metrics (`postgres`, `redis`).
    fn name(&self) -> &'static str;

    /// Probes the dependency once.
    async fn check(&self) -> DependencyStatus;
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyStatus {
    Up,
    /// Reachable but unusable, or unreachable; the reason is safe to show to operators.
    Down(String),
}

impl DependencyStatus {
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up)
    }
}
