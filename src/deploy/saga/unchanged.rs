//! A redeploy of what already runs: when the slot's live instance has this deploy's spec and
//! runs the digest the tag resolves to now, there is nothing to deploy; only its host is
//! ensured (repaired if it vanished or points elsewhere).

use super::Saga;
use crate::deploy::journal::slot_filter;
use crate::deploy::outcome::StepError;
use crate::deploy::place::Placement as _;
use crate::deploy::{instance, look_instance};
use crate::domain::InstanceStatus;
use crate::engine::ContainerRuntime;
use crate::fmt::one_line;
use crate::health::Probe;
use crate::proxy::{self, Ensured, Marker, Proxy, Upstream};
use crate::report::{Level, Step};
use crate::store::{InstanceRecord, Store};

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// The slot's live instance, when it has this deploy's spec (unless `--force`): it may
    /// already run what this deploy would. A state-file read only; a problem means "no".
    pub(super) fn unchanged_candidate(&self) -> Option<InstanceRecord> {
        if self.req.force {
            return None;
        }
        let rows = self.d.store.instances(&slot_filter(&self.slot)).ok()?;
        let live = rows.into_iter().rfind(|i| i.status == InstanceStatus::Live)?;
        (live.spec_hash.as_deref() == Some(self.spec_hash().as_str())).then_some(live)
    }

    /// The slot's live instance, when it already runs the digest the tag resolves to now with
    /// this spec and its container is running: then there is nothing to deploy. The digest
    /// comes from a manifest lookup (nothing is pulled); when the registry cannot say, the
    /// deploy goes on as usual.
    pub(super) async fn already_running(
        &self,
        live: InstanceRecord,
    ) -> Result<Option<(InstanceRecord, Upstream, String)>, StepError> {
        let stage = &self.req.stage;
        let digest = match self.d.digest_now(stage, &self.image).await {
            Ok(d) => d,
            Err(e) => {
                let message = format!("cannot resolve the digest first ({}); pulling", one_line(&e));
                self.log(Step::Pull, Level::Debug, message);
                return Ok(None);
            }
        };
        if live.digest != digest {
            return Ok(None);
        }
        let kind = self.placement.kind();
        let look = look_instance(self.d.runtime, kind, &live.container_name, &stage.network).await;
        let Some(info) = look.into_result()? else { return Ok(None) };
        if info.state != "running" {
            return Ok(None);
        }
        if let Some(drift) = self.placement.drift(self.d.runtime, &live).await? {
            self.log(Step::Pull, Level::Warn, format!("{drift}; deploying again"));
            return Ok(None);
        }
        self.d.store.set_digest(self.id, &digest)?;
        self.log(
            Step::Pull,
            Level::Info,
            format!(
                "{} is {digest}, which {} already runs with the same settings: nothing to deploy (--force redeploys)",
                self.image, live.container_name
            ),
        );
        let upstream =
            Upstream { name: live.container_name.clone(), ip: info.ip, port: instance::port_of(stage, &live) };
        Ok(Some((live, upstream, digest)))
    }

    /// The proxy step of an unchanged redeploy: the live instance's host, ensured (repaired if
    /// it vanished or points elsewhere).
    pub(super) async fn republish(&self, upstream: &Upstream) -> Result<String, StepError> {
        let marker = Marker { state: self.state_id.clone(), slot: self.slot.key() };
        let access = instance::host_access(&self.req.stage);
        let (done, url) = proxy::ensure(self.d.proxy, &self.domain, &marker, upstream, &access).await?;
        if let Ensured::Created { id } | Ensured::Switched { id, .. } = &done {
            self.log(Step::Proxy, Level::Warn, format!("repaired proxy host {} (id {id})", self.domain));
        }
        Ok(url)
    }

    /// What this deploy's instance is made of besides its image (see [`crate::deploy::spec::hash`]).
    pub(super) fn spec_hash(&self) -> String {
        let up = Upstream { name: crate::deploy::spec::OWN_NAME.to_owned(), ip: None, port: self.req.stage.port };
        let url = self.d.proxy.url(&self.domain, &up);
        crate::deploy::spec::hash(&self.req.stage, &self.slot, &self.state_id, &url, &self.domain)
    }
}
