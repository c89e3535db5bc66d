//! The verify step (issue 24) with the real engine behind real Caddy and behind the NPM double
//! (with its data plane, which forwards by Host as NPM's nginx does): the slot's `/` is requested
//! through the proxy's listener with the slot's host name after the cut-over. An instance
//! that passes health and exits 3 s later, or whose `/` answers 500, is switched back to the
//! previous one; a good one passes the window and the previous instance is retired; a first
//! deploy that fails verify leaves nothing (Docker, Caddy, the state file).
//!
//! The version a request reaches is told by `MESSAGE`, set per deploy in the stage's env (a
//! changed env is a new spec, so the same tag deploys again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::caddy::Caddy;
use crate::support::npm::NpmDouble;
use crate::support::{Run, Sandbox};

/// One second apart, three in a row: the bound is then `1 s × 3 + 2 s`.
const INTERVAL: Duration = Duration::from_secs(1);
const FAILURES: u32 = 3;

/// The proxy in front.
#[derive(Clone, Copy)]
enum Kind {
    Caddy,
    Npm,
}

enum Front {
    Caddy(Caddy),
    /// The double, and its data plane's port.
    Npm(NpmDouble, u16),
}

const NPM_EMAIL: &str = "ops@example.com";
const NPM_PASSWORD: &str = "verify-Pw-2424";

struct Bed {
    sb: Sandbox,
    front: Front,
}

impl Bed {
    fn new(prefix: &str, kind: Kind) -> Self {
        let sb = Sandbox::new(prefix);
        let front = match kind {
            Kind::Caddy => {
                let caddy = Caddy::start();
                sb.watch(crate::support::Watch::Caddy(caddy.admin_url()));
                Front::Caddy(caddy)
            }
            Kind::Npm => {
                let npm = NpmDouble::start(NPM_EMAIL, NPM_PASSWORD);
                sb.watch(crate::support::Watch::Npm(npm.view()));
                let port = npm.serve_traffic();
                Front::Npm(npm, port)
            }
        };
        let bed = Self { sb, front };
        bed.configure("one", "");
        bed
    }

    /// Where the proxy serves traffic, on loopback.
    fn http_port(&self) -> u16 {
        match &self.front {
            Front::Caddy(c) => c.http_port,
            Front::Npm(_, port) => *port,
        }
    }

    /// The `[proxy]` table.
    fn proxy_table(&self) -> String {
        match &self.front {
            Front::Caddy(c) => format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", c.admin_url()),
            Front::Npm(npm, _) => {
                let file = self.sb.dir.path().join("npm-password");
                std::fs::write(&file, NPM_PASSWORD).unwrap();
                // The double's data plane runs on the host, where container names do not resolve.
                format!(
                    "[proxy]\nkind = \"npm\"\nurl = \"{}\"\nemail = \"{NPM_EMAIL}\"\npassword_file = \"{}\"\nforward = \"ip\"\n",
                    npm.url(),
                    file.display()
                )
            }
        }
    }

    /// The stage answers `message` on `/`, with `env` (inline TOML pairs) added; verified for
    /// `window` through the proxy's listener.
    fn configure_window(&self, message: &str, env: &str, window: &str) {
        let tables = format!(
            "{}\n[verify]\nwindow = \"{window}\"\ninterval = \"{}s\"\nfailures = {FAILURES}\nconnect = \"127.0.0.1:{}\"\n",
            self.proxy_table(),
            INTERVAL.as_secs(),
            self.http_port()
        );
        let sep = if env.is_empty() { "" } else { ", " };
        self.sb.config_with(&tables, "", &format!("env = {{ MESSAGE = \"{message}\"{sep}{env} }}"));
    }

    fn configure(&self, message: &str, env: &str) {
        self.configure_window(message, env, "8s");
    }

    fn deploy(&self) -> Run {
        self.sb.run_tf(&["--output", "plain", "deploy", &self.sb.project, "dev"])
    }

    /// What the proxy answers for the slot's host name (status, trimmed body).
    fn served(&self) -> (u16, String) {
        get(self.http_port(), &self.sb.host(None)).expect("an answer")
    }

    /// The answer of a proxy that has no route for the host name.
    fn unrouted(&self) -> u16 {
        match self.front {
            Front::Caddy(_) => 200,
            Front::Npm(..) => 404,
        }
    }
}

