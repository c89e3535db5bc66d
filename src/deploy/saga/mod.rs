//! The forward path of a deploy, and its rollback through the undo executor. See the module doc
//! of [`super`]. This file reads as the table of contents of a deploy ([`Saga::forward`]); the
//! steps live beside it: `unchanged.rs` (a redeploy of what already runs), `one_off.rs` (the
//! release and the slot hooks), `publish.rs` (the proxy step), `finish.rs` (finish, retire,
//! rollback, notify). How the instance is placed on its engine (a container, or a swarm
//! service) is [`super::place`]'s: the saga never looks at the engine kind.
//!
//! Every step that makes something elsewhere first records what would undo it (a typed
//! [`Compensation`], and the instance row with its deterministic container name, host name and
//! port), then acts. So a rollback, or a later recovery after a crash, finds the resource by
//! name even when the call never answered.
//!
//! `finish` is one transaction (instance live, replaced instances retiring, deploy succeeded)
//! and comes before `retire`: once the new instance serves, a failure while cleaning up the
//! one it replaced can never undo a healthy deploy (it becomes a warning and a leftover, and
//! `prune` finishes the job).

mod finish;
mod one_off;
mod publish;
mod unchanged;
mod verify;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;

use tokio::time::Instant;

use super::journal::{emit, ms};
use super::outcome::{DeployError, DeployFailure, DeployOutcome, DeploySuccess, FailedStep, StepError};
use super::place::{self, AnyPlacement, Placement as _};
use super::undo::Compensation;
use super::{DeployRequest, Deployer, recover};
use crate::domain::{DeployId, DeployStatus, Slot};
use crate::engine::{self, ContainerRuntime, PullProgress, PulledImage};
use crate::fmt::one_line;
use crate::health::Probe;
use crate::lock::StageLock;
use crate::proxy::{self, Proxy, Upstream};
use crate::report::{Event, Level, Step};
use crate::store::{DeployEnd, InstanceRecord, NewDeploy, NewInstance, Store};

pub(super) struct Saga<'s, 'a, R, P, S, Pr> {
    pub(super) d: &'s Deployer<'a, R, P, S, Pr>,
    pub(super) id: DeployId,
    pub(super) slot: Slot,
    pub(super) req: &'s DeployRequest,
    pub(super) image: String,
    pub(super) domain: String,
    pub(super) container_name: String,
    pub(super) state_id: String,
    /// What undoes what the forward path did so far.
    pub(super) undo: RefCell<Vec<Compensation>>,
    /// This deploy's instance row, once recorded.
    pub(super) row: Cell<Option<i64>>,
    /// Live instances of the slot this deploy replaces.
    pub(super) replaced: RefCell<Vec<InstanceRecord>>,
    /// The proxy host serving the new instance, once published.
    pub(super) host_id: RefCell<Option<String>>,
    /// What the proxy step may have changed (see [`proxy::ensure_tracked`]).
    pub(super) progress: proxy::Progress,
    /// The registry credentials the pull used (a swarm service passes them on to its nodes).
    pub(super) auth: RefCell<Option<engine::RegistryAuth>>,
    /// How the instance is placed on the stage's engine.
    pub(super) placement: AnyPlacement<'s>,
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
    let state_id = d.store.state_id()?;
    let id = d.store.begin_deploy(&NewDeploy {
        slot: slot.clone(),
        image: image.clone(),
        trigger: req.trigger,
        pid: std::process::id(),
        host: d.host.clone(),
        actor: d.actor.clone(),
    })?;
    emit(d, Some(id), &Event::StepFinished { step: Step::Lock, elapsed_ms: lock_ms });
    emit(d, Some(id), &Event::DeployStarted { deploy_id: id.0, slot: slot.to_string(), image: image.clone() });
    recover::abandoned(d, Some(id), stage, &state_id).await;

