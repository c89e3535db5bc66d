//! The one undo executor (DESIGN §8). Rollback, retire, eviction, `remove`, crash recovery and
//! `prune` all describe what to undo as typed [`Compensation`]s and hand them here. They run in
//! one fixed order, proxy first, then containers, then records, because a host must never point
//! at a container that is gone:
//!
//! 1. hosts are switched back (or deleted) through [`proxy::ensure`] / [`proxy::remove`], by
//!    name, only when ours and the slot's;
//! 2. a container is removed only after asking the proxy, by name, whether its slot's host still
//!    points at it (then it is kept), and only when it carries this state file's label;
//! 3. a row is deleted only when its container is gone (else it stays, `retiring`).
//!
//! Every compensation runs even when another failed; each is bounded in time and stops at a
//! second signal. What is left comes back as typed [`Leftover`]s.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use super::Deployer;
use crate::domain::{InstanceStatus, Leftover, LeftoverCause};
use crate::engine::{self, ContainerRuntime, InstanceKind, Removal};
use crate::fmt::one_line;
use crate::look::Look;
use crate::proxy::{self, Ensured, HostAccess, Marker, Proxy, Removed, Upstream};
use crate::store::{InstancePatch, Store};

/// One step of an undo, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensation {
    /// Make `domain` forward to `to` (the instance the slot served before, or serves now), or
    /// delete it when `to` is `None`. Only a host that is this state file's and `slot`'s is
    /// touched. `unsettled`: a call on this host got no answer and may still land, so the
    /// containers of the slot that the undo would remove are kept.
    Host {
        /// The slot key, `project/stage/tag`.
        slot: String,
        /// The host name.
        domain: String,
        /// Where it must forward to, if anywhere.
        to: Option<Upstream>,
        /// A call on the host may still land.
        unsettled: bool,
        /// Who may open it, when it is (re)written.
        access: HostAccess,
    },
    /// Remove a container (or a swarm slot's service), unless `domain`'s host points at it
    /// (then it is kept).
    Container {
        /// The slot it belongs to, `project/stage/tag` (a kept one holds back its slot's
        /// `on_remove`).
        slot: String,
        /// Its name.
        name: String,
        /// A container, or a service: it is looked up as this kind only.
        kind: InstanceKind,
        /// The Docker network whose address of it a host may forward to.
        network: String,
        /// The host name of its slot, when a host could point at it.
        domain: Option<String>,
    },
    /// Take a swarm slot's service back to the spec it had before this deploy's update (Swarm's
    /// rollback), unless its spec is that one again; done once the rollback completed.
    Service {
        /// Its name.
        name: String,
        /// The image it ran before (for messages).
        image: String,
        /// The `ForceUpdate` value of the spec it had before: the deploy that made that spec.
        generation: u64,
        /// How long Swarm may take to go back (its tasks' pull, start, checks and monitor
        /// window, from the stage's health policy), besides the engine bound.
        within: Duration,
    },
    /// Delete an instance row once its container is gone.
    Row {
        /// Its id.
        row: i64,
        /// Its container's name.
        container: String,
    },
    /// Run a slot's `on_remove` hook (after its instance is gone). A failure is a leftover that
    /// `prune` runs again; the instance still goes.
    Hook {
        /// The slot, `project/stage/tag`.
        slot: String,
        /// The one-off to run.
        run: Box<super::oneoff::OneOffRun>,
    },
    /// Delete an image no container uses (never by force). Disk hygiene: one that cannot go is
    /// noted, never a leftover.
    Image {
        /// Its id.
        id: String,
        /// The names it goes by (tags, digest references) that make it ours to delete.
        names: Vec<String>,
        /// A name it is known by (`repo@digest`), for messages.
        reference: String,
        /// Its size.
        bytes: u64,
    },
    /// Remove a network tiny-forge made, if nothing is attached to it any more.
    Network {
        /// Its name.
        name: String,
    },
}

impl Compensation {
    /// Where it runs in the fixed order: hosts, containers, the slot's `on_remove`, rows,
    /// images, networks. The hook runs before the rows go: a process that dies between the two
    /// leaves the rows, from which recovery or `prune` take the slot away again, hook included
    /// (so `on_remove` runs at least once; the README asks for it to be idempotent).
    pub(super) fn phase(&self) -> u8 {
        match self {
            Self::Host { .. } => 0,
            Self::Container { .. } | Self::Service { .. } => 1,
            Self::Hook { .. } => 2,
            Self::Row { .. } => 3,
            Self::Image { .. } => 4,
            Self::Network { .. } => 5,
        }
    }