/// Asks Caddy for `host` every 50 ms until stopped: each answer's body with when it came.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(Instant, u16, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(port: u16, host: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let (code, body) = get(port, &host).unwrap_or((0, String::new()));
                v.lock().unwrap().push((Instant::now(), code, body));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { stop, seen, thread: Some(thread) }
    }

    fn stop(mut self) -> Vec<(Instant, u16, String)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One `GET /` to `127.0.0.1:port` with `Host: host`: the status and the trimmed body.
fn get(port: u16, host: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_owned();
    Some((status, body))
}

fn an_instance_that_exits_after_the_cut_over_is_switched_back(kind: Kind, prefix: &str) {
    let bed = Bed::new(prefix, kind);
    bed.deploy().code(0);
    let first = bed.sb.instances();
    assert_eq!(bed.served(), (200, "one".to_owned()));
    // Passes health, serves, and exits 3 s after it started (its restart policy brings it back).
    bed.configure("two", "EXIT_AFTER_MS = \"3000\", EXIT_CODE = \"3\"");
    let watcher = Watcher::start(bed.http_port(), bed.sb.host(None));
    let run = bed.deploy();
    // A request in flight to the removed container waits out its 2 s read timeout: watch a
    // little longer, so that the first answer of the previous version after the switch-back is
    // seen (its time, not the watch's end, is what is measured).
    std::thread::sleep(Duration::from_secs(3));
    let seen = watcher.stop();
    run.code(1);
    assert!(run.error_line().contains("verify failed"), "{}", run.stderr);
    assert!(run.stderr.contains("exit code 3") || run.stderr.contains("exited with code 3"), "{}", run.stderr);
    assert_eq!(bed.served(), (200, "one".to_owned()), "the previous version serves again");
    // The failure starts with the first answer that is not "two" after "two" was served; "one"
    // must be back within interval × failures + 2 s of it. The crash is seen by the engine
    // watch at the next look (≤ 1 interval), and the switch-back is one Caddy call, so this is
    // a bound with seconds to spare, not a race.
    let two = seen.iter().position(|(_, c, b)| *c == 200 && b == "two").expect("the new version served first");
    let fail = seen[two..].iter().find(|(_, c, b)| !(*c == 200 && b == "two")).expect("it failed").0;
    let shown =
        |s: &[(Instant, u16, String)]| -> Vec<String> { s.iter().map(|(_, c, b)| format!("{c} {b}")).collect() };
    let back = seen[two..]
        .iter()
        .find(|(_, c, b)| *c == 200 && b == "one")
        .unwrap_or_else(|| panic!("not switched back while watched: {:?}\n{}", shown(&seen), run.stderr))
        .0;
    let bound = INTERVAL * FAILURES + Duration::from_secs(2);
    assert!(back.duration_since(fail) <= bound, "back after {:?} (bound {bound:?})", back.duration_since(fail));
    // One container left in the slot, asked of Docker: the previous one, running.
    let left = bed.sb.containers();
    assert_eq!(left, vec![format!("{} running", first[0].container_name)], "{left:?}");
    let deploys = bed.sb.deploys();
    assert_eq!(deploys[0].status.as_str(), "failed");
    assert!(deploys[0].error.as_deref().unwrap().starts_with("verify failed"), "{:?}", deploys[0].error);
    let logs = bed.sb.logs(deploys[0].id);
    assert!(logs.iter().any(|l| l.step == "verify" && l.message.contains("restart")), "{logs:?}");
}

fn an_instance_whose_root_answers_500_is_switched_back(kind: Kind, prefix: &str) {
    let bed = Bed::new(prefix, kind);
    bed.deploy().code(0);
    let first = bed.sb.instances();
    bed.configure("two", "ROOT_STATUS = \"500\"");
    let run = bed.deploy();
    run.code(1);
    assert!(run.error_line().contains("3 requests in a row"), "{}", run.stderr);
    assert!(run.error_line().contains("500"), "{}", run.stderr);
    assert_eq!(bed.served(), (200, "one".to_owned()));
    assert_eq!(bed.sb.containers(), vec![format!("{} running", first[0].container_name)]);
    // The evidence: the failing answers, in history.
    let out = bed.sb.run_tf(&["history", "show", &bed.sb.deploys()[0].id.to_string()]);
    assert!(out.stdout.contains("500 Internal Server Error"), "{}", out.stdout);
}

