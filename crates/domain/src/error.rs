//! Failures that any storage port may report, whatever the use case.

/// An error from behind a port that the caller cannot fix by changing its input.
///
/// Adapters translate their own errors into this at the seam: pool timeouts and refused
/// connections become [`StoreError::Unavailable`] (the HTTP layer answers 503 with
/// `Retry-After`); everything else is [`StoreError::Unexpected`] and is logged once where it is
/// handled.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any adapter error as unexpected.
    pub fn unexpected(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unexpected(Box::new(error))
    }
}