    let placement = place::for_stage(stage);
    let saga = Saga {
        d,
        id,
        domain: stage.host_name(&req.tag),
        container_name: placement.instance_name(&slot, id),
        slot,
        req,
        image,
        state_id,
        undo: RefCell::new(Vec::new()),
        row: Cell::new(None),
        replaced: RefCell::new(Vec::new()),
        host_id: RefCell::new(None),
        progress: proxy::Progress::default(),
        auth: RefCell::new(None),
        placement,
    };
    let outcome = match saga.forward(begin).await {
        Ok(success) => DeployOutcome::Succeeded(success),
        Err(failed) => {
            let interrupted = matches!(failed.cause, StepError::Interrupted);
            let rollback = saga.rollback().await;
            let mut error = one_line(&failed);
            if !rollback.is_complete() {
                let left: Vec<String> = rollback.leftovers.iter().map(ToString::to_string).collect();
                error = format!("{error}; rollback incomplete: {}", left.join("; "));
            }
            let status = if interrupted { DeployStatus::Interrupted } else { DeployStatus::Failed };
            let left: Vec<String> = rollback.leftovers.iter().map(ToString::to_string).collect();
            let end = DeployEnd { status, error: Some(&error), url: None, leftovers: &left };
            if let Err(e) = d.store.finish_deploy(id, &end) {
                // Still `running` in the state file: the next deploy or prune recovers it.
                saga.log(
                    Step::Rollback,
                    Level::Warn,
                    format!("the deploy's end could not be recorded: {}", one_line(&e)),
                );
            }
            DeployOutcome::Failed(DeployFailure {
                deploy_id: id,
                failed,
                rollback,
                interrupted,
                elapsed: begin.elapsed(),
            })
        }
    };
    if d.cancel.is_aborted() {
        saga.log(Step::Notify, Level::Warn, "not notifying: stopped by a second signal".into());
    } else {
        saga.notify(&outcome).await;
    }
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

    /// Pauses after `step` when a test asked for it (`test-hooks` builds only).
    pub(super) async fn test_pause(&self, step: Step) -> Result<(), FailedStep> {
        let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == step) else { return Ok(()) };
        self.log(step, Level::Debug, format!("pausing {} (test hook)", humantime::format_duration(pause)));
        tokio::select! {
            biased;
            () = self.d.cancel.cancelled() => Err(FailedStep { step, cause: StepError::Interrupted }),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// Runs one step: reports its start and end, bounds it in time, and gives up at once on
    /// cancellation (the step's future is dropped; what it recorded before acting stays).
    pub(super) async fn step<T>(
        &self,
        step: Step,
        work: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, FailedStep> {
        if self.d.cancel.is_cancelled() {
            return Err(FailedStep { step, cause: StepError::Interrupted });
        }
        self.emit(&Event::StepStarted { step });
        let t0 = Instant::now();
        let limit = match step {
            // The policy bounds the probing; the engine bound covers the inspect around it.
            Step::Health => {
                let h = &self.req.stage.health;
                let probing = h.start_period + (h.interval + h.timeout) * (h.retries + 1) + self.d.timeouts.engine;
                Some(probing + self.placement.extra_health_bound(h, self.d.timeouts.pull))
            }
            // The window, one more request and the look at the instance around it.
            Step::Verify => self.req.stage.verify.as_ref().map(|v| v.window + v.interval * 2 + self.d.timeouts.engine),
            other => self.d.timeouts.of(other),
        };
        let bounded = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or(Err(StepError::TimedOut(limit))),
                None => work.await,
            }
        };
        let result = if step == Step::Create {
            // A create is not dropped half-way: the engine may still make the container (or
            // service) after the connection closed, after the rollback looked and found none.
            // It is bounded by its timeout; a signal that came meanwhile is honoured when the
            // engine has answered, and the rollback then removes what it made.
            let r = bounded.await;
            if self.d.cancel.is_cancelled() { Err(StepError::Interrupted) } else { r }
        } else {
            tokio::select! {
                biased;
                () = self.d.cancel.cancelled() => Err(StepError::Interrupted),
                r = bounded => r,
            }
        };
        let elapsed_ms = ms(t0.elapsed());
        match result {
            Ok(v) => {
                self.emit(&Event::StepFinished { step, elapsed_ms });
                self.test_pause(step).await?;
                Ok(v)
            }
            Err(cause) => {
                self.emit(&Event::StepFailed { step, error: one_line(&cause), elapsed_ms });
                Err(FailedStep { step, cause })
            }
        }
    }

