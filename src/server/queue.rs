//! The push queue: the one place that knows time (debounce, dedupe windows), so that its tests
//! run on tokio's paused clock.
//!
//! - **Dedupe.** A digest already pending for its slot is not queued again. (Replayed bodies
//!   are dropped before they get here, by the state file's delivery table; whether a slot
//!   already runs a digest is the deploy's own decision, made under the stage's lock.)
//! - **Debounce.** A push waits `debounce` for later pushes of the same slot; each later one
//!   restarts the wait (one multi-arch push sends several notifications).
//! - **Coalescing.** Per slot, only the newest pending push is kept; while a slot's deploy runs,
//!   its next push waits for it to end.
//! - **Approval.** A push whose rule asks for approval is held until [`Queue::approve`], which
//!   names the held push's id *and* its digest. A later push that replaces a held one gets a
//!   new id, so an approval given for one digest can never release another.
//!
//! Per-stage serialisation is not the queue's business: the executor takes the same lock file
//! the CLI takes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{Slot, Tag, Trigger};

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
pub(crate) enum Offer {
    /// A new pending deploy for its slot.
    Queued,
    /// Replaced the slot's pending deploy (and restarted its debounce).
    Coalesced,
    /// Already pending: dropped.
    Duplicate,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    candidate: Candidate,
    due: Instant,
    held: bool,
}

/// The digest an approval names for a held push whose payload gave none (it is resolved when
/// it deploys, and must still be the tag's digest then).
pub(crate) const UNRESOLVED: &str = "unresolved";

/// A held push, for `GET /v1/approvals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its id, for `POST /v1/approvals/{id}`.
    pub id: u64,
    /// What it would deploy.
    pub candidate: Candidate,
}

/// Why [`Queue::approve`] released nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// No push with this id waits for approval (it was approved, replaced, or never was).
    #[error("no push {0} waits for approval")]
    NotHeld(u64),
    /// The held push is another digest than the one approved.
    #[error("push {id} is {held}, not {approved}; look at GET /v1/approvals again")]
    OtherDigest {
        /// The held push.
        id: u64,
        /// Its digest (`(resolved at deploy)` when the payload gave none).
        held: String,
        /// The digest the approver named.
        approved: String,
    },
}

/// The queue.
#[derive(Debug)]
pub(crate) struct Queue {
    debounce: Duration,
    next_id: u64,
    pending: HashMap<Slot, Pending>,
    running: HashSet<Slot>,
}

impl Queue {
    /// A queue that waits `debounce` after the last push of a slot.
    #[must_use]
    pub(crate) fn new(debounce: Duration) -> Self {
        Self { debounce, next_id: 1, pending: HashMap::new(), running: HashSet::new() }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Offers a push.
    pub(crate) fn offer(&mut self, c: Candidate, now: Instant) -> Offer {
        let due = now + self.debounce;
        if let Some(p) = self.pending.get(&c.slot)
            && p.candidate.digest.is_some()
            && p.candidate.digest == c.digest
            && p.candidate.tag == c.tag
        {
            return Offer::Duplicate;
        }
        // A replaced push is another push: a new id, so that an approval of the old one
        // cannot release it.
        let id = self.next_id();
        let slot = c.slot.clone();
        let replaced = self.pending.insert(slot, Pending { id, held: c.approval, candidate: c, due }).is_some();
        if replaced { Offer::Coalesced } else { Offer::Queued }
    }

    /// When the next pending push becomes ready (`None`: nothing can become ready by time).
    #[must_use]
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending.values().filter(|p| !p.held && !self.running.contains(&p.candidate.slot)).map(|p| p.due).min()
    }

