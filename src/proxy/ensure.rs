//! The proxy contract, written once over any backend's primitives (DESIGN §8, STYLE §14):
//! [`ensure`] makes `domain` forward to an upstream, [`remove`] takes it down. Both look the
//! host up by name, act only on a host that is ours (this state file's) and this slot's, and
//! read the result back. Calling either twice does nothing the second time.

use std::cell::Cell;
use std::net::IpAddr;

use super::{Deleted, HostAccess, HostView, Marker, Owner, Proxy, ProxyError, Target, Upstream};

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The backend keeps no hosts ([`super::NoProxy`]).
    NoHost,
    /// There was no host; it was created.
    Created {
        /// Its id.
        id: String,
    },
    /// The host existed and now forwards to the upstream (or was re-marked).
    Switched {
        /// Its id.
        id: String,
        /// Where it forwarded before.
        from: Option<Target>,
    },
    /// The host already forwarded to the upstream.
    Unchanged {
        /// Its id.
        id: String,
    },
}

impl Ensured {
    /// The host's id, when there is a host.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::NoHost => None,
            Self::Created { id } | Self::Switched { id, .. } | Self::Unchanged { id } => Some(id),
        }
    }
}

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// Our host was deleted.
    Deleted {
        /// Its id.
        id: String,
    },
    /// There was no host with that name.
    AlreadyGone,
    /// A host with that name exists and is not ours or not this slot's: left untouched.
    NotOurs {
        /// Its id.
        id: String,
    },
}

/// Refuses a host that is not ours and this slot's, with the error that says whose it is.
fn claim(h: &HostView, marker: &Marker, domain: &str) -> Result<(), ProxyError> {
    match &h.owner {
        Owner::Marked(m) if m.state != marker.state => {
            Err(ProxyError::OtherState { host: domain.to_owned(), id: h.id.clone(), slot: m.slot.clone() })
        }
        Owner::Marked(m) if m.slot != marker.slot => {
            Err(ProxyError::OtherSlot { host: domain.to_owned(), theirs: m.slot.clone(), ours: marker.slot.clone() })
        }
        Owner::Marked(_) | Owner::Legacy => Ok(()),
        Owner::Unmarked => Err(ProxyError::Foreign { host: domain.to_owned(), id: h.id.clone() }),
    }
}

/// Makes `domain` forward to `upstream`, marked as `marker`'s: creates the host when missing,
/// points ours at the upstream, refuses anyone else's (nothing touched). Ends by reading the
/// host back: it must exist, carry the mark, forward to the upstream and be served. Returns
/// what was done and the public URL.
///
/// # Errors
/// [`ProxyError::Foreign`], [`ProxyError::OtherState`] or [`ProxyError::OtherSlot`] for a host
/// that is not ours and this slot's; [`ProxyError::Offline`] when the read-back disagrees; any
/// error of the backend.
pub async fn ensure<P: Proxy + ?Sized>(
    proxy: &P,
    domain: &str,
    marker: &Marker,
    upstream: &Upstream,
    access: &HostAccess,
) -> Result<(Ensured, String), ProxyError> {
    ensure_tracked(proxy, domain, marker, upstream, access, &Progress::default()).await
}

/// What an [`ensure_tracked`] call may have changed, for its caller's undo.
#[derive(Debug, Default)]
pub struct Progress {
    changed: Cell<bool>,
    unsettled: Cell<bool>,
}

impl Progress {
    /// The host may differ from before the call: a create or update was carried out, or was
    /// sent and its outcome is unknown (or the call was dropped while one was in flight).
    #[must_use]
    pub fn may_have_changed(&self) -> bool {
        self.changed.get() || self.unsettled.get()
    }

    /// A change was sent and not answered: it may still land later.
    #[must_use]
    pub fn unsettled(&self) -> bool {
        self.unsettled.get()
    }

    fn sending(&self) {
        self.unsettled.set(true);
    }

    fn answered<T>(&self, r: &Result<T, ProxyError>) {
        match r {
            Ok(_) => {
                self.changed.set(true);
                self.unsettled.set(false);
            }
            Err(e) if e.outcome_unknown() => self.changed.set(true),
            Err(_) => self.unsettled.set(false),
        }
    }
}