    async fn forward(&self, begin: Instant) -> Result<DeploySuccess, FailedStep> {
        if let Some(candidate) = self.unchanged_candidate()
            && let Some((live, upstream, digest)) = self.step(Step::Pull, self.already_running(candidate)).await?
        {
            let url = self.step(Step::Proxy, self.republish(&upstream)).await?;
            self.step(Step::Finish, async {
                let end = DeployEnd { status: DeployStatus::Succeeded, error: None, url: Some(&url), leftovers: &[] };
                Ok(self.d.store.finish_deploy(self.id, &end)?)
            })
            .await?;
            return Ok(DeploySuccess {
                deploy_id: self.id,
                url,
                digest,
                container: live.container_name,
                elapsed: begin.elapsed(),
                warnings: Vec::new(),
                leftovers: Vec::new(),
                unchanged: true,
            });
        }
        let pulled = self.step(Step::Pull, self.pull()).await?;
        self.step(Step::Network, async {
            let network = &self.req.stage.network;
            if self.placement.network(self.d.runtime, network).await? {
                self.log(Step::Network, Level::Info, format!("created network {network}"));
            }
            Ok(())
        })
        .await?;
        let stage = &self.req.stage;
        if let Some(release) = &stage.release {
            self.step(Step::Release, self.one_off(Step::Release, "release", release, &pulled)).await?;
        }
        let first = match stage.on_create.as_ref().map(|_| self.first_of_slot()) {
            Some(Ok(first)) => first,
            // The step fails (and the deploy with it) with the state file's error.
            Some(Err(e)) => {
                self.step(Step::OnCreate, async { Err::<(), StepError>(e.into()) }).await?;
                false
            }
            None => false,
        };
        if let Some(hook) = &stage.on_create
            && first
        {
            self.step(Step::OnCreate, async {
                self.nobody_else_holds_the_slot().await?;
                // The slot is made by this deploy: its undo takes it away again, also when
                // on_create itself fails or overruns after doing part of its work (a database
                // created, the restore timed out), so the next first deploy starts clean.
                if let Some(run) = self.on_remove_run(&pulled.reference) {
                    self.undo.borrow_mut().push(Compensation::Hook { slot: self.slot.key(), run: Box::new(run) });
                }
                self.one_off(Step::OnCreate, "on_create", hook, &pulled).await
            })
            .await?;
        }
        // create, start and health (a container), or create and health (a service).
        let upstream = self.placement.place(self, &pulled).await?;
        let url = self.step(Step::Proxy, self.publish(&upstream)).await?;
        // The instance it replaces still runs and stays routable until `retire`: a failure here
        // is rolled back like any other, which points the host back at it.
        if let Some(policy) = self.req.stage.verify.as_ref().filter(|_| self.req.verify) {
            self.step(Step::Verify, self.verify(policy, &url)).await?;
        }
        self.step(Step::Finish, async { self.finish(&url) }).await?;
        let (warnings, leftovers) = self.retire().await;
        if !leftovers.is_empty() {
            // History says so too (`history show` gives the same exit code as the run).
            let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
            let end = DeployEnd { status: DeployStatus::Succeeded, error: None, url: Some(&url), leftovers: &left };
            if let Err(e) = self.d.store.finish_deploy(self.id, &end) {
                self.log(Step::Retire, Level::Warn, format!("the leftovers could not be recorded: {}", one_line(&e)));
            }
        }
        Ok(DeploySuccess {
            deploy_id: self.id,
            url,
            digest: pulled.digest,
            container: self.container_name.clone(),
            elapsed: begin.elapsed(),
            warnings,
            leftovers,
            unchanged: false,
        })
    }

    pub(super) async fn pull(&self) -> Result<PulledImage, StepError> {
        let stage = &self.req.stage;
        let lookup = self.d.runtime.registry_auth(stage.image.as_str(), stage.registry_auth.as_ref());
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
        self.auth.replace(auth.map(|(_, a)| a));
        self.d.store.set_digest(self.id, &pulled.digest)?;
        self.log(Step::Pull, Level::Info, format!("{} is {}", self.image, pulled.digest));
        Ok(pulled)
    }

    /// Intent first: the row names the container (or service), host and port before anything
    /// exists.
    pub(super) fn record_instance(&self, pulled: &PulledImage) -> Result<i64, StepError> {
        let stage = &self.req.stage;
        let row = self.d.store.insert_instance(&NewInstance {
            deploy_id: self.id,
            slot: self.slot.clone(),
            container_name: self.container_name.clone(),
            digest: pulled.digest.clone(),
            domain: self.domain.clone(),
            port: stage.port,
            spec_hash: Some(self.spec_hash()),
        })?;
        self.row.set(Some(row));
        Ok(row)
    }

    /// Ours and the user's labels of an instance.
    pub(super) fn labels(&self) -> BTreeMap<String, String> {
        super::spec::labels(&self.req.stage, &self.slot, &self.state_id, self.id)
    }

    /// The slot's public URL, as its instance and one-offs see it in `TF_URL` and `{url}`.
    pub(super) fn public_url(&self) -> String {
        let up = Upstream { name: self.container_name.clone(), ip: None, port: self.req.stage.port };
        self.d.proxy.url(&self.domain, &up)
    }
}