    /// The pushes due now whose slot is free; their slots count as running until
    /// [`Queue::done`].
    pub(crate) fn take_ready(&mut self, now: Instant) -> Vec<Candidate> {
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

    /// The deploy of `slot` ended.
    pub(crate) fn done(&mut self, slot: &Slot) {
        self.running.remove(slot);
    }

    /// Releases the held push `id`, which must be of `digest` (what the approver saw);
    /// `approver` goes into its actor, so that history says who let it through.
    ///
    /// # Errors
    /// [`ApproveError`] when no such push is held, or it is another digest.
    pub(crate) fn approve(
        &mut self,
        id: u64,
        digest: &str,
        approver: &str,
        now: Instant,
    ) -> Result<Slot, ApproveError> {
        let p = self.pending.values_mut().find(|p| p.id == id && p.held).ok_or(ApproveError::NotHeld(id))?;
        let held = p.candidate.digest.clone().unwrap_or_else(|| UNRESOLVED.to_owned());
        if held != digest {
            return Err(ApproveError::OtherDigest { id, held, approved: digest.to_owned() });
        }
        p.held = false;
        p.due = now;
        p.candidate.actor = format!("{} approved by {approver}", p.candidate.actor);
        Ok(p.candidate.slot.clone())
    }

    /// Pushes held for approval.
    #[must_use]
    pub(crate) fn held(&self) -> Vec<Held> {
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
    pub(crate) fn depth(&self) -> usize {
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
        q.done(&first[0].slot);
        let next = q.take_ready(Instant::now());
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].digest.as_deref(), Some("sha256:c"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_digest_already_pending_is_a_duplicate_and_a_deployed_one_may_come_again() {
        let mut q = Queue::new(D);
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Queued);
        assert_eq!(q.offer(cand("main", Some("sha256:a")), Instant::now()), Offer::Duplicate);
        tokio::time::advance(D).await;
        let r = q.take_ready(Instant::now());
        q.done(&r[0].slot);
        // A re-push of what was just deployed (its container may have died since): the deploy
        // decides whether there is anything to do.
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
    async fn a_push_that_needs_approval_waits_for_it() {
        let mut q = Queue::new(D);
        q.offer(Candidate { approval: true, ..cand("v1.0", Some("sha256:a")) }, Instant::now());
        tokio::time::advance(D * 10).await;
        assert!(q.take_ready(Instant::now()).is_empty());
        let held = q.held();
        assert_eq!(held.len(), 1);
        let id = held[0].id;
        assert_eq!(q.approve(id + 1, "sha256:a", "token:rel", Instant::now()), Err(ApproveError::NotHeld(id + 1)));
        assert!(matches!(
            q.approve(id, "sha256:b", "token:rel", Instant::now()),
            Err(ApproveError::OtherDigest { .. })
        ));
        assert!(q.approve(id, "sha256:a", "token:rel", Instant::now()).is_ok());
        let ready = q.take_ready(Instant::now());
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].actor, "webhook:r:1 approved by token:rel", "history names the approver");
    }

    #[tokio::test(start_paused = true)]
    async fn an_approval_of_one_digest_never_releases_the_push_that_replaced_it() {
        let mut q = Queue::new(D);
        q.offer(Candidate { approval: true, ..cand("v1.0", Some("sha256:a")) }, Instant::now());
        let first = q.held()[0].id;
        // A later push of the slot replaces the held one: another id, held again.
        q.offer(Candidate { approval: true, ..cand("v1.0", Some("sha256:b")) }, Instant::now());
        let held = q.held();
        assert_eq!(held.len(), 1);
        assert_ne!(held[0].id, first);
        assert_eq!(q.approve(first, "sha256:a", "token:rel", Instant::now()), Err(ApproveError::NotHeld(first)));
        assert!(q.approve(first, "sha256:b", "token:rel", Instant::now()).is_err());
        tokio::time::advance(D * 10).await;
        assert!(q.take_ready(Instant::now()).is_empty(), "still held");
        assert!(q.approve(held[0].id, "sha256:b", "token:rel", Instant::now()).is_ok());
        assert_eq!(q.take_ready(Instant::now())[0].digest.as_deref(), Some("sha256:b"));
    }
}
