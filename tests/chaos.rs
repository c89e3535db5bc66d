//! Issue 11's proof: a randomized chaos run. Each trial picks an operation (deploy a new slot,
//! redeploy, rollback, remove, prune) and a fault (SIGTERM or SIGKILL at a random moment; NPM
//! answering 500, stalling, or making a change and then hanging; a Caddy route deleted; the
//! registry gone; the container crashing; the engine unable to answer looks, through a socket
//! that fails container (or service) inspects and lists), runs the real binary, checks that its
//! exit code is honest, recovers with `prune`, and checks the invariants through the Docker API,
//! the proxy and the state file:
//!
//! - every live instance's host exists, is ours, and forwards to its running container on its
//!   port;
//! - no managed container without a live instance, and no marked host without one;
//! - exit codes are honest: 0, 1, 2 and 130 only when nothing was left, and 3 lists everything
//!   that was left;
//! - a look that failed takes nothing away: every instance that was live before an operation
//!   the engine could not answer, and that the operation did not target, still has its row,
//!   its running container and its host afterwards (issue 21).
//!
//! The verify phase (issue 24) runs a world behind Caddy whose stage `verified` watches each new
//! instance through Caddy after the cut-over: deploys there meet signals (often inside the
//! window), a deleted route, looks that fail, or an instance that goes bad after the cut-over
//! (exits, or answers 500 on `/`), and the same invariants hold afterwards.
//!
//! `TF_CHAOS_TRIALS` (default 30), `TF_CHAOS_VERIFY_TRIALS` (default 6) and `TF_CHAOS_SEED`
//! (default 1) set the run;
//! `bench/chaos.sh N [SEED]` runs a long one. A violation prints the seed and the trial.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tiny_forge::Store as _;
use tiny_forge::store::Filter;

use crate::support::caddy::Caddy;
use crate::support::faulty_docker::{FaultyDocker, path};
use crate::support::npm::{Fault, NpmDouble, When};
use crate::support::{Run, Sandbox, Watch, docker, docker_ok};

const PW: &str = "chaos-pw";
/// The stall of a stalling NPM; the proxy timeout is shorter.
const STALL: Duration = Duration::from_millis(1500);

/// xorshift64*: small, deterministic, enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    DeployNew,
    Redeploy,
    Rollback,
    Remove,
    Prune,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    None,
    Term,
    Kill,
    Npm500,
    NpmStall,
    NpmActThenStall,
    RouteDeleted,
    RegistryGone,
    Crash,
    /// The engine answers 500 to container (and service) inspects, and now and then to lists.
    CouldNotLook,
    /// The verify phase: the new instance exits, or answers 500 on `/`, after the cut-over.
    Sick,
}

enum Backend {
    Npm(NpmDouble),
    Caddy(Caddy),
}

struct World {
    sb: Sandbox,
    /// The socket the operation under test reaches the engine through (issue 21's faults).
    faulty: FaultyDocker,
    backend: Backend,
    config: String,
    /// The project runs on the swarm engine: a slot is a service.
    swarm: bool,
    /// The verify phase: operations deploy to stage `verified`.
    verify: bool,
}

/// The `verified` stage's env line, which [`Chaos::Sick`] replaces.
const FINE: &str = "env = { MESSAGE = \"fine\" }";

impl World {
    fn new(prefix: &str, npm: bool, swarm: bool) -> Self {
        Self::with_verify(prefix, npm, swarm, false)
    }

    /// A world behind Caddy whose stage `verified` has a verify window.
    fn verified(prefix: &str) -> Self {
        Self::with_verify(prefix, false, false, true)
    }