    /// What it does, in the imperative, for logs and `prune --dry-run`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Host { domain, to: Some(up), .. } => {
                format!("point proxy host {domain} at {}:{}", up.name, up.port)
            }
            Self::Host { domain, to: None, .. } => format!("delete proxy host {domain}"),
            Self::Container { name, .. } => format!("remove container {name}"),
            Self::Service { name, image, .. } => format!("take service {name} back to {image}"),
            Self::Row { row, container } => format!("delete instance row {row} ({container})"),
            Self::Hook { slot, run } => format!("run the on_remove hook of {slot} ({})", run.what.command.join(" ")),
            Self::Image { reference, bytes, .. } => {
                format!("delete image {reference} ({})", crate::fmt::bytes(*bytes))
            }
            Self::Network { name } => format!("remove network {name} if nothing uses it"),
        }
    }

    fn abandoned(&self) -> Option<Leftover> {
        let cause = LeftoverCause::Abandoned;
        match self {
            Self::Host { slot, domain, .. } => {
                Some(Leftover::Host { domain: domain.clone(), slot: slot.clone(), cause })
            }
            Self::Container { name, .. } | Self::Service { name, .. } => {
                Some(Leftover::Container { name: name.clone(), cause })
            }
            Self::Hook { slot, run } => Some(Leftover::Hook {
                slot: slot.clone(),
                hook: "on_remove".into(),
                image: run.image.clone(),
                cause,
                logs: Box::default(),
            }),
            Self::Row { .. } | Self::Image { .. } | Self::Network { .. } => None,
        }
    }
}

/// What one compensation came to: done (with a note on what it found, empty when there is
/// nothing to add to [`Compensation::describe`]), or a leftover.
pub(super) type Outcome = Result<String, Leftover>;

/// One line for a log: what was done, and the note if any.
pub(super) fn line(c: &Compensation, o: &Outcome) -> String {
    match o {
        Ok(note) if note.is_empty() => c.describe(),
        Ok(note) => format!("{}: {note}", c.describe()),
        Err(l) => format!("{}: {}", c.describe(), l.with_logs()),
    }
}

/// Runs `comps` in the fixed order; `on` hears each outcome as it happens. Returns every
/// leftover.
pub(super) async fn execute<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    state_id: &str,
    mut comps: Vec<Compensation>,
    on: &mut dyn FnMut(&Compensation, &Outcome),
) -> Vec<Leftover>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    comps.sort_by_key(Compensation::phase);
    let undone =
        comps.iter().filter_map(|c| if let Compensation::Row { row, .. } = c { Some(*row) } else { None }).collect();
    let mut run = Run {
        state_id,
        unsettled: HashSet::new(),
        kept: HashSet::new(),
        not_gone: HashSet::new(),
        leftovers: Vec::new(),
        undone,
    };
    for c in &comps {
        let outcome = if d.cancel.is_aborted() {
            c.abandoned().map_or_else(|| Ok("kept for prune: a second signal stopped the rollback".to_owned()), Err)
        } else {
            let work = Box::pin(run.one(d, c));
            tokio::select! {
                biased;
                () = d.cancel.aborted() => c.abandoned().map_or_else(|| Ok("kept for prune: a second signal stopped the rollback".to_owned()), Err),
                o = work => o,
            }
        };
        if let (Compensation::Container { name, .. }, Err(_)) = (c, &outcome) {
            run.kept.insert(name.clone());
        }
        // A host or container of the slot that stays: the slot is not gone, so its `on_remove`
        // (after them in the order) must not run yet.
        if let (Compensation::Container { slot, .. } | Compensation::Host { slot, .. }, Err(_)) = (c, &outcome) {
            run.not_gone.insert(slot.clone());
        }
        if let Err(l) = &outcome {
            run.leftovers.push(l.clone());
        }
        on(c, &outcome);
    }
    run.leftovers
}

/// How long an update still marked `updating` may take to turn into Swarm's own rollback before
/// the undo asks for one itself.
const SWARM_GRACE: Duration = Duration::from_secs(2);

