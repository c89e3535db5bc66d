//! The push queue: the one place that knows time (debounce, dedupe windows), so that its tests
//! run on tokio's paused clock.
//!
//! - **Dedupe.** A delivery id is accepted once per [`DELIVERY_TTL`]; a (slot, digest) deployed
//!   within [`RECENT_TTL`] is not queued again.
//! - **Debounce.** A push waits `debounce` for later pushes of the same slot; each later one
//!   restarts the wait (one multi-arch push sends several notifications).
//! - **Coalescing.** Per slot, only the newest pending push is kept; while a slot's deploy runs,
//!   its next push waits for it to end.
//! - **Approval.** A push whose rule asks for approval is held until [`Queue::approve`].
//!
//! Per-stage serialisation is not the queue's business: the executor takes the same lock file
//! the CLI takes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{Slot, Tag, Trigger};

/// How long a delivery id is remembered.
pub const DELIVERY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a deployed (slot, digest) is not deployed again by a push.
pub const RECENT_TTL: Duration = Duration::from_secs(3600);

/// A deploy a push asks for, after the tag rules chose its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where it deploys.
    pub slot: Slot,
    /// The repository, as the config names it (never the payload's spelling).
    pub image: String,
    /// The tag that was pushed.
    pub tag: Tag,
    /// The digest the payload gave, if any (else the executor resolves the tag).
    pub digest: Option<String>,
    /// `webhook:RECEIVER:DELIVERY` or `poll:IMAGE`.
    pub actor: String,
    /// Webhook or poll.
    pub trigger: Trigger,
    /// Held until approved.
    pub approval: bool,
}

/// What [`Queue::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A new pending deploy for its slot.
    Queued,
    /// Replaced the slot's pending deploy (and restarted its debounce).
    Coalesced,
    /// Already pending, or deployed recently: dropped.
    Duplicate,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    candidate: Candidate,
    due: Instant,
    held: bool,
}

/// A held push, for `GET /v1/approvals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its id, for `POST /v1/approvals/{id}`.
    pub id: u64,
    /// What it would deploy.
    pub candidate: Candidate,
}

/// The queue.
#[derive(Debug)]
pub struct Queue {
    debounce: Duration,
    next_id: u64,
    pending: HashMap<Slot, Pending>,
    running: HashSet<Slot>,
    deliveries: HashMap<String, Instant>,
    recent: HashMap<(Slot, String), Instant>,
}

impl Queue {
    /// A queue that waits `debounce` after the last push of a slot.
    #[must_use]
    pub fn new(debounce: Duration) -> Self {
        Self {
            debounce,
            next_id: 1,
            pending: HashMap::new(),
            running: HashSet::new(),
            deliveries: HashMap::new(),
            recent: HashMap::new(),
        }
    }

    /// `true` the first time `key` (receiver and delivery id) is seen within [`DELIVERY_TTL`].
    pub fn first_delivery(&mut self, key: &str, now: Instant) -> bool {
        self.deliveries.retain(|_, t| now.duration_since(*t) < DELIVERY_TTL);
        if self.deliveries.contains_key(key) {
            return false;
        }
        self.deliveries.insert(key.to_owned(), now);
        true
    }

    /// Offers a push.
    pub fn offer(&mut self, c: Candidate, now: Instant) -> Offer {
        self.recent.retain(|_, t| now.duration_since(*t) < RECENT_TTL);
        if let Some(d) = &c.digest
            && self.recent.contains_key(&(c.slot.clone(), d.clone()))
        {
            return Offer::Duplicate;
        }
        let due = now + self.debounce;
        if let Some(p) = self.pending.get_mut(&c.slot) {
            if p.candidate.digest.is_some() && p.candidate.digest == c.digest && p.candidate.tag == c.tag {
                return Offer::Duplicate;
            }
            p.held = c.approval;
            p.candidate = c;
            p.due = due;
            return Offer::Coalesced;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(c.slot.clone(), Pending { id, held: c.approval, candidate: c, due });
        Offer::Queued
    }

    /// When the next pending push becomes ready (`None`: nothing can become ready by time).
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().filter(|p| !p.held && !self.running.contains(&p.candidate.slot)).map(|p| p.due).min()
    }

    /// The pushes due now whose slot is free; their slots count as running until
    /// [`Queue::done`].
    pub fn take_ready(&mut self, now: Instant) -> Vec<Candidate> {
        let ready: Vec<Slot> = self
            .pending
            .iter()
            .filter(|(slot, p)| !p.held && p.due <= now && !self.running.contains(*slot))
            .map(|(slot, _)| slot.clone())
            .collect();
        let mut out = Vec::new();
        for slot in ready {
            if let Some(p) = self.pending.remove(&slot) {
                self.running.insert(slot);
                out.push(p.candidate);
            }
        }
        out
    }

