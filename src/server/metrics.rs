//! `/metrics` in Prometheus text format (version 0.0.4). Labels carry only names from the
//! config and fixed words (outcome, step, receiver name, result): never a token, a secret, a
//! signature, a delivery id or anything else a request chose.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// Upper bounds of the step duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    deploys: Mutex<BTreeMap<&'static str, u64>>,
    steps: Mutex<BTreeMap<&'static str, Histogram>>,
    webhooks: Mutex<BTreeMap<(String, &'static str), u64>>,
    pushes_skipped: Mutex<BTreeMap<&'static str, u64>>,
    auth_failures: Mutex<u64>,
    verify_switch_backs: Mutex<u64>,
    queue_depth: AtomicI64,
    running: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// A deploy (or removal) ended: `succeeded`, `failed`, `incomplete`, `interrupted`, `busy`,
    /// `skipped` (already running), `removed`, `error`.
    pub fn deploy(&self, outcome: &'static str) {
        *lock(&self.deploys).entry(outcome).or_default() += 1;
    }

    /// A deploy failed its verify step: the slot's host went back to the previous instance
    /// (or, on a slot's first deploy, away).
    pub fn verify_switch_back(&self) {
        *lock(&self.verify_switch_backs) += 1;
    }

    /// A step took `ms`.
    pub fn step(&self, step: &'static str, ms: u64) {
        let secs = ms as f64 / 1000.0;
        let mut steps = lock(&self.steps);
        let h = steps.entry(step).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// A webhook request to receiver `name` ended as `result` (`accepted`, `ignored`,
    /// `unauthorized`, `replayed`, `unavailable`, `too_large`).
    pub fn webhook(&self, name: &str, result: &'static str) {
        *lock(&self.webhooks).entry((name.to_owned(), result)).or_default() += 1;
    }

    /// A push the queue released deployed nothing: `stale` (the tag points at another digest
    /// now), `removed` (the slot was removed on purpose while it ran that digest).
    pub fn push_skipped(&self, reason: &'static str) {
        *lock(&self.pushes_skipped).entry(reason).or_default() += 1;
    }

    /// A request failed authentication.
    pub fn auth_failure(&self) {
        *lock(&self.auth_failures) += 1;
    }

    /// Pushes waiting in the queue.
    pub fn set_queue_depth(&self, n: usize) {
        self.queue_depth.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Deploys running now.
    pub fn set_running(&self, n: usize) {
        self.running.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# HELP tiny_forge_deploys_total Deploys and removals run by this server, by outcome.");
        let _ = writeln!(o, "# TYPE tiny_forge_deploys_total counter");
        for (outcome, n) in lock(&self.deploys).iter() {
            let _ = writeln!(o, "tiny_forge_deploys_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP tiny_forge_step_duration_seconds How long each deploy step took.");
        let _ = writeln!(o, "# TYPE tiny_forge_step_duration_seconds histogram");
        for (step, h) in lock(&self.steps).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "tiny_forge_step_duration_seconds_bucket{{step=\"{step}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(o, "tiny_forge_step_duration_seconds_bucket{{step=\"{step}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(o, "tiny_forge_step_duration_seconds_sum{{step=\"{step}\"}} {}", h.sum);
            let _ = writeln!(o, "tiny_forge_step_duration_seconds_count{{step=\"{step}\"}} {}", h.count);
        }
        let _ = writeln!(
            o,
            "# HELP tiny_forge_queue_depth Pushes waiting (debounce, a running deploy of their slot, approval)."
        );
        let _ = writeln!(o, "# TYPE tiny_forge_queue_depth gauge");
        let _ = writeln!(o, "tiny_forge_queue_depth {}", self.queue_depth.load(Ordering::Relaxed));
        let _ = writeln!(o, "# HELP tiny_forge_deploys_running Deploys this server runs now.");
        let _ = writeln!(o, "# TYPE tiny_forge_deploys_running gauge");
        let _ = writeln!(o, "tiny_forge_deploys_running {}", self.running.load(Ordering::Relaxed));
        let _ = writeln!(o, "# HELP tiny_forge_webhooks_total Webhook requests, by receiver and result.");
        let _ = writeln!(o, "# TYPE tiny_forge_webhooks_total counter");
        for ((name, result), n) in lock(&self.webhooks).iter() {
            let _ = writeln!(o, "tiny_forge_webhooks_total{{receiver=\"{name}\",result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP tiny_forge_pushes_skipped_total Pushes that deployed nothing: the tag points elsewhere now (stale), or the slot was removed on purpose (removed)."
        );
        let _ = writeln!(o, "# TYPE tiny_forge_pushes_skipped_total counter");
        for (reason, n) in lock(&self.pushes_skipped).iter() {
            let _ = writeln!(o, "tiny_forge_pushes_skipped_total{{reason=\"{reason}\"}} {n}");
        }
        let _ =
            writeln!(o, "# HELP tiny_forge_auth_failures_total Requests refused for a missing or wrong credential.");
        let _ = writeln!(o, "# TYPE tiny_forge_auth_failures_total counter");
        let _ = writeln!(o, "tiny_forge_auth_failures_total {}", lock(&self.auth_failures));
        let _ = writeln!(
            o,
            "# HELP tiny_forge_verify_switch_backs_total Deploys whose verify step failed after the cut-over: the host went back to the previous instance."
        );
        let _ = writeln!(o, "# TYPE tiny_forge_verify_switch_backs_total counter");
        let _ = writeln!(o, "tiny_forge_verify_switch_backs_total {}", lock(&self.verify_switch_backs));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.deploy("succeeded");
        m.step("pull", 300);
        m.verify_switch_back();
        m.webhook("registry", "accepted");
        m.set_queue_depth(2);
        let text = m.render();
        assert!(text.contains("tiny_forge_deploys_total{outcome=\"succeeded\"} 1"), "{text}");
        assert!(text.contains("tiny_forge_verify_switch_backs_total 1"), "{text}");
        assert!(text.contains("tiny_forge_step_duration_seconds_bucket{step=\"pull\",le=\"0.5\"} 1"), "{text}");
        assert!(text.contains("tiny_forge_step_duration_seconds_bucket{step=\"pull\",le=\"0.25\"} 0"), "{text}");
        assert!(text.contains("tiny_forge_queue_depth 2"), "{text}");
        assert!(text.contains("tiny_forge_webhooks_total{receiver=\"registry\",result=\"accepted\"} 1"), "{text}");
    }
}