    fn with_verify(prefix: &str, npm: bool, swarm: bool, verify: bool) -> Self {
        let sb = Sandbox::new(prefix);
        let (backend, tables) = if npm {
            let npm = NpmDouble::start("ops@example.com", PW);
            let t = format!(
                "{}timeout = \"500ms\"\n{}",
                crate::support::npm_proxy(&npm.url(), "ops@example.com", "TF_TEST_NPM_PASSWORD"),
                if swarm { "forward = \"name\"\n" } else { "" }
            );
            sb.watch(Watch::Npm(npm.view()));
            (Backend::Npm(npm), t)
        } else {
            let caddy = Caddy::start();
            let t = format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\ntimeout = \"500ms\"\n", caddy.admin_url());
            sb.watch(Watch::Caddy(caddy.admin_url()));
            (Backend::Caddy(caddy), t)
        };
        let mut crashy = format!(
            "[projects.{p}.stages.crashy]\ndefault_tag = \"v1\"\nenv = {{ READY_AFTER_MS = \"5000\", EXIT_AFTER_MS = \"150\" }}\n",
            p = sb.project
        );
        if let (true, Backend::Caddy(caddy)) = (verify, &backend) {
            crashy = format!(
                "{crashy}[projects.{p}.stages.verified]\ndefault_tag = \"v1\"\n{FINE}\nverify = {{ window = \"2s\", interval = \"500ms\", failures = 2, connect = \"127.0.0.1:{port}\" }}\n",
                p = sb.project,
                port = caddy.http_port
            );
        }
        let engine = if swarm {
            "\nengine = { kind = \"swarm\", endpoint_mode = \"dnsrr\" }\nhealth = { command = [\"/demo-app\", \"probe\"] }"
        } else {
            ""
        };
        sb.config_with(&tables, &format!("max_instances = 3{engine}"), &crashy);
        let config = std::fs::read_to_string(&sb.config).unwrap();
        Self { sb, backend, config, swarm, verify, faulty: FaultyDocker::start() }
    }

    /// The names of this world's instances as the engine holds them: managed containers, or
    /// on swarm, services.
    fn instances_in_engine(&self) -> BTreeSet<String> {
        if self.swarm {
            return crate::swarm::services(&self.sb.project).into_iter().collect();
        }
        self.sb.containers().into_iter().map(|l| l.split_whitespace().next().unwrap_or_default().to_owned()).collect()
    }

    /// Whether instance `name` runs: its container, or a task of its service.
    fn running(&self, name: &str) -> String {
        if self.swarm {
            let states =
                docker(&["service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", name]);
            return if states.lines().any(|l| l.starts_with("Running")) {
                "running".into()
            } else {
                states.trim().to_owned()
            };
        }
        docker(&["ps", "-a", "--filter", &format!("name=^{name}$"), "--format", "{{.State}}"]).trim().to_owned()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        let mut c = self.sb.tf(&[&["--output", "json"], args].concat());
        c.env("TF_TEST_NPM_PASSWORD", PW).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.env("DOCKER_HOST", self.faulty.host());
        c.spawn().unwrap()
    }

    fn prune(&self) -> Run {
        Run::from(self.sb.tf(&["--output", "json", "prune"]).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap())
    }

    fn live_tags(&self) -> Vec<String> {
        if !self.sb.state.exists() {
            return Vec::new();
        }
        self.sb
            .instances()
            .into_iter()
            .filter(|r| r.status.as_str() == "live" && r.stage == "dev")
            .map(|r| r.tag)
            .collect()
    }

    /// Live instances now: (tag, container, host name).
    fn live_slots(&self) -> Vec<(String, String, String)> {
        if !self.sb.state.exists() {
            return Vec::new();
        }
        self.sb
            .instances()
            .into_iter()
            .filter(|r| r.status.as_str() == "live")
            .map(|r| (r.tag, r.container_name, r.domain.unwrap_or_default()))
            .collect()
    }

    /// Of the instances live in `before`, those other than `target`'s slot that lost their
    /// row, their running container or their host.
    fn lost_since(&self, before: &[(String, String, String)], target: Option<&str>) -> Vec<String> {
        let rows = self.live_slots();
        let hosts = self.hosts();
        let mut lost = Vec::new();
        for (tag, container, domain) in before.iter().filter(|(t, ..)| Some(t.as_str()) != target) {
            if !rows.iter().any(|(_, c, _)| c == container) {
                lost.push(format!("a failed look took the row of live instance {container} ({tag})"));
            }
            let running = self.running(container);
            if running != "running" {
                lost.push(format!("a failed look took live instance {container} ({tag}): {running:?}"));
            }
            if !hosts.iter().any(|(d, ..)| d == domain) {
                lost.push(format!("a failed look took the host {domain} of live instance {container}"));
            }
        }
        lost
    }

    /// What is inconsistent now, one line each, naming the container or host it is about.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.sb.state.exists() {
            out.extend(self.instances_in_engine().into_iter().map(|c| format!("container {c} without a state file")));
            return out;
        }
        let store = self.sb.store();
        let state_id = store.state_id().unwrap();
        let rows = store.instances(&Filter::default()).unwrap();
        let live: Vec<_> = rows.iter().filter(|r| r.status.as_str() == "live").collect();
        let containers = self.instances_in_engine();
        let hosts = self.hosts();
        for r in &live {
            let domain = r.domain.clone().unwrap_or_default();
            let running = self.running(&r.container_name);
            if running != "running" {
                out.push(format!("live instance's container {} is {running:?}", r.container_name));
                continue;
            }
            let Some((marker, target)) = hosts.iter().find(|(d, ..)| *d == domain).map(|(_, m, t)| (m, t)) else {
                out.push(format!("live instance {} has no host {domain}", r.container_name));
                continue;
            };
            let slot = format!("{}/{}/{}", r.project, r.stage, r.tag);
            if marker.as_deref() != Some(&format!("{state_id} {slot}")) {
                out.push(format!("host {domain} is not marked ours for {slot}: {marker:?}"));
            }
            let want = match &self.backend {
                Backend::Npm(_) => format!("{}:{}", r.container_name, r.port.unwrap()),
                Backend::Caddy(_) => {
                    let ip = docker(&[
                        "inspect",
                        "-f",
                        &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.sb.network),
                        &r.container_name,
                    ]);
                    format!("{}:{}", ip.trim(), r.port.unwrap())
                }
            };
            if *target != want {
                out.push(format!("host {domain} forwards to {target}, not to {want} ({})", r.container_name));
            }
        }
        for c in &containers {
            if !live.iter().any(|r| &r.container_name == c) {
                out.push(format!("container {c} without a live instance"));
            }
        }
        for (d, ..) in &hosts {
            if !live.iter().any(|r| r.domain.as_deref() == Some(d)) {
                out.push(format!("host {d} without a live instance"));
            }
        }
        out
    }

    /// Marked hosts of this world: (domain, "state slot", target).
    fn hosts(&self) -> Vec<(String, Option<String>, String)> {
        self.sb
            .proxy_hosts()
            .into_iter()
            .map(|h| match &self.backend {
                Backend::Npm(_) => (
                    h["domain_names"][0].as_str().unwrap_or_default().to_owned(),
                    h["meta"]["tiny_forge_state"]
                        .as_str()
                        .map(|s| format!("{s} {}", h["meta"]["tiny_forge_slot"].as_str().unwrap_or_default())),
                    format!("{}:{}", h["forward_host"].as_str().unwrap_or_default(), h["forward_port"]),
                ),
                Backend::Caddy(_) => {
                    let vars = h["handle"].as_array().and_then(|hs| hs.iter().find(|x| x["handler"] == "vars"));
                    (
                        h["match"][0]["host"][0].as_str().unwrap_or_default().to_owned(),
                        vars.map(|v| {
                            format!(
                                "{} {}",
                                v["tiny_forge_state"].as_str().unwrap_or_default(),
                                v["tiny_forge_slot"].as_str().unwrap_or_default()
                            )
                        }),
                        h["handle"]
                            .as_array()
                            .and_then(|hs| hs.iter().find(|x| x["handler"] == "reverse_proxy"))
                            .and_then(|rp| rp["upstreams"][0]["dial"].as_str())
                            .unwrap_or_default()
                            .to_owned(),
                    )
                }
            })
            .collect()
    }
}

