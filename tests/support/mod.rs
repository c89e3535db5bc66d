//! The test bed: a real registry on loopback, the demo app built once as a static binary and
//! pushed as images, a per-test sandbox (config, state, unique project and network names) whose
//! `Drop` removes every container and network the test created, also on panic.

#![allow(dead_code, reason = "each test uses part of the bed")]

pub(crate) mod caddy;
pub(crate) mod connect_proxy;
pub(crate) mod faulty_docker;
pub(crate) mod image;
pub(crate) mod npm;
pub(crate) mod receiver;
mod registry;
pub(crate) mod tls;
pub(crate) mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) use registry::Registry;
use tiny_forge::domain::DeployId;
use tiny_forge::store::{DeployRecord, Filter, InstanceRecord, LogEntry, SqliteStore, Store as _};

/// Runs a command, panicking with its output when it fails.
#[track_caller]
pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `docker ARGS…` and returns its stdout. The test fails when the CLI fails: an empty
/// answer from a failing CLI must never pass for "nothing there".
#[track_caller]
pub(crate) fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(out.status.success(), "docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `docker ARGS…` and says whether it succeeded: for what may rightly fail (inspecting
/// something that may be gone, cleanup).
pub(crate) fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker").args(args).output().is_ok_and(|o| o.status.success())
}

/// The proxy a sandbox's deploys publish to, for the "nothing left" check.
#[derive(Clone, Default)]
pub(crate) enum Watch {
    /// No proxy (or the test checks it itself).
    #[default]
    None,
    /// The NPM double.
    Npm(npm::NpmView),
    /// A real Caddy, read through its admin API.
    Caddy(String),
}

/// The shared registry and the demo-app images in it, made once per test run.
pub(crate) struct Images {
    pub(crate) registry: &'static Registry,
    /// `127.0.0.1:PORT/tf-test/demo`
    pub(crate) repo: String,
}

/// Tags pushed for every test run, each a distinct image: `v1` answers `hello`, `v2`…`v10`
/// answer their own tag (`ENV MESSAGE`), and `bad` answers 500 on `/health`.
pub(crate) const TAGS: &[&str] = &["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "bad"];

pub(crate) fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        // Networks a killed earlier run could not remove (every test configures its sandbox,
        // and so waits here, before it deploys: none of this run's networks exists yet).
        // Only old ones: a test run going on beside this one (another checkout) has its own.
        let stale = docker(&["network", "ls", "-q", "--filter", "name=tf-test-"]);
        for id in stale.split_whitespace() {
            let created = docker(&["network", "inspect", "-f", "{{.Created.Unix}}", id]);
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .saturating_sub(created.trim().parse().unwrap_or(u64::MAX));
            if age > 3600 {
                docker_ok(&["network", "rm", id]);
            }
        }
        // Images of earlier runs only take space: those whose registry no longer listens (a
        // test run going on beside this one keeps its own).
        let old = docker(&["images", "--filter", "reference=*/tf-test/*", "--format", "{{.Repository}}:{{.Tag}}"]);
        for image in old.lines() {
            let host = image.split('/').next().unwrap_or_default();
            if std::net::TcpStream::connect(host).is_err() {
                docker_ok(&["rmi", "-f", image]);
            }
        }
        let registry = Registry::shared();
        let repo = format!("{}/tf-test/demo", registry.host());
        let dir = build_dir();
        let app = dir.join("demo-app");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-app/main.rs");
        run(Command::new("rustc").args(["-O", "-C", "target-feature=+crt-static", "-o"]).arg(&app).arg(&src));
        for tag in TAGS {
            let env = match *tag {
                "v1" => String::new(),
                "bad" => "ENV HEALTH_STATUS=500\n".to_owned(),
                v => format!("ENV MESSAGE={v}\n"),
            };
            build_and_push(&dir, &format!("{repo}:{tag}"), &env);
        }
        Images { registry, repo }
    })
}

