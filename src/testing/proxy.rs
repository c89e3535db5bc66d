//! [`FakeProxy`]: an in-memory proxy whose hosts carry marks like NPM's and Caddy's, and that
//! fails an operation when told to.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use super::{FAKE_TIMEOUT, Faults, Injected, Mode, before};
use crate::look::Look;
use crate::proxy::{Deleted, HostAccess, HostView, Marker, Owner, Proxy, ProxyError, Target, Upstream};

/// A host in [`FakeProxy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHost {
    /// Host name.
    pub domain: String,
    /// Whose.
    pub owner: Owner,
    /// Where it forwards.
    pub target: Target,
    /// Why it does not serve (set by the `offline` fault).
    pub problem: Option<String>,
    /// Who may open it.
    pub access: HostAccess,
}

/// An in-memory reverse proxy with ids `1`, `2`, … never reused.
#[derive(Debug, Default)]
pub struct FakeProxy {
    faults: Faults,
    /// Hosts by id.
    pub hosts: RefCell<BTreeMap<String, FakeHost>>,
    next: Cell<u32>,
    /// Every call, as `op subject`.
    pub calls: RefCell<Vec<String>>,
    /// Hosts created or updated from now on come out not serving (NPM's `nginx_online: false`).
    pub offline: Cell<bool>,
    /// How many hosts were ever created.
    pub created: Cell<u32>,
}

impl FakeProxy {
    /// Makes `op` (`find`, `list`, `create`, `update`, `delete`) fail in `mode`, every time.
    pub fn fail(&self, op: &'static str, mode: Mode) {
        self.faults.set(op, mode, 0, u32::MAX);
    }

    /// Makes `op` fail in `mode` the next `times` times.
    pub fn fail_times(&self, op: &'static str, mode: Mode, times: u32) {
        self.faults.set(op, mode, 0, times);
    }

    /// Lets `op` work `skip` more times, then makes it fail in `mode` every time.
    pub fn fail_after(&self, op: &'static str, mode: Mode, skip: u32) {
        self.faults.set(op, mode, skip, u32::MAX);
    }

    /// Makes every operation work again.
    pub fn heal(&self) {
        self.faults.clear();
        self.offline.set(false);
    }

    /// The host serving `domain`.
    pub fn host(&self, domain: &str) -> Option<FakeHost> {
        self.hosts.borrow().values().find(|h| h.domain.eq_ignore_ascii_case(domain)).cloned()
    }

    /// Adds a host as someone else (or another state file) would have.
    pub fn add(&self, domain: &str, owner: Owner, target: Target) -> String {
        self.next.set(self.next.get() + 1);
        let id = self.next.get().to_string();
        self.hosts.borrow_mut().insert(
            id.clone(),
            FakeHost { domain: domain.to_ascii_lowercase(), owner, target, problem: None, access: HostAccess::Public },
        );
        id
    }

    async fn check(&self, op: &'static str, subject: &str) -> Result<Option<Injected>, ProxyError> {
        self.calls.borrow_mut().push(format!("{op} {subject}"));
        before(self.faults.take(op)).await.map_err(|i| Self::error(op, subject, &i))
    }

    fn error(op: &'static str, subject: &str, i: &Injected) -> ProxyError {
        match i {
            Injected::Error => {
                ProxyError::Refused { op, host: subject.into(), status: 500, message: "Internal Error".into() }
            }
            Injected::TimedOut => ProxyError::NoAnswer { url: "http://fake-proxy".into(), after: FAKE_TIMEOUT },
        }
    }

    fn view(id: &str, h: &FakeHost) -> HostView {
        HostView {
            id: id.to_owned(),
            domain: h.domain.clone(),
            owner: h.owner.clone(),
            target: Some(h.target.clone()),
            problem: h.problem.clone(),
            access: h.access.clone(),
        }
    }
}

impl Proxy for FakeProxy {
    fn target(&self, _: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        Ok(Target { host: upstream.name.clone(), port: upstream.port })
    }

    fn url(&self, domain: &str, _: &Upstream) -> String {
        format!("http://{domain}")
    }

    async fn find(&self, domain: &str) -> crate::proxy::ProxyLook<HostView> {
        match self.check("find", domain).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("find", domain, &i)),
            Err(e) => return Look::Unknown(e),
        }
        Look::from_result(Ok(self
            .hosts
            .borrow()
            .iter()
            .find(|(_, h)| h.domain.eq_ignore_ascii_case(domain))
            .map(|(id, h)| Self::view(id, h))))
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        if let Some(i) = self.check("list", "hosts").await? {
            return Err(Self::error("list", "hosts", &i));
        }
        Ok(self
            .hosts
            .borrow()
            .iter()
            .filter(|(_, h)| h.owner != Owner::Unmarked)
            .map(|(id, h)| Self::view(id, h))
            .collect())
    }

    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError> {
        let acted = self.check("create", domain).await?;
        if self.host(domain).is_some() {
            return Err(ProxyError::Refused {
                op: "create",
                host: domain.into(),
                status: 400,
                message: format!("{domain} is already in use"),
            });
        }
        let id = self.add(domain, Owner::Marked(marker.clone()), target.clone());
        self.created.set(self.created.get() + 1);
        if let Some(h) = self.hosts.borrow_mut().get_mut(&id) {
            h.access = access.clone();
        }
        if self.offline.get()
            && let Some(h) = self.hosts.borrow_mut().get_mut(&id)
        {
            h.problem = Some("nginx -t failed".into());
        }
        match acted {
            Some(i) => Err(Self::error("create", domain, &i)),
            None => Ok(id),
        }
    }

    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError> {
        let acted = self.check("update", domain).await?;
        match self.hosts.borrow_mut().get_mut(id) {
            Some(h) => {
                h.owner = Owner::Marked(marker.clone());
                h.target = target.clone();
                h.access = access.clone();
                h.problem = self.offline.get().then(|| "nginx -t failed".into());
            }
            None => {
                return Err(ProxyError::Refused {
                    op: "update",
                    host: domain.into(),
                    status: 404,
                    message: "Not Found".into(),
                });
            }
        }
        match acted {
            Some(i) => Err(Self::error("update", domain, &i)),
            None => Ok(()),
        }
    }

    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        let acted = self.check("delete", domain).await?;
        let removed = self.hosts.borrow_mut().remove(id).is_some();
        match acted {
            Some(i) => Err(Self::error("delete", domain, &i)),
            None if removed => Ok(Deleted::Deleted),
            None => Ok(Deleted::AlreadyGone),
        }
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok(format!("fake proxy with {} hosts", self.hosts.borrow().len()))
    }
}
