//! The forward path of a deploy (its rollback is in `rollback.rs`). See the module doc of [`super`].
//!
//! `finish` is recorded before `retire`: once the new instance serves, a failure while cleaning
//! up the one it replaced can never undo a healthy deploy (it becomes a warning, and `prune`
//! finishes the job).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::{DeployError, DeployFailure, DeployOutcome, DeploySuccess, FailedStep, StepError};
use super::{DeployRequest, Deployer, recover, teardown};
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Slot};
use crate::health::{self, Probe};
use crate::lock::StageLock;
use crate::naming;
use crate::notify::{Notification, NotifyEvent};
use crate::proxy::{Proxy, Upstream};

/// What the proxy step yields.
struct Published {
    url: String,
}
use crate::engine::{self, ContainerRuntime, ContainerSpec, PullProgress, PulledImage};
use crate::report::{Event, Level, Step, one_line};
use crate::store::{DeployEnd, Filter, InstancePatch, InstanceRecord, LogEntry, NewDeploy, NewInstance, Store, now_ms};

/// How many log lines of an exited container go into the error.
const EXIT_LOG_LINES: usize = 20;

/// What the proxy step must undo on rollback.
#[derive(Debug, Clone)]
pub(super) enum ProxyUndo {
    /// We created this host.
    Delete { host_id: String },
    /// We switched this host away from `upstream`.
    SwitchBack { host_id: String, upstream: Upstream },
}

/// What the deploy has created so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Created {
    pub(super) instance_row: Option<i64>,
    pub(super) container_attempted: bool,
    pub(super) proxy: Option<ProxyUndo>,
    /// Live instances of the slot that this deploy replaces.
    pub(super) replaced: Vec<InstanceRecord>,
}