/// Builds the demo app into `image` (with `extra` Dockerfile lines), pushes it, and takes it
/// out of the local cache, so that a deploy's pull really downloads it.
fn build_and_push(dir: &Path, image: &str, extra: &str) {
    let dockerfile = format!("FROM scratch\nCOPY demo-app /demo-app\n{extra}EXPOSE 8080\nENTRYPOINT [\"/demo-app\"]\n");
    // Each build writes its own Dockerfile: tests build in parallel.
    let file = dir.join(format!("Dockerfile.{}", image.replace(['/', ':', '.'], "_")));
    std::fs::write(&file, dockerfile).unwrap();
    run(Command::new("docker")
        .args(["build", "-q", "-t", image, "-f"])
        .arg(&file)
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0"));
    run(Command::new("docker").args(["push", "-q", image]));
    // Untag only: its layers may be another build's cache right now.
    run(Command::new("docker").args(["rmi", "--no-prune", image]));
}

/// A demo-app image of its own, `image`, answering `message`, pushed to the registry `image`
/// names: no other repository shares it.
pub(crate) fn own_image(image: &str, message: &str) {
    images();
    build_and_push(&build_dir(), image, &format!("ENV MESSAGE={message}\n"));
}

fn build_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-app-image");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's world: a temp dir with config and state, a unique project name and network.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) project: String,
    pub(crate) network: String,
    pub(crate) config: PathBuf,
    pub(crate) state: PathBuf,
    watch: std::cell::RefCell<Watch>,
    /// Other projects the test configured: their containers are cleaned up too.
    others: std::cell::RefCell<Vec<String>>,
}

