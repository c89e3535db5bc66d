//! The poller: for registries without webhooks. Each tag rule with `poll` set is asked for its
//! digest at that interval (a manifest HEAD through the engine, with the stage's registry
//! credentials: [`super::DigestSource`]); a digest that differs from the last one seen becomes
//! a push on the same queue as webhooks (trigger `poll`). The first answer after start is
//! offered too: the executor skips it when the slot already serves that digest.

/// The last digest one rule saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Watch {
    last: Option<String>,
}

impl Watch {
    /// Records `digest`; `true` when it differs from the last one (or is the first).
    pub fn changed(&mut self, digest: &str) -> bool {
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
