//! Pushes the queue released: resolve the digest (unless the payload gave one), skip a digest
//! the slot already serves, else deploy `image@digest` as a job of its own.

use tokio::time::Instant;

use super::executor::{DigestSource, Executor, JobReporter, outcome_word};
use super::queue::Candidate;
use super::wire;
use crate::deploy::{CancelHandle, DeployOutcome, DeployRequest};
use crate::domain::InstanceStatus;
use crate::engine::ContainerRuntime;
use crate::health::Probe;
use crate::lock::LockWait;
use crate::proxy::Proxy;
use crate::store::{Filter, Store};

impl<R, P, S, Pr> Executor<R, P, S, Pr>
where
    R: ContainerRuntime + DigestSource + 'static,
    P: Proxy + 'static,
    S: Store + 'static,
    Pr: Probe + 'static,
{
    /// A push the queue released: resolve its digest (unless the payload gave one), skip it
    /// when the slot already serves that digest, else deploy `image@digest`.
    pub(super) async fn run_push(&self, c: Candidate) {
        let digest = self.push(&c).await;
        self.queue.borrow_mut().done(&c.slot, digest, Instant::now());
        self.wake.notify_one();
    }

    async fn push(&self, c: &Candidate) -> Option<String> {
        let job = self.shared.jobs.create("deploy", c.slot.to_string()).id;
        let (handle, cancel) = CancelHandle::new();
        let _running = self.track(job, handle);
        let codes = self.shared.codes;
        let stage = match self.resolve(&c.slot.project, &c.slot.stage) {
            Ok(s) => s,
            Err(e) => {
                self.shared.jobs.failed(job, e, codes.usage);
                return None;
            }
        };
        let digest = if let Some(d) = &c.digest {
            d.clone()
        } else {
            let image = format!("{}:{}", c.image, c.tag);
            let auth = self.backend.runtime.registry_auth(stage.image.as_str(), stage.registry_auth.as_ref()).await;
            let auth = auth.ok().flatten();
            match self.backend.runtime.digest(&image, auth.as_ref().map(|(_, a)| a)).await {
                Ok(d) if !d.is_empty() => d,
                Ok(_) | Err(_) => {
                    self.shared.metrics.deploy("error");
                    self.shared.jobs.failed(job, format!("cannot resolve {image} to a digest"), codes.usage);
                    return None;
                }
            }
        };
        let filter = Filter {
            project: Some(c.slot.project.to_string()),
            stage: Some(c.slot.stage.to_string()),
            tag: Some(c.slot.tag.to_string()),
        };
        let serving = self.backend.store.instances(&filter).ok().unwrap_or_default();
        if serving.iter().any(|i| i.status == InstanceStatus::Live && i.digest == digest) {
            self.shared.metrics.deploy("skipped");
            let result = serde_json::json!({"type": "result", "status": "unchanged", "exit_code": codes.ok,
                "slot": c.slot.to_string(), "digest": digest});
            self.shared.jobs.done(job, None, codes.ok, result);
            return Some(digest);
        }
        let reporter = JobReporter { job, shared: &self.shared };
        let deployer = self.deployer(&reporter, &c.actor).with_cancel(cancel);
        let req = DeployRequest {
            stage,
            tag: c.slot.tag.clone(),
            trigger: c.trigger,
            image_override: Some(format!("{}@{digest}", c.image)),
            lock_wait: LockWait::Forever,
            // A repeated notification of what already runs deploys nothing.
            force: false,
        };
        match deployer.deploy(&req).await {
            Ok(outcome) => {
                let code = (codes.outcome)(&outcome);
                self.shared.metrics.deploy(outcome_word(&outcome));
                let (id, ok) = match &outcome {
                    DeployOutcome::Succeeded(s) => (s.deploy_id, true),
                    DeployOutcome::Failed(f) => (f.deploy_id, false),
                };
                self.shared.jobs.done(job, Some(id.0), code, wire::deploy_result(&outcome, code));
                ok.then_some(digest)
            }
            Err(e) => {
                self.failed_to_begin(job, &e);
                None
            }
        }
    }
}