impl Sandbox {
    /// `prefix` should be short and unique per test (≤ 10 characters).
    pub(crate) fn new(prefix: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let project = format!("{prefix}{}x{n}", std::process::id() % 100_000);
        let dir = tempfile::tempdir().unwrap();
        let network = format!("tf-test-{project}");
        let config = dir.path().join("tiny-forge.toml");
        let state = dir.path().join("state").join("state.db");
        Self {
            dir,
            project,
            network,
            config,
            state,
            watch: std::cell::RefCell::new(Watch::None),
            others: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// A second project name for this sandbox (`PROJECT-suffix`), whose containers `Drop`
    /// removes too.
    pub(crate) fn other_project(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.project);
        self.others.borrow_mut().push(name.clone());
        name
    }

    /// Makes [`Sandbox::assert_nothing_left`] check this proxy too.
    pub(crate) fn watch(&self, w: Watch) {
        *self.watch.borrow_mut() = w;
    }

    /// Writes a config for this sandbox's project: `[settings]` with its network and state,
    /// then `project_extra` inside `[projects.NAME]` and a `dev` stage with `stage_extra`.
    /// Health checks are quick by default (start period 0, 100 ms apart, 2 retries).
    pub(crate) fn config(&self, project_extra: &str, stage_extra: &str) -> &Self {
        self.config_with("", project_extra, stage_extra)
    }

    /// As [`Sandbox::config`], with `tables` (e.g. a `[proxy]` table) before the project.
    pub(crate) fn config_with(&self, tables: &str, project_extra: &str, stage_extra: &str) -> &Self {
        let text = format!(
            r#"[settings]
domain = "test.local"
network = "{network}"
state = "{state}"

[health]
start_period = "0s"
interval = "100ms"
retries = 2
timeout = "2s"

{tables}

[projects.{project}]
image = "{repo}"
port = 8080
{project_extra}

[projects.{project}.stages.dev]
default_tag = "v1"
{stage_extra}
"#,
            network = self.network,
            state = self.state.display(),
            project = self.project,
            repo = images().repo,
        );
        std::fs::write(&self.config, text).unwrap();
        self
    }

    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// `tiny-forge --config CONFIG ARGS…`
    pub(crate) fn tf(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tiny-forge"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("TINY_FORGE_CONFIG")
            .env_remove("TINY_FORGE_REMOTE")
            .env_remove("TINY_FORGE_TOKEN")
            .env("NO_COLOR", "1");
        c
    }

    pub(crate) fn run_tf(&self, args: &[&str]) -> Run {
        Run::from(self.tf(args).output().expect("run tiny-forge"))
    }

    /// The host name of a slot of this sandbox's project (stage `dev`), as the config makes it.
    pub(crate) fn host(&self, tag: Option<&str>) -> String {
        match tag {
            None => format!("stage-dev-{}.test.local", self.project),
            Some(t) => format!("stage-dev-{}-{t}.test.local", self.project),
        }
    }

    /// Starts `tiny-forge ARGS…` in the background.
    pub(crate) fn spawn_tf(&self, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
        let mut c = self.tf(args);
        c.envs(envs.iter().copied()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c.spawn().expect("spawn tiny-forge")
    }

    /// Waits until the newest deploy's log has an entry containing `needle`, while `child` (the
    /// process that should write it) runs: its exit first fails the test with what it printed.
    pub(crate) fn wait_for_log(&self, child: &mut std::process::Child, needle: &str) {
        use std::io::Read as _;
        let logged = || {
            self.state.exists()
                && self.deploys().first().is_some_and(|d| self.logs(d.id).iter().any(|l| l.message.contains(needle)))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if logged() {
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                if logged() {
                    // Written just before it exited.
                    return;
                }
                let mut printed = String::new();
                if let Some(mut out) = child.stdout.take() {
                    out.read_to_string(&mut printed).ok();
                }
                if let Some(mut err) = child.stderr.take() {
                    err.read_to_string(&mut printed).ok();
                }
                panic!("the process exited ({status}) before a log entry with {needle:?}:\n{printed}");
            }
            assert!(std::time::Instant::now() < deadline, "no log entry with {needle:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Managed containers of this sandbox's project, as `name state` lines (from the Docker
    /// API, through the CLI; the test fails if it cannot ask).
    pub(crate) fn containers(&self) -> Vec<String> {
        let filter = format!("label=dev.tiny-forge.project={}", self.project);
        docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}} {{.State}}"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Managed containers of all the sandbox's projects (its own and [`Sandbox::other_project`]s),
    /// as `name state` lines.
    pub(crate) fn all_containers(&self) -> Vec<String> {
        let mut all = self.containers();
        for project in self.others.borrow().iter() {
            let filter = format!("label=dev.tiny-forge.project={project}");
            all.extend(
                docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}} {{.State}}"])
                    .lines()
                    .map(str::to_owned),
            );
        }
        all
    }

    /// The state file, which must exist (a test that expects none checks `state.exists()`).
    #[track_caller]
    pub(crate) fn store(&self) -> SqliteStore {
        assert!(self.state.exists(), "no state file at {}", self.state.display());
        SqliteStore::open(&self.state).unwrap()
    }

    #[track_caller]
    pub(crate) fn instances(&self) -> Vec<InstanceRecord> {
        self.store().instances(&Filter::default()).unwrap()
    }

    #[track_caller]
    pub(crate) fn deploys(&self) -> Vec<DeployRecord> {
        self.store().deploys(&Filter::default(), 1000).unwrap()
    }

    /// Proxy hosts with tiny-forge's mark for this sandbox's names, as the watched proxy holds
    /// them now (NPM: `meta`; Caddy: the route's `@id`).
    pub(crate) fn proxy_hosts(&self) -> Vec<serde_json::Value> {
        match &*self.watch.borrow() {
            Watch::None => Vec::new(),
            Watch::Npm(v) => {
                v.hosts_with(&self.project).into_iter().filter(|h| h["meta"]["tiny_forge_managed"] == true).collect()
            }
            Watch::Caddy(admin) => caddy::routes(admin)
                .into_iter()
                .filter(|r| {
                    r["@id"].as_str().is_some_and(|id| id.starts_with("tiny-forge-"))
                        && r["match"].to_string().contains(&self.project)
                })
                .collect(),
        }
    }

    pub(crate) fn logs(&self, id: DeployId) -> Vec<LogEntry> {
        self.store().logs(id, 0).unwrap()
    }

    /// What every failure must leave, seen from outside: no container of the project (Docker
    /// API), no proxy host for its names (the watched proxy's own answer), no container on its
    /// network; and in the state file, which must exist: no instance row, no leftover, no
    /// deploy still marked running.
    #[track_caller]
    pub(crate) fn assert_nothing_left(&self) {
        self.assert_only_left(&[]);
    }

    /// What a failed deploy must leave when instances that served before it still do: nothing
    /// of its own. Seen from outside: exactly `kept`'s containers, each running (Docker API);
    /// exactly one proxy host of ours per published `kept` row, forwarding to its container
    /// (the watched proxy's own answer); no other container on the network. In the state file:
    /// exactly the `kept` rows as they were (`updated_at` aside), no leftover, no deploy still
    /// marked running. `kept` are rows read before the failure.
    #[track_caller]
    pub(crate) fn assert_only_left(&self, kept: &[InstanceRecord]) {
        let mut want: Vec<String> = kept.iter().map(|r| format!("{} running", r.container_name)).collect();
        want.sort();
        let mut got = self.all_containers();
        got.sort();
        assert_eq!(got, want, "containers: only those of the instances that served before, running");

        let hosts = self.proxy_hosts();
        if matches!(*self.watch.borrow(), Watch::None) {
            assert_eq!(hosts, Vec::<serde_json::Value>::new(), "proxy hosts left behind");
        } else {
            let published: Vec<&InstanceRecord> = kept.iter().filter(|r| r.proxy_host_id.is_some()).collect();
            assert_eq!(
                hosts.len(),
                published.len(),
                "proxy hosts of ours: one per instance that served before: {hosts:?}"
            );
            for r in published {
                let domain = r.domain.as_deref().expect("a published row names its host");
                let port = r.port.expect("a published row has its port");
                let host = hosts
                    .iter()
                    .find(|h| proxy_domain(h).is_some_and(|d| d.eq_ignore_ascii_case(domain)))
                    .unwrap_or_else(|| panic!("no proxy host for {domain} (serving {}): {hosts:?}", r.container_name));
                let target = proxy_target(host);
                let by_name = format!("{}:{port}", r.container_name);
                let by_ip = format!("{}:{port}", self.container_ip(&r.container_name));
                assert!(
                    target.as_deref() == Some(by_name.as_str()) || target.as_deref() == Some(by_ip.as_str()),
                    "the host of {domain} forwards to {target:?}, not to {} ({by_name} or {by_ip})",
                    r.container_name
                );
            }
        }

        if docker_ok(&["network", "inspect", &self.network]) {
            let attached = docker(&["network", "inspect", "-f", "{{len .Containers}}", &self.network]);
            assert_eq!(attached.trim(), kept.len().to_string(), "containers attached to {}", self.network);
        }

        let unstamped = |rows: &[InstanceRecord]| -> Vec<InstanceRecord> {
            rows.iter().map(|r| InstanceRecord { updated_at: 0, ..r.clone() }).collect()
        };
        assert_eq!(unstamped(&self.instances()), unstamped(kept), "instance rows: only those that served before");
        let leftovers = self.store().leftovers(&Filter::default()).unwrap();
        assert!(leftovers.is_empty(), "leftovers recorded: {leftovers:?}");
        let running: Vec<_> = self.deploys().into_iter().filter(|d| d.status.as_str() == "running").collect();
        assert!(running.is_empty(), "deploys still marked running: {running:?}");
    }

    /// A container's address on this sandbox's network (empty when it has none).
    pub(crate) fn container_ip(&self, name: &str) -> String {
        let format = ["{{with index .NetworkSettings.Networks \"", &self.network, "\"}}{{.IPAddress}}{{end}}"].concat();
        docker(&["inspect", "-f", &format, name]).trim().to_owned()
    }
}

/// The host name a proxy host (NPM host or Caddy route) serves.
fn proxy_domain(h: &serde_json::Value) -> Option<&str> {
    h["domain_names"][0].as_str().or_else(|| h["match"][0]["host"][0].as_str())
}

/// Where a proxy host (NPM host or Caddy route) forwards to, as `host:port`.
fn proxy_target(h: &serde_json::Value) -> Option<String> {
    if let Some(host) = h["forward_host"].as_str() {
        return Some(format!("{host}:{}", h["forward_port"]));
    }
    let handlers = h["handle"].as_array()?;
    let proxy = handlers.iter().find(|x| x["handler"] == "reverse_proxy")?;
    proxy["upstreams"][0]["dial"].as_str().map(str::to_owned)
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for project in std::iter::once(self.project.clone()).chain(self.others.borrow().iter().cloned()) {
            let filter = format!("label=dev.tiny-forge.project={project}");
            let out = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
            let ids: Vec<String> = out
                .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids.iter().map(String::as_str));
                docker_ok(&args);
            }
        }
        docker_ok(&["network", "rm", &self.network]);
    }
}