/// The names (containers) and domains (hosts) a result's `leftovers` list.
fn listed(stdout: &str) -> BTreeSet<String> {
    let Some(result) = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()) else {
        return BTreeSet::new();
    };
    result["leftovers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            l["name"]
                .as_str()
                .or(l["domain"].as_str())
                .or(l["container"].as_str())
                .or(l["what"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

fn kill(sig: &str, pid: u32) {
    // The process may have ended already: that is a fine moment too.
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).output();
}

/// One trial; returns its violations.
/// What one trial did, for the tally the run prints.
struct Outcome {
    op: Op,
    chaos: Chaos,
    /// The operation's exit code (-1 when a signal ended it before it could choose one).
    code: i32,
    violations: Vec<String>,
}

fn trial(world: &World, rng: &mut Rng, n: u64) -> Outcome {
    let npm = matches!(world.backend, Backend::Npm(_));
    let ops = [Op::DeployNew, Op::DeployNew, Op::Redeploy, Op::Redeploy, Op::Rollback, Op::Remove, Op::Prune];
    let op = *rng.pick(&ops);
    let faults: &[Chaos] = if npm {
        &[
            Chaos::None,
            Chaos::Term,
            Chaos::Kill,
            Chaos::Npm500,
            Chaos::NpmStall,
            Chaos::NpmActThenStall,
            Chaos::RegistryGone,
            Chaos::Crash,
            Chaos::CouldNotLook,
        ]
    } else {
        &[
            Chaos::None,
            Chaos::Term,
            Chaos::Kill,
            Chaos::RouteDeleted,
            Chaos::RegistryGone,
            Chaos::Crash,
            Chaos::CouldNotLook,
        ]
    };
    let mut chaos = *rng.pick(faults);
    let live = world.live_tags();
    let mut tag = match op {
        Op::DeployNew => format!("v{}", 1 + rng.below(10)),
        _ if live.is_empty() => "v1".to_owned(),
        _ => rng.pick(&live).clone(),
    };
    let mut stage = if chaos == Chaos::Crash { "crashy" } else { "dev" };
    let mut op = op;
    if world.verify {
        // Deploys to a few slots of the verified stage, so that most replace a live instance.
        op = *rng.pick(&[Op::DeployNew, Op::DeployNew, Op::DeployNew, Op::Prune]);
        chaos = *rng.pick(&[
            Chaos::None,
            Chaos::Sick,
            Chaos::Sick,
            Chaos::Kill,
            Chaos::Kill,
            Chaos::Term,
            Chaos::RouteDeleted,
            Chaos::CouldNotLook,
        ]);
        stage = "verified";
        tag = format!("v{}", 1 + rng.below(3));
    }
    let p = world.sb.project.clone();
    let args: Vec<&str> = match op {
        Op::DeployNew | Op::Redeploy => vec!["deploy", &p, stage, &tag],
        Op::Rollback => vec!["rollback", &p, "dev", &tag],
        Op::Remove => vec!["remove", &p, stage, &tag],
        Op::Prune => vec!["prune"],
    };
    // Drift the fault made before the operation ran is not the operation's to answer for.
    let live_before = world.live_slots();
    inject(world, chaos, rng);
    let before: BTreeSet<String> = world.problems().into_iter().collect();
    let child = world.spawn(&args);
    let pid = child.id();
    let killed = match chaos {
        Chaos::Term | Chaos::Kill => {
            std::thread::sleep(Duration::from_millis(50 + rng.below(2000)));
            kill(if chaos == Chaos::Term { "TERM" } else { "KILL" }, pid);
            chaos == Chaos::Kill
        }
        _ => false,
    };
    let out = Run::from(child.wait_with_output().unwrap());
    world.faulty.heal();
    world.sb.write_config(&world.config);
    if let Backend::Npm(d) = &world.backend {
        d.clear_faults(); // a fault the operation never reached must not hit the recovery
    }
    if matches!(chaos, Chaos::NpmStall | Chaos::NpmActThenStall) {
        std::thread::sleep(STALL + Duration::from_millis(300)); // let a stalled change land
    }
    let case = format!("trial {n}: {op:?} {} with {chaos:?}", args.join(" "));
    let mut violations = if killed { Vec::new() } else { judge(world, &case, &out, &before) };
    if chaos == Chaos::CouldNotLook {
        // Only what the operation was asked to take away may go.
        let target = match op {
            Op::Prune => None,
            _ => Some(tag.as_str()),
        };
        violations.extend(world.lost_since(&live_before, target).into_iter().map(|l| format!("{case}: {l}")));
    }
    violations.extend(recover(world, &case));
    Outcome { op, chaos, code: out.code, violations }
}

/// Makes `chaos` happen to `world` (before the operation; signals come during it).
fn inject(world: &World, chaos: Chaos, rng: &mut Rng) {
    let methods: [&'static str; 3] = ["POST", "PUT", "DELETE"];
    let method: &'static str = methods[usize::try_from(rng.below(3)).unwrap()];
    match (&world.backend, chaos) {
        (Backend::Npm(d), Chaos::Npm500) => {
            d.inject(When::Next(method, "/api/nginx/proxy-hosts"), Fault::Status500);
        }
        (Backend::Npm(d), Chaos::NpmStall) => {
            d.inject(When::Next(method, "/api/nginx/proxy-hosts"), Fault::Stall(STALL));
        }
        (Backend::Npm(d), Chaos::NpmActThenStall) => {
            d.inject(When::Next(method, "/api/nginx/proxy-hosts"), Fault::ActThenStall(STALL));
        }
        (Backend::Caddy(c), Chaos::RouteDeleted) => {
            if let Some(route) = crate::support::caddy::routes(&c.admin_url())
                .into_iter()
                .find_map(|r| r["@id"].as_str().map(str::to_owned))
            {
                delete_route(&c.admin_url(), &route);
            }
        }
        (_, Chaos::CouldNotLook) => {
            world.faulty.fail("GET", path::CONTAINER_INSPECT, 500);
            if world.swarm {
                world.faulty.fail("GET", path::SERVICE_INSPECT, 503);
            }
            if rng.below(2) == 0 {
                world.faulty.fail("GET", path::CONTAINER_LIST, 500);
                world.faulty.fail("GET", path::SERVICE_LIST, 503);
            }
        }
        (_, Chaos::Sick) => {
            let sick = if rng.below(2) == 0 {
                "env = { MESSAGE = \"sick\", EXIT_AFTER_MS = \"1200\" }"
            } else {
                "env = { MESSAGE = \"sick\", ROOT_STATUS = \"500\" }"
            };
            world.sb.write_config(&world.config.replace(FINE, sick));
        }
        (_, Chaos::RegistryGone) => {
            let dead = world.config.replace(&crate::support::images().repo, "127.0.0.1:1/tf-test/demo");
            world.sb.write_config(&dead);
        }
        _ => {}
    }
}

/// Is the exit code honest? 0, 1, 2 and 130 leave nothing inconsistent; 3 lists all of it.
fn judge(world: &World, case: &str, out: &Run, before: &BTreeSet<String>) -> Vec<String> {
    let mut violations = Vec::new();
    // Ended by the signal before it could catch it: no exit code to judge.
    if out.code < 0 {
        return violations;
    }
    let problems: Vec<String> = world.problems().into_iter().filter(|p| !before.contains(p)).collect();
    match out.code {
        0 | 1 | 2 | 130 => {
            for p in problems {
                violations.push(format!("{case}: exit {} but {p}", out.code));
            }
        }
        3 => {
            let named = listed(&out.stdout);
            if named.is_empty() {
                violations.push(format!("{case}: exit 3 without listing what is left:\n{}", out.stdout));
            }
            for p in problems {
                if !named.iter().any(|x| p.contains(x.as_str())) {
                    violations.push(format!("{case}: exit 3, and {p}, which it did not list ({named:?})"));
                }
            }
        }
        other => violations.push(format!("{case}: exit {other}\n{}", out.stderr)),
    }
    violations
}

/// Recovers with `prune`; then the invariants must hold.
fn recover(world: &World, case: &str) -> Vec<String> {
    let mut violations = Vec::new();
    let mut pruned = world.prune();
    if pruned.code != 0 {
        std::thread::sleep(STALL);
        pruned = world.prune();
    }
    if pruned.code != 0 {
        violations.push(format!("{case}: prune after it exits {}:\n{}{}", pruned.code, pruned.stdout, pruned.stderr));
    }
    for p in world.problems() {
        violations.push(format!("{case}: after prune: {p}"));
    }
    if !world.sb.state.exists() {
        return violations;
    }
    let store = world.sb.store();
    if let Ok(left) = store.leftovers(&Filter::default())
        && !left.is_empty()
    {
        violations.push(format!("{case}: after prune, leftovers recorded: {left:?}"));
    }
    if world.sb.deploys().iter().any(|d| d.status.as_str() == "running") {
        violations.push(format!("{case}: after prune, a deploy is still marked running"));
    }
    violations
}

fn delete_route(admin: &str, id: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        crate::support::client().delete(format!("{admin}/id/{id}")).send().await.unwrap();
    });
}

/// The chaos run: `TF_CHAOS_TRIALS` trials (default 30) from `TF_CHAOS_SEED` (default 1),
/// alternating between a world behind the NPM double and one behind a real Caddy.
#[test]
fn chaos_every_trial_keeps_the_invariants() {
    let trials: u64 = std::env::var("TF_CHAOS_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let seed: u64 = std::env::var("TF_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let worlds = [World::new("chaosn", true, false), World::new("chaosc", false, false)];
    run_trials(&worlds, trials, seed);
}

/// The verify phase (issue 24): `TF_CHAOS_VERIFY_TRIALS` trials (default 6) from
/// `TF_CHAOS_SEED`, deploying to a stage with a verify window behind Caddy.
#[test]
fn chaos_verify_phase_every_trial_keeps_the_invariants() {
    let trials: u64 = std::env::var("TF_CHAOS_VERIFY_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("TF_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    run_trials(&[World::verified("chaosv")], trials, seed);
}

/// On the swarm engine: under `swarm::`, so that `scripts/test` runs it in the swarm pass.
mod swarm {
    use super::{World, run_trials};

    /// The chaos invariants on services (issue 14): `TF_CHAOS_SWARM_TRIALS` trials (default 10) from
    /// `TF_CHAOS_SEED`, against a project on the swarm engine behind the NPM double.
    #[test]
    fn chaos_on_swarm_services_every_trial_keeps_the_invariants() {
        let trials: u64 = std::env::var("TF_CHAOS_SWARM_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
        let seed: u64 = std::env::var("TF_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        let _mode = crate::swarm::SwarmMode::hold();
        let world = World::new("chaoss", true, true);
        let _services = crate::swarm::Services(world.sb.project.clone());
        run_trials(std::slice::from_ref(&world), trials, seed);
    }
}

/// Runs `trials` trials from `seed`, taking the worlds in turn; prints the tally; fails on any
/// violation.
fn run_trials(worlds: &[World], trials: u64, seed: u64) {
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let began = Instant::now();
    let mut violations = Vec::new();
    let mut tally: [BTreeMap<String, u64>; 3] = Default::default();
    for n in 0..trials {
        let world = &worlds[usize::try_from(n).unwrap() % worlds.len()];
        let o = trial(world, &mut rng, n);
        for (map, key) in tally.iter_mut().zip([format!("{:?}", o.op), format!("{:?}", o.chaos), o.code.to_string()]) {
            *map.entry(key).or_default() += 1;
        }
        violations.extend(o.violations);
    }
    eprintln!(
        "chaos: {trials} trials, seed {seed}, {} violations, {:.0}s",
        violations.len(),
        began.elapsed().as_secs_f64()
    );
    for (what, map) in ["operations", "faults", "exit codes"].iter().zip(&tally) {
        let list: Vec<String> = map.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!("chaos: {what}: {}", list.join(", "));
    }
    for w in worlds {
        assert!(docker_ok(&["network", "inspect", &w.sb.network]));
    }
    assert!(violations.is_empty(), "seed {seed}:\n{}", violations.join("\n"));
}
