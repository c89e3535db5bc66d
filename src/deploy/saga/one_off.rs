//! One-offs in a deploy: the release, and a slot's first `on_create` (with the `on_remove` its
//! undo runs). Each runs from the pulled digest through [`crate::deploy::oneoff`], its name
//! recorded for the undo before it exists.

use super::Saga;
use crate::deploy::journal::slot_filter;
use crate::deploy::oneoff;
use crate::deploy::outcome::StepError;
use crate::deploy::undo::Compensation;
use crate::domain::InstanceStatus;
use crate::engine::{self, ContainerRuntime, PulledImage};
use crate::health::Probe;
use crate::look::Look;
use crate::naming;
use crate::proxy::{self, Proxy};
use crate::report::{Level, Step};
use crate::store::Store;

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// No live instance serves the slot yet: this deploy makes it. A state file that cannot be
    /// read is an error, not "not first": a new slot's `on_create` must not be skipped.
    pub(super) fn first_of_slot(&self) -> Result<bool, crate::store::StoreError> {
        let rows = self.d.store.instances(&slot_filter(&self.slot))?;
        Ok(!rows.iter().any(|r| r.status == InstanceStatus::Live && r.deploy_id != self.id))
    }

    /// Before a slot's first `on_create`: no host, container or service of the slot belongs to
    /// another state file (its data would be this slot's too: the same `TF_SLOT`, and this
    /// deploy's rollback would run `on_remove` on it). A look that fails refuses too.
    pub(super) async fn nobody_else_holds_the_slot(&self) -> Result<(), StepError> {
        let refuse = |what: String| {
            StepError::Invalid(format!(
                "{what} belongs to another state file, which serves {} already: on_create is not run for it; give each state file projects of its own, or share one state file",
                self.slot
            ))
        };
        match self.d.proxy.find(&self.domain).await {
            Look::Found(h) if matches!(&h.owner, proxy::Owner::Marked(m) if m.state != self.state_id) => {
                return Err(refuse(format!("proxy host {}", self.domain)));
            }
            Look::Unknown(e) => return Err(e.into()),
            Look::Found(_) | Look::Absent => {}
        }
        let key = self.slot.key();
        let stage = &self.req.stage;
        let theirs = self.d.managed_of(stage, &key).await?.into_iter().find(|(c, _)| {
            c.labels.get(engine::LABEL_SLOT) == Some(&key)
                && c.labels.get(engine::LABEL_STATE).is_some_and(|s| *s != self.state_id)
        });
        match theirs {
            Some((c, _)) => Err(refuse(format!("{} {}", if c.is_service { "service" } else { "container" }, c.name))),
            None => Ok(()),
        }
    }

    /// The slot's `on_remove` hook, to run from `image`, when there is one.
    pub(super) fn on_remove_run(&self, image: &str) -> Option<oneoff::OneOffRun> {
        let stage = &self.req.stage;
        let hook = stage.on_remove.clone()?;
        Some(oneoff::OneOffRun {
            name: naming::one_off_name(&self.slot, self.id, "on_remove"),
            image: image.to_owned(),
            env: stage.env_for(&self.slot.tag, &self.public_url()),
            labels: oneoff::labels(&self.slot, self.id, &self.state_id, "on_remove"),
            network: stage.network.clone(),
            port: stage.port,
            what: hook,
            auth: stage.registry_auth.clone(),
        })
    }

    /// Runs a one-off (`release`, `on_create`) from the pulled digest, its output into the
    /// deploy's log as `step` entries. Its name is recorded for the undo before it exists, and
    /// forgotten again once it is gone.
    pub(super) async fn one_off(
        &self,
        step: Step,
        role: &str,
        what: &crate::config::OneOff,
        pulled: &PulledImage,
    ) -> Result<(), StepError> {
        let stage = &self.req.stage;
        let run = oneoff::OneOffRun {
            name: naming::one_off_name(&self.slot, self.id, role),
            image: pulled.reference.clone(),
            env: stage.env_for(&self.slot.tag, &self.public_url()),
            labels: oneoff::labels(&self.slot, self.id, &self.state_id, role),
            network: stage.network.clone(),
            port: stage.port,
            what: what.clone(),
            auth: stage.registry_auth.clone(),
        };
        let undo = Compensation::Container {
            slot: self.slot.key(),
            name: run.name.clone(),
            kind: engine::InstanceKind::Container,
            network: stage.network.clone(),
            domain: None,
        };
        self.undo.borrow_mut().push(undo.clone());
        self.log(step, Level::Info, format!("running {} in {}", what.command.join(" "), run.name));
        let bound = what.timeout + self.d.timeouts.engine;
        let mut on_line = |stream: engine::LogStream, line: &str| {
            let level = if stream == engine::LogStream::Stderr { Level::Warn } else { Level::Info };
            self.log(step, level, line.to_owned());
        };
        let ran = tokio::time::timeout(bound, oneoff::run(self.d.runtime, &run, &mut on_line)).await;
        match ran {
            Err(_) => Err(StepError::TimedOut(bound)),
            Ok(result) => {
                if result.is_ok() {
                    self.undo.borrow_mut().retain(|c| *c != undo);
                }
                result?;
                self.log(step, Level::Info, format!("{role} succeeded"));
                Ok(())
            }
        }
    }
}
