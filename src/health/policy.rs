//! The health policy as data, and the one decision it drives: probe again, wait, or give up.
//! Semantics follow Docker's HEALTHCHECK: during `start_period` probes run every
//! `start_interval` and failures do not count; after it, probes run every `interval` and
//! `retries` consecutive failures make the instance unhealthy. Each probe is bounded by `timeout`.

use std::time::Duration;

/// How an instance is judged healthy. Defaults are the seed's: `/health`, 3 retries 5 s apart,
/// 10 s per probe, a 30 s start period probed every 100 ms.
#[derive(Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// HTTP path probed with GET; a 2xx answer is healthy.
    pub path: String,
    /// Time between probe starts after the start period.
    pub interval: Duration,
    /// Bound on one probe.
    pub timeout: Duration,
    /// Consecutive failures after the start period that make the instance unhealthy (≥ 1).
    pub retries: u32,
    /// Grace time after start during which failures do not count.
    pub start_period: Duration,
    /// Time between probe starts during the start period.
    pub start_interval: Duration,
    /// The check a swarm stage's tasks run themselves (exec form); `None`: the image's
    /// `HEALTHCHECK`.
    pub command: Option<Vec<String>>,
}

/// As derived, but `command` only when set: the text is part of each instance's spec hash, which
/// must not change for stages that never set it (their redeploys of the same digest stay no-ops).
impl std::fmt::Debug for HealthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("HealthPolicy");
        d.field("path", &self.path)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("start_period", &self.start_period)
            .field("start_interval", &self.start_interval);
        if let Some(command) = &self.command {
            d.field("command", command);
        }
        d.finish()
    }
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            path: "/health".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retries: 3,
            start_period: Duration::from_secs(30),
            start_interval: Duration::from_millis(100),
            command: None,
        }
    }
}

/// What to do after a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The probe passed.
    Healthy,
    /// `retries` consecutive counted failures.
    Unhealthy,
    /// Probe again after this long (measured from now).
    ProbeAfter(Duration),
}

/// The running count of one health check.
#[derive(Debug, Clone)]
pub struct HealthState {
    policy: HealthPolicy,
    failures: u32,
}

impl HealthState {
    /// A fresh check under `policy`.
    #[must_use]
    pub fn new(policy: HealthPolicy) -> Self {
        Self { policy, failures: 0 }
    }

    /// Counted consecutive failures so far.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a probe that started `started` after the container started and took `took`.
    pub fn record(&mut self, passed: bool, started: Duration, took: Duration) -> Verdict {
        if passed {
            self.failures = 0;
            return Verdict::Healthy;
        }
        let in_start_period = started < self.policy.start_period;
        if !in_start_period {
            self.failures += 1;
            if self.failures >= self.policy.retries.max(1) {
                return Verdict::Unhealthy;
            }
        }
        let gap = if in_start_period && started + self.policy.start_interval < self.policy.start_period {
            self.policy.start_interval
        } else if in_start_period {
            // The next probe is the first one that counts: run it when the start period ends.
            self.policy.start_period.saturating_sub(started)
        } else {
            self.policy.interval
        };
        Verdict::ProbeAfter(gap.saturating_sub(took))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_text_a_spec_hash_is_made_of_is_what_it_was_before_health_command_existed() {
        assert_eq!(
            format!("{:?}", HealthPolicy::default()),
            "HealthPolicy { path: \"/health\", interval: 5s, timeout: 10s, retries: 3, start_period: 30s, start_interval: 100ms }"
        );
        let with = HealthPolicy { command: Some(vec!["/app".into()]), ..HealthPolicy::default() };
        assert!(format!("{with:?}").ends_with("start_interval: 100ms, command: [\"/app\"] }"));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let mut s = HealthState::new(HealthPolicy::default());
        for i in 0..299 {
            assert_eq!(s.record(false, ms(i * 100), ms(0)), Verdict::ProbeAfter(ms(100)));
        }
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn three_counted_failures_five_seconds_apart_make_it_unhealthy() {
        let mut s = HealthState::new(HealthPolicy::default());
        assert_eq!(s.record(false, ms(30_000), ms(0)), Verdict::ProbeAfter(ms(5_000)));
        assert_eq!(s.record(false, ms(35_000), ms(0)), Verdict::ProbeAfter(ms(5_000)));
        assert_eq!(s.record(false, ms(40_000), ms(0)), Verdict::Unhealthy);
    }

    #[test]
    fn a_pass_resets_the_count_and_is_healthy() {
        let mut s = HealthState::new(HealthPolicy { start_period: Duration::ZERO, ..HealthPolicy::default() });
        s.record(false, ms(0), ms(0));
        assert_eq!(s.record(true, ms(5_000), ms(0)), Verdict::Healthy);
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn probe_time_is_taken_off_the_wait() {
        let mut s = HealthState::new(HealthPolicy { start_period: Duration::ZERO, ..HealthPolicy::default() });
        assert_eq!(s.record(false, ms(0), ms(1_500)), Verdict::ProbeAfter(ms(3_500)));
        assert_eq!(s.record(false, ms(5_000), ms(9_000)), Verdict::ProbeAfter(ms(0)));
    }
}
