//! The end of a deploy: `finish` (one transaction: instance live, replaced ones retiring,
//! deploy succeeded), `retire` (what it replaced and what `max_instances` evicts, through the
//! one executor), the rollback of a failed deploy, and the notification.

use std::time::Duration;

use tokio::time::Instant;

use super::Saga;
use crate::deploy::instance;
use crate::deploy::journal::{ms, stage_filter, store_leftovers};
use crate::deploy::outcome::{DeployOutcome, RollbackReport, StepError};
use crate::deploy::undo;
use crate::domain::{DeployId, InstanceStatus, Leftover, Trigger};
use crate::engine::ContainerRuntime;
use crate::fmt::one_line;
use crate::health::Probe;
use crate::notify::{Notification, NotifyEvent};
use crate::proxy::Proxy;
use crate::report::{Event, Level, Step};
use crate::store::{InstancePatch, InstanceRecord, Store, Success};

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// One transaction: instance live, the instances it replaces retiring, deploy succeeded
    /// (and, for a rollback, the deploys it returns from rolled back).
    pub(super) fn finish(&self, url: &str) -> Result<(), StepError> {
        let Some(row) = self.row.get() else {
            return Err(StepError::Invalid("no instance row was recorded".into()));
        };
        let replaced = self.replaced.borrow();
        let retire: Vec<i64> = replaced.iter().map(|i| i.id).collect();
        let rolled_back: Vec<DeployId> = if self.req.trigger == Trigger::Rollback {
            replaced.iter().map(|i| i.deploy_id).collect()
        } else {
            Vec::new()
        };
        let host_id = self.host_id.borrow();
        self.d.store.finish_success(&Success {
            deploy_id: self.id,
            instance: row,
            url,
            proxy_host_id: host_id.as_deref(),
            retire: &retire,
            rolled_back: &rolled_back,
        })?;
        Ok(())
    }

    /// Removes the instances this deploy replaced, then evicts beyond `max_instances`, oldest
    /// first, never this deploy's. Problems are warnings and leftovers, never a failure.
    pub(super) async fn retire(&self) -> (Vec<String>, Vec<Leftover>) {
        self.emit(&Event::StepStarted { step: Step::Retire });
        let t0 = Instant::now();
        let stage = &self.req.stage;
        let mut comps = Vec::new();
        for old in self.replaced.borrow().iter() {
            // Its host is this deploy's now, unless the slot's host name changed (a new domain
            // or subdomain pattern): then the old name goes with it.
            let moved = old.domain.as_deref().is_some_and(|d| !d.eq_ignore_ascii_case(&self.domain));
            comps.extend(instance::take_down(stage, old, moved));
        }
        let mut warnings = Vec::new();
        match self.d.store.instances(&stage_filter(stage)) {
            Ok(all) => {
                let live: Vec<&InstanceRecord> =
                    all.iter().filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id).collect();
                let max = usize::try_from(stage.max_instances).unwrap_or(usize::MAX);
                let excess = (live.len() + 1).saturating_sub(max);
                for old in live.iter().take(excess) {
                    let patch = InstancePatch { status: Some(InstanceStatus::Retiring), ..InstancePatch::default() };
                    if let Err(e) = self.d.store.update_instance(old.id, &patch) {
                        warnings.push(format!("cannot mark {} for eviction: {}", old.container_name, one_line(&e)));
                        continue;
                    }
                    self.log(
                        Step::Retire,
                        Level::Info,
                        format!("evicting {} ({}): beyond max_instances ({max})", old.container_name, old.tag),
                    );
                    let (away, _) = instance::take_slot_away(self.d.proxy, stage, old, &self.state_id);
                    comps.extend(away);
                }
            }
            Err(e) => warnings.push(format!("cannot list instances for eviction: {}", one_line(&e))),
        }
        let leftovers = undo::execute(self.d, &self.state_id, comps, &mut |c, o| {
            self.log(Step::Retire, if o.is_ok() { Level::Info } else { Level::Warn }, undo::line(c, o));
        })
        .await;
        warnings.extend(leftovers.iter().map(ToString::to_string));
        let tidied = self.d.tidy(stage, Some(self.id), &self.state_id).await;
        for line in tidied.done.iter().chain(&tidied.notes) {
            self.log(Step::Retire, Level::Debug, line.clone());
        }
        if tidied.bytes_freed > 0 {
            self.log(Step::Retire, Level::Info, format!("freed {}", crate::fmt::bytes(tidied.bytes_freed)));
        }
        store_leftovers(
            self.d,
            Some(self.id),
            Some(self.id),
            (self.slot.project.as_str(), self.slot.stage.as_str()),
            &leftovers,
        );
        self.emit(&Event::StepFinished { step: Step::Retire, elapsed_ms: ms(t0.elapsed()) });
        (warnings, leftovers)
    }

    /// Undoes what [`Self::forward`] did through the one executor (proxy, then container, then
    /// row), running every compensation even when one fails.
    pub(super) async fn rollback(&self) -> RollbackReport {
        self.emit(&Event::StepStarted { step: Step::Rollback });
        let t0 = Instant::now();
        if let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == Step::Rollback) {
            // Test hook: a window for a second signal.
            self.log(
                Step::Rollback,
                Level::Debug,
                format!("pausing {} (test hook)", humantime::format_duration(pause)),
            );
            tokio::select! {
                () = self.d.cancel.aborted() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        // The proxy step may have been dropped mid-call (signal, step bound).
        self.settle();
        let comps = self.undo.borrow().clone();
        let leftovers = undo::execute(self.d, &self.state_id, comps, &mut |c, o| {
            let (ok, message) = match o {
                Ok(m) => (true, m.clone()),
                Err(l) => (false, l.with_logs()),
            };
            self.emit(&Event::Compensation { action: c.describe(), ok, message });
        })
        .await;
        store_leftovers(
            self.d,
            Some(self.id),
            Some(self.id),
            (self.slot.project.as_str(), self.slot.stage.as_str()),
            &leftovers,
        );
        let elapsed_ms = ms(t0.elapsed());
        if leftovers.is_empty() {
            self.emit(&Event::StepFinished { step: Step::Rollback, elapsed_ms });
        } else {
            let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
            self.emit(&Event::StepFailed {
                step: Step::Rollback,
                error: format!("left behind: {}", left.join("; ")),
                elapsed_ms,
            });
        }
        RollbackReport { leftovers }
    }

    /// Tells the notifier how the deploy ended; failures become warnings in the deploy's log
    /// and change nothing else.
    pub(super) async fn notify(&self, outcome: &DeployOutcome) {
        let digest = match self.d.store.deploy(self.id) {
            Ok(r) => r.and_then(|r| r.digest),
            Err(e) => {
                self.log(Step::Notify, Level::Warn, format!("cannot read the deploy's digest: {}", one_line(&e)));
                None
            }
        };
        let base = |event, url: Option<String>, error: Option<String>, leftovers: Vec<String>, elapsed: Duration| {
            Notification {
                event,
                deploy_id: self.id.0,
                project: self.slot.project.to_string(),
                stage: self.slot.stage.to_string(),
                tag: self.slot.tag.to_string(),
                trigger: self.req.trigger.as_str().to_owned(),
                digest: digest.clone(),
                url,
                duration_ms: ms(elapsed),
                error,
                leftovers,
                logs: Vec::new(),
            }
        };
        let mut n = match outcome {
            DeployOutcome::Succeeded(s) => {
                base(NotifyEvent::Succeeded, Some(s.url.clone()), None, Vec::new(), s.elapsed)
            }
            DeployOutcome::Failed(f) => base(
                if f.rollback.is_complete() { NotifyEvent::Failed } else { NotifyEvent::RollbackIncomplete },
                None,
                Some(one_line(&f.failed)),
                f.rollback.leftovers.iter().map(ToString::to_string).collect(),
                f.elapsed,
            ),
        };
        // A container's log lines, and a release's or hook's output, may hold secrets: they
        // leave the host only for targets that ask (`include_logs`).
        if let DeployOutcome::Failed(f) = outcome {
            let (without, logs) = match &f.failed.cause {
                StepError::Health(h) => (h.without_logs(), h.logs().to_vec()),
                StepError::OneOff(o) => (o.without_logs(), o.logs().to_vec()),
                StepError::Verify(v) => (v.without_logs(), v.logs().to_vec()),
                _ => (String::new(), Vec::new()),
            };
            if !logs.is_empty() {
                n.error = Some(format!("{} failed: {without}", f.failed.step));
                n.logs = logs;
            }
            for l in &f.rollback.leftovers {
                if let Leftover::Hook { logs, .. } = l {
                    n.logs.extend(logs.iter().cloned());
                }
            }
        }
        for warning in self.d.notifier.notify(&n).await {
            self.log(Step::Notify, Level::Warn, warning);
        }
    }
}