/// [`ensure`], telling its caller through `progress` what may have changed, even when the
/// future is dropped mid-call.
///
/// # Errors
/// As [`ensure`].
pub async fn ensure_tracked<P: Proxy + ?Sized>(
    proxy: &P,
    domain: &str,
    marker: &Marker,
    upstream: &Upstream,
    access: &HostAccess,
    progress: &Progress,
) -> Result<(Ensured, String), ProxyError> {
    if !proxy.keeps_hosts() {
        return Ok((Ensured::NoHost, proxy.url(domain, upstream)));
    }
    let want = proxy.target(domain, upstream)?;
    if let HostAccess::Unreadable(key) = access {
        return Err(ProxyError::Upstream {
            host: domain.to_owned(),
            message: format!("{key} cannot be read, and a protected host is never written without it"),
        });
    }
    let done = match read(proxy.find(domain).await.into_result())? {
        None => {
            progress.sending();
            let created = proxy.create(domain, marker, &want, access).await;
            progress.answered(&created);
            Ensured::Created { id: created? }
        }
        Some(h) => {
            claim(&h, marker, domain)?;
            let exact = h.owner == Owner::Marked(marker.clone());
            if exact && h.target.as_ref() == Some(&want) && h.problem.is_none() && h.access == *access {
                Ensured::Unchanged { id: h.id }
            } else {
                progress.sending();
                let updated = proxy.update(&h.id, domain, marker, &want, access).await;
                progress.answered(&updated);
                updated?;
                Ensured::Switched { id: h.id, from: h.target }
            }
        }
    };
    read_back(proxy, domain, marker, &want, access).await?;
    Ok((done, proxy.url(domain, upstream)))
}

/// A read that got no answer changed nothing: it is only unreachable.
fn read<T>(r: Result<T, ProxyError>) -> Result<T, ProxyError> {
    r.map_err(|e| match e {
        ProxyError::NoAnswer { url, after } => {
            ProxyError::Unreachable { url, message: format!("no answer within {}", humantime::format_duration(after)) }
        }
        ProxyError::AnswerLost { url, message } => ProxyError::Unreachable { url, message },
        other => other,
    })
}

async fn read_back<P: Proxy + ?Sized>(
    proxy: &P,
    domain: &str,
    marker: &Marker,
    want: &Target,
    access: &HostAccess,
) -> Result<(), ProxyError> {
    let offline = |message: String| ProxyError::Offline { host: domain.to_owned(), message };
    let Some(h) = read(proxy.find(domain).await.into_result())? else {
        return Err(offline("read back: the host is not there".into()));
    };
    if h.owner != Owner::Marked(marker.clone()) {
        return Err(offline(format!("read back: host id {} does not carry our mark for slot {}", h.id, marker.slot)));
    }
    if let Some(problem) = h.problem {
        return Err(offline(problem));
    }
    if h.access != *access {
        return Err(offline("read back: it does not carry the access configured for it".into()));
    }
    match h.target {
        Some(t) if t == *want => Ok(()),
        Some(t) => Err(offline(format!("read back: it forwards to {t}, not to {want}"))),
        None => Err(offline(format!("read back: its forward target cannot be read (wanted {want})"))),
    }
}

/// Deletes the host of `domain` if it is ours and `marker`'s slot's; leaves anyone else's
/// alone. Reads back that it is gone.
///
/// # Errors
/// Any error of the backend; [`ProxyError::Offline`] when the host is still there afterwards.
pub async fn remove<P: Proxy + ?Sized>(proxy: &P, domain: &str, marker: &Marker) -> Result<Removed, ProxyError> {
    if !proxy.keeps_hosts() {
        return Ok(Removed::AlreadyGone);
    }
    let Some(h) = read(proxy.find(domain).await.into_result())? else { return Ok(Removed::AlreadyGone) };
    if !h.belongs_to(&marker.state, &marker.slot) {
        return Ok(Removed::NotOurs { id: h.id });
    }
    let done = match proxy.delete(&h.id, domain).await? {
        Deleted::Deleted => Removed::Deleted { id: h.id },
        Deleted::AlreadyGone => Removed::AlreadyGone,
    };
    if let Some(still) = read(proxy.find(domain).await.into_result())?
        && still.belongs_to(&marker.state, &marker.slot)
    {
        return Err(ProxyError::Offline {
            host: domain.to_owned(),
            message: format!("host id {} is still there after its delete", still.id),
        });
    }
    Ok(done)
}

/// Does `target` reach the container `name` (by name or by its address `ip`)?
#[must_use]
pub fn points_at(target: &Target, name: &str, ip: Option<IpAddr>) -> bool {
    target.host.eq_ignore_ascii_case(name) || ip.is_some_and(|ip| target.host == ip.to_string())
}
