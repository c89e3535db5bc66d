//! The executor: the one place deploys run. It lives on the thread that owns the adapters
//! (deploy futures are not `Send`, STYLE §3) and runs each job as a local task, so deploys of
//! different stages interleave on that one thread while their I/O waits. The HTTP handlers
//! never touch a deployer: they send [`Command`]s over a channel and read [`Jobs`] and the
//! state file.
//!
//! Per-stage serialisation is the deploy library's: every job takes the stage's lock file, the
//! same one the CLI takes, so a CLI deploy and a server deploy of one stage never overlap.
//!
//! Shutdown: stop taking commands; let running jobs finish within the grace period; then
//! cancel what still runs (each deploy rolls back, as on SIGTERM in the CLI; a removal or a
//! deploy still waiting for its lock gives up, exit 130), and wait for the rollbacks. A second
//! signal aborts them (leftovers, as in the CLI). A job is registered as running before its
//! task is spawned, so a job started in the same tick as the signal is waited for and rolled
//! back like the others, never dropped halfway.
//!
//! Each job resolves its stage from the config file as it is at that moment
//! ([`super::live`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::jobs::Jobs;
use super::live::{LiveConfig, Log};
use super::metrics::Metrics;
use super::phase::Phase;
use super::queue::{ApproveError, Candidate, Held, Offer, Queue};
use super::wire::Stamped;
use crate::config::ResolvedStage;
use crate::deploy::{Cancel, CancelHandle, DeployError, Deployer};
use crate::domain::{DeployId, ProjectName, StageName, Tag, Trigger};
use crate::engine::ContainerRuntime;
use crate::fmt::one_line;
use crate::health::Probe;
use crate::lock::LockWait;
use crate::ops::{Adapters, Command as OpsCommand, CommandError, CommandKind, CommandResult, ExitCode};
use crate::proxy::Proxy;
use crate::report::{Event, Reporter, Step};
use crate::store::{Filter, Store};

/// What the HTTP side and the executor share.
pub struct Shared {
    /// Jobs and where they stand.
    pub jobs: Jobs,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Bumped after each event the executor's deploys store: event streams wake on it.
    pub events: watch::Sender<u64>,
    /// The server's own log (what it decided and why: a stale push, a config it refused).
    log: Log,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("jobs", &self.jobs).finish_non_exhaustive()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    /// A new shared state, logging nowhere.
    #[must_use]
    pub fn new() -> Self {
        Self {
            jobs: Jobs::default(),
            metrics: Metrics::default(),
            events: watch::channel(0).0,
            log: super::live::quiet(),
        }
    }

    /// Logs to `log` (the binary: stderr).
    #[must_use]
    pub fn with_log(mut self, log: Log) -> Self {
        self.log = log;
        self
    }

    /// One line in the server's log. Never give it a secret or anything a request chose
    /// beyond names the config validated.
    pub fn log(&self, line: &str) {
        (self.log)(line);
    }
}

/// What kind of work an API job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// `POST /v1/deploys`.
    Deploy,
    /// `POST /v1/rollbacks`.
    Rollback,
    /// `POST /v1/removals`.
    Remove,
}

impl WorkKind {
    /// The job kind's word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Remove => "remove",
        }
    }
}

/// An API job, validated by the handler (names, scope, config) before it is sent.
#[derive(Debug, Clone)]
pub struct Work {
    /// Its job id.
    pub job: u64,
    /// What.
    pub kind: WorkKind,
    /// Project.
    pub project: ProjectName,
    /// Stage.
    pub stage: StageName,
    /// Tag (`None`: the stage's default).
    pub tag: Option<Tag>,
    /// Rollback: the deploy to return to.
    pub to: Option<DeployId>,
    /// The lock wait.
    pub wait: LockWait,
    /// Redeploy what already runs.
    pub force: bool,
    /// Skip the stage's verify step (`deploy --no-verify`).
    pub no_verify: bool,
    /// `token:NAME`.
    pub actor: String,
}

/// What the HTTP side asks of the executor.
#[derive(Debug)]
pub enum Command {
    /// Run an API job.
    Run(Work),
    /// Offer pushes (from one webhook delivery, replays already dropped).
    Push {
        /// The receiver's name, for metrics.
        receiver: String,
        /// What the tag rules made of it: every event of the body, one per slot.
        candidates: Vec<Candidate>,
    },
    /// The pushes held for approval.
    Approvals(oneshot::Sender<Vec<Held>>),
    /// Approve a held push of `digest`.
    Approve {
        /// The held push.
        id: u64,
        /// The digest the approver saw.
        digest: String,
        /// `token:NAME`.
        approver: String,
        /// Its slot, or why nothing was released.
        reply: oneshot::Sender<Result<crate::domain::Slot, ApproveError>>,
    },
    /// Managed instances, as `list --output json` prints them.
    List(Filter, oneshot::Sender<Result<Vec<crate::ops::list::ListItem>, String>>),
}