/// Takes service `name` back to the spec of deploy `generation` (Swarm's rollback, unless Swarm
/// already went back), then waits, within the engine bound, until the rollback completed.
async fn service_back<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    name: &str,
    generation: u64,
    within: Duration,
) -> Outcome
where
    R: ContainerRuntime,
{
    use engine::UpdateState;
    let look = || async { d.runtime.service(name).await.map_err(|e| one_line(&e)).into_result() };
    let work = async {
        let mut asked = false;
        let mut waited = Duration::ZERO;
        loop {
            let Some(s) = look().await? else { return Ok("it is gone".to_owned()) };
            if s.generation != generation {
                if asked {
                    return Err(format!("Swarm did not go back to the spec of deploy {generation}"));
                }
                // Swarm is going back on its own (a task of the update failed): asking too
                // would swap the specs again (review F11).
                if s.update == Some(UpdateState::RollbackStarted) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                if s.update == Some(UpdateState::Updating) && waited < SWARM_GRACE {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    waited += Duration::from_millis(200);
                    continue;
                }
                // Swarm may be rolling back on its own meanwhile: then the version moved on and
                // the next look finds the old spec.
                if let Err(e) = d.runtime.rollback_service(name).await {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if look().await?.is_none_or(|s| s.generation != generation) {
                        return Err(one_line(&e));
                    }
                }
                asked = true;
                continue;
            }
            match s.update {
                Some(UpdateState::RollbackPaused | UpdateState::Paused) => {
                    return Err(format!("Swarm paused the rollback: {}", s.update_message.unwrap_or_default()));
                }
                Some(UpdateState::RollbackStarted | UpdateState::Updating) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ if asked => return Ok("Swarm rolled it back".to_owned()),
                _ => return Ok("it already runs that spec (Swarm rolled it back)".to_owned()),
            }
        }
    };
    let limit = d.timeouts.engine + within;
    let error = match tokio::time::timeout(limit, work).await {
        Ok(Ok(m)) => return Ok(m),
        Ok(Err(e)) => e,
        Err(_) => format!("the rollback did not finish within {}", humantime::format_duration(limit)),
    };
    Err(Leftover::Container { name: name.to_owned(), cause: LeftoverCause::Failed { error } })
}

struct Run<'s> {
    state_id: &'s str,
    /// Host names with a call that may still land.
    unsettled: HashSet<String>,
    /// Containers that stay.
    kept: HashSet<String>,
    /// Slots a host or container of which stays: their `on_remove` waits for prune.
    not_gone: HashSet<String>,
    leftovers: Vec<Leftover>,
    /// The instance rows this run deletes: a container (or service) that only these name may go.
    undone: HashSet<i64>,
}

/// Bounds a look by `limit`; a hang is a look that failed.
async fn within_look<T, E: std::error::Error>(
    limit: Duration,
    work: impl Future<Output = crate::look::Look<T, E>>,
) -> crate::look::Look<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(look) => look.map_err(|e| one_line(&e)),
        Err(_) => Look::Unknown(format!("no answer within {}", humantime::format_duration(limit))),
    }
}

/// Bounds `work` by `limit`; a hang becomes an error line.
async fn within<T, E: std::error::Error>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(one_line(&e)),
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(limit))),
    }
}

