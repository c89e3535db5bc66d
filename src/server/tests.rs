//! The router without a network or an engine: requests go through `tower`'s `oneshot`, and what
//! the handlers hand to the executor is read from the command channel. Pins the security
//! contract: who is refused, in what order, and that refused requests queue nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt as _;

use super::executor::{Command, Shared};
use super::{Api, LiveConfig, Phase};
use crate::store::{NewToken, SqliteStore};

/// Receivers: (name, kind, secret, registry).
const RECEIVERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("reg", "distribution", "s3cret-token", Some("registry.example.com")),
    ("gh", "github", "gh-hmac-key", None),
    ("hub", "dockerhub", "long-random-path-token", None),
    ("gitea", "gitea", "gitea-key", Some("git.example.com")),
    ("harbor", "harbor", "Basic aGFyYm9yOnNlY3JldA==", Some("harbor.example.com")),
    ("quay", "quay", "quay-path-token", Some("quay.io")),
    ("gitlab", "gitlab", "gitlab-token", Some("registry.gitlab.example.com")),
];

const CONFIG: &str = r#"
[server]
max_body_bytes = 8192
auth_failures = 8
trusted_proxies = ["127.0.0.1"]

[projects.app]
image = "registry.example.com/team/app"
port = 8080
[projects.app.stages.dev]
[[projects.app.stages.dev.on_push]]
tags = "*"
[projects.app.stages.prod]

[projects.gh]
image = "ghcr.io/example-org/app"
port = 8080
[projects.gh.stages.dev]
[[projects.gh.stages.dev.on_push]]
tags = "1.*"

[projects.gitea]
image = "git.example.com/example-org/app"
port = 8080
[projects.gitea.stages.dev]
[[projects.gitea.stages.dev.on_push]]
tags = "1.4.2"

[projects.harbor]
image = "harbor.example.com/team/app"
port = 8080
[projects.harbor.stages.dev]
[[projects.harbor.stages.dev.on_push]]
tags = "1.4.2"

[projects.quay]
image = "quay.io/exampleorg/app"
port = 8080
[projects.quay.stages.dev]
[[projects.quay.stages.dev.on_push]]
tags = "1.4.2"

[projects.gitlab]
image = "registry.gitlab.example.com/group/project/app"
port = 8080
[projects.gitlab.stages.dev]
[[projects.gitlab.stages.dev.on_push]]
tags = "v2.*"

[projects.hub]
image = "exampleorg/app"
port = 8080
[projects.hub.stages.dev]
[[projects.hub.stages.dev.on_push]]
tags = "1.4.2"
"#;

macro_rules! sample {
    ($name:literal) => {
        &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/", $name))[..]
    };
}

struct Bed {
    router: axum::Router,
    commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    phase: watch::Sender<Phase>,
    config: std::path::PathBuf,
    /// A token that may only deploy (no read).
    deployer: &'static str,
    _dir: tempfile::TempDir,
}

const TOKEN: &str = "tf_test-token-dev-only";
const DEPLOY_ONLY: &str = "tf_test-token-deploy-without-read";

/// The `[[receivers]]` tables, their secrets in files under `dir`.
fn receivers_toml(dir: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (name, kind, secret, registry) in RECEIVERS {
        let file = dir.join(format!("{name}.secret"));
        std::fs::write(&file, secret).unwrap();
        write!(text, "[[receivers]]\nname = \"{name}\"\nkind = \"{kind}\"\nsecret_file = \"{}\"\n", file.display())
            .unwrap();
        if let Some(r) = registry {
            writeln!(text, "registry = \"{r}\"").unwrap();
        }
    }
    text
}

fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-forge.toml");
    std::fs::write(&path, format!("{CONFIG}\n{}", receivers_toml(dir.path()))).unwrap();
    let live = Arc::new(LiveConfig::load(&path, super::live::quiet()).unwrap());
    let store = SqliteStore::in_memory().unwrap();
    let hash = super::auth::hash(TOKEN);
    let (app, dev) = (["app".to_owned()], ["dev".to_owned()]);
    let actions = ["deploy".to_owned(), "read".to_owned()];
    store.create_token(&NewToken { name: "ci", hash: &hash, projects: &app, stages: &dev, actions: &actions }).unwrap();
    let hash = super::auth::hash(DEPLOY_ONLY);
    let deploy = ["deploy".to_owned()];
    store.create_token(&NewToken { name: "d", hash: &hash, projects: &app, stages: &dev, actions: &deploy }).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (phase, phases) = watch::channel(Phase::Serving);
    let shared = Arc::new(Shared::new());
    let api = Api::new(Arc::clone(&shared), live, store, tx, phases);
    Bed { router: api.router(), commands: rx, shared, phase, config: path, deployer: DEPLOY_ONLY, _dir: dir }
}

