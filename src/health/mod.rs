//! Health checking: probe a new container until the [`HealthPolicy`] says healthy or unhealthy,
//! and fail fast when the container exits first. The probing itself sits behind [`Probe`] so that
//! the policy can be tested with a fake probe and a paused clock.

mod policy;
mod verify;

use std::future::Future;
use std::time::Duration;

pub use policy::{HealthPolicy, HealthState, Verdict};
use tokio::time::Instant;
pub use verify::{Answer, VerifyError, VerifyPolicy};

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// 2xx within the timeout.
    pub passed: bool,
    /// `200 OK`, `500 Internal Server Error`, `connection refused`, `timed out after 10s`, …
    pub detail: String,
}

/// One health probe.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Probe {
    /// GETs `url`, giving up after `timeout`. Never fails: a failure is a result.
    async fn probe(&self, url: &str, timeout: Duration) -> ProbeResult;

    /// GETs `url` as the public would (the verify step, through the proxy): its host name is
    /// the Host header and the TLS server name, the connection goes to `connect` when given,
    /// else wherever the host name resolves. Never fails: a failure is an answer.
    async fn fetch(&self, url: &str, connect: Option<std::net::SocketAddr>, timeout: Duration) -> Answer;
}

/// [`Probe`] over HTTP, with [`crate::http::direct`]'s client: probes never go through a proxy.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    trust: crate::http::Trust,
    /// The client of the last [`Probe::fetch`] with a `connect` address, by (host, address).
    routed: std::sync::Arc<std::sync::Mutex<Option<(String, std::net::SocketAddr, reqwest::Client)>>>,
}

impl HttpProbe {
    /// A prober trusting `trust`'s roots (its client is [`crate::http::direct`]'s).
    ///
    /// # Errors
    /// [`crate::http::HttpError::Build`] when the TLS backend cannot initialise.
    pub fn new(trust: &crate::http::Trust) -> Result<Self, crate::http::HttpError> {
        Ok(Self { client: crate::http::direct(trust)?, trust: trust.clone(), routed: std::sync::Arc::default() })
    }

    /// The client that sends `host`'s requests to `connect`.
    fn routed(&self, host: &str, connect: std::net::SocketAddr) -> Result<reqwest::Client, crate::http::HttpError> {
        let mut cache = self.routed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((h, a, c)) = cache.as_ref()
            && h == host
            && *a == connect
        {
            return Ok(c.clone());
        }
        let client = crate::http::routed(&self.trust, host, connect)?;
        *cache = Some((host.to_owned(), connect, client.clone()));
        Ok(client)
    }
}

/// A failed request in a few words (never its URL).
fn request_failure(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {}", humantime::format_duration(timeout))
    } else if e.is_connect() {
        crate::http::connect_failure(e)
    } else {
        let e = e.without_url();
        let mut detail = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            detail = format!("{detail}: {src}");
        }
        detail
    }
}

impl Probe for HttpProbe {
    async fn fetch(&self, url: &str, connect: Option<std::net::SocketAddr>, timeout: Duration) -> Answer {
        let client = match connect {
            None => self.client.clone(),
            Some(addr) => {
                let host = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned));
                let Some(host) = host else {
                    return Answer { status: None, detail: format!("`{url}` has no host name") };
                };
                match self.routed(&host, addr) {
                    Ok(c) => c,
                    Err(e) => return Answer { status: None, detail: crate::fmt::one_line(&e) },
                }
            }
        };
        match client.get(url).timeout(timeout).send().await {
            Ok(resp) => Answer { status: Some(resp.status().as_u16()), detail: resp.status().to_string() },
            Err(e) => Answer { status: None, detail: request_failure(e, timeout) },
        }
    }

    async fn probe(&self, url: &str, timeout: Duration) -> ProbeResult {
        match self.client.get(url).timeout(timeout).send().await {
            Ok(resp) => ProbeResult { passed: resp.status().is_success(), detail: resp.status().to_string() },
            Err(e) if e.is_timeout() => ProbeResult {
                passed: false,
                detail: format!("timed out after {}", humantime::format_duration(timeout)),
            },
            Err(e) if e.is_connect() => ProbeResult { passed: false, detail: crate::http::connect_failure(e) },
            Err(e) => {
                let mut detail = e.to_string();
                if let Some(src) = std::error::Error::source(&e) {
                    detail = format!("{detail}: {src}");
                }
                ProbeResult { passed: false, detail }
            }
        }
    }
}

