//! [`Images`] over the Engine API: pulls (by tag or digest, with the registry's own digest),
//! manifest look-ups, the image store, and removal that is never forced.

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::{DockerRuntime, credentials, engine_error, is_not_found};
use crate::engine::{ImageInfo, Images, PullProgress, PulledImage, RegistryAuth, Removal, RuntimeError};
use crate::image_ref::Reference;

/// How often a pull is tried when the image is gone again before it can be looked at.
const PULL_ATTEMPTS: u32 = 3;

/// Splits `repo:tag` or `repo@digest` into the repository and the tag or digest to pull
/// (`latest` when neither is given).
pub(super) fn split_reference(image: &str) -> Result<(Reference, String), RuntimeError> {
    let r =
        Reference::parse(image).map_err(|e| RuntimeError::Pull { image: image.to_owned(), message: e.to_string() })?;
    let what = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".to_owned());
    Ok((r, what))
}

/// The `repo@digest` among `repo_digests` that is `wanted`'s repository (in any spelling: the
/// engine reports familiar names) and, when the registry said which, that digest.
pub(super) fn repo_digest_of(repo_digests: &[String], wanted: &Reference, served: Option<&str>) -> Option<String> {
    repo_digests
        .iter()
        .filter(|d| Reference::parse(d).is_ok_and(|r| r.repo.canonical() == wanted.repo.canonical()))
        .find(|d| served.is_none_or(|g| d.ends_with(&format!("@{g}"))))
        .cloned()
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

impl DockerRuntime {
    /// One pull of `repo:tag` through the engine, its layers reported to `progress`. Returns
    /// the digest the registry served, from the stream's closing `Digest: sha256:…` status,
    /// when the engine says it.
    async fn pull_stream(
        &self,
        repo: &str,
        tag: &str,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Option<String>, RuntimeError> {
        let options = CreateImageOptionsBuilder::default().from_image(repo).tag(tag).build();
        let mut stream = self.docker().create_image(Some(options), None, credentials(auth));
        let mut served = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(d) = info.status.as_deref().and_then(|s| s.strip_prefix("Digest: ")) {
                        served = Some(d.trim().to_owned());
                    }
                    if let (Some(layer), Some(status)) = (info.id, info.status) {
                        let (current, total) =
                            info.progress_detail.map_or((None, None), |p| (to_u64(p.current), to_u64(p.total)));
                        progress(PullProgress { layer, status, current, total });
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(RuntimeError::Pull { image: image.to_owned(), message: error });
                }
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(RuntimeError::Pull { image: image.to_owned(), message });
                }
                Err(e) => return Err(engine_error("pull", image, e)),
            }
        }
        Ok(served)
    }
}

impl Images for DockerRuntime {
    async fn registry_auth(
        &self,
        image: &str,
        configured: Option<&RegistryAuth>,
    ) -> Result<Option<(String, RegistryAuth)>, String> {
        crate::engine::auth::for_image(image, configured, crate::engine::auth::HELPER_TIMEOUT).await
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError> {
        let (wanted, what) = split_reference(image)?;
        // A digest names exactly one image: when the engine has it, there is nothing to pull
        // (a rollback to a kept digest works with the registry down).
        if let Some(digest) = &wanted.digest
            && let Ok(present) = self.docker().inspect_image(image).await
            && let Some(reference) = repo_digest_of(&present.repo_digests.unwrap_or_default(), &wanted, Some(digest))
        {
            return Ok(PulledImage { digest: digest.clone(), reference });
        }
        // Another run's image cleanup (a prune, another state file's retire, a host's
        // `docker image prune -a`) can take the image between the pull and the look at it: pull
        // again, a few times.
        let mut attempt = 0;
        let (inspect, served) = loop {
            let served = self.pull_stream(wanted.repo.as_str(), &what, image, auth, progress).await?;
            attempt += 1;
            match self.docker().inspect_image(image).await {
                Ok(inspect) => break (inspect, served),
                Err(e) if is_not_found(&e) && attempt < PULL_ATTEMPTS => {}
                Err(e) => return Err(engine_error("inspect image", image, e)),
            }
        };
        // The digest the tag resolved to in this pull (the stream says it); an image known by
        // several digests (a rebuild with new attestations) is then recorded by the right one.
        let served = served.or_else(|| wanted.digest.clone());
        let reference = repo_digest_of(&inspect.repo_digests.unwrap_or_default(), &wanted, served.as_deref())
            .ok_or_else(|| RuntimeError::Pull {
                image: image.to_owned(),
                message:
                    "the engine reports no registry digest for this image (was it built locally and never pushed?)"
                        .into(),
            })?;
        let digest = reference.split_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
        Ok(PulledImage { digest, reference })
    }

    /// A manifest lookup through the engine (`GET /distribution/{name}/json`) with the
    /// credentials a pull would use: proves that they work and that the tag exists.
    async fn resolve_digest(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        match self.docker().inspect_registry_image(image, credentials(auth)).await {
            Ok(d) => Ok(d.descriptor.digest.unwrap_or_default()),
            Err(BollardError::DockerResponseServerError { message, .. }) => {
                Err(RuntimeError::Pull { image: image.to_owned(), message })
            }
            Err(e) => Err(engine_error("inspect registry image", image, e)),
        }
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        let options = ListImagesOptionsBuilder::default().all(false).build();
        let list = self.docker().list_images(Some(options)).await.map_err(|e| engine_error("list", "images", e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_digests: i.repo_digests,
                repo_tags: i.repo_tags,
                size: u64::try_from(i.size).unwrap_or(0),
            })
            .collect())
    }

    async fn images_in_use(
        &self,
        among: &std::collections::BTreeSet<String>,
    ) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        if among.is_empty() {
            return Ok(std::collections::BTreeSet::new());
        }
        // `ancestor` also matches containers of images built on these; only exact ids count.
        let filters = std::collections::HashMap::from([("ancestor", among.iter().cloned().collect::<Vec<_>>())]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list =
            self.docker().list_containers(Some(options)).await.map_err(|e| engine_error("list", "containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.image_id).filter(|id| among.contains(id)).collect())
    }

    async fn remove_image(&self, id: &str, names: &[String]) -> Result<Removal, RuntimeError> {
        let remove = |name: String| async move {
            let options = RemoveImageOptionsBuilder::default().force(false).noprune(false).build();
            match self.docker().remove_image(&name, Some(options), None).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(engine_error("remove image", &name, e)),
            }
        };
        // Only the names it was chosen by are taken off (never by force, which would also take
        // an image a container uses); the last one takes the image with it. A name someone gave
        // it since keeps it.
        if names.is_empty() {
            remove(id.to_owned()).await?;
        }
        for name in names {
            remove(name.clone()).await?;
        }
        match self.docker().inspect_image(id).await {
            Err(e) if is_not_found(&e) => Ok(Removal::Removed),
            Ok(_) => Err(RuntimeError::Other {
                op: "remove image",
                subject: id.to_owned(),
                message: "it has other names now; kept".into(),
            }),
            Err(e) => Err(engine_error("inspect image", id, e)),
        }
    }

    async fn image_has_healthcheck(&self, reference: &str) -> Result<bool, RuntimeError> {
        let image =
            self.docker().inspect_image(reference).await.map_err(|e| engine_error("inspect image", reference, e))?;
        Ok(image
            .config
            .and_then(|c| c.healthcheck)
            .and_then(|h| h.test)
            .is_some_and(|t| !t.is_empty() && t.first().is_some_and(|w| w != "NONE")))
    }
}
