//! Jobs: what the API accepted and where each stands (`GET /v1/jobs/{id}`). Shared between the
//! HTTP handlers and the executor; every change bumps a generation counter that long polls and
//! event streams wait on.
//!
//! - **Ids survive a restart.** The first id of a server is its start time in seconds, shifted
//!   left by 20 bits, so a client that polls job 7 of an earlier run after a restart gets a 404,
//!   never another deploy's job (unless one run handed out more than a million jobs and the
//!   next started within a second: not a case we serve).
//! - **Only finished jobs are forgotten.** Beyond [`KEEP`] jobs the oldest *finished* ones go; a
//!   job still waiting or running is never evicted, however many come after it.
//! - **A job knows who submitted it**, so that the token that started a deploy can always read
//!   that job, whatever its scope says about reads.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::wire::{JobState, JobView, Stamped};
use crate::ops::{CommandResult, ResultLine};

/// How many finished jobs are remembered.
pub(crate) const KEEP: usize = 1000;

/// A job and the token that submitted it (`None`: a push or a poll).
#[derive(Debug, Clone)]
struct Entry {
    view: JobView,
    owner: Option<i64>,
    /// The submission's `Idempotency-Key`, if it sent one.
    key: Option<String>,
}

/// The job table.
#[derive(Debug)]
pub struct Jobs {
    next: AtomicU64,
    table: Mutex<BTreeMap<u64, Entry>>,
    changed: watch::Sender<u64>,
}

impl Default for Jobs {
    fn default() -> Self {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self::starting_at(first_id(secs))
    }
}

/// The first job id of a server started at `secs` (Unix seconds): below 2^53, so JSON clients
/// that read numbers as doubles keep it exact until the year 2242.
fn first_id(secs: u64) -> u64 {
    (secs.min((1 << 33) - 1) << 20) + 1
}

fn finished(state: JobState) -> bool {
    matches!(state, JobState::Done | JobState::Failed)
}

