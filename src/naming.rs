//! Naming: how a slot becomes a DNS label, a host name and a container name (DESIGN §3).
//!
//! A tag that already is a canonical DNS label (lowercase letters, digits and single dashes, no
//! dash at either end, short enough) is used as it is. Any other tag is folded into that alphabet
//! and gets `--` and a short stable hash of the *whole* tag appended. Canonical labels never hold
//! `--`, so the two families cannot meet, and two distinct tags never share a label (barring a
//! 40-bit hash collision). `feature/Login` becomes `feature-login--1a2b3c4d5e`.

use sha2::{Digest as _, Sha256};

use crate::domain::{DeployId, Slot};

/// The longest DNS label (RFC 1035).
pub const MAX_LABEL: usize = 63;
/// The longest host name (RFC 1035), without the trailing dot.
pub const MAX_HOST: usize = 253;
/// Hex digits of the hash suffix.
const HASH_LEN: usize = 10;

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut hex = format!("{digest:x}");
    hex.truncate(HASH_LEN);
    hex
}

/// Lowercases, turns every byte outside `[a-z0-9-]` into `-`, folds runs of `-` and trims them
/// from both ends.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Is `s` a canonical label of at most `max` bytes (the identity family)?
fn is_canonical(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && fold(s) == s && !s.contains("--")
}

/// Turns any string into a DNS label of at most `max` bytes (`max` ≥ 16), injectively as the module
/// doc explains.
#[must_use]
pub fn dns_label(tag: &str, max: usize) -> String {
    let max = max.clamp(HASH_LEN + 6, MAX_LABEL);
    if is_canonical(tag, max) {
        return tag.to_owned();
    }
    let hash = short_hash(tag);
    let mut prefix = fold(tag);
    prefix.truncate(max - HASH_LEN - 2);
    while prefix.ends_with('-') {
        prefix.pop();
    }
    if prefix.is_empty() {
        prefix.push('x');
    }
    format!("{prefix}--{hash}")
}

/// Why a subdomain pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A required placeholder is missing.
    #[error("must contain `{0}`")]
    Missing(&'static str),
    /// An unknown `{…}` placeholder.
    #[error("has an unknown placeholder `{0}`; use {{project}}, {{stage}} or {{tag}}")]
    Unknown(String),
    /// A character that cannot appear in a host name.
    #[error("may only hold lowercase letters, digits, `-`, `.` and placeholders")]
    BadChar,
    /// The fixed part leaves too little room for the tag in its label.
    #[error("leaves only {0} bytes for the tag in its DNS label; shorten the pattern or the names")]
    NoRoom(usize),
}

/// A subdomain pattern such as `stage-{stage}-{project}-{tag}`, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubdomainPattern(String);

impl SubdomainPattern {
    /// Checks the pattern's placeholders and characters. `needs_tag` is true for the tag pattern.
    ///
    /// # Errors
    /// A [`PatternError`] naming what is wrong.
    pub fn parse(pattern: &str, needs_tag: bool) -> Result<Self, PatternError> {
        let mut rest = pattern;
        let mut literal = String::new();
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let close = rest[open..].find('}').ok_or(PatternError::BadChar)? + open;
            let name = &rest[open + 1..close];
            if !matches!(name, "project" | "stage" | "tag") {
                return Err(PatternError::Unknown(name.to_owned()));
            }
            rest = &rest[close + 1..];
        }
        literal.push_str(rest);
        if !literal.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.') {
            return Err(PatternError::BadChar);
        }
        for p in ["{project}", "{stage}"] {
            if !pattern.contains(p) {
                return Err(PatternError::Missing(p));
            }
        }
        if needs_tag && !pattern.contains("{tag}") {
            return Err(PatternError::Missing("{tag}"));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Renders the pattern for a slot. The tag's label is fitted into what its DNS label leaves.
    ///
    /// # Errors
    /// [`PatternError::NoRoom`] when the fixed part of the tag's label is too long.
    pub fn render(&self, project: &str, stage: &str, tag: &str) -> Result<String, PatternError> {
        let fixed = self.0.replace("{project}", project).replace("{stage}", stage);
        let Some(label) = fixed.split('.').find(|l| l.contains("{tag}")) else {
            return Ok(fixed);
        };
        let used = label.len() - "{tag}".len() * label.matches("{tag}").count();
        let room = MAX_LABEL.saturating_sub(used);
        if room < HASH_LEN + 6 {
            return Err(PatternError::NoRoom(room));
        }
        Ok(fixed.replace("{tag}", &dns_label(tag, room)))
    }
}