impl Run<'_> {
    async fn one<R, P, S, Pr>(&mut self, d: &Deployer<'_, R, P, S, Pr>, c: &Compensation) -> Outcome
    where
        R: ContainerRuntime,
        P: Proxy,
        S: Store,
    {
        match c {
            Compensation::Host { slot, domain, to, unsettled, access } => {
                self.host(d, slot, domain, to.as_ref().map(|u| (u, access)), *unsettled).await
            }
            Compensation::Container { name, kind, network, domain, .. } => {
                self.container(d, name, *kind, network, domain.as_deref()).await
            }
            Compensation::Service { name, generation, within, .. } => {
                let outcome = service_back(d, name, *generation, *within).await;
                if outcome.is_err() {
                    // Its containers' undo must not take the service away instead.
                    self.kept.insert(name.clone());
                }
                outcome
            }
            Compensation::Row { row, container } => self.row(d, *row, container),
            Compensation::Hook { slot, run } if self.not_gone.contains(slot) => Err(Leftover::Hook {
                slot: slot.clone(),
                hook: "on_remove".into(),
                image: run.image.clone(),
                cause: LeftoverCause::Failed {
                    error: format!("not run: {slot} is not gone (see above); prune runs it once it is"),
                },
                logs: Box::default(),
            }),
            Compensation::Hook { slot, run } => {
                let mut lines = Vec::new();
                // The whole run is bounded: a pull that stalls or a create that hangs must not
                // hold the stage's lock for ever (its own timeout covers only the command).
                let bound = run.what.timeout + d.timeouts.pull + d.timeouts.engine;
                let ran = tokio::time::timeout(
                    bound,
                    super::oneoff::run(d.runtime, run, &mut |_, l| lines.push(l.to_owned())),
                )
                .await;
                match ran {
                    Ok(Ok(())) => Ok(format!("{} lines of output", lines.len())),
                    Err(_) => Err(Leftover::Hook {
                        slot: slot.clone(),
                        hook: "on_remove".into(),
                        image: run.image.clone(),
                        cause: LeftoverCause::Failed {
                            error: format!("did not finish within {}", humantime::format_duration(bound)),
                        },
                        logs: lines.into(),
                    }),
                    Ok(Err(e)) => Err(Leftover::Hook {
                        slot: slot.clone(),
                        hook: "on_remove".into(),
                        image: run.image.clone(),
                        cause: LeftoverCause::Failed { error: e.without_logs() },
                        logs: e.logs().into(),
                    }),
                }
            }
            Compensation::Image { id, names, .. } => {
                match within(d.timeouts.engine, d.runtime.remove_image(id, names)).await {
                    Ok(Removal::Removed) => Ok(String::new()),
                    Ok(Removal::AlreadyGone) => Ok("it was already gone".to_owned()),
                    Err(e) => Ok(format!("kept: {e}")),
                }
            }
            Compensation::Network { name } => {
                match within(d.timeouts.engine, d.runtime.remove_network_if_idle(name)).await {
                    Ok(true) => Ok(String::new()),
                    Ok(false) => Ok("kept: something still uses it, or tiny-forge did not make it".to_owned()),
                    Err(e) => Ok(format!("kept: {e}")),
                }
            }
        }
    }

    async fn host<R, P, S, Pr>(
        &mut self,
        d: &Deployer<'_, R, P, S, Pr>,
        slot: &str,
        domain: &str,
        to: Option<(&Upstream, &HostAccess)>,
        unsettled: bool,
    ) -> Outcome
    where
        P: Proxy,
    {
        let marker = Marker { state: self.state_id.to_owned(), slot: slot.to_owned() };
        let failed = |error: String| Leftover::Host {
            domain: domain.to_owned(),
            slot: slot.to_owned(),
            cause: LeftoverCause::Failed { error },
        };
        let limit = d.timeouts.proxy;
        match to {
            Some((up, access)) => match within(limit, proxy::ensure(d.proxy, domain, &marker, up, access)).await {
                Ok((Ensured::Unchanged { .. }, _)) if unsettled => {
                    // Our earlier change has not shown up; it may still land. Keep what it
                    // would point at.
                    self.unsettled.insert(domain.to_owned());
                    Ok("it already does; a change that got no answer may still land".to_owned())
                }
                Ok((Ensured::Unchanged { .. }, _)) => Ok("it already does".to_owned()),
                Ok((Ensured::NoHost, _)) => Ok("no proxy".to_owned()),
                Ok((Ensured::Created { id }, _)) => Ok(format!("created (id {id})")),
                Ok((Ensured::Switched { from, .. }, _)) => {
                    Ok(format!("switched from {}", from.map_or_else(|| "?".to_owned(), |t| t.to_string())))
                }
                // Where the host points now is asked again before any container goes; only our own
                // change that got no answer can still move it.
                Err(e) => {
                    if unsettled {
                        self.unsettled.insert(domain.to_owned());
                    }
                    Err(failed(e))
                }
            },
            None => match within(limit, proxy::remove(d.proxy, domain, &marker)).await {
                Ok(Removed::Deleted { .. }) => Ok(String::new()),
                Ok(Removed::AlreadyGone) if unsettled && d.proxy.keeps_hosts() => {
                    self.unsettled.insert(domain.to_owned());
                    Err(Leftover::Host {
                        domain: domain.to_owned(),
                        slot: slot.to_owned(),
                        cause: LeftoverCause::Unsettled,
                    })
                }
                Ok(Removed::AlreadyGone) => Ok("it was not there".to_owned()),
                Ok(Removed::NotOurs { id }) => Ok(format!("host id {id} is not this slot's; left alone")),
                // Where the host points now is asked again before any container goes; only our own
                // change that got no answer can still move it.
                Err(e) => {
                    if unsettled {
                        self.unsettled.insert(domain.to_owned());
                    }
                    Err(failed(e))
                }
            },
        }
    }

    async fn container<R, P, S: Store, Pr>(
        &mut self,
        d: &Deployer<'_, R, P, S, Pr>,
        name: &str,
        kind: InstanceKind,
        network: &str,
        domain: Option<&str>,
    ) -> Outcome
    where
        R: ContainerRuntime,
        P: Proxy,
    {
        let left = |cause| Leftover::Container { name: name.to_owned(), cause };
        let failed = |error| left(LeftoverCause::Failed { error });
        let limit = d.timeouts.engine;
        // Only a definite "no such container" is gone; a look that failed keeps it.
        let info = match within_look(limit, super::look_instance(d.runtime, kind, name, network)).await {
            Look::Found(info) => info,
            Look::Absent => return Ok("it was already gone".to_owned()),
            Look::Unknown(e) => return Err(failed(format!("could not look: {e}"))),
        };
        if info.labels.get(engine::LABEL_MANAGED).is_none_or(|m| m != "true") {
            // Its name was taken before our create (which then failed): not ours.
            return Ok("tiny-forge did not make it; left alone".to_owned());
        }
        if info.labels.get(engine::LABEL_STATE).is_some_and(|s| s != self.state_id) {
            return Ok("it belongs to another state file; left alone".to_owned());
        }
        if self.kept.contains(name) {
            return Ok("kept: its service could not be taken back (see above)".to_owned());
        }
        // A swarm slot's rows all name its one service: it stays while a live row this run
        // does not delete names it and it runs that row's spec (a service this deploy made
        // after the live one vanished still goes).
        let made_by = info.labels.get(engine::LABEL_DEPLOY_ID);
        match d.store.instances(&crate::store::Filter::default()) {
            Ok(rows) => {
                if let Some(r) = rows.iter().find(|r| {
                    r.container_name == name
                        && r.status == InstanceStatus::Live
                        && !self.undone.contains(&r.id)
                        && made_by == Some(&r.deploy_id.to_string())
                }) {
                    return Ok(format!("kept: live instance {} ({}) runs in it", r.id, r.tag));
                }
            }
            Err(e) => return Err(failed(format!("cannot read which instances use it: {}", one_line(&e)))),
        }
        if let Some(domain) = domain {
            if self.unsettled.contains(domain) {
                return Err(left(LeftoverCause::Unsettled));
            }
            match within_look(d.timeouts.proxy, d.proxy.find(domain)).await {
                Look::Found(h) if h.target.as_ref().is_some_and(|t| proxy::points_at(t, name, info.ip)) => {
                    return Err(left(LeftoverCause::InUse { host: domain.to_owned() }));
                }
                Look::Found(_) | Look::Absent => {}
                Look::Unknown(e) => {
                    return Err(failed(format!("cannot ask the proxy whether {domain} points at it: {e}")));
                }
            }
        }
        let removal = async {
            match kind {
                InstanceKind::Service => d.runtime.remove_service(name).await,
                InstanceKind::Container => d.runtime.remove(name).await,
            }
        };
        match within(limit, removal).await {
            Ok(Removal::Removed) => Ok(String::new()),
            Ok(Removal::AlreadyGone) => Ok("it was already gone".to_owned()),
            Err(e) => Err(failed(e)),
        }
    }

    fn row<R, P, S: Store, Pr>(&mut self, d: &Deployer<'_, R, P, S, Pr>, row: i64, container: &str) -> Outcome {
        let failed = |e: crate::store::StoreError| Leftover::Row {
            row,
            container: container.to_owned(),
            cause: LeftoverCause::Failed { error: one_line(&e) },
        };
        if self.kept.contains(container) {
            let patch = InstancePatch { status: Some(InstanceStatus::Retiring), ..InstancePatch::default() };
            d.store.update_instance(row, &patch).map_err(failed)?;
            return Ok("kept as retiring: its container is still there".to_owned());
        }
        d.store.delete_instance(row).map_err(failed)?;
        Ok(String::new())
    }
}