/// Why a container did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// Counted probes failed `retries` times in a row.
    #[error("unhealthy after {failures} failed probes of {url} (last: {last}); check the app's logs and `health.path`")]
    Unhealthy {
        /// The URL probed.
        url: String,
        /// Counted failures.
        failures: u32,
        /// The last probe's detail.
        last: String,
    },
    /// The container stopped before it was healthy.
    #[error("container exited with code {code} before it was healthy; last log lines:{}", fmt_tail(.logs))]
    Exited {
        /// Exit code.
        code: i64,
        /// The last lines of its output.
        logs: Vec<String>,
    },
}

impl HealthError {
    /// The exited container's last log lines (empty for any other failure). They may hold
    /// secrets: they belong in the deploy's local history, and in a notification only where a
    /// target asks for them (`include_logs`).
    #[must_use]
    pub fn logs(&self) -> &[String] {
        match self {
            Self::Exited { logs, .. } => logs,
            Self::Unhealthy { .. } => &[],
        }
    }

    /// The message without the log lines, for what leaves the host (notifications).
    #[must_use]
    pub fn without_logs(&self) -> String {
        match self {
            Self::Exited { code, .. } => format!(
                "container exited with code {code} before it was healthy; its last log lines are in the deploy's history"
            ),
            Self::Unhealthy { .. } => self.to_string(),
        }
    }
}

fn fmt_tail(lines: &[String]) -> String {
    if lines.is_empty() { " (none)".into() } else { lines.iter().flat_map(|l| [" | ", l.as_str()]).collect() }
}

/// One probe's outcome, for the deploy log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    /// Time since the check began.
    pub at: Duration,
    /// Whether it counted against `retries` (false during the start period).
    pub counted: bool,
    /// The result.
    pub result: ProbeResult,
}