fn a_good_instance_passes_the_window_and_the_previous_one_is_retired(kind: Kind, prefix: &str) {
    let bed = Bed::new(prefix, kind);
    bed.configure_window("one", "", "3s");
    bed.deploy().code(0);
    let first = bed.sb.instances();
    bed.configure_window("two", "", "3s");
    let begin = Instant::now();
    let run = bed.deploy();
    run.code(0);
    assert!(begin.elapsed() >= Duration::from_secs(3), "watched for the window");
    assert!(run.stderr.contains("verified for 3s"), "{}", run.stderr);
    assert_eq!(bed.served(), (200, "two".to_owned()));
    let left = bed.sb.containers();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left[0].starts_with(&first[0].container_name), "the previous instance is retired: {left:?}");
}

fn a_first_deploy_that_fails_verify_leaves_nothing(kind: Kind, prefix: &str) {
    let bed = Bed::new(prefix, kind);
    bed.configure("one", "ROOT_STATUS = \"500\"");
    let run = bed.deploy();
    run.code(1);
    assert!(run.error_line().contains("verify failed"), "{}", run.stderr);
    assert!(bed.sb.containers().is_empty(), "no container: {:?}", bed.sb.containers());
    assert!(bed.sb.instances().is_empty(), "no instance row");
    assert_eq!(bed.served(), (bed.unrouted(), String::new()), "no route");
    bed.sb.assert_nothing_left();
}

fn no_verify_skips_the_step_and_dry_run_shows_it(kind: Kind, prefix: &str) {
    let bed = Bed::new(prefix, kind);
    let plan = bed.sb.run_tf(&["deploy", "--dry-run", &bed.sb.project, "dev"]);
    plan.code(0);
    assert!(plan.stdout.contains("verify    request / through the proxy every 1s for 8s"), "{}", plan.stdout);
    let plan = bed.sb.run_tf(&["deploy", "--dry-run", "--no-verify", &bed.sb.project, "dev"]);
    assert!(plan.stdout.contains("verify    none"), "{}", plan.stdout);
    bed.configure("one", "ROOT_STATUS = \"500\"");
    let run = bed.sb.run_tf(&["--output", "plain", "deploy", "--no-verify", &bed.sb.project, "dev"]);
    run.code(0);
    assert!(!run.stderr.contains("verify"), "{}", run.stderr);
    assert_eq!(bed.served(), (500, "one".to_owned()), "served as it is: nobody watched");
}

#[test]
fn an_instance_that_exits_after_the_cut_over_is_switched_back_behind_caddy() {
    an_instance_that_exits_after_the_cut_over_is_switched_back(Kind::Caddy, "vfyexitc");
}

#[test]
fn an_instance_that_exits_after_the_cut_over_is_switched_back_behind_npm() {
    an_instance_that_exits_after_the_cut_over_is_switched_back(Kind::Npm, "vfyexitn");
}

#[test]
fn an_instance_whose_root_answers_500_is_switched_back_behind_caddy() {
    an_instance_whose_root_answers_500_is_switched_back(Kind::Caddy, "vfy500c");
}

#[test]
fn an_instance_whose_root_answers_500_is_switched_back_behind_npm() {
    an_instance_whose_root_answers_500_is_switched_back(Kind::Npm, "vfy500n");
}

#[test]
fn a_good_instance_passes_the_window_and_the_previous_one_is_retired_behind_caddy() {
    a_good_instance_passes_the_window_and_the_previous_one_is_retired(Kind::Caddy, "vfyokc");
}

#[test]
fn a_good_instance_passes_the_window_and_the_previous_one_is_retired_behind_npm() {
    a_good_instance_passes_the_window_and_the_previous_one_is_retired(Kind::Npm, "vfyokn");
}

#[test]
fn a_first_deploy_that_fails_verify_leaves_nothing_behind_caddy() {
    a_first_deploy_that_fails_verify_leaves_nothing(Kind::Caddy, "vfyfirstc");
}

#[test]
fn a_first_deploy_that_fails_verify_leaves_nothing_behind_npm() {
    a_first_deploy_that_fails_verify_leaves_nothing(Kind::Npm, "vfyfirstn");
}

#[test]
fn no_verify_skips_the_step_and_dry_run_shows_it_behind_caddy() {
    no_verify_skips_the_step_and_dry_run_shows_it(Kind::Caddy, "vfyskipc");
}

#[test]
fn no_verify_skips_the_step_and_dry_run_shows_it_behind_npm() {
    no_verify_skips_the_step_and_dry_run_shows_it(Kind::Npm, "vfyskipn");
}
