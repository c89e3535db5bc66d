//! tiny-forge from inside its own image, as the README's "As a container" section runs it: the
//! image `scripts/docker-image` builds, run with the Docker socket, the config directory, the
//! state directory and `--network`. Each guard removes what it made, also on panic.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Run, Sandbox, docker, run};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The image, under a tag of its own; `Drop` removes the tag.
pub(crate) struct TfImage {
    pub(crate) tag: String,
}

impl TfImage {
    /// `scripts/docker-image TAG`, reusing the static binary `scripts/test` builds just before
    /// the tests (`TF_IMAGE_PREBUILT=1`; rebuild it by hand after changing the code, see
    /// scripts/test).
    pub(crate) fn build() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let image = Self { tag: format!("tiny-forge-test:{}-{n}", std::process::id()) };
        let out = run(Command::new(root.join("scripts/docker-image"))
            .arg(&image.tag)
            .current_dir(root)
            .env("TF_IMAGE_PREBUILT", "1"));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&image.tag));
        image
    }
}

impl Drop for TfImage {
    fn drop(&mut self) {
        super::docker_ok(&["rmi", "-f", &self.tag]);
    }
}

/// Removes a container by name on drop (`docker run --rm` already does when it ends normally).
struct Named(String);

impl Drop for Named {
    fn drop(&mut self) {
        super::docker_ok(&["rm", "-f", "-v", &self.0]);
    }
}

/// Where the sandbox's files appear inside the container.
pub(crate) const CONFIG_DIR: &str = "/etc/tiny-forge";
pub(crate) const STATE_DIR: &str = "/var/lib/tiny-forge";

/// A sandbox's project, deployed by tiny-forge running in `image`.
pub(crate) struct InImage<'a> {
    pub(crate) sb: &'a Sandbox,
    image: &'a TfImage,
    /// Mounted read-only at [`CONFIG_DIR`]: `config.toml` and whatever else the test puts there.
    pub(crate) config_dir: PathBuf,
    /// The sandbox's network gateway: the host as containers on the network see it.
    pub(crate) gateway: IpAddr,
}

impl<'a> InImage<'a> {
    /// Creates the sandbox's network (`docker run --network` needs it to exist; tiny-forge then
    /// uses it as it is) and writes a first config ([`InImage::configure`] with nothing extra).
    pub(crate) fn new(sb: &'a Sandbox, image: &'a TfImage) -> Self {
        // First, since the test bed's first use clears stale `tf-test-*` networks.
        super::images();
        run(Command::new("docker").args(["network", "create", &sb.network]));
        let gateway = docker(&["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", &sb.network]);
        let gateway = gateway.trim().parse().expect("the network's gateway");
        let config_dir = sb.dir.path().join("etc");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(sb.state.parent().unwrap()).unwrap();
        let me = Self { sb, image, config_dir, gateway };
        me.configure("", "");
        me
    }

    /// Writes the sandbox's config for the container, as [`Sandbox::config_with`] with
    /// `settings` added to `[settings]` and `tables` before the project: state under
    /// [`STATE_DIR`], probes by container name, a generous number of health retries.
    pub(crate) fn configure(&self, settings: &str, tables: &str) {
        let sb = self.sb;
        sb.config_with(tables, "", "");
        let text = std::fs::read_to_string(&sb.config)
            .unwrap()
            .replace(&format!("state = \"{}\"", sb.state.display()), &format!("state = \"{STATE_DIR}/state.db\""))
            .replacen("[settings]\n", &format!("[settings]\nprobe_address = \"name\"\n{settings}"), 1)
            .replace("retries = 2\n", "retries = 20\n");
        std::fs::write(self.config_dir.join("config.toml"), text).unwrap();
    }

    /// Edits the container's config.
    pub(crate) fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.config_dir.join("config.toml");
        std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
    }

    /// `docker run --rm -v /var/run/docker.sock:… -v CONFIG:/etc/tiny-forge:ro
    /// -v STATE:/var/lib/tiny-forge --network NET DOCKER_ARGS… IMAGE --config
    /// /etc/tiny-forge/config.toml TF_ARGS…`
    pub(crate) fn tf(&self, docker_args: &[&str], tf_args: &[&str]) -> Run {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = Named(format!("tf-runner-{}-{n}", self.sb.project));
        let config = format!("{}:{CONFIG_DIR}:ro", self.config_dir.display());
        let state = format!("{}:{STATE_DIR}", self.sb.state.parent().unwrap().display());
        let out = Command::new("docker")
            .args(["run", "--rm", "--name", &name.0, "-e", "NO_COLOR=1"])
            .args(["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", &config, "-v", &state])
            .args(["--network", &self.sb.network])
            .args(docker_args)
            .arg(&self.image.tag)
            .args(["--config", &format!("{CONFIG_DIR}/config.toml")])
            .args(tf_args)
            .output()
            .expect("docker CLI");
        Run::from(out)
    }
}