impl Bed {
    async fn send(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn queued(&mut self) -> Vec<Command> {
        std::iter::from_fn(|| self.commands.try_recv().ok()).collect()
    }
}

fn post(uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Request<Body> {
    let mut r = Request::post(uri);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::from(body.to_vec())).unwrap()
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        write!(s, "{b:02x}").unwrap();
        s
    });
    format!("sha256={hex}")
}

fn pushes(cmds: &[Command]) -> Vec<(String, Option<String>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Push { candidates, .. } => Some(candidates),
            _ => None,
        })
        .flatten()
        .map(|c| (c.slot.to_string(), c.digest.clone()))
        .collect()
}

#[tokio::test]
async fn distribution_is_refused_without_its_header_and_queues_exactly_the_tagged_index_with_it() {
    let mut b = bed();
    let body = sample!("distribution-push.json");
    for h in [vec![], vec![("authorization", "Bearer wrong")], vec![("authorization", "Bearer s3cret-toke")]] {
        assert_eq!(b.send(post("/hooks/reg", &h, body)).await.0, StatusCode::UNAUTHORIZED);
    }
    assert!(b.queued().is_empty(), "nothing queued for refused requests");
    let (status, _) = b.send(post("/hooks/reg", &[("authorization", "Bearer s3cret-token")], body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = b.queued();
    assert_eq!(
        pushes(&queued),
        [(
            "app/dev:1.4.2".to_owned(),
            Some("sha256:ee056287c496a8d3dda18dc79f7a570f0585cd1a410066273d1b9f87f938e599".to_owned())
        )]
    );
    let Command::Push { candidates, .. } = &queued[0] else { panic!() };
    assert_eq!(candidates[0].actor, "webhook:reg:a0eaf6a5-3001-5126-8e31-5c59b975bcb5");
}

#[tokio::test]
async fn the_same_body_again_is_a_replay_and_queues_nothing_even_with_other_headers() {
    let mut b = bed();
    let body = sample!("distribution-push.json");
    let auth = ("authorization", "Bearer s3cret-token");
    assert_eq!(b.send(post("/hooks/reg", &[auth], body)).await.0, StatusCode::ACCEPTED);
    assert_eq!(pushes(&b.queued()).len(), 1);
    let (status, text) = b.send(post("/hooks/reg", &[auth, ("x-request-id", "another")], body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("replayed"), "{text}");
    assert!(b.queued().is_empty(), "a replay queues nothing");
    // A GitHub body resent with a new (unsigned) delivery id is a replay too.
    let gh = sample!("github-push.json");
    let sig = sign("gh-hmac-key", gh);
    let ev = ("x-github-event", "package");
    let first = [ev, ("x-hub-signature-256", sig.as_str()), ("x-github-delivery", "d-1")];
    assert_eq!(b.send(post("/hooks/gh", &first, gh)).await.0, StatusCode::ACCEPTED);
    let again = [ev, ("x-hub-signature-256", sig.as_str()), ("x-github-delivery", "replay-2")];
    assert_eq!(b.send(post("/hooks/gh", &again, gh)).await.0, StatusCode::OK);
    assert_eq!(pushes(&b.queued()).len(), 1);
}

#[tokio::test]
async fn every_resource_of_one_harbor_event_is_queued() {
    let mut b = bed();
    let body = br#"{"specversion":"1.0","id":"ev-1","type":"harbor.artifact.pushed","data":{
        "resources":[{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","tag":"1.4.2","resource_url":"harbor.example.com/team/app:1.4.2"},
                     {"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","tag":"1.4.3","resource_url":"harbor.example.com/team/app:1.4.3"}],
        "repository":{"repo_full_name":"team/app"}}}"#;
    let text = std::fs::read_to_string(&b.config).unwrap().replace("tags = \"1.4.2\"", "tags = \"1.4.*\"");
    std::fs::write(&b.config, text).unwrap();
    let (status, text) = b.send(post("/hooks/harbor", &[("authorization", "Basic aGFyYm9yOnNlY3JldA==")], body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let slots: Vec<String> = pushes(&b.queued()).into_iter().map(|p| p.0).collect();
    assert_eq!(slots, ["harbor/dev:1.4.2", "harbor/dev:1.4.3"]);
}

#[tokio::test]
async fn a_receiver_without_registry_does_not_believe_the_host_in_the_payload() {
    let mut b = bed();
    // `reg` is bound to registry.example.com: a payload claiming ghcr.io is taken as an event
    // about registry.example.com, so it cannot trigger the ghcr.io project `gh`.
    let body = br#"{"events":[{"id":"e-host","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","repository":"example-org/app",
        "url":"https://ghcr.io/v2/example-org/app/manifests/sha256:3333","tag":"1.4.2"},"request":{"host":"ghcr.io"}}]}"#;
    let (status, text) = b.send(post("/hooks/reg", &[("authorization", "Bearer s3cret-token")], body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains("no tag rule matches"), "{text}");
    assert!(pushes(&b.queued()).is_empty());
}

#[tokio::test]
async fn an_authenticated_distribution_request_always_gets_a_2xx() {
    let mut b = bed();
    let auth = [("authorization", "Bearer s3cret-token")];
    for body in [&b"not json"[..], b"{}", br#"{"events":[{"action":"pull"}]}"#, &vec![b'x'; 20_000]] {
        let (status, _) = b.send(post("/hooks/reg", &auth, body)).await;
        assert!(status.is_success(), "{status} for a body of {} bytes", body.len());
    }
    assert!(pushes(&b.queued()).is_empty());
}

#[tokio::test]
async fn github_needs_a_signature_over_the_exact_bytes() {
    let mut b = bed();
    let body = sample!("github-push.json");
    let ev = ("x-github-event", "package");
    let good = sign("gh-hmac-key", body);
    let mut changed = body.to_vec();
    changed[100] ^= 1;
    assert_eq!(b.send(post("/hooks/gh", &[ev], body)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(b.send(post("/hooks/gh", &[ev, ("x-hub-signature-256", "")], body)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.send(post("/hooks/gh", &[ev, ("x-hub-signature-256", &good)], &changed)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(b.queued().is_empty());
    assert_eq!(b.send(post("/hooks/gh", &[ev, ("x-hub-signature-256", &good)], body)).await.0, StatusCode::ACCEPTED);
    assert_eq!(pushes(&b.queued())[0].0, "gh/dev:1.4.2");
    let big = vec![b' '; 20_000];
    let sig = sign("gh-hmac-key", &big);
    let (status, _) = b.send(post("/hooks/gh", &[ev, ("x-hub-signature-256", &sig)], &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn dockerhub_authenticates_by_its_secret_path_and_leaves_the_digest_to_resolve() {
    let mut b = bed();
    let body = sample!("dockerhub-push.json");
    assert_eq!(b.send(post("/hooks/hub", &[], body)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(b.send(post("/hooks/hub/long-random-path-toke", &[], body)).await.0, StatusCode::UNAUTHORIZED);
    assert!(b.queued().is_empty());
    assert_eq!(b.send(post("/hooks/hub/long-random-path-token", &[], body)).await.0, StatusCode::ACCEPTED);
    assert_eq!(pushes(&b.queued()), [("hub/dev:1.4.2".to_owned(), None)]);
}

/// A request from `peer` (as the listener records it), with `headers`.
fn from(peer: &str, mut req: Request<Body>) -> Request<Body> {
    let addr: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(super::tls::Peer(addr)));
    req
}

#[tokio::test]
async fn a_client_over_the_failure_cap_still_gets_in_with_the_right_secret_and_others_are_not_capped() {
    let mut b = bed();
    let body = sample!("distribution-push.json");
    let bad = || from("198.51.100.7:4000", post("/hooks/reg", &[], body));
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(b.send(bad()).await.0.as_u16());
    }
    assert_eq!(&codes[..8], [401; 8]);
    assert_eq!(&codes[8..], [429, 429], "{codes:?}");
    let good = from("198.51.100.7:4001", post("/hooks/reg", &[("authorization", "Bearer s3cret-token")], body));
    assert_eq!(b.send(good).await.0, StatusCode::ACCEPTED, "a valid credential is never refused");
    assert_eq!(pushes(&b.queued()).len(), 1);
    // Another client's failures are its own.
    let other = from("198.51.100.8:4000", post("/hooks/reg", &[], body));
    assert_eq!(b.send(other).await.0, StatusCode::UNAUTHORIZED);
    // The API too: a valid token from the capped client is answered.
    let bearer = format!("Bearer {TOKEN}");
    let get = Request::get("/v1/deploys").header("authorization", &bearer).body(Body::empty()).unwrap();
    assert_eq!(b.send(from("198.51.100.7:4002", get)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let b = bed();
    let get = |peer: &str, xff: &str, token: &str| {
        let req = Request::get("/v1/deploys")
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", xff)
            .body(Body::empty())
            .unwrap();
        from(peer, req)
    };
    // Through the trusted proxy (127.0.0.1): client A fails until capped.
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(b.send(get("127.0.0.1:5000", "203.0.113.1", "tf_wrong")).await.0.as_u16());
    }
    assert!(codes.ends_with(&[429, 429]), "{codes:?}");
    // Client B through the same proxy is not.
    assert_eq!(b.send(get("127.0.0.1:5000", "203.0.113.2", "tf_wrong")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(b.send(get("127.0.0.1:5000", "203.0.113.2", TOKEN)).await.0, StatusCode::OK);
    // A forged entry left of the proxy's own does not move A to another bucket.
    assert_eq!(
        b.send(get("127.0.0.1:5000", "203.0.113.99, 203.0.113.1", "tf_wrong")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An untrusted peer's header is ignored: it is counted as itself.
    assert_eq!(b.send(get("198.51.100.9:1", "203.0.113.2", "tf_wrong")).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_needs_a_token_within_its_scope() {
    let mut b = bed();
    let body = br#"{"project":"app","stage":"dev","tag":"v1"}"#;
    let json = ("content-type", "application/json");
    assert_eq!(b.send(post("/v1/deploys", &[json], body)).await.0, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("authorization", bearer.as_str());
    let prod = br#"{"project":"app","stage":"prod"}"#;
    let (status, text) = b.send(post("/v1/deploys", &[json, auth], prod)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("\"exit_code\":2"), "{text}");
    let (status, _) = b.send(post("/v1/removals", &[json, auth], body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "remove was not granted");
    assert!(b.queued().is_empty());
    let (status, text) = b.send(post("/v1/deploys", &[json, auth], body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let queued = b.queued();
    let Command::Run(w) = &queued[0] else { panic!("{queued:?}") };
    assert_eq!((w.project.as_str(), w.stage.as_str(), w.actor.as_str()), ("app", "dev", "token:ci"));
    let (status, text) =
        b.send(post("/v1/deploys", &[json, auth], br#"{"project":"app","stage":"dev","evil":1}"#)).await;
    assert!(status.is_client_error(), "unknown fields are refused: {text}");
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let b = bed();
    let (status, text) = b.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let rev = super::live::revision(&std::fs::read(&b.config).unwrap());
    assert!(text.starts_with("ok\n") && text.contains(&format!("config {rev} ")), "{text}");
    let (status, text) = b.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("tiny_forge_queue_depth 0"), "{text}");
}

/// (uri, headers, body, the slot it queues)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8], &'a str);

#[tokio::test]
async fn every_sample_body_goes_through_its_receiver_and_nothing_without_its_secret() {
    let mut b = bed();
    let gitea = sample!("gitea-push.json");
    let gitea_sig = sign("gitea-key", gitea);
    let gitea_hex = gitea_sig.trim_start_matches("sha256=").to_owned();
    let cases: Vec<Case<'_>> = vec![
        (
            "/hooks/gitea",
            vec![("x-gitea-event", "package"), ("x-gitea-signature", &gitea_hex)],
            gitea,
            "gitea/dev:1.4.2",
        ),
        (
            "/hooks/harbor",
            vec![("authorization", "Basic aGFyYm9yOnNlY3JldA==")],
            sample!("harbor-push.json"),
            "harbor/dev:1.4.2",
        ),
        ("/hooks/quay/quay-path-token", vec![], sample!("quay-push.json"), "quay/dev:1.4.2"),
        (
            "/hooks/gitlab",
            vec![("authorization", "Bearer gitlab-token")],
            sample!("gitlab-push.json"),
            "gitlab/dev:v2.0.0",
        ),
    ];
    for (uri, headers, body, slot) in &cases {
        // Without the credential: refused, nothing queued.
        let bare: Vec<(&str, &str)> = headers.iter().filter(|(k, _)| k.starts_with("x-gitea-event")).copied().collect();
        let bare_uri = uri.trim_end_matches("/quay-path-token");
        assert_eq!(b.send(post(bare_uri, &bare, body)).await.0, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(b.queued().is_empty(), "{uri}");
        let (status, text) = b.send(post(uri, headers, body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{uri}: {text}");
        assert_eq!(pushes(&b.queued()).into_iter().map(|p| p.0).collect::<Vec<_>>(), [(*slot).to_owned()], "{uri}");
    }
    // Gitea with one byte changed: refused.
    let mut changed = gitea.to_vec();
    changed[20] ^= 1;
    let h = [("x-gitea-event", "package"), ("x-gitea-signature", gitea_hex.as_str())];
    assert_eq!(b.send(post("/hooks/gitea", &h, &changed)).await.0, StatusCode::UNAUTHORIZED);
    // An unknown receiver name is a 404 that counts as a failed authentication.
    assert_eq!(b.send(post("/hooks/nosuch", &[], b"{}")).await.0, StatusCode::NOT_FOUND);
    assert!(b.queued().is_empty());
}

fn get(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_token_that_may_deploy_but_not_read_can_still_read_the_job_it_submitted() {
    let mut b = bed();
    let token = b.deployer;
    let bearer = format!("Bearer {token}");
    let json = ("content-type", "application/json");
    let (status, text) =
        b.send(post("/v1/deploys", &[json, ("authorization", &bearer)], br#"{"project":"app","stage":"dev"}"#)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let job: super::wire::JobView = serde_json::from_str(&text).unwrap();
    assert_eq!(b.send(get(&format!("/v1/jobs/{}", job.id), token)).await.0, StatusCode::OK);
    // A job it did not submit stays out of reach.
    let other = b.shared.jobs.create("deploy", "app/dev:main".into(), None);
    assert_eq!(b.send(get(&format!("/v1/jobs/{}", other.id), token)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.queued().len(), 1);
}

#[tokio::test]
async fn a_retried_submission_with_the_same_idempotency_key_starts_one_job() {
    let mut b = bed();
    let bearer = format!("Bearer {TOKEN}");
    let h = [("content-type", "application/json"), ("authorization", bearer.as_str()), ("idempotency-key", "k-1")];
    let body = br#"{"project":"app","stage":"dev"}"#;
    let (s1, t1) = b.send(post("/v1/deploys", &h, body)).await;
    let (s2, t2) = b.send(post("/v1/deploys", &h, body)).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    let (j1, j2): (super::wire::JobView, super::wire::JobView) =
        (serde_json::from_str(&t1).unwrap(), serde_json::from_str(&t2).unwrap());
    assert_eq!(j1.id, j2.id);
    assert_eq!(b.queued().len(), 1, "one job runs");
}

#[tokio::test]
async fn while_draining_new_work_gets_503_and_job_reads_are_still_answered() {
    let mut b = bed();
    let bearer = format!("Bearer {TOKEN}");
    let json = ("content-type", "application/json");
    let job = b.shared.jobs.create("deploy", "app/dev:main".into(), None);
    b.phase.send_replace(Phase::Draining);
    let (status, text) =
        b.send(post("/v1/deploys", &[json, ("authorization", &bearer)], br#"{"project":"app","stage":"dev"}"#)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let hook = post("/hooks/reg", &[("authorization", "Bearer s3cret-token")], sample!("distribution-push.json"));
    assert_eq!(b.send(hook).await.0, StatusCode::SERVICE_UNAVAILABLE, "the sender retries after the restart");
    assert!(b.queued().is_empty());
    assert_eq!(b.send(get(&format!("/v1/jobs/{}", job.id), TOKEN)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_edit_of_the_config_file_reaches_the_next_request() {
    let b = bed();
    let (status, _) = b.send(post("/hooks/hub/long-random-path-token", &[], sample!("dockerhub-push.json"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let text = std::fs::read_to_string(&b.config).unwrap();
    // The rule as the file says now decides the next push.
    let edited = text.replace(
        "[[projects.hub.stages.dev.on_push]]\ntags = \"1.4.2\"",
        "[[projects.hub.stages.dev.on_push]]\ntags = \"9.*\"",
    );
    assert_ne!(edited, text);
    std::fs::write(&b.config, &edited).unwrap();
    let (status, text) = b.send(post("/hooks/hub/long-random-path-token", &[], sample!("dockerhub-push.json"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(text.contains("no tag rule matches"), "the rule as the file says now: {text}");
    // An invalid edit keeps the last valid revision, and /healthz says why.
    std::fs::write(&b.config, format!("{edited}\n[projects.app.stages.dev]\nport = \"x\"\n")).unwrap();
    let (status, health) = b.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!health.contains("config_error"), "not read yet: {health}");
    let (status, _) = b.send(post("/hooks/hub/long-random-path-token", &[], sample!("dockerhub-push.json"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "still served by the last valid revision");
    let (_, health) = b.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert!(health.contains("config_error"), "{health}");
}

/// Answers the approval commands of `b` from a real queue holding one push of `digest` into
/// `slot`, until the channel closes.
fn approvals_from_a_queue(commands: mpsc::UnboundedReceiver<Command>, slot: (&str, &str), digest: &str) {
    use super::queue::{Candidate, Queue};
    use crate::domain::{ProjectName, Slot, StageName, Tag, Trigger};
    let mut q = Queue::new(std::time::Duration::from_secs(1));
    let c = Candidate {
        slot: Slot {
            project: ProjectName::new(slot.0).unwrap(),
            stage: StageName::new(slot.1).unwrap(),
            tag: Tag::new("v1").unwrap(),
        },
        image: "registry.example.com/team/app".into(),
        tag: Tag::new("v1").unwrap(),
        digest: Some(digest.into()),
        actor: "webhook:reg:e1".into(),
        trigger: Trigger::Webhook,
        approval: true,
    };
    q.offer(c, tokio::time::Instant::now());
    let mut commands = commands;
    tokio::spawn(async move {
        while let Some(cmd) = commands.recv().await {
            match cmd {
                Command::Approvals(reply) => {
                    let _ = reply.send(q.held());
                }
                Command::Approve { id, digest, approver, reply } => {
                    let _ = reply.send(q.approve(id, &digest, &approver, tokio::time::Instant::now()));
                }
                _ => {}
            }
        }
    });
}

#[tokio::test]
async fn an_approval_names_the_digest_and_a_push_outside_the_scope_is_a_404() {
    let digest = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
    let b = bed();
    let Bed { router, commands, _dir, .. } = b;
    approvals_from_a_queue(commands, ("app", "prod"), digest);
    let send = |req: Request<Body>| {
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let bearer = format!("Bearer {TOKEN}");
    let h = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    // app/prod is outside the token's scope: the same 404 as for no push at all.
    let (status, text) = send(post("/v1/approvals/1", &h, format!("{{\"digest\":\"{digest}\"}}").as_bytes())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(!text.contains("prod"), "names nothing of another stage: {text}");
    let (status, _) = send(post("/v1/approvals/99", &h, b"{\"digest\":\"x\"}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_approval_of_another_digest_is_refused_and_the_right_one_releases_the_push() {
    let digest = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
    let b = bed();
    let Bed { router, commands, _dir, .. } = b;
    approvals_from_a_queue(commands, ("app", "dev"), digest);
    let send = |req: Request<Body>| {
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let bearer = format!("Bearer {TOKEN}");
    let h = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    let (status, text) = send(post("/v1/approvals/1", &[("authorization", bearer.as_str())], b"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the digest is required: {text}");
    assert!(text.contains(digest), "{text}");
    let other = "sha256:6666666666666666666666666666666666666666666666666666666666666666";
    let (status, text) = send(post("/v1/approvals/1", &h, format!("{{\"digest\":\"{other}\"}}").as_bytes())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    let (status, text) = send(post("/v1/approvals/1", &h, format!("{{\"digest\":\"{digest}\"}}").as_bytes())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let (status, _) = send(post("/v1/approvals/1", &h, format!("{{\"digest\":\"{digest}\"}}").as_bytes())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "released once");
}
