//! The rollback half of the saga: every compensation, in reverse order, each bounded in time,
//! each run even when another failed. The proxy goes first: a host must never point at a
//! removed container, so a container whose host could not be undone is kept and reported.

use std::future::Future;

use tokio::time::Instant;

use super::outcome::RollbackReport;
use super::saga::{Created, ProxyUndo, Saga, ms};
use crate::domain::InstanceStatus;
use crate::engine::{ContainerRuntime, Removal};
use crate::health::Probe;
use crate::proxy::{Deleted, Proxy};
use crate::report::{Event, Level, Step, one_line};
use crate::store::{InstancePatch, Store};

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    fn compensation(&self, action: String, ok: bool, message: String) {
        self.emit(&Event::Compensation { action, ok, message });
    }

    /// Runs one compensation within the engine bound; a hang becomes an error.
    async fn within<T, E: std::error::Error>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, String> {
        let limit = self.d.timeouts.engine;
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(one_line(&e)),
            Err(_) => Err(format!("no answer within {}", humantime::format_duration(limit))),
        }
    }

    /// Deletes the host we created or switches back the one we switched; true when done.
    async fn undo_proxy(&self, created: &Created, leftovers: &mut Vec<String>) -> bool {
        match &created.proxy {
            Some(ProxyUndo::Delete { host_id }) => {
                let action = format!("delete proxy host {} (id {host_id})", self.domain);
                match self.within(self.d.proxy.delete(host_id, &self.domain)).await {
                    Ok(Deleted::Deleted) => self.compensation(action, true, String::new()),
                    Ok(Deleted::AlreadyGone) => self.compensation(action, true, "already gone".into()),
                    Err(e) => {
                        leftovers.push(format!("proxy host {} (id {host_id}): {e}", self.domain));
                        self.compensation(action, false, e);
                        return false;
                    }
                }
            }
            Some(ProxyUndo::SwitchBack { host_id, upstream }) => {
                let action = format!("switch proxy host {} back to {}", self.domain, upstream.name);
                match self.within(self.d.proxy.switch(host_id, &self.domain, upstream)).await {
                    Ok(()) => self.compensation(action, true, String::new()),
                    Err(e) => {
                        leftovers.push(format!(
                            "proxy host {} (id {host_id}) still points at {}: {e}",
                            self.domain, self.container_name
                        ));
                        self.compensation(action, false, e);
                        return false;
                    }
                }
            }
            None => {}
        }
        true
    }

    /// Removes the container, unless the proxy still points at it; true when it is gone.
    async fn undo_container(&self, created: &Created, proxy_ok: bool, leftovers: &mut Vec<String>) -> bool {
        if !created.container_attempted {
            return true;
        }
        let action = format!("remove container {}", self.container_name);
        if !proxy_ok {
            leftovers.push(format!("container {} kept because its proxy host still points at it", self.container_name));
            self.compensation(action, false, "kept: the proxy host still points at it".into());
            return false;
        }
        match self.within(self.d.runtime.remove(&self.container_name)).await {
            Ok(Removal::Removed) => self.compensation(action, true, String::new()),
            Ok(Removal::AlreadyGone) => self.compensation(action, true, "already gone".into()),
            Err(e) => {
                leftovers.push(format!("container {}: {e}", self.container_name));
                self.compensation(action, false, e);
                return false;
            }
        }
        true
    }

    /// Deletes the instance row when everything else is gone, else keeps it as `leftover`.
    fn undo_row(&self, created: &Created, all_gone: bool, leftovers: &mut Vec<String>) {
        let Some(row) = created.instance_row else { return };
        let action = "delete instance row".to_owned();
        let result = if all_gone {
            self.d.store.delete_instance(row)
        } else {
            self.d.store.update_instance(
                row,
                &InstancePatch { status: Some(InstanceStatus::Leftover), ..InstancePatch::default() },
            )
        };
        match result {
            Ok(()) if all_gone => self.compensation(action, true, String::new()),
            Ok(()) => self.compensation(action, false, "kept as leftover for `tiny-forge prune`".into()),
            Err(e) => {
                leftovers.push(format!("instance row {row}: {e}"));
                self.compensation(action, false, one_line(&e));
            }
        }
    }

    /// Undoes what [`Self::forward`] created, in reverse, running every compensation even when
    /// one fails. The proxy goes first: a host must never point at a removed container.
    pub(super) async fn rollback(&self) -> RollbackReport {
        self.emit(&Event::StepStarted { step: Step::Rollback });
        let t0 = Instant::now();
        if let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == Step::Rollback) {
            // Test hook: a window for a second signal, which ends the process at once.
            self.log(
                Step::Rollback,
                Level::Debug,
                format!("pausing {} (test hook)", humantime::format_duration(pause)),
            );
            tokio::time::sleep(pause).await;
        }
        let created = self.created.borrow().clone();
        let mut leftovers = Vec::new();
        let proxy_ok = self.undo_proxy(&created, &mut leftovers).await;
        let container_ok = self.undo_container(&created, proxy_ok, &mut leftovers).await;
        self.undo_row(&created, proxy_ok && container_ok, &mut leftovers);
        let elapsed_ms = ms(t0.elapsed());
        if leftovers.is_empty() {
            self.emit(&Event::StepFinished { step: Step::Rollback, elapsed_ms });
        } else {
            self.emit(&Event::StepFailed {
                step: Step::Rollback,
                error: format!("left behind: {}", leftovers.join("; ")),
                elapsed_ms,
            });
        }
        RollbackReport { leftovers }
    }
}