/// The executor. Build it on the thread that runs it, then [`Executor::run`] it inside a
/// `LocalSet`.
pub struct Executor<R, P, S, Pr> {
    pub(super) backend: Adapters<R, P, S, Pr>,
    pub(super) live: Arc<LiveConfig>,
    pub(super) shared: Arc<Shared>,
    pub(super) queue: RefCell<Queue>,
    running: RefCell<HashMap<u64, CancelHandle>>,
    idle: Notify,
    pub(super) wake: Notify,
    /// The managed containers, kept current from the engine's events while `run` runs.
    pub(super) view: Rc<super::view::ContainerView>,
}

/// Reports a job's events: the ones sent before the deploy had an id go into the job (they
/// are not stored), the deploy id moves the job to `running`, step durations go to metrics,
/// and every stored event wakes the event streams.
pub(super) struct JobReporter<'a> {
    pub(super) job: u64,
    pub(super) shared: &'a Shared,
}

impl Reporter for JobReporter<'_> {
    fn report(&self, ts_ms: i64, event: &Event) {
        match event {
            Event::PullProgress { .. } => return,
            // The only events the deploy library sends before it records the deploy.
            Event::StepStarted { step: Step::Lock } | Event::StepFailed { step: Step::Lock, .. } => {
                self.shared.jobs.early(self.job, Stamped { ts: ts_ms, event: event.clone() });
                return;
            }
            Event::DeployStarted { deploy_id, .. } => self.shared.jobs.running(self.job, *deploy_id),
            Event::StepFinished { step, elapsed_ms } => self.shared.metrics.step(step.as_str(), *elapsed_ms),
            Event::StepFailed { step: Step::Verify, .. } => self.shared.metrics.verify_switch_back(),
            _ => {}
        }
        self.shared.events.send_modify(|g| *g += 1);
    }
}

