//! The proxy step: `ensure` the slot's host name points at the new instance, with the undo
//! (point it back at the instance it served, or delete it) recorded before the call, and
//! brought in line afterwards with what the call may have changed.

use super::Saga;
use crate::deploy::instance;
use crate::deploy::journal::slot_filter;
use crate::deploy::outcome::StepError;
use crate::deploy::undo::Compensation;
use crate::domain::InstanceStatus;
use crate::engine::ContainerRuntime;
use crate::fmt::one_line;
use crate::health::Probe;
use crate::look::Look;
use crate::proxy::{self, Ensured, Marker, Proxy, Upstream};
use crate::report::{Level, Step};
use crate::store::{InstanceRecord, Store};

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// The proxy step: `ensure` the slot's host name → the new container. The undo (point the
    /// host back at the instance it served, or delete it) is recorded before the call; whether a
    /// change may still land is tracked through the call.
    pub(super) async fn publish(&self, upstream: &Upstream) -> Result<String, StepError> {
        let stage = &self.req.stage;
        let replaced: Vec<InstanceRecord> = self
            .d
            .store
            .instances(&slot_filter(&self.slot))?
            .into_iter()
            .filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id)
            .collect();
        // The instance serving the slot now is what a rollback points the host back at: when
        // it cannot be looked at, traffic does not move (a failed look never deletes a live
        // slot's host).
        let previous = match instance::upstream_of_newest(self.d, stage, &replaced).await {
            Look::Found(up) => Some(up),
            Look::Absent => None,
            Look::Unknown(e) => {
                return Err(StepError::Invalid(format!(
                    "cannot look at the instance serving {} now ({}); traffic stays on it",
                    self.slot,
                    one_line(&e)
                )));
            }
        };
        self.replaced.replace(replaced);
        {
            let mut undo = self.undo.borrow_mut();
            for c in undo.iter_mut() {
                if let Compensation::Container { domain, .. } = c {
                    *domain = Some(self.domain.clone());
                }
            }
            undo.push(Compensation::Host {
                slot: self.slot.key(),
                domain: self.domain.clone(),
                to: previous,
                unsettled: false,
                access: instance::host_access(stage),
            });
        }
        let marker = Marker { state: self.state_id.clone(), slot: self.slot.key() };
        let access = instance::host_access(stage);
        let result =
            proxy::ensure_tracked(self.d.proxy, &self.domain, &marker, upstream, &access, &self.progress).await;
        self.settle();
        let (done, url) = result?;
        let message = match &done {
            Ensured::NoHost => None,
            Ensured::Created { id } => Some(format!("created proxy host {} (id {id})", self.domain)),
            Ensured::Switched { id, from } => Some(format!(
                "switched proxy host {} (id {id}) from {} to {}",
                self.domain,
                from.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string),
                upstream.name
            )),
            Ensured::Unchanged { id } => {
                Some(format!("proxy host {} (id {id}) already forwards to {}", self.domain, upstream.name))
            }
        };
        if let Some(m) = message {
            self.log(Step::Proxy, Level::Info, m);
        }
        self.host_id.replace(done.id().map(str::to_owned));
        self.log(Step::Proxy, Level::Info, format!("serving at {url}"));
        Ok(url)
    }

    /// Brings the undo in line with what the proxy step may have changed: nothing (no host
    /// could point at the new container, so the host is left alone), a change (undo it), or a
    /// change that may still land (undo it, and keep what it points at).
    pub(super) fn settle(&self) {
        let changed = self.progress.may_have_changed();
        let mut undo = self.undo.borrow_mut();
        undo.retain(|c| changed || !matches!(c, Compensation::Host { .. }));
        for c in undo.iter_mut() {
            match c {
                Compensation::Host { unsettled, .. } => *unsettled = self.progress.unsettled(),
                Compensation::Container { domain, .. } if !changed => *domain = None,
                _ => {}
            }
        }
    }
}
