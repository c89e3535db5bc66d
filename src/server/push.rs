//! Pushes the queue released. A notification is a hint, for every receiver and the poller
//! alike: the tag is resolved in the registry now (a manifest HEAD with the stage's
//! credentials), and only the digest it points at now may deploy.
//!
//! - A notification that named another digest than the tag's now deploys nothing: it is old
//!   (a redelivery, a replay, an out-of-order event), and the push that moved the tag has a
//!   notification of its own. Logged, and counted in `/metrics`
//!   (`tiny_forge_pushes_skipped_total{reason="stale"}`).
//! - A slot whose newest history row is a `remove` of that very digest stays removed: an old
//!   notification does not bring back a preview someone took down (`reason="removed"`). A new
//!   build of the tag deploys again.
//! - Whether the slot already runs that digest is the deploy's own decision, made under the
//!   stage's lock with the container's state in view, so a re-push onto a dead container
//!   redeploys it.

use super::executor::{Executor, JobReporter, Running};
use super::queue::Candidate;
use crate::deploy::Cancel;
use crate::domain::{Slot, Trigger};
use crate::engine::ContainerRuntime;
use crate::health::Probe;
use crate::lock::LockWait;
use crate::ops::{Command, CommandKind, CommandResult, ExitCode, Skipped};
use crate::proxy::Proxy;
use crate::store::{Filter, Store};

/// Why a released push deploys nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Skip {
    /// The tag points at another digest now.
    Stale {
        /// What the notification said.
        notified: String,
    },
    /// The slot was removed on purpose while it ran this digest.
    Removed,
}

/// Should a push of `slot` deploy `now`, the digest its tag resolves to, given what the payload
/// `notified` and the slot's newest history row (`newest`: trigger and image)?
pub(super) fn skip(notified: Option<&str>, now: &str, newest: Option<(Trigger, &str)>) -> Option<Skip> {
    if let Some(n) = notified
        && n != now
    {
        return Some(Skip::Stale { notified: n.to_owned() });
    }
    match newest {
        Some((Trigger::Remove, image)) if image.rsplit_once('@').is_some_and(|(_, d)| d == now) => Some(Skip::Removed),
        _ => None,
    }
}

impl<R, P, S, Pr> Executor<R, P, S, Pr>
where
    R: ContainerRuntime + 'static,
    P: Proxy + 'static,
    S: Store + 'static,
    Pr: Probe + 'static,
{
    /// Runs push `c` as job `job` (registered as running by the caller), then frees its slot in
    /// the queue.
    pub(super) async fn run_push(&self, c: Candidate, job: u64, cancel: Cancel) {
        {
            let _running = Running { ex: self, job };
            self.push(&c, job, cancel).await;
        }
        self.queue.borrow_mut().done(&c.slot);
        self.wake.notify_one();
    }

    /// The slot's newest history row, as (trigger, image). A history that cannot be read is
    /// an error, not an empty one: it may hold the `remove` that keeps this digest away.
    fn newest(&self, slot: &Slot) -> Result<Option<(Trigger, String)>, crate::store::StoreError> {
        let filter = Filter {
            project: Some(slot.project.to_string()),
            stage: Some(slot.stage.to_string()),
            tag: Some(slot.tag.to_string()),
        };
        Ok(self.backend.store.deploys(&filter, 1)?.into_iter().next().map(|d| (d.trigger, d.image)))
    }

    async fn push(&self, c: &Candidate, job: u64, cancel: Cancel) {
        let stage = match self.resolve(&c.slot.project, &c.slot.stage) {
            Ok(s) => s,
            Err(e) => {
                self.shared.log(&format!("push {}: {e}", c.slot));
                return self.shared.jobs.failed(job, e, ExitCode::Usage.code());
            }
        };
        let image = format!("{}:{}", c.image, c.tag);
        let now = match crate::deploy::digest_now(&self.backend.runtime, &stage, &image).await {
            Ok(d) if !d.is_empty() => d,
            Ok(_) | Err(_) => {
                let e = format!("cannot resolve {image} to a digest; nothing deployed");
                self.shared.log(&format!("push {}: {e}", c.slot));
                self.shared.metrics.deploy("error");
                return self.shared.jobs.failed(job, e, ExitCode::Usage.code());
            }
        };
        let newest = match self.newest(&c.slot) {
            Ok(n) => n,
            Err(e) => {
                let e =
                    format!("cannot read the history of {}: {}; nothing deployed", c.slot, crate::fmt::one_line(&e));
                self.shared.log(&format!("push {}: {e}", c.slot));
                self.shared.metrics.deploy("error");
                return self.shared.jobs.failed(job, e, ExitCode::Usage.code());
            }
        };
        if let Some(why) = skip(c.digest.as_deref(), &now, newest.as_ref().map(|(t, i)| (*t, i.as_str()))) {
            let (reason, line) = match &why {
                Skip::Stale { notified } => {
                    ("stale", format!("{image} points at {now} now, not at {notified} as notified: nothing deployed"))
                }
                Skip::Removed => (
                    "removed",
                    format!("{image} is still {now}, which was removed from the slot on purpose: nothing deployed"),
                ),
            };
            self.shared.log(&format!("push {} ({}): {line}", c.slot, c.actor));
            self.shared.metrics.push_skipped(reason);
            let result = CommandResult::Skipped(Skipped {
                slot: c.slot.to_string(),
                digest: now,
                reason: reason.into(),
                error: line,
            });
            return self.shared.jobs.done(job, &result);
        }
        let reporter = JobReporter { job, shared: &self.shared };
        let deployer = self.deployer(&reporter, &c.actor).with_cancel(cancel);
        let cmd = Command {
            stage,
            tag: c.slot.tag.clone(),
            // A repeated notification of what already runs deploys nothing (the saga checks).
            kind: CommandKind::Deploy {
                force: false,
                image: Some(format!("{}@{now}", c.image)),
                trigger: c.trigger,
                verify: true,
            },
            wait: LockWait::Forever,
        };
        self.finish_job(job, deployer.run(&cmd).await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notified_digest_the_tag_no_longer_points_at_deploys_nothing() {
        assert_eq!(skip(Some("sha256:a"), "sha256:b", None), Some(Skip::Stale { notified: "sha256:a".into() }));
        assert_eq!(skip(Some("sha256:b"), "sha256:b", None), None);
        assert_eq!(skip(None, "sha256:b", None), None, "no digest in the payload: the tag's");
    }

    #[test]
    fn a_slot_removed_while_it_ran_the_digest_is_not_brought_back_by_it() {
        let removed = Some((Trigger::Remove, "r.example.com/app@sha256:b"));
        assert_eq!(skip(Some("sha256:b"), "sha256:b", removed), Some(Skip::Removed));
        assert_eq!(skip(None, "sha256:b", removed), Some(Skip::Removed));
        assert_eq!(skip(None, "sha256:c", removed), None, "a new build deploys again");
        let deployed = Some((Trigger::Webhook, "r.example.com/app@sha256:b"));
        assert_eq!(skip(None, "sha256:b", deployed), None);
    }
}
