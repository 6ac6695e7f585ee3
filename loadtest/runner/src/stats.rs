//! Latency samples and their percentiles, shared by every scenario.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Nearest-rank percentile of an ascending slice; `None` when it is empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `{count, p50, p95, p99, max}` of the samples, in milliseconds (null percentiles when empty).
pub fn distribution(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    json!({
        "count": samples.len(),
        "p50": percentile(&samples, 50.0).map(round),
        "p95": percentile(&samples, 95.0).map(round),
        "p99": percentile(&samples, 99.0).map(round),
        "max": samples.last().copied().map(round),
    })
}

/// Milliseconds to three decimals: enough for a report, short enough to read.
pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// One request kind's outcomes.
#[derive(Debug, Default)]
struct Kind {
    latencies_ms: Vec<f64>,
    errors: u64,
    /// Count per status (or `transport` for a request that got no response).
    outcomes: BTreeMap<String, u64>,
    first_errors: Vec<String>,
}

/// Every HTTP request of a run, by kind (`login`, `task_list`, …).
#[derive(Debug, Default)]
pub struct HttpRecorder {
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
    /// Running totals for the progress line.
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    recent_ms: Mutex<Vec<f64>>,
}

/// What became of one request.
#[derive(Debug)]
pub enum Outcome {
    Status(u16),
    /// No response: refused, reset or timed out.
    Transport,
}

impl HttpRecorder {
    /// Records a request; `ok` says whether its outcome is the expected one.
    pub fn record(
        &self,
        kind: &'static str,
        latency_ms: f64,
        outcome: &Outcome,
        ok: bool,
        detail: impl FnOnce() -> String,
    ) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let label = match outcome {
            Outcome::Status(status) => status.to_string(),
            Outcome::Transport => "transport".to_owned(),
        };
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = kinds.entry(kind).or_default();
        entry.latencies_ms.push(latency_ms);
        *entry.outcomes.entry(label).or_default() += 1;
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
            entry.errors += 1;
            if entry.first_errors.len() < 3 {
                entry.first_errors.push(detail());
            }
        }
        drop(kinds);
        self.recent_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(latency_ms);
    }

    /// The p95 of the requests since the last call (for the progress line).
    pub fn take_recent_p95(&self) -> Option<f64> {
        let mut recent = std::mem::take(&mut *self.recent_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        recent.sort_by(f64::total_cmp);
        percentile(&recent, 95.0)
    }

    /// Per kind and overall: count, rate, percentiles, errors; plus every latency overall.
    pub fn summary(&self, duration_s: f64) -> (Value, Vec<f64>, u64) {
        let kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = Vec::new();
        let mut errors = 0;
        let mut by_kind = serde_json::Map::new();
        for (name, kind) in kinds.iter() {
            all.extend_from_slice(&kind.latencies_ms);
            errors += kind.errors;
            let mut entry = distribution(kind.latencies_ms.clone());
            entry["rate_per_s"] = json!(round(kind.latencies_ms.len() as f64 / duration_s.max(0.001)));
            entry["errors"] = json!(kind.errors);
            entry["statuses"] = json!(kind.outcomes);
            entry["first_errors"] = json!(kind.first_errors);
            by_kind.insert((*name).to_owned(), entry);
        }
        (Value::Object(by_kind), all, errors)
    }
}

/// A counter that is also read for the progress line.
pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 95.0), Some(95.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_summary_counts_errors_per_kind() {
        let recorder = HttpRecorder::default();
        recorder.record("task_list", 10.0, &Outcome::Status(200), true, String::new);
        recorder.record("task_list", 30.0, &Outcome::Status(500), false, || "500 boom".to_owned());
        recorder.record("login", 5.0, &Outcome::Transport, false, || "refused".to_owned());
        let (kinds, all, errors) = recorder.summary(2.0);
        assert_eq!(errors, 2);
        assert_eq!(all.len(), 3);
        assert_eq!(kinds["task_list"]["count"], 2);
        assert_eq!(kinds["task_list"]["errors"], 1);
        assert_eq!(kinds["task_list"]["rate_per_s"], 1.0);
        assert_eq!(kinds["task_list"]["statuses"]["500"], 1);
        assert_eq!(kinds["login"]["statuses"]["transport"], 1);
        assert_eq!(kinds["task_list"]["first_errors"][0], "500 boom");
    }
}
