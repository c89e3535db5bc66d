//! Domain vocabulary: project and stage names, image tags, slots, deploy ids and the states a
//! deploy or an instance can be in. Pure data and validation; no I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest project or stage name we accept. Both end up in a DNS label together with the tag, so
/// they must leave room for it.
pub const MAX_NAME_LEN: usize = 24;

/// Why a project name, stage name or tag was refused. The message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A project or stage name that is not a lowercase DNS-safe word.
    #[error(
        "{kind} name `{name}` is invalid: use 1 to {max} lowercase letters, digits or `-`, starting and ending with a letter or digit",
        max = MAX_NAME_LEN
    )]
    BadName {
        /// `project` or `stage`.
        kind: &'static str,
        /// The name as given.
        name: String,
    },
    /// A tag that Docker would not accept as an image tag.
    #[error(
        "tag `{0}` is invalid: a Docker tag is 1 to 128 characters of letters, digits, `_`, `.` or `-`, and does not start with `.` or `-`"
    )]
    BadTag(String),
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Validates `name`.
            ///
            /// # Errors
            /// [`NameError::BadName`] when it is not a lowercase DNS-safe word.
            pub fn new(name: &str) -> Result<Self, NameError> {
                if is_name(name) {
                    Ok(Self(name.to_owned()))
                } else {
                    Err(NameError::BadName { kind: $kind, name: name.to_owned() })
                }
            }

            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A project name: lowercase letters, digits and `-`, at most [`MAX_NAME_LEN`] bytes.
    ProjectName,
    "project"
);
name_type!(
    /// A stage name: lowercase letters, digits and `-`, at most [`MAX_NAME_LEN`] bytes.
    StageName,
    "stage"
);

/// An image tag as Docker accepts it (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// Validates `tag`.
    ///
    /// # Errors
    /// [`NameError::BadTag`] when Docker would refuse it.
    pub fn new(tag: &str) -> Result<Self, NameError> {
        let b = tag.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok { Ok(Self(tag.to_owned())) } else { Err(NameError::BadTag(tag.to_owned())) }
    }

    /// The tag as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One place an instance can live: a tag of a project's stage. At most one live instance serves a
/// slot; a redeploy of the slot replaces it blue/green.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The project.
    pub project: ProjectName,
    /// The stage.
    pub stage: StageName,
    /// The tag.
    pub tag: Tag,
}

impl Slot {
    /// The stable text key of the slot, `project/stage/tag`, used in the state file and labels.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.project, self.stage, self.tag)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.project, self.stage, self.tag)
    }
}

/// The id of one deploy attempt, as stored in the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeployId(pub i64);

impl DeployId {
    /// As a swarm service's `ForceUpdate` value: the spec a deploy makes carries its id.
    #[must_use]
    pub fn generation(self) -> u64 {
        u64::try_from(self.0).unwrap_or(0)
    }
}

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a deploy stands. Only `Succeeded` means an instance was put into service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// In progress (or its process died: see `prune`).
    Running,
    /// Healthy and serving.
    Succeeded,
    /// Failed and rolled back; what the rollback could not remove is in the deploy's
    /// `leftovers`.
    Failed,
    /// Succeeded once, and was later replaced by `tiny-forge rollback`.
    RolledBack,
    /// Stopped by a signal or found abandoned, then rolled back.
    Interrupted,
}