/// Probes `url` under `policy` until healthy or unhealthy. `exited` resolves with the container's
/// exit code and last log lines if it stops; the check then fails at once. Each probe is passed
/// to `on_probe`.
///
/// # Errors
/// [`HealthError::Unhealthy`] or [`HealthError::Exited`].
pub async fn wait_healthy<P, E>(
    probe: &P,
    url: &str,
    policy: &HealthPolicy,
    exited: E,
    on_probe: &mut dyn FnMut(&ProbeEvent),
) -> Result<Duration, HealthError>
where
    P: Probe,
    E: Future<Output = (i64, Vec<String>)>,
{
    let begin = Instant::now();
    let mut state = HealthState::new(policy.clone());
    let probing = async {
        loop {
            let started = begin.elapsed();
            let result = probe.probe(url, policy.timeout).await;
            let took = begin.elapsed().saturating_sub(started);
            let counted = started >= policy.start_period;
            let verdict = state.record(result.passed, started, took);
            on_probe(&ProbeEvent { at: started, counted, result: result.clone() });
            match verdict {
                Verdict::Healthy => return Ok(begin.elapsed()),
                Verdict::Unhealthy => {
                    return Err(HealthError::Unhealthy {
                        url: url.to_owned(),
                        failures: state.failures(),
                        last: result.detail,
                    });
                }
                Verdict::ProbeAfter(wait) => tokio::time::sleep(wait).await,
            }
        }
    };
    tokio::select! {
        biased;
        (code, logs) = exited => Err(HealthError::Exited { code, logs }),
        r = probing => r,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A probe that answers from a script and remembers when it was called.
    struct ScriptedProbe {
        answers: RefCell<Vec<bool>>,
        calls: RefCell<Vec<Instant>>,
        hang: bool,
    }

    impl ScriptedProbe {
        fn failing() -> Self {
            Self { answers: RefCell::new(Vec::new()), calls: RefCell::new(Vec::new()), hang: false }
        }
    }

    impl Probe for ScriptedProbe {
        async fn probe(&self, _: &str, timeout: Duration) -> ProbeResult {
            self.calls.borrow_mut().push(Instant::now());
            if self.hang {
                tokio::time::sleep(timeout).await;
                return ProbeResult { passed: false, detail: "timed out".into() };
            }
            let passed = self.answers.borrow_mut().pop().unwrap_or(false);
            ProbeResult { passed, detail: if passed { "200 OK" } else { "500 Internal Server Error" }.into() }
        }

        async fn fetch(&self, _: &str, _: Option<std::net::SocketAddr>, _: Duration) -> Answer {
            Answer { status: None, detail: "not used by the health policy".into() }
        }
    }

    fn never() -> impl Future<Output = (i64, Vec<String>)> {
        std::future::pending()
    }

    #[tokio::test(start_paused = true)]
    async fn seed_defaults_fail_after_three_counted_probes_five_seconds_apart() {
        let probe = ScriptedProbe::failing();
        let policy = HealthPolicy::default();
        let mut counted = Vec::new();
        let begin = Instant::now();
        let r = wait_healthy(&probe, "http://x/health", &policy, never(), &mut |e| {
            if e.counted {
                counted.push(e.at);
            }
        })
        .await;
        assert!(matches!(r, Err(HealthError::Unhealthy { failures: 3, .. })), "{r:?}");
        assert_eq!(counted.len(), 3, "exactly three counted probes");
        assert!(counted[0] >= policy.start_period, "first counted probe after the start period");
        assert_eq!(counted[1].checked_sub(counted[0]).unwrap(), Duration::from_secs(5));
        assert_eq!(counted[2].checked_sub(counted[1]).unwrap(), Duration::from_secs(5));
        assert_eq!(begin.elapsed(), counted[2], "gives up right after the third failure");
    }

    #[tokio::test(start_paused = true)]
    async fn each_probe_is_bounded_by_the_timeout() {
        let probe = ScriptedProbe { hang: true, ..ScriptedProbe::failing() };
        let policy = HealthPolicy { start_period: Duration::ZERO, ..HealthPolicy::default() };
        let begin = Instant::now();
        let r = wait_healthy(&probe, "u", &policy, never(), &mut |_| {}).await;
        assert!(matches!(r, Err(HealthError::Unhealthy { failures: 3, .. })));
        // Three probes of 10 s each; the wait after a probe that outlasts the interval is zero.
        assert_eq!(begin.elapsed(), Duration::from_secs(30));
        assert_eq!(probe.calls.borrow().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_passing_probe_in_the_start_period_is_healthy_at_once() {
        let probe = ScriptedProbe { answers: RefCell::new(vec![true, false, false]), ..ScriptedProbe::failing() };
        let took = wait_healthy(&probe, "u", &HealthPolicy::default(), never(), &mut |_| {}).await.unwrap();
        assert_eq!(took, Duration::from_millis(200), "third probe, 100 ms apart");
    }

    #[tokio::test(start_paused = true)]
    async fn an_exited_container_fails_the_check_at_once_with_code_and_logs() {
        let probe = ScriptedProbe::failing();
        let exited = async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            (3, vec!["panic: no config".to_owned()])
        };
        let begin = Instant::now();
        let r = wait_healthy(&probe, "u", &HealthPolicy::default(), exited, &mut |_| {}).await;
        assert_eq!(r, Err(HealthError::Exited { code: 3, logs: vec!["panic: no config".into()] }));
        assert_eq!(begin.elapsed(), Duration::from_millis(250));
        let e = r.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("code 3") && msg.contains("panic: no config"), "{msg}");
        assert_eq!(e.logs(), ["panic: no config".to_owned()]);
    }

    #[test]
    fn the_message_without_logs_keeps_the_exit_code_and_drops_every_line() {
        let e = HealthError::Exited { code: 3, logs: vec!["DB_PASSWORD=hunter2".into(), "panic".into()] };
        let shown = e.without_logs();
        assert!(shown.contains("code 3") && shown.contains("history"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("panic"), "{shown}");
        let u = HealthError::Unhealthy { url: "http://x/health".into(), failures: 3, last: "500".into() };
        assert_eq!(u.without_logs(), u.to_string());
        assert!(u.logs().is_empty());
    }
}