/// A finished `tiny-forge` run.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub(crate) fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// The last stderr line that starts with `error:`.
    pub(crate) fn error_line(&self) -> String {
        self.stderr.lines().rfind(|l| l.starts_with("error:")).unwrap_or_default().to_owned()
    }

    #[track_caller]
    pub(crate) fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }
}

/// Points `repo:to` at the image `repo:from` in the registry (a CI pushing a new build to a
/// moving tag).
pub(crate) fn retag(from: &str, to: &str) {
    let repo = &images().repo;
    push_as(&format!("{repo}:{from}"), &format!("{repo}:{to}"));
}

/// Pushes the image `src` (pulled first) as `dst`. Other tests' deploys delete the shared
/// repository's unused images (image hygiene), so the pull, the tag and the push are tried again
/// when the image went between them.
pub(crate) fn push_as(src: &str, dst: &str) {
    for attempt in 1..=5 {
        if docker_ok(&["pull", "-q", src]) && docker_ok(&["tag", src, dst]) && docker_ok(&["push", "-q", dst]) {
            break;
        }
        assert!(attempt < 5, "cannot pull {src}, tag it {dst} and push that");
    }
    docker_ok(&["rmi", dst]);
}

/// GETs `url` and returns (status, body).
pub(crate) fn http_get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = client().get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// A `[proxy]` table for NPM at `url`, logging in as `email` with the password in `$password_env`.
pub(crate) fn npm_proxy(url: &str, email: &str, password_env: &str) -> String {
    format!("[proxy]\nkind = \"npm\"\nurl = \"{url}\"\nemail = \"{email}\"\npassword_env = \"{password_env}\"\n")
}

/// An HTTP client for tests; building it also installs the TLS crypto provider, which any
/// other `reqwest` client built in this process then needs.
pub(crate) fn client() -> reqwest::Client {
    tiny_forge::http::client().expect("HTTP client")
}