impl<R, P, S, Pr> Executor<R, P, S, Pr>
where
    R: ContainerRuntime + 'static,
    P: Proxy + 'static,
    S: Store + 'static,
    Pr: Probe + 'static,
{
    /// An executor over `backend`, with pushes debounced by `server.debounce` (as read now).
    pub fn new(backend: Adapters<R, P, S, Pr>, live: Arc<LiveConfig>, shared: Arc<Shared>) -> Self {
        let debounce = live.current().config.server().debounce;
        Self {
            backend,
            live,
            shared,
            queue: RefCell::new(Queue::new(debounce)),
            running: RefCell::new(HashMap::new()),
            idle: Notify::new(),
            wake: Notify::new(),
            view: Rc::default(),
        }
    }

    /// Runs until `phase` leaves [`Phase::Serving`] (or every sender is gone), then drains as
    /// the module doc says: `grace` for running jobs, then cancel; `abort` turning true stops
    /// rollbacks. Returns when no job runs any more. Must run inside a `LocalSet`.
    pub async fn run(
        self: Rc<Self>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut phase: watch::Receiver<Phase>,
        mut abort: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let view = {
            let me = Rc::clone(&self);
            tokio::task::spawn_local(async move { Rc::clone(&me.view).keep(&me.backend.runtime).await })
        };
        loop {
            let due = self.queue.borrow().next_due();
            // Shutdown first: a command that arrives with the signal is refused below, not
            // started behind the drain's back.
            tokio::select! {
                biased;
                r = phase.wait_for(|p| *p != Phase::Serving) => {
                    let _ = r;
                    break;
                }
                cmd = commands.recv() => match cmd {
                    Some(c) => self.handle(c),
                    None => break,
                },
                () = sleep_until(due) => {}
                () = self.wake.notified() => {}
            }
            self.dispatch_ready();
        }
        commands.close();
        // Refuse what is still queued in the channel: those jobs never begin.
        while let Ok(cmd) = commands.try_recv() {
            if let Command::Run(w) = cmd {
                self.shared.jobs.failed(
                    w.job,
                    "the server is shutting down; nothing was done".into(),
                    ExitCode::Usage.code(),
                );
            }
        }
        view.abort();
        let drained = tokio::time::timeout(grace, self.all_idle()).await.is_ok();
        if !drained {
            for h in self.running.borrow().values() {
                h.cancel();
            }
            tokio::select! {
                () = self.all_idle() => {}
                _ = abort.wait_for(|a| *a) => {
                    for h in self.running.borrow().values() {
                        h.abort();
                    }
                    self.all_idle().await;
                }
            }
        }
    }

    async fn all_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.running.borrow().is_empty() {
                return;
            }
            idle.await;
        }
    }

    fn handle(self: &Rc<Self>, cmd: Command) {
        match cmd {
            Command::Run(w) => {
                // Registered before it is spawned: see the module doc.
                let cancel = self.register(w.job);
                let me = Rc::clone(self);
                tokio::task::spawn_local(async move { me.run_work(w, cancel).await });
            }
            Command::Push { receiver, candidates } => {
                for c in candidates {
                    if c.approval && c.digest.is_none() {
                        // Held for approval without a digest (Docker Hub, Quay, Gitea): resolve
                        // it first, so that the approver approves a digest and that digest
                        // only (a tag that moved by the time it deploys is stale).
                        let me = Rc::clone(self);
                        let receiver = receiver.clone();
                        tokio::task::spawn_local(async move {
                            let c = me.with_digest(c).await;
                            me.offer(&receiver, c);
                        });
                    } else {
                        self.offer(&receiver, c);
                    }
                }
            }
            Command::Approvals(reply) => {
                let _ = reply.send(self.queue.borrow().held());
            }
            Command::Approve { id, digest, approver, reply } => {
                let _ = reply.send(self.queue.borrow_mut().approve(id, &digest, &approver, Instant::now()));
            }
            Command::List(filter, reply) => {
                let me = Rc::clone(self);
                tokio::task::spawn_local(async move {
                    let b = &me.backend;
                    // The view kept current from the engine's events, when it is; else a list.
                    let docker = match me.view.snapshot() {
                        Some(containers) => crate::engine::with_services(&b.runtime, containers).await,
                        None => crate::engine::managed_for_display(&b.runtime).await,
                    };
                    let items = crate::ops::list::list_seen(docker.as_deref(), &b.store, &filter);
                    let _ = reply.send(items.map(|l| l.items).map_err(|e| one_line(&e)));
                });
            }
        }
    }

    fn offer(&self, receiver: &str, c: Candidate) {
        let mut q = self.queue.borrow_mut();
        match q.offer(c, Instant::now()) {
            Offer::Queued | Offer::Coalesced => {}
            Offer::Duplicate => self.shared.metrics.webhook(receiver, "duplicate"),
        }
        self.shared.metrics.set_queue_depth(q.depth());
        drop(q);
        self.wake.notify_one();
    }

    /// `c` with the digest its tag resolves to now (unchanged when that cannot be learned: it
    /// is then approved as `unresolved`, and deploys what the tag points at when it runs).
    async fn with_digest(&self, mut c: Candidate) -> Candidate {
        let Ok(stage) = self.resolve(&c.slot.project, &c.slot.stage) else { return c };
        let image = format!("{}:{}", c.image, c.tag);
        match crate::deploy::digest_now(&self.backend.runtime, &stage, &image).await {
            Ok(d) if !d.is_empty() => c.digest = Some(d),
            Ok(_) | Err(_) => self.shared.log(&format!("push {}: cannot resolve {image} before holding it", c.slot)),
        }
        c
    }

    fn dispatch_ready(self: &Rc<Self>) {
        let ready = self.queue.borrow_mut().take_ready(Instant::now());
        for c in ready {
            let job = self.shared.jobs.create("deploy", c.slot.to_string(), None).id;
            let cancel = self.register(job);
            let me = Rc::clone(self);
            tokio::task::spawn_local(async move { me.run_push(c, job, cancel).await });
        }
        self.shared.metrics.set_queue_depth(self.queue.borrow().depth());
    }

    pub(super) fn deployer<'a>(&'a self, reporter: &'a dyn Reporter, actor: &str) -> Deployer<'a, R, P, S, Pr> {
        self.backend.deployer(reporter).with_actor(Some(actor.to_owned()))
    }

    /// Registers job `job` as running (shutdown waits for it and may cancel it); the job's
    /// task unregisters it with [`Running`].
    pub(super) fn register(&self, job: u64) -> Cancel {
        let (handle, cancel) = CancelHandle::new();
        self.running.borrow_mut().insert(job, handle);
        self.shared.metrics.set_running(self.running.borrow().len());
        cancel
    }

    /// `project`'s `stage` as the config file says now.
    pub(super) fn resolve(&self, project: &ProjectName, stage: &StageName) -> Result<ResolvedStage, String> {
        self.live.refresh().config.resolve(project, stage).map_err(|e| one_line(&e))
    }

    async fn run_work(&self, w: Work, cancel: Cancel) {
        let _running = Running { ex: self, job: w.job };
        let stage = match self.resolve(&w.project, &w.stage) {
            Ok(s) => s,
            Err(e) => return self.shared.jobs.failed(w.job, e, ExitCode::Usage.code()),
        };
        let tag = w.tag.clone().unwrap_or_else(|| stage.default_tag.clone());
        let kind = match w.kind {
            WorkKind::Deploy => {
                CommandKind::Deploy { force: w.force, image: None, trigger: Trigger::Deploy, verify: !w.no_verify }
            }
            WorkKind::Rollback => CommandKind::Rollback { to: w.to },
            WorkKind::Remove => CommandKind::Remove,
        };
        let reporter = JobReporter { job: w.job, shared: &self.shared };
        let deployer = self.deployer(&reporter, &w.actor).with_cancel(cancel);
        let cmd = OpsCommand { stage, tag, kind, wait: w.wait };
        self.finish_job(w.job, deployer.run(&cmd).await);
    }

    /// Records how job `job` ended, in the job table and the metrics.
    pub(super) fn finish_job(&self, job: u64, ran: Result<CommandResult, CommandError>) {
        match ran {
            Ok(result) => {
                self.shared.metrics.deploy(result.word());
                self.shared.jobs.done(job, &result);
            }
            Err(e) => {
                let busy = matches!(e, CommandError::NotBegun(DeployError::Lock(_)));
                self.shared.metrics.deploy(if busy { "busy" } else { "error" });
                self.shared.jobs.failed(job, one_line(&e), e.exit_code().code());
            }
        }
    }
}

