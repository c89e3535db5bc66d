//! The verify step, after the cut-over and before `finish`: the slot's path is requested
//! through the proxy with the slot's host name every `interval` for `window`, while the new
//! instance is watched for an exit, a restart or an OOM kill. `failures` failed requests in a
//! row, or one crash, fail the step; the saga's rollback then points the host back at the
//! instance it replaced (never retired before `finish`) and removes the new one, through the one
//! undo executor. On a slot's first deploy the rollback deletes the host.

use tokio::time::Instant;

use super::Saga;
use crate::deploy::journal::ms;
use crate::deploy::outcome::StepError;
use crate::deploy::place::Placement as _;
use crate::engine::{ContainerRuntime, Vitals};
use crate::fmt::one_line;
use crate::health::{Probe, VerifyError, VerifyPolicy};
use crate::look::Look;
use crate::proxy::Proxy;
use crate::report::{Level, Step};
use crate::store::Store;

/// How long the verify step waits for the engine to tell a restarted container's exit code.
const EXIT_CODE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// Watches the new instance through the proxy at `url` (the slot's public URL) under
    /// `policy`.
    pub(super) async fn verify(&self, policy: &VerifyPolicy, url: &str) -> Result<(), StepError> {
        let target = format!("{}{}", url.trim_end_matches('/'), policy.path);
        let via = policy.connect.map_or_else(|| "where its host name resolves".to_owned(), |a| format!("via {a}"));
        self.log(
            Step::Verify,
            Level::Info,
            format!(
                "requesting {target} through the proxy ({via}) every {} for {}; {} failures in a row switch back",
                humantime::format_duration(policy.interval),
                humantime::format_duration(policy.window),
                policy.failures
            ),
        );
        let begin = Instant::now();
        let mut baseline: Option<Vitals> = None;
        let mut streak: Vec<String> = Vec::new();
        let (mut passed, mut failed) = (0u32, 0u32);
        let mut ticker = tokio::time::interval(policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let at = begin.elapsed();
            if at >= policy.window {
                break;
            }
            let (answer, vitals) = tokio::join!(
                self.d.probe.fetch(&target, policy.connect, policy.interval),
                self.placement.vitals(self.d.runtime, &self.container_name, self.id),
            );
            let after_ms = ms(begin.elapsed());
            match vitals {
                Look::Found(v) => {
                    let base = *baseline.get_or_insert(Vitals { running: true, ..v });
                    if let Some(what) = self.crash(&base, &v).await {
                        let logs = self.placement.crash_logs(self.d.runtime, &self.container_name, self.id).await;
                        self.log(Step::Verify, Level::Warn, format!("{} {what}", self.container_name));
                        let code = v.exit_code;
                        return Err(
                            VerifyError::Crashed { what, code, oom_killed: v.oom_killed, logs, after_ms }.into()
                        );
                    }
                }
                Look::Absent => {
                    let what = "is gone (removed by someone else?)".to_owned();
                    self.log(Step::Verify, Level::Warn, format!("{} {what}", self.container_name));
                    return Err(VerifyError::Crashed {
                        what,
                        code: None,
                        oom_killed: false,
                        logs: Vec::new(),
                        after_ms,
                    }
                    .into());
                }
                // Could not look is not gone: the requests still judge it.
                Look::Unknown(e) => self.log(
                    Step::Verify,
                    Level::Warn,
                    format!("cannot look at {} now: {}", self.container_name, one_line(&e)),
                ),
            }
            if answer.failed() {
                failed += 1;
                self.log(
                    Step::Verify,
                    Level::Warn,
                    format!("{target} answered {} after {}", answer.detail, crate::fmt::millis(after_ms)),
                );
                streak.push(answer.detail);
                if streak.len() >= usize::try_from(policy.failures).unwrap_or(usize::MAX) {
                    return Err(VerifyError::Failing { url: target, answers: streak, after_ms }.into());
                }
            } else {
                passed += 1;
                streak.clear();
            }
        }
        self.log(
            Step::Verify,
            Level::Info,
            format!(
                "verified for {}: {passed} requests passed, {failed} failed (never {} in a row)",
                humantime::format_duration(policy.window),
                policy.failures
            ),
        );
        Ok(())
    }

    /// What went wrong with the new instance since `base` (its state when the window opened),
    /// if anything: an OOM kill, a restart or an exit.
    async fn crash(&self, base: &Vitals, now: &Vitals) -> Option<String> {
        if now.oom_killed {
            return Some("was killed for lack of memory (OOM)".to_owned());
        }
        if now.restarts > base.restarts {
            let code = match now.exit_code {
                Some(c) => Some(c),
                // Running again: the engine's record of the exit has the code.
                None => tokio::time::timeout(EXIT_CODE_WAIT, self.d.runtime.wait_exit(&self.container_name))
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            let code = code.map_or_else(|| "exit code unknown".to_owned(), |c| format!("exit code {c}"));
            return Some(format!("exited and was restarted by its restart policy ({code})"));
        }
        if !now.running {
            let code = now.exit_code.map_or_else(|| "an unknown code".to_owned(), |c| c.to_string());
            return Some(format!("exited with code {code}"));
        }
        None
    }
}