/// The full host name of a slot: its rendered subdomain under `domain`.
#[must_use]
pub fn host_name(subdomain: &str, domain: &str) -> String {
    if domain.is_empty() { subdomain.to_owned() } else { format!("{subdomain}.{domain}") }
}

/// Can `{project}-{stage}-…` be read back into its slot? Not when the project or the stage holds
/// a `-`: (`a-b`, `c`) and (`a`, `b-c`) would join alike.
fn ambiguous(project: &str, stage: &str) -> bool {
    project.contains('-') || stage.contains('-')
}

/// `{prefix}{project}-{stage}-{rest}` as one DNS label of at most `max` bytes, distinct for every
/// (project, stage, rest): joined plainly when that is unambiguous and fits, else hashed over
/// the `/`-joined key (which no two slots share).
fn slot_label(prefix: &str, project: &str, stage: &str, rest: &str, max: usize) -> String {
    if ambiguous(project, stage) {
        dns_label(&format!("{prefix}{project}/{stage}/{rest}"), max)
    } else {
        dns_label(&format!("{prefix}{project}-{stage}-{rest}"), max)
    }
}

/// The container name of a deploy: `tf-{project}-{stage}-{tag label}-{deploy id}`, one DNS label
/// (it is resolved as a host name where a proxy or probe forwards by name), distinct per slot
/// and deploy. Deterministic, so a crash between "create" and "recorded" can still be found and
/// undone.
#[must_use]
pub fn container_name(slot: &Slot, id: DeployId) -> String {
    let suffix = format!("-{id}");
    let tag = dns_label(slot.tag.as_str(), 40);
    let plain = format!("tf-{}-{}-{tag}{suffix}", slot.project, slot.stage);
    if !ambiguous(slot.project.as_str(), slot.stage.as_str()) && plain.len() <= MAX_LABEL {
        return plain;
    }
    let room = MAX_LABEL.saturating_sub(suffix.len());
    format!("{}{suffix}", slot_label("tf-", slot.project.as_str(), slot.stage.as_str(), &tag, room))
}

/// The Swarm service of a slot (one per slot, updated in place by each deploy): a DNS label,
/// since the service name is what the overlay network resolves. `tfs-`, so that no container
/// name (`tf-…`, one-offs included) can ever be a service's name.
#[must_use]
pub fn service_name(slot: &Slot) -> String {
    let tag = dns_label(slot.tag.as_str(), 40);
    slot_label("tfs-", slot.project.as_str(), slot.stage.as_str(), &tag, MAX_LABEL)
}

/// A one-off container of deploy `id` (`release`, `on_create`, `on_remove`): the deploy's
/// container name and the role. Per deploy on both engines, so that a one-off a crashed run left
/// never takes the name of the next run's.
#[must_use]
pub fn one_off_name(slot: &Slot, id: DeployId, role: &str) -> String {
    format!("{}-{}", container_name(slot, id), role.replace('_', "-"))
}

/// A slot's name for the app (`TF_SLOT`, `{slot}`): `project-stage-tag` folded like a DNS label,
/// fit for a database name, and distinct for every slot (also when names hold dashes).
#[must_use]
pub fn slot_name(project: &str, stage: &str, tag: &str) -> String {
    slot_label("", project, stage, tag, MAX_LABEL)
}

