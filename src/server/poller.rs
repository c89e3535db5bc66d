//! The poller: for registries without webhooks. Each tag rule with `poll` set is asked for its
//! digest at that interval (a manifest HEAD through the engine, with the stage's registry
//! credentials: [`crate::deploy::digest_now`]); a digest that differs from the last one seen becomes
//! a push on the same queue as webhooks (trigger `poll`). The first answer after start is
//! offered too: the deploy finds nothing to do when the slot already runs that digest.
//!
//! The loops are the rules of the config at start-up; each stops when the config file no
//! longer has its rule (a new `poll` rule needs a restart). Approval follows every rule of the
//! file as it is now that sends the tag to that slot.

use std::rc::Rc;

use tokio::time::Instant;

use super::executor::Executor;
use super::queue::Candidate;
use crate::domain::{Tag, Trigger};
use crate::engine::ContainerRuntime;
use crate::health::Probe;
use crate::proxy::Proxy;
use crate::store::Store;

impl<R, P, S, Pr> Executor<R, P, S, Pr>
where
    R: ContainerRuntime + 'static,
    P: Proxy + 'static,
    S: Store + 'static,
    Pr: Probe + 'static,
{
    /// Starts one poll loop per tag rule with `poll` set (they stop with the thread's
    /// `LocalSet`).
    pub fn start_pollers(self: &Rc<Self>) {
        let loaded = self.live.current();
        for rule in loaded.config.push_rules().iter().filter(|r| r.poll.is_some() && r.tags.is_exact()) {
            let me = Rc::clone(self);
            let rule = rule.clone();
            tokio::task::spawn_local(async move { me.poll(rule).await });
        }
    }

    async fn poll(&self, rule: crate::config::PushRule) {
        let Some(every) = rule.poll else { return };
        let Ok(tag) = Tag::new(rule.tags.as_str()) else { return };
        let mut watch = Watch::default();
        let image = format!("{}:{tag}", rule.image);
        loop {
            let loaded = self.live.refresh();
            let rules = loaded.config.push_rules();
            let still = rules
                .iter()
                .any(|r| r.project == rule.project && r.stage == rule.stage && r.tags == rule.tags && r.poll.is_some());
            if !still {
                self.shared
                    .log(&format!("poll {image}: no longer in the config ({}/{}): stopped", rule.project, rule.stage));
                return;
            }
            if let Ok(stage) = self.resolve(&rule.project, &rule.stage)
                && let Ok(digest) = crate::deploy::digest_now(&self.backend.runtime, &stage, &image).await
                && !digest.is_empty()
                && watch.changed(&digest)
            {
                let slot = crate::domain::Slot {
                    project: rule.project.clone(),
                    stage: rule.stage.clone(),
                    tag: rule.slot_tag(&tag),
                };
                let approval = super::receivers::needs_approval(rules, &slot, &tag);
                let candidate = Candidate {
                    slot,
                    image: rule.image.clone(),
                    tag: tag.clone(),
                    digest: Some(digest),
                    actor: format!("poll:{image}"),
                    trigger: Trigger::Poll,
                    approval,
                };
                let mut q = self.queue.borrow_mut();
                q.offer(candidate, Instant::now());
                self.shared.metrics.set_queue_depth(q.depth());
                drop(q);
                self.wake.notify_one();
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The last digest one rule saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    last: Option<String>,
}

impl Watch {
    /// Records `digest`; `true` when it differs from the last one (or is the first).
    pub(crate) fn changed(&mut self, digest: &str) -> bool {
        if self.last.as_deref() == Some(digest) {
            return false;
        }
        self.last = Some(digest.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_moved_tag_counts() {
        let mut w = Watch::default();
        assert!(w.changed("sha256:a"), "the first answer");
        assert!(!w.changed("sha256:a"));
        assert!(w.changed("sha256:b"));
        assert!(!w.changed("sha256:b"));
    }
}
