//! The periodic retention purge of `gad serve`. Every instance runs the job; the store lets one
//! purge at a time and the others skip their turn.

use std::sync::Arc;
use std::time::Duration;

use gad_domain::consent::retention::{PurgeMode, PurgeOutcome, RetentionPolicy, RetentionStore};

/// Purges now and then every `every`, until the task is stopped.
pub async fn purge_periodically(store: Arc<dyn RetentionStore>, policy: RetentionPolicy, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.purge(&policy, PurgeMode::Delete).await {
            Ok(PurgeOutcome::Done(purged)) => {
                let rows: u64 = purged.iter().map(|table| table.rows).sum();
                tracing::debug!(rows, "retention purge finished");
            }
            Ok(PurgeOutcome::Busy) => tracing::debug!("another instance is purging; skipping this turn"),
            Err(error) => tracing::warn!(error = %error, "retention purge failed; retrying at the next turn"),
        }
    }
}