/// Unregisters a job when it ends, however it ends.
pub(super) struct Running<'a, R, P, S, Pr> {
    pub(super) ex: &'a Executor<R, P, S, Pr>,
    pub(super) job: u64,
}

impl<R, P, S, Pr> Drop for Running<'_, R, P, S, Pr> {
    fn drop(&mut self) {
        self.ex.running.borrow_mut().remove(&self.job);
        self.ex.shared.metrics.set_running(self.ex.running.borrow().len());
        self.ex.idle.notify_waiters();
        self.ex.wake.notify_one();
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::ProbeResult;
    use crate::store::SqliteStore;
    use crate::testing::{FakeProxy, FakeRuntime};

    struct NoProbe;

    impl Probe for NoProbe {
        async fn probe(&self, _: &str, _: Duration) -> ProbeResult {
            ProbeResult { passed: true, detail: "200 OK".into() }
        }

        async fn fetch(&self, _: &str, _: Option<std::net::SocketAddr>, _: Duration) -> crate::health::Answer {
            crate::health::Answer { status: Some(200), detail: "200 OK".into() }
        }
    }

    /// Review F16: a job handled in the same scheduler tick as the shutdown signal, spawned but
    /// not yet polled, counts as running: the drain waits for it instead of returning at once
    /// and letting the `LocalSet` drop it halfway.
    #[tokio::test]
    async fn a_job_spawned_in_the_tick_of_the_signal_is_waited_for_by_the_drain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-forge.toml");
        std::fs::write(
            &path,
            "[projects.shop]\nimage = \"r.example.com/shop\"\nport = 80\n[projects.shop.stages.dev]\n",
        )
        .unwrap();
        let live = Arc::new(LiveConfig::load(&path, super::super::live::quiet()).unwrap());
        let shared = Arc::new(Shared::new());
        let backend = Adapters::over(
            FakeRuntime::default(),
            FakeProxy::default(),
            SqliteStore::in_memory().unwrap(),
            NoProbe,
            dir.path().join("locks"),
        );
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let ex = Rc::new(Executor::new(backend, live, Arc::clone(&shared)));
                let job = shared.jobs.create("remove", "shop/dev:v1".into(), None).id;
                let work = Work {
                    job,
                    kind: WorkKind::Remove,
                    project: ProjectName::new("shop").unwrap(),
                    stage: StageName::new("dev").unwrap(),
                    tag: Some(Tag::new("v1").unwrap()),
                    to: None,
                    wait: LockWait::NoWait,
                    force: false,
                    no_verify: false,
                    actor: "token:ci".into(),
                };
                ex.handle(Command::Run(work));
                // Not polled yet, and already running as far as the drain can tell.
                let idle = ex.all_idle();
                let mut idle = std::pin::pin!(idle);
                assert!(futures_util::poll!(idle.as_mut()).is_pending(), "the drain sees the job");
                idle.await;
                let state = shared.jobs.get(job).map(|j| j.state);
                assert_eq!(state, Some(super::super::wire::JobState::Done), "it ran to its end");
            })
            .await;
    }
}