impl Jobs {
    /// A table whose first job gets `first`.
    #[must_use]
    pub fn starting_at(first: u64) -> Self {
        Self { next: AtomicU64::new(first), table: Mutex::new(BTreeMap::new()), changed: watch::channel(0).0 }
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<u64, Entry>) -> T) -> T {
        let mut t = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = f(&mut t);
        drop(t);
        self.changed.send_modify(|g| *g += 1);
        out
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<u64, Entry>) -> T) -> T {
        f(&self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A new job, `waiting`, submitted by token `owner` (`None`: the server's own, a push).
    pub fn create(&self, kind: &str, slot: String, owner: Option<i64>) -> JobView {
        self.create_once(kind, slot, owner, None).0
    }

    /// As [`Jobs::create`]; but when `owner` already submitted a job with idempotency `key`
    /// that is still remembered, that job, and `false`.
    pub fn create_once(&self, kind: &str, slot: String, owner: Option<i64>, key: Option<String>) -> (JobView, bool) {
        if let Some(k) = &key {
            let known = self
                .read(|t| t.values().find(|e| e.owner == owner && e.key.as_ref() == Some(k)).map(|e| e.view.clone()));
            if let Some(view) = known {
                return (view, false);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let view = JobView {
            id,
            kind: kind.to_owned(),
            slot,
            state: JobState::Waiting,
            deploy_id: None,
            early: Vec::new(),
            error: None,
            exit_code: None,
            result: None,
        };
        self.with(|t| {
            t.insert(id, Entry { view: view.clone(), owner, key });
            evict(t);
        });
        (view, true)
    }

    /// One job.
    pub fn get(&self, id: u64) -> Option<JobView> {
        self.read(|t| t.get(&id).map(|e| e.view.clone()))
    }

    /// The token that submitted job `id`, if a token did.
    pub fn owner(&self, id: u64) -> Option<i64> {
        self.read(|t| t.get(&id).and_then(|e| e.owner))
    }

    /// The job that ran deploy `deploy_id`, if this server ran it.
    pub fn by_deploy(&self, deploy_id: i64) -> Option<JobView> {
        self.read(|t| t.values().rev().find(|e| e.view.deploy_id == Some(deploy_id)).map(|e| e.view.clone()))
    }

    /// The token that submitted the job that ran deploy `deploy_id`, if a token did.
    pub fn owner_of_deploy(&self, deploy_id: i64) -> Option<i64> {
        self.read(|t| t.values().rev().find(|e| e.view.deploy_id == Some(deploy_id)).and_then(|e| e.owner))
    }

    /// Jobs not finished yet.
    pub fn active(&self) -> usize {
        self.read(|t| t.values().filter(|e| !finished(e.view.state)).count())
    }

    /// An event sent before the deploy had an id.
    pub fn early(&self, id: u64, ev: Stamped) {
        self.with(|t| {
            if let Some(e) = t.get_mut(&id) {
                e.view.early.push(ev);
            }
        });
    }

    /// The deploy got its id.
    pub fn running(&self, id: u64, deploy_id: i64) {
        self.with(|t| {
            if let Some(e) = t.get_mut(&id) {
                e.view.deploy_id = Some(deploy_id);
                e.view.state = JobState::Running;
            }
        });
    }

    /// It ended with `result`.
    pub fn done(&self, id: u64, result: &CommandResult) {
        let line = ResultLine::from(result.clone());
        self.with(|t| {
            if let Some(e) = t.get_mut(&id) {
                let j = &mut e.view;
                j.deploy_id = result.deploy_id().or(j.deploy_id);
                j.state = JobState::Done;
                j.exit_code = Some(line.exit_code.code());
                j.result = Some(line);
            }
            evict(t);
        });
    }

    /// It never began.
    pub fn failed(&self, id: u64, error: String, exit_code: u8) {
        self.with(|t| {
            if let Some(e) = t.get_mut(&id) {
                let j = &mut e.view;
                j.state = JobState::Failed;
                j.error = Some(error);
                j.exit_code = Some(exit_code);
            }
            evict(t);
        });
    }

    /// Waits for any change (or returns at once when one happened since `seen`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Forgets the oldest finished jobs while more than [`KEEP`] are finished; unfinished ones
/// stay whatever their number (each is a deploy this server is running or waiting to run).
fn evict(t: &mut BTreeMap<u64, Entry>) {
    let done = t.values().filter(|e| finished(e.view.state)).count();
    if done <= KEEP {
        return;
    }
    let old: Vec<u64> = t.iter().filter(|(_, e)| finished(e.view.state)).map(|(id, _)| *id).take(done - KEEP).collect();
    for id in old {
        t.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_still_waiting_is_never_evicted_by_later_jobs() {
        let jobs = Jobs::starting_at(1);
        let waiting = jobs.create("deploy", "shop/dev:main".into(), Some(7)).id;
        for _ in 0..(KEEP + 50) {
            let j = jobs.create("deploy", "shop/dev:pr".into(), None);
            jobs.failed(j.id, "busy".into(), 4);
        }
        assert_eq!(jobs.get(waiting).map(|j| j.state), Some(JobState::Waiting));
        assert_eq!(jobs.owner(waiting), Some(7));
        assert_eq!(jobs.active(), 1);
        // Finished ones are bounded.
        let kept = jobs.read(BTreeMap::len);
        assert_eq!(kept, KEEP + 1);
        jobs.running(waiting, 42);
        assert_eq!(jobs.owner_of_deploy(42), Some(7));
    }

    #[test]
    fn a_retried_submission_with_the_same_key_gets_the_same_job() {
        let jobs = Jobs::starting_at(1);
        let (a, new_a) = jobs.create_once("deploy", "s".into(), Some(1), Some("k1".into()));
        let (b, new_b) = jobs.create_once("deploy", "s".into(), Some(1), Some("k1".into()));
        assert!(new_a && !new_b);
        assert_eq!(a.id, b.id);
        let (c, _) = jobs.create_once("deploy", "s".into(), Some(2), Some("k1".into()));
        assert_ne!(c.id, a.id, "another token's key is another job");
        let (d, new_d) = jobs.create_once("deploy", "s".into(), Some(1), None);
        assert!(new_d && d.id != a.id);
    }

    #[test]
    fn job_ids_of_a_later_start_never_repeat_an_earlier_one() {
        let a = first_id(1_700_000_000);
        let b = first_id(1_700_000_001);
        assert!(b > a + 1_000_000, "a million jobs of one run stay below the next run's first id");
        assert!(first_id(u64::MAX) < 1 << 53, "exact as a JSON number");
    }
}
