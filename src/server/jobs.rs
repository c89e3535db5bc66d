//! Jobs: what the API accepted and where each stands (`GET /v1/jobs/{id}`). Shared between the
//! HTTP handlers and the executor; every change bumps a generation counter that long polls and
//! event streams wait on. Only the newest [`KEEP`] jobs are kept.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::watch;

use super::wire::{JobState, JobView, Stamped};

/// How many finished jobs are remembered.
pub const KEEP: usize = 1000;

/// The job table.
#[derive(Debug)]
pub struct Jobs {
    next: AtomicU64,
    table: Mutex<BTreeMap<u64, JobView>>,
    changed: watch::Sender<u64>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self { next: AtomicU64::new(1), table: Mutex::new(BTreeMap::new()), changed: watch::channel(0).0 }
    }
}

impl Jobs {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<u64, JobView>) -> T) -> T {
        let mut t = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = f(&mut t);
        drop(t);
        self.changed.send_modify(|g| *g += 1);
        out
    }

    /// A new job, `waiting`.
    pub fn create(&self, kind: &str, slot: String) -> JobView {
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
            t.insert(id, view.clone());
            while t.len() > KEEP {
                t.pop_first();
            }
        });
        view
    }

    /// One job.
    pub fn get(&self, id: u64) -> Option<JobView> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned()
    }

    /// The job that ran deploy `deploy_id`, if this server ran it.
    pub fn by_deploy(&self, deploy_id: i64) -> Option<JobView> {
        let t = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.values().rev().find(|j| j.deploy_id == Some(deploy_id)).cloned()
    }

    /// Jobs not finished yet.
    pub fn active(&self) -> usize {
        let t = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.values().filter(|j| matches!(j.state, JobState::Waiting | JobState::Running)).count()
    }

    /// An event sent before the deploy had an id.
    pub fn early(&self, id: u64, ev: Stamped) {
        self.with(|t| {
            if let Some(j) = t.get_mut(&id) {
                j.early.push(ev);
            }
        });
    }

    /// The deploy got its id.
    pub fn running(&self, id: u64, deploy_id: i64) {
        self.with(|t| {
            if let Some(j) = t.get_mut(&id) {
                j.deploy_id = Some(deploy_id);
                j.state = JobState::Running;
            }
        });
    }

    /// It ended with `result`.
    pub fn done(&self, id: u64, deploy_id: Option<i64>, exit_code: u8, result: Value) {
        self.with(|t| {
            if let Some(j) = t.get_mut(&id) {
                j.deploy_id = deploy_id.or(j.deploy_id);
                j.state = JobState::Done;
                j.exit_code = Some(exit_code);
                j.result = Some(result);
            }
        });
    }

    /// It never began.
    pub fn failed(&self, id: u64, error: String, exit_code: u8) {
        self.with(|t| {
            if let Some(j) = t.get_mut(&id) {
                j.state = JobState::Failed;
                j.error = Some(error);
                j.exit_code = Some(exit_code);
            }
        });
    }

    /// Waits for any change (or returns at once when one happened since `seen`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
