//! API tokens and the cap on failed authentications.
//!
//! A token is `tf_` and 43 characters of base64url (32 random bytes from the OS). It is shown
//! once; the state file keeps its SHA-256. A presented token is hashed and compared with every
//! live token's hash in constant time (`subtle`), so neither the comparison nor an index
//! lookup tells an attacker how close a guess was. A token's scope is projects × stages ×
//! actions, each list empty meaning "any".

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::time::Instant;

use crate::store::TokenRecord;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /v1/deploys`.
    Deploy,
    /// `POST /v1/rollbacks`.
    Rollback,
    /// `POST /v1/removals`.
    Remove,
    /// Every `GET` under `/v1`.
    Read,
}

impl Action {
    /// Every action, in the order `token create --can` lists them.
    pub const ALL: [Self; 4] = [Self::Deploy, Self::Rollback, Self::Remove, Self::Read];

    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Remove => "remove",
            Self::Read => "read",
        }
    }

    /// Parses the stored word.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot read random bytes from the operating system: {0}")]
pub struct RandomError(String);

/// A new token (shown once, never stored).
///
/// # Errors
/// [`RandomError`] when the OS has no randomness to give.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(format!("tf_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Lowercase hex SHA-256 of `token`: what the state file keeps.
#[must_use]
pub fn hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's row id.
    pub id: i64,
    /// The token's name.
    pub name: String,
    projects: Vec<String>,
    stages: Vec<String>,
    actions: Vec<Action>,
}

impl Caller {
    /// Does the token allow `action` on `project`'s `stage`?
    #[must_use]
    pub fn allows(&self, action: Action, project: &str, stage: &str) -> bool {
        self.actions.contains(&action)
            && (self.projects.is_empty() || self.projects.iter().any(|p| p == project))
            && (self.stages.is_empty() || self.stages.iter().any(|s| s == stage))
    }

    /// May it read anything at all (some project)?
    #[must_use]
    pub fn can_read(&self) -> bool {
        self.actions.contains(&Action::Read)
    }

    /// Does its scope reach `project` (and `stage`, when given)? For filtering reads.
    #[must_use]
    pub fn sees(&self, project: &str, stage: Option<&str>) -> bool {
        (self.projects.is_empty() || self.projects.iter().any(|p| p == project))
            && stage.is_none_or(|s| self.stages.is_empty() || self.stages.iter().any(|x| x == s))
    }

    /// The caller a live token's row stands for (a verified token, or a web session's token).
    #[must_use]
    pub fn of_record(t: &TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            projects: t.projects.clone(),
            stages: t.stages.clone(),
            actions: t.actions.iter().filter_map(|a| Action::parse(a)).collect(),
        }
    }

    /// Its scope, for queries that apply it in the state file (empty lists mean "any").
    #[must_use]
    pub fn scope(&self) -> crate::store::Scope<'_> {
        crate::store::Scope { projects: &self.projects, stages: &self.stages }
    }

    /// Recorded with each deploy it starts.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

/// The live token whose hash is `presented`'s, compared with every one in constant time.
#[must_use]
pub fn verify(presented: &str, live: &[TokenRecord]) -> Option<Caller> {
    let h = hash(presented);
    let mut found = None;
    for t in live {
        // No early exit: every live token is compared.
        if bool::from(t.hash.as_bytes().ct_eq(h.as_bytes())) {
            found = Some(t);
        }
    }
    found.map(Caller::of_record)
}

/// How many clients the failure map tracks at most.
pub const TRACKED: usize = 10_000;

/// One client's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Counts failed authentications per client (`client::key`) in fixed windows. A client
/// over the limit has its *failures* answered 429 until its window ends; whether a credential
/// verifies is decided before this is asked, so a valid one is never refused here.
///
/// Bounded in memory and in work: at most [`TRACKED`] clients, kept in a queue ordered by when
/// their window began, so that ended windows are dropped from its front (amortised O(1) per
/// call, never a scan of the map). When the map is full of live windows, further clients share
/// one overflow window: a spray of addresses is capped as one client.
#[derive(Debug)]
pub struct FailedAuths {
    limit: u32,
    window: Duration,
    capacity: usize,
    seen: HashMap<IpAddr, Window>,
    order: VecDeque<(IpAddr, Instant)>,
    overflow: Option<Window>,
}

impl FailedAuths {
    /// At most `limit` failures per `window` and client, [`TRACKED`] clients.
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_capacity(limit, window, TRACKED)
    }

    /// As [`FailedAuths::new`], tracking at most `capacity` clients.
    #[must_use]
    pub fn with_capacity(limit: u32, window: Duration, capacity: usize) -> Self {
        Self { limit, window, capacity, seen: HashMap::new(), order: VecDeque::new(), overflow: None }
    }

    /// Forgets windows that ended, from the front of the queue only.
    fn expire(&mut self, now: Instant) {
        while let Some(&(key, start)) = self.order.front() {
            if now.duration_since(start) < self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&key).is_some_and(|w| w.start == start) {
                self.seen.remove(&key);
            }
        }
        if self.overflow.is_some_and(|w| now.duration_since(w.start) >= self.window) {
            self.overflow = None;
        }
    }

    /// Are `key`'s failures answered 429 now?
    pub fn blocked(&mut self, key: IpAddr, now: Instant) -> bool {
        self.expire(now);
        match self.seen.get(&key) {
            Some(w) => w.count >= self.limit,
            None if self.seen.len() >= self.capacity => self.overflow.is_some_and(|w| w.count >= self.limit),
            None => false,
        }
    }

    /// Records one failure of `key`.
    pub fn failed(&mut self, key: IpAddr, now: Instant) {
        self.expire(now);
        if let Some(w) = self.seen.get_mut(&key) {
            w.count = w.count.saturating_add(1);
        } else if self.seen.len() < self.capacity {
            self.seen.insert(key, Window { start: now, count: 1 });
            self.order.push_back((key, now));
        } else {
            let w = self.overflow.get_or_insert(Window { start: now, count: 0 });
            w.count = w.count.saturating_add(1);
        }
    }

    /// Clients tracked now (for tests and metrics).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, token: &str, projects: &[&str], stages: &[&str], actions: &[&str]) -> TokenRecord {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        TokenRecord {
            id: 1,
            name: name.into(),
            hash: hash(token),
            projects: v(projects),
            stages: v(stages),
            actions: v(actions),
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("tf_") && a.len() == 46, "{a}");
        assert_eq!(hash("x").len(), 64);
    }

    #[test]
    fn a_token_scoped_to_shop_dev_cannot_touch_shop_prod() {
        let live = [record("ci", "tf_secret", &["shop"], &["dev"], &["deploy", "read"])];
        let c = verify("tf_secret", &live).unwrap();
        assert!(c.allows(Action::Deploy, "shop", "dev"));
        assert!(!c.allows(Action::Deploy, "shop", "prod"));
        assert!(!c.allows(Action::Deploy, "blog", "dev"));
        assert!(!c.allows(Action::Remove, "shop", "dev"), "remove was not granted");
        assert_eq!(c.actor(), "token:ci");
        assert!(verify("tf_secreT", &live).is_none());
        assert!(verify("", &live).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_failure_map_stays_bounded_and_a_spray_of_addresses_shares_one_window() {
        let mut f = FailedAuths::with_capacity(3, Duration::from_secs(60), 100);
        let now = Instant::now();
        for i in 0..100u32 {
            f.failed(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), now);
        }
        assert_eq!(f.tracked(), 100);
        // Full: the next addresses share one overflow window, capped like one client.
        let sprayed = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
        for i in 0..3 {
            assert!(!f.blocked(sprayed(i), now));
            f.failed(sprayed(i), now);
        }
        assert_eq!(f.tracked(), 100, "no growth beyond the capacity");
        assert!(f.blocked(sprayed(99), now), "the overflow window is over its limit");
        assert!(
            !f.blocked(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0001)), now),
            "a tracked client keeps its own count"
        );
        // Windows end: the map empties from the front, and the overflow window ends too.
        tokio::time::advance(Duration::from_secs(61)).await;
        let later = Instant::now();
        assert!(!f.blocked(sprayed(99), later));
        assert_eq!(f.tracked(), 0);
        f.failed(sprayed(5), later);
        assert_eq!(f.tracked(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_over_the_failure_cap_is_refused_until_its_window_ends() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut f = FailedAuths::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(!f.blocked(ip, Instant::now()));
            f.failed(ip, Instant::now());
        }
        assert!(f.blocked(ip, Instant::now()));
        assert!(!f.blocked(other, Instant::now()), "per address");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!f.blocked(ip, Instant::now()));
    }
}