/// Is `s` a valid host name (labels of 1 to 63 bytes of `[a-z0-9-]`, no dash at either end,
/// at most 253 bytes)?
#[must_use]
pub fn is_valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_tags_are_kept_as_they_are() {
        assert_eq!(dns_label("latest", 63), "latest");
        assert_eq!(dns_label("feature-login", 63), "feature-login");
        assert_eq!(dns_label("abc123", 63), "abc123");
    }

    #[test]
    fn other_tags_are_folded_and_get_a_hash_suffix() {
        let l = dns_label("v1.2.3", 63);
        assert!(l.starts_with("v1-2-3--"), "{l}");
        let l = dns_label("Feature/Login", 63);
        assert!(l.starts_with("feature-login--"), "{l}");
        assert_eq!(l.len(), "feature-login--".len() + HASH_LEN);
    }

    #[test]
    fn tags_that_fold_alike_stay_distinct() {
        assert_ne!(dns_label("feature.x", 63), dns_label("feature-x", 63));
        assert_ne!(dns_label("feature.x", 63), dns_label("Feature.X", 63));
        assert_ne!(dns_label("a--b", 63), dns_label("a-b", 63));
    }

    #[test]
    fn tag_longer_than_63_bytes_keeps_a_stable_hash_suffix() {
        let long = "a".repeat(128);
        let l = dns_label(&long, 63);
        assert_eq!(l.len(), 63);
        assert_eq!(l, dns_label(&long, 63), "stable");
        let other = format!("{}b", "a".repeat(127));
        assert_ne!(l, dns_label(&other, 63));
    }

    #[test]
    fn tags_of_only_dots_or_dashes_still_give_a_label() {
        for t in ["...", "---", "_", "..-..", "é"] {
            let l = dns_label(t, 63);
            assert!(is_valid_host(&l), "{t:?} -> {l:?}");
        }
    }

    #[test]
    fn pattern_without_project_or_stage_is_refused() {
        assert_eq!(SubdomainPattern::parse("stage-{stage}", false), Err(PatternError::Missing("{project}")));
        assert_eq!(SubdomainPattern::parse("{project}-{stage}", true), Err(PatternError::Missing("{tag}")));
        assert!(matches!(SubdomainPattern::parse("{project}-{stage}-{branch}", false), Err(PatternError::Unknown(_))));
        assert_eq!(SubdomainPattern::parse("{project}_{stage}", false), Err(PatternError::BadChar));
    }

    #[test]
    fn tag_pattern_renders_within_one_label() {
        let p = SubdomainPattern::parse("stage-{stage}-{project}-{tag}", true).unwrap();
        assert_eq!(p.render("shop", "dev", "pr-12").unwrap(), "stage-dev-shop-pr-12");
        let long = p.render("shop", "dev", &"x".repeat(128)).unwrap();
        assert_eq!(long.len(), 63);
        assert!(is_valid_host(&long));
    }

    #[test]
    fn container_names_hold_slot_and_deploy_id() {
        let slot = Slot {
            project: crate::domain::ProjectName::new("shop").unwrap(),
            stage: crate::domain::StageName::new("dev").unwrap(),
            tag: crate::domain::Tag::new("pr-7").unwrap(),
        };
        assert_eq!(container_name(&slot, DeployId(42)), "tf-shop-dev-pr-7-42");
    }

    fn slot(project: &str, stage: &str, tag: &str) -> Slot {
        Slot {
            project: crate::domain::ProjectName::new(project).unwrap(),
            stage: crate::domain::StageName::new(stage).unwrap(),
            tag: crate::domain::Tag::new(tag).unwrap(),
        }
    }

    /// Review F4: the reviewer's example was 66 bytes.
    #[test]
    fn a_long_container_name_still_fits_one_dns_label() {
        let s = slot("customer-portal", "dev", "feature-jira-1234-add-payment-provider-x");
        let name = container_name(&s, DeployId(17));
        assert!(name.len() <= MAX_LABEL && is_valid_host(&name), "{name} ({} bytes)", name.len());
        assert!(name.ends_with("-17"), "{name}");
        let big = container_name(&s, DeployId(i64::MAX));
        assert!(big.len() <= MAX_LABEL && is_valid_host(&big), "{big}");
    }

    /// Review F17 and F7: a dash in a project or stage name cannot make two slots one.
    #[test]
    fn slots_that_join_alike_across_a_dash_get_distinct_names() {
        let (a, b) = (slot("a-b", "c", "t"), slot("a", "b-c", "t"));
        assert_ne!(service_name(&a), service_name(&b));
        assert_ne!(container_name(&a, DeployId(1)), container_name(&b, DeployId(1)));
        assert_ne!(slot_name("shop", "staging", "eu-feature"), slot_name("shop", "staging-eu", "feature"));
    }

    #[test]
    fn names_of_slots_without_dashes_are_what_they_always_were() {
        let s = slot("shop", "dev", "pr-7");
        assert_eq!(service_name(&s), "tfs-shop-dev-pr-7");
        assert_eq!(slot_name("shop", "dev", "pr-7"), "shop-dev-pr-7");
        assert_eq!(one_off_name(&s, DeployId(9), "on_remove"), "tf-shop-dev-pr-7-9-on-remove");
    }

    proptest! {
        /// Any slot, any deploy: its container name, service name and slot name are DNS labels,
        /// and distinct slots never share one.
        #[test]
        fn slot_names_are_labels_and_distinct(
            p1 in "[a-z]([a-z0-9-]{0,22}[a-z0-9])?", s1 in "[a-z]([a-z0-9-]{0,22}[a-z0-9])?", t1 in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            p2 in "[a-z]([a-z0-9-]{0,22}[a-z0-9])?", s2 in "[a-z]([a-z0-9-]{0,22}[a-z0-9])?", t2 in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            id in 1i64..1_000_000_000,
        ) {
            prop_assume!(!p1.contains("--") && !s1.contains("--") && !p2.contains("--") && !s2.contains("--"));
            let (a, b) = (slot(&p1, &s1, &t1), slot(&p2, &s2, &t2));
            for name in [container_name(&a, DeployId(id)), service_name(&a), slot_name(&p1, &s1, &t1)] {
                prop_assert!(name.len() <= MAX_LABEL && is_valid_host(&name), "{}", name);
            }
            if (p1.as_str(), s1.as_str(), t1.as_str()) != (p2.as_str(), s2.as_str(), t2.as_str()) {
                prop_assert_ne!(container_name(&a, DeployId(id)), container_name(&b, DeployId(id)));
                prop_assert_ne!(service_name(&a), service_name(&b));
                prop_assert_ne!(slot_name(&p1, &s1, &t1), slot_name(&p2, &s2, &t2));
            }
        }

        #[test]
        fn any_string_gives_a_valid_label_of_at_most_63_bytes(tag in ".{0,200}") {
            let l = dns_label(&tag, 63);
            prop_assert!(l.len() <= MAX_LABEL);
            prop_assert!(is_valid_host(&l), "{:?} -> {:?}", tag, l);
        }

        #[test]
        fn distinct_tags_give_distinct_labels(a in "[a-zA-Z0-9_.-]{1,80}", b in "[a-zA-Z0-9_.-]{1,80}") {
            prop_assume!(a != b);
            prop_assert_ne!(dns_label(&a, 63), dns_label(&b, 63));
        }

        #[test]
        fn near_identical_tags_give_distinct_labels(base in "[a-z0-9]{1,70}", sep in "[._-]") {
            let a = format!("{base}{sep}x");
            let b = format!("{base}-x");
            prop_assume!(a != b);
            prop_assert_ne!(dns_label(&a, 63), dns_label(&b, 63));
        }

        #[test]
        fn whole_host_names_stay_within_253_bytes(
            tag in "[a-zA-Z0-9_.-]{1,128}",
            project in "[a-z][a-z0-9]{0,11}",
            stage in "[a-z][a-z0-9]{0,11}",
        ) {
            let p = SubdomainPattern::parse("stage-{stage}-{project}-{tag}", true).unwrap();
            let sub = p.render(&project, &stage, &tag).unwrap();
            let domain = format!("{}.example.com", "d".repeat(63));
            let host = host_name(&sub, &domain);
            prop_assert!(host.len() <= MAX_HOST);
            prop_assert!(is_valid_host(&host), "{}", host);
        }
    }
}