    /// The deploy of `slot` ended; it deployed `digest` (if it did).
    pub fn done(&mut self, slot: &Slot, digest: Option<String>, now: Instant) {
        self.running.remove(slot);
        if let Some(d) = digest {
            self.recent.insert((slot.clone(), d), now);
        }
    }

    /// Releases the held push `id`; `false` when there is none.
    pub fn approve(&mut self, id: u64, now: Instant) -> bool {
        match self.pending.values_mut().find(|p| p.id == id && p.held) {
            Some(p) => {
                p.held = false;
                p.due = now;
                true
            }
            None => false,
        }
    }

    /// Pushes held for approval.
    #[must_use]
    pub fn held(&self) -> Vec<Held> {
        let mut v: Vec<Held> = self
            .pending
            .values()
            .filter(|p| p.held)
            .map(|p| Held { id: p.id, candidate: p.candidate.clone() })
            .collect();
        v.sort_by_key(|h| h.id);
        v
    }

    /// Pushes waiting (debounce, their slot's running deploy, approval).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProjectName, StageName};

    fn cand(tag: &str, digest: Option<&str>) -> Candidate {
        Candidate {
            slot: Slot {
                project: ProjectName::new("shop").unwrap(),
                stage: StageName::new("dev").unwrap(),
                tag: Tag::new(tag).unwrap(),
            },
            image: "registry.example.com/team/app".into(),
            tag: Tag::new(tag).unwrap(),
            digest: digest.map(str::to_owned),
            actor: "webhook:r:1".into(),
            trigger: Trigger::Webhook,
            approval: false,
        }
    }

    const D: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn six_notifications_of_one_push_give_one_deploy_after_the_debounce() {
        let mut q = Queue::new(D);
        assert_eq!(q.offer(cand("main", None), Instant::now()), Offer::Queued);
        for _ in 0..5 {
            tokio::time::advance(Duration::from_millis(300)).await;
            assert_eq!(q.offer(cand("main", None), Instant::now()), Offer::Coalesced);
        }
        assert!(q.take_ready(Instant::now()).is_empty(), "still inside the debounce");
        tokio::time::advance(D).await;
        let ready = q.take_ready(Instant::now());
        assert_eq!(ready.len(), 1);
        assert!(q.take_ready(Instant::now()).is_empty());
        assert_eq!(q.depth(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_newest_digest_of_a_slot_runs_and_waits_for_the_running_deploy() {
        let mut q = Queue::new(D);
        q.offer(cand("main", Some("sha256:a")), Instant::now());
        tokio::time::advance(D).await;
        let first = q.take_ready(Instant::now());
        assert_eq!(first[0].digest.as_deref(), Some("sha256:a"));
        // While `a` deploys, `b` then `c` arrive: only `c` is kept, and it waits for `a`.
        q.offer(cand("main", Some("sha256:b")), Instant::now());
        assert_eq!(q.offer(cand("main", Some("sha256:c")), Instant::now()), Offer::Coalesced);
        tokio::time::advance(D * 3).await;
        assert!(q.take_ready(Instant::now()).is_empty(), "the slot's deploy still runs");
        assert_eq!(q.next_due(), None, "nothing becomes ready by time alone");
        q.done(&first[0].slot, Some("sha256:a".into()), Instant::now());
        let next = q.take_ready(Instant::now());
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].digest.as_deref(), Some("sha256:c"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_digest_just_deployed_or_already_pending_is_a_duplicate() {
        let mut q = Queue::new(D);
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Queued);
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Duplicate);
        tokio::time::advance(D).await;
        let r = q.take_ready(Instant::now());
        q.done(&r[0].slot, Some("sha256:a".into()), Instant::now());
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Duplicate);
        tokio::time::advance(RECENT_TTL).await;
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Queued);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_independent() {
        let mut q = Queue::new(D);
        q.offer(cand("main", Some("sha256:a")), Instant::now());
        q.offer(cand("pr-1", Some("sha256:b")), Instant::now());
        tokio::time::advance(D).await;
        assert_eq!(q.take_ready(Instant::now()).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_id_is_accepted_once() {
        let mut q = Queue::new(D);
        assert!(q.first_delivery("r:1", Instant::now()));
        assert!(!q.first_delivery("r:1", Instant::now()));
        assert!(q.first_delivery("r:2", Instant::now()));
        tokio::time::advance(DELIVERY_TTL).await;
        assert!(q.first_delivery("r:1", Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_push_that_needs_approval_waits_for_it() {
        let mut q = Queue::new(D);
        q.offer(Candidate { approval: true, ..cand("v1.0", Some("sha256:a")) }, Instant::now());
        tokio::time::advance(D * 10).await;
        assert!(q.take_ready(Instant::now()).is_empty());
        let held = q.held();
        assert_eq!(held.len(), 1);
        assert!(!q.approve(held[0].id + 1, Instant::now()));
        assert!(q.approve(held[0].id, Instant::now()));
        assert_eq!(q.take_ready(Instant::now()).len(), 1);
    }
}