impl DeployStatus {
    /// The word stored in the state file and printed by `history`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses the stored word.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "rolled_back" => Self::RolledBack,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }
}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a deploy was started; shown by `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `tiny-forge deploy`.
    Deploy,
    /// `tiny-forge rollback`.
    Rollback,
    /// `tiny-forge remove`.
    Remove,
    /// `tiny-forge prune`.
    Prune,
    /// A registry webhook, through `tiny-forge serve`.
    Webhook,
    /// `tiny-forge serve`'s poller saw a tag move.
    Poll,
}

impl Trigger {
    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Remove => "remove",
            Self::Prune => "prune",
            Self::Webhook => "webhook",
            Self::Poll => "poll",
        }
    }

    /// Parses the stored word.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "deploy" => Self::Deploy,
            "rollback" => Self::Rollback,
            "remove" => Self::Remove,
            "prune" => Self::Prune,
            "webhook" => Self::Webhook,
            "poll" => Self::Poll,
            _ => return None,
        })
    }
}

/// The lifecycle of an instance row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Being created by a running deploy; not serving yet.
    Pending,
    /// Serving its slot.
    Live,
    /// Replaced, evicted or left by an incomplete undo: its container goes next (`prune`
    /// finishes the job when a run could not).
    Retiring,
}

impl InstanceStatus {
    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Live => "live",
            Self::Retiring => "retiring",
        }
    }

    /// Parses the stored word (`leftover`, from older state files, reads as `retiring`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "live" => Self::Live,
            "retiring" | "leftover" => Self::Retiring,
            _ => return None,
        })
    }
}

/// Why an undo left something behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum LeftoverCause {
    /// The call failed; what the engine, proxy or state file said.
    Failed {
        /// The error, on one line.
        error: String,
    },
    /// Kept on purpose: a proxy host still points at it.
    InUse {
        /// The host name.
        host: String,
    },
    /// A proxy call got no answer: its change may still land, so what it touches is kept.
    Unsettled,
    /// Not attempted: a second signal stopped the rollback.
    Abandoned,
}

impl fmt::Display for LeftoverCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { error } => f.write_str(error),
            Self::InUse { host } => write!(f, "kept: proxy host {host} still points at it"),
            Self::Unsettled => f.write_str("kept: a proxy call got no answer and may still land"),
            Self::Abandoned => f.write_str("not attempted: a second signal stopped the rollback"),
        }
    }
}

/// Something an undo (rollback, retire, remove, recovery, prune) could not take away. Stored in
/// the state file's `leftovers` table, shown by `list`, and finished by the next `prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Leftover {
    /// A proxy host that could not be restored or deleted.
    Host {
        /// Its host name.
        domain: String,
        /// The slot it serves, `project/stage/tag`.
        slot: String,
        /// Why.
        cause: LeftoverCause,
    },
    /// A container that is still there.
    Container {
        /// Its name.
        name: String,
        /// Why.
        cause: LeftoverCause,
    },
    /// A slot's hook (`on_remove`) that did not succeed; `prune` runs it again.
    Hook {
        /// The slot, `project/stage/tag`.
        slot: String,
        /// `on_remove`.
        hook: String,
        /// The image it runs from (`repo@digest`).
        image: String,
        /// Why.
        cause: LeftoverCause,
        /// Its last output lines, when it ran and failed. They may hold secrets: kept in the
        /// state file and local output, never in [`Leftover`]'s `Display` (what notifications
        /// carry).
        #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
        logs: Box<[String]>,
    },
    /// Something that could not be looked at (the engine or the proxy did not answer a list or
    /// an inspect): whatever of it is there stays, and the next `prune` looks again.
    Unseen {
        /// What could not be looked at (`managed containers of shop/dev/pr-7`).
        what: String,
        /// Why.
        cause: LeftoverCause,
    },
    /// A leftover known only from a deploy's record, as the line it recorded (a result read back
    /// from the state file rather than from the run that left it).
    Recorded {
        /// The recorded line.
        text: String,
    },
    /// An instance row that could not be deleted.
    Row {
        /// Its id.
        row: i64,
        /// Its container.
        container: String,
        /// Why.
        cause: LeftoverCause,
    },
}

impl Leftover {
    /// [`Display`](fmt::Display), then a failed hook's last output lines: for the local history
    /// only (they may hold secrets).
    #[must_use]
    pub fn with_logs(&self) -> String {
        match self {
            Self::Hook { logs, .. } if !logs.is_empty() => {
                let tail: String = logs.iter().flat_map(|l| [" | ", l.as_str()]).collect();
                format!("{self}; last lines:{tail}")
            }
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host { domain, slot, cause } => write!(f, "proxy host {domain} (slot {slot}): {cause}"),
            Self::Container { name, cause } => write!(f, "container {name}: {cause}"),
            Self::Hook { slot, hook, cause, .. } => write!(f, "{hook} hook of {slot}: {cause}"),
            Self::Row { row, container, cause } => write!(f, "instance row {row} ({container}): {cause}"),
            Self::Unseen { what, cause } => write!(f, "{what}: kept, could not look: {cause}"),
            Self::Recorded { text } => f.write_str(text),
        }
    }
}

/// How an instance is addressed on its network: by its name (resolved by the engine's DNS, for
/// a proxy or a tiny-forge that shares the network) or by its IP address (reachable from the
/// host). Both what a proxy forwards to (`proxy.forward`) and how the health check reaches an
/// instance (`settings.probe_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Address {
    /// Its name (the container's or the service's).
    Name,
    /// Its IP address on the network.
    Ip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_must_be_lowercase_dns_words() {
        assert!(ProjectName::new("shop").is_ok());
        assert!(ProjectName::new("shop-2").is_ok());
        for bad in ["", "Shop", "-shop", "shop-", "sh_op", "shop.x", "a".repeat(25).as_str()] {
            assert!(ProjectName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tags_follow_docker_grammar() {
        for ok in ["latest", "v1.2.3", "feature_x", "A-B", &"a".repeat(128)] {
            assert!(Tag::new(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"a".repeat(129)] {
            assert!(Tag::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bad_name_message_says_what_is_allowed() {
        let e = StageName::new("QA").unwrap_err().to_string();
        assert!(e.contains("stage name `QA` is invalid"), "{e}");
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_words() {
        for s in [
            DeployStatus::Running,
            DeployStatus::Succeeded,
            DeployStatus::Failed,
            DeployStatus::RolledBack,
            DeployStatus::Interrupted,
        ] {
            assert_eq!(DeployStatus::parse(s.as_str()), Some(s));
        }
    }
}