pub(super) struct Saga<'s, 'a, R, P, S, Pr> {
    pub(super) d: &'s Deployer<'a, R, P, S, Pr>,
    pub(super) id: DeployId,
    pub(super) slot: Slot,
    pub(super) req: &'s DeployRequest,
    pub(super) image: String,
    pub(super) domain: String,
    pub(super) container_name: String,
    pub(super) created: RefCell<Created>,
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Stores (when the deploy has an id) and reports one event.
pub(super) fn emit<R, P, S: Store, Pr>(d: &Deployer<'_, R, P, S, Pr>, id: Option<DeployId>, event: &Event) {
    let ts = now_ms();
    if let Some(id) = id
        && !matches!(event, Event::PullProgress { .. })
    {
        let entry =
            LogEntry { ts, level: event.level(), step: event.step().as_str().to_owned(), message: event.message() };
        // A log entry that cannot be stored must not fail the deploy; the reporter still sees it.
        let _ = d.store.append_log(id, &entry);
    }
    d.reporter.report(ts, event);
}

pub(super) async fn run<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    req: &DeployRequest,
) -> Result<DeployOutcome, DeployError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let begin = Instant::now();
    let stage = &req.stage;
    let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: req.tag.clone() };
    let image = req.image_override.clone().unwrap_or_else(|| stage.image_ref(&req.tag));

    // lock: before anything is recorded, so that a deploy waiting here is never mistaken for an
    // abandoned one by the deploy that holds the lock.
    let what = format!("{}/{}", slot.project, slot.stage);
    emit(d, None, &Event::StepStarted { step: Step::Lock });
    let lock_path = d.lock_path(&slot.project, &slot.stage);
    let lock = tokio::select! {
        biased;
        () = d.cancel.cancelled() => return Err(DeployError::Interrupted),
        l = StageLock::acquire(&lock_path, &what, req.lock_wait) => l,
    };
    let lock_ms = ms(begin.elapsed());
    let _lock = match lock {
        Ok(l) => l,
        Err(e) => {
            emit(d, None, &Event::StepFailed { step: Step::Lock, error: e.to_string(), elapsed_ms: lock_ms });
            return Err(e.into());
        }
    };

    // record
    let id = d.store.begin_deploy(&NewDeploy {
        slot: slot.clone(),
        image: image.clone(),
        trigger: req.trigger,
        pid: std::process::id(),
        host: d.host.clone(),
    })?;
    emit(d, Some(id), &Event::StepFinished { step: Step::Lock, elapsed_ms: lock_ms });
    emit(d, Some(id), &Event::DeployStarted { deploy_id: id.0, slot: slot.to_string(), image: image.clone() });
    recover::abandoned(d, Some(id), stage).await;

    let saga = Saga {
        d,
        id,
        domain: stage.host_name(&req.tag),
        container_name: naming::container_name(&slot, id),
        slot,
        req,
        image,
        created: RefCell::new(Created::default()),
    };
    let outcome = match saga.forward(begin).await {
        Ok(success) => DeployOutcome::Succeeded(success),
        Err(failed) => {
            let interrupted = matches!(failed.cause, StepError::Interrupted);
            let rollback = saga.rollback().await;
            let mut error = one_line(&failed);
            if !rollback.is_complete() {
                error = format!("{error}; rollback incomplete: {}", rollback.leftovers.join("; "));
            }
            let status = if interrupted { DeployStatus::Interrupted } else { DeployStatus::Failed };
            // The outcome below is what matters to the caller even if this write fails.
            let end = DeployEnd { status, error: Some(&error), url: None, leftovers: &rollback.leftovers };
            let _ = d.store.finish_deploy(id, &end);
            DeployOutcome::Failed(DeployFailure {
                deploy_id: id,
                failed,
                rollback,
                interrupted,
                elapsed: begin.elapsed(),
            })
        }
    };
    saga.notify(&outcome).await;
    Ok(outcome)
}

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    pub(super) fn emit(&self, event: &Event) {
        emit(self.d, Some(self.id), event);
    }

    pub(super) fn log(&self, step: Step, level: Level, message: String) {
        self.emit(&Event::Log { step, level, message });
    }

    /// Runs one step: reports its start and end, and gives up at once on cancellation.
    async fn step<T>(&self, step: Step, work: impl Future<Output = Result<T, StepError>>) -> Result<T, FailedStep> {
        if self.d.cancel.is_cancelled() {
            return Err(FailedStep { step, cause: StepError::Interrupted });
        }
        self.emit(&Event::StepStarted { step });
        let t0 = Instant::now();
        let limit = match step {
            // The policy bounds the probing; the engine bound covers the inspect around it.
            Step::Health => {
                let h = &self.req.stage.health;
                Some(h.start_period + (h.interval + h.timeout) * (h.retries + 1) + self.d.timeouts.engine)
            }
            other => self.d.timeouts.of(other),
        };
        let bounded = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or(Err(StepError::TimedOut(limit))),
                None => work.await,
            }
        };
        let result = tokio::select! {
            biased;
            () = self.d.cancel.cancelled() => Err(StepError::Interrupted),
            r = bounded => r,
        };
        let elapsed_ms = ms(t0.elapsed());
        match result {
            Ok(v) => {
                self.emit(&Event::StepFinished { step, elapsed_ms });
                if let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == step) {
                    self.log(step, Level::Debug, format!("pausing {} (test hook)", humantime::format_duration(pause)));
                    tokio::select! {
                        biased;
                        () = self.d.cancel.cancelled() => return Err(FailedStep { step, cause: StepError::Interrupted }),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                Ok(v)
            }
            Err(cause) => {
                self.emit(&Event::StepFailed { step, error: one_line(&cause), elapsed_ms });
                Err(FailedStep { step, cause })
            }
        }
    }

    async fn forward(&self, begin: Instant) -> Result<DeploySuccess, FailedStep> {
        let pulled = self.step(Step::Pull, self.pull()).await?;
        self.step(Step::Network, self.network()).await?;
        let container_id = self.step(Step::Create, self.create(&pulled)).await?;
        self.step(Step::Start, async { Ok(self.d.runtime.start(&self.container_name).await?) }).await?;
        let upstream = self.step(Step::Health, self.health(&container_id)).await?;
        let url = self.step(Step::Proxy, self.publish(&upstream)).await?;
        self.step(Step::Finish, async { self.finish(&url) }).await?;
        let warnings = self.retire().await;
        Ok(DeploySuccess {
            deploy_id: self.id,
            url,
            digest: pulled.digest,
            container: self.container_name.clone(),
            elapsed: begin.elapsed(),
            warnings,
        })
    }

    async fn pull(&self) -> Result<PulledImage, StepError> {
        let stage = &self.req.stage;
        let lookup = engine::auth::for_image(&stage.image, stage.registry_auth.as_ref(), engine::auth::HELPER_TIMEOUT);
        let auth = match lookup.await {
            Ok(a) => a,
            Err(e) => {
                self.log(Step::Pull, Level::Warn, format!("pulling without credentials: {e}"));
                None
            }
        };
        if let Some((source, a)) = &auth {
            self.log(Step::Pull, Level::Debug, format!("using registry credentials of `{}` from {source}", a.username));
        }
        let mut progress = |p: PullProgress| {
            self.emit(&Event::PullProgress { layer: p.layer, status: p.status, current: p.current, total: p.total });
        };
        let pulled = self.d.runtime.pull(&self.image, auth.as_ref().map(|(_, a)| a), &mut progress).await?;
        self.d.store.set_digest(self.id, &pulled.digest)?;
        self.log(Step::Pull, Level::Info, format!("{} is {}", self.image, pulled.digest));
        Ok(pulled)
    }

    async fn network(&self) -> Result<(), StepError> {
        let network = &self.req.stage.network;
        if self.d.runtime.ensure_network(network).await? {
            self.log(Step::Network, Level::Info, format!("created network {network}"));
        }
        Ok(())
    }

    async fn create(&self, pulled: &PulledImage) -> Result<String, StepError> {
        let stage = &self.req.stage;
        let row = self.d.store.insert_instance(&NewInstance {
            deploy_id: self.id,
            slot: self.slot.clone(),
            container_name: self.container_name.clone(),
            digest: pulled.digest.clone(),
        })?;
        {
            let mut c = self.created.borrow_mut();
            c.instance_row = Some(row);
            c.container_attempted = true;
        }
        let mut labels: BTreeMap<String, String> = stage.labels.clone();
        labels.insert(engine::LABEL_MANAGED.into(), "true".into());
        labels.insert(engine::LABEL_PROJECT.into(), self.slot.project.to_string());
        labels.insert(engine::LABEL_STAGE.into(), self.slot.stage.to_string());
        labels.insert(engine::LABEL_TAG.into(), self.slot.tag.to_string());
        labels.insert(engine::LABEL_SLOT.into(), self.slot.key());
        labels.insert(engine::LABEL_DEPLOY_ID.into(), self.id.to_string());
        let spec = ContainerSpec {
            name: self.container_name.clone(),
            image: pulled.reference.clone(),
            env: stage.env.clone(),
            labels,
            network: stage.network.clone(),
            port: stage.port,
            restart: stage.restart,
            memory: stage.memory,
            nano_cpus: stage.nano_cpus,
            command: stage.command.clone(),
            volumes: stage.volumes.clone(),
        };
        let id = self.d.runtime.create(&spec).await?;
        self.d
            .store
            .update_instance(row, &InstancePatch { container_id: Some(id.clone()), ..InstancePatch::default() })?;
        self.log(
            Step::Create,
            Level::Info,
            format!("created container {} from {}", self.container_name, pulled.reference),
        );
        Ok(id)
    }

    async fn health(&self, container_id: &str) -> Result<Upstream, StepError> {
        let stage = &self.req.stage;
        let info = self.d.runtime.inspect(container_id, &stage.network).await?.ok_or_else(|| {
            StepError::Invalid(format!("container {} vanished right after it started", self.container_name))
        })?;
        if let Some(code) = info.exit_code {
            let logs = self.d.runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default();
            return Err(health::HealthError::Exited { code, logs }.into());
        }
        let host = match stage.probe_address {
            crate::config::ProbeAddress::Name => self.container_name.clone(),
            crate::config::ProbeAddress::Ip => match info.ip {
                Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
                None => {
                    return Err(StepError::Invalid(format!(
                        "container {} has no address on network `{}`; check settings.network",
                        self.container_name, stage.network
                    )));
                }
            },
        };
        let url = format!("http://{host}:{}{}", stage.port, stage.health.path);
        self.log(Step::Health, Level::Info, format!("probing {url}"));
        let runtime = self.d.runtime;
        let exited = async {
            match runtime.wait_exit(container_id).await {
                Ok(code) => (code, runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default()),
                Err(_) => std::future::pending().await,
            }
        };
        let mut probes = 0u32;
        let took = health::wait_healthy(self.d.probe, &url, &stage.health, exited, &mut |e| {
            probes += 1;
            if e.counted && !e.result.passed {
                self.log(Step::Health, Level::Warn, format!("probe failed: {}", e.result.detail));
            }
        })
        .await?;
        self.log(
            Step::Health,
            Level::Info,
            format!("healthy after {} ({probes} probes)", crate::report::fmt_ms(ms(took))),
        );
        Ok(Upstream { name: self.container_name.clone(), ip: info.ip, port: stage.port })
    }

    async fn publish(&self, upstream: &Upstream) -> Result<String, StepError> {
        let replaced: Vec<InstanceRecord> = self
            .d
            .store
            .instances(&Filter {
                project: Some(self.slot.project.to_string()),
                stage: Some(self.slot.stage.to_string()),
                tag: Some(self.slot.tag.to_string()),
            })?
            .into_iter()
            .filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id)
            .collect();
        self.created.borrow_mut().replaced.clone_from(&replaced);
        let serving = replaced.iter().rev().find_map(|i| i.proxy_host_id.clone().map(|h| (h, i)));
        let host_id = if let Some((host_id, old)) = serving {
            let target = old.container_id.as_deref().unwrap_or(&old.container_name);
            let old_ip = match self.d.runtime.inspect(target, &self.req.stage.network).await {
                Ok(Some(info)) => info.ip,
                _ => None,
            };
            let old_upstream = Upstream { name: old.container_name.clone(), ip: old_ip, port: upstream.port };
            // Recorded before acting: a failed or half-done switch is switched back.
            self.created.borrow_mut().proxy =
                Some(ProxyUndo::SwitchBack { host_id: host_id.clone(), upstream: old_upstream });
            self.d.proxy.switch(&host_id, &self.domain, upstream).await?;
            self.log(
                Step::Proxy,
                Level::Info,
                format!("switched {} (id {host_id}) from {} to {}", self.domain, old.container_name, upstream.name),
            );
            Some(host_id)
        } else {
            let host_id = self.d.proxy.create(&self.domain, upstream).await?;
            if let Some(h) = &host_id {
                self.created.borrow_mut().proxy = Some(ProxyUndo::Delete { host_id: h.clone() });
                self.log(Step::Proxy, Level::Info, format!("created proxy host {} (id {h})", self.domain));
            }
            host_id
        };
        if let Some(row) = self.created.borrow().instance_row {
            self.d.store.update_instance(
                row,
                &InstancePatch { proxy_host_id: Some(host_id.clone()), ..InstancePatch::default() },
            )?;
        }
        let url = self.d.proxy.verify(host_id.as_deref(), &self.domain, upstream).await?;
        if let Some(row) = self.created.borrow().instance_row {
            self.d.store.update_instance(row, &InstancePatch { url: Some(url.clone()), ..InstancePatch::default() })?;
        }
        let published = Published { url };
        self.log(Step::Proxy, Level::Info, format!("serving at {}", published.url));
        Ok(published.url)
    }

    fn finish(&self, url: &str) -> Result<(), StepError> {
        if let Some(row) = self.created.borrow().instance_row {
            self.d.store.update_instance(
                row,
                &InstancePatch { status: Some(InstanceStatus::Live), ..InstancePatch::default() },
            )?;
        }
        if self.req.trigger == crate::domain::Trigger::Rollback {
            for old in &self.created.borrow().replaced {
                self.d.store.set_status(old.deploy_id, DeployStatus::RolledBack)?;
            }
        }
        self.d.store.finish_deploy(
            self.id,
            &DeployEnd { status: DeployStatus::Succeeded, error: None, url: Some(url), leftovers: &[] },
        )?;
        Ok(())
    }

    /// Removes the instances this deploy replaced, then evicts beyond `max_instances`, oldest
    /// first, never this deploy's. Problems are warnings.
    async fn retire(&self) -> Vec<String> {
        self.emit(&Event::StepStarted { step: Step::Retire });
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        let replaced = self.created.borrow().replaced.clone();
        for old in &replaced {
            // The host already points at the new container; only the old container and row go.
            if let Err(w) = self.remove_instance(old, false, "replaced").await {
                warnings.push(w);
            }
        }
        let live: Vec<InstanceRecord> = match self.d.store.instances(&Filter {
            project: Some(self.slot.project.to_string()),
            stage: Some(self.slot.stage.to_string()),
            tag: None,
        }) {
            Ok(all) => all.into_iter().filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id).collect(),
            Err(e) => {
                warnings.push(format!("cannot list instances for eviction: {e}"));
                Vec::new()
            }
        };
        let max = usize::try_from(self.req.stage.max_instances).unwrap_or(usize::MAX);
        let excess = (live.len() + 1).saturating_sub(max);
        for old in live.iter().take(excess) {
            if let Err(w) = self.remove_instance(old, true, "evicted (max_instances)").await {
                warnings.push(w);
            }
        }
        for w in &warnings {
            self.log(Step::Retire, Level::Warn, w.clone());
        }
        self.emit(&Event::StepFinished { step: Step::Retire, elapsed_ms: ms(t0.elapsed()) });
        warnings
    }

    /// Takes one old instance down (see [`teardown::take_down`]) and logs it.
    async fn remove_instance(&self, old: &InstanceRecord, delete_host: bool, why: &str) -> Result<(), String> {
        match teardown::take_down(self.d, old, delete_host).await {
            Ok(done) => {
                self.log(Step::Retire, Level::Info, format!("{why} {} ({}): {done}", old.container_name, old.tag));
                Ok(())
            }
            Err(e) => Err(format!("{why}: {e}")),
        }
    }

    /// Tells the notifier how the deploy ended; failures become warnings in the deploy's log
    /// and change nothing else.
    async fn notify(&self, outcome: &DeployOutcome) {
        let digest = self.d.store.deploy(self.id).ok().flatten().and_then(|r| r.digest);
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
                f.rollback.leftovers.clone(),
                f.elapsed,
            ),
        };
        // A container's log lines may hold secrets: they leave the host only for targets that ask.
        if let DeployOutcome::Failed(f) = outcome
            && let StepError::Health(h) = &f.failed.cause
            && !h.logs().is_empty()
        {
            n.error = Some(format!("{} failed: {}", f.failed.step, h.without_logs()));
            n.logs = h.logs().to_vec();
        }
        for warning in self.d.notifier.notify(&n).await {
            self.log(Step::Notify, Level::Warn, warning);
        }
    }
}
