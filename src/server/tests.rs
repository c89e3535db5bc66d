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

use super::executor::{Codes, Command, Shared};
use super::receivers::Authenticator;
use super::{Api, Receiver};
use crate::config::ReceiverKind;
use crate::secret::Secret;
use crate::store::{NewToken, SqliteStore};

const CONFIG: &str = r#"
[server]
max_body_bytes = 8192
auth_failures = 8

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

fn codes() -> Codes {
    Codes { outcome: |_| 0, error: |_| 4, record: |_| Some(0), ok: 0, usage: 2, incomplete: 3 }
}

struct Bed {
    router: axum::Router,
    commands: mpsc::UnboundedReceiver<Command>,
    _dir: tempfile::TempDir,
}

const TOKEN: &str = "tf_test-token-dev-only";

fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-forge.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let config = Arc::new(crate::config::load(&path).unwrap());
    let store = SqliteStore::in_memory().unwrap();
    let hash = super::auth::hash(TOKEN);
    let (app, dev) = (["app".to_owned()], ["dev".to_owned()]);
    let actions = ["deploy".to_owned(), "read".to_owned()];
    store.create_token(&NewToken { name: "ci", hash: &hash, projects: &app, stages: &dev, actions: &actions }).unwrap();
    let receivers = vec![
        receiver("reg", ReceiverKind::Distribution, "s3cret-token"),
        receiver("gh", ReceiverKind::Github, "gh-hmac-key"),
        receiver("hub", ReceiverKind::Dockerhub, "long-random-path-token"),
        Receiver { registry: Some("git.example.com".into()), ..receiver("gitea", ReceiverKind::Gitea, "gitea-key") },
        receiver("harbor", ReceiverKind::Harbor, "Basic aGFyYm9yOnNlY3JldA=="),
        receiver("quay", ReceiverKind::Quay, "quay-path-token"),
        receiver("gitlab", ReceiverKind::Gitlab, "gitlab-token"),
    ];
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopping) = watch::channel(false);
    std::mem::forget(stop);
    let api = Api::new(Arc::new(Shared::new(codes())), config, store, tx, receivers, stopping);
    Bed { router: api.router(), commands: rx, _dir: dir }
}

fn receiver(name: &str, kind: ReceiverKind, secret: &str) -> Receiver {
    Receiver {
        name: name.into(),
        kind,
        auth: Authenticator::for_kind(kind, Secret::new(secret.into())),
        registry: None,
    }
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
    let Command::Push { delivery, .. } = &queued[0] else { panic!() };
    assert_eq!(delivery.as_deref(), Some("reg:a0eaf6a5-3001-5126-8e31-5c59b975bcb5"), "replays are keyed");
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

#[tokio::test]
async fn an_address_that_fails_too_often_is_refused_even_with_the_right_secret() {
    let b = bed();
    let body = sample!("distribution-push.json");
    for _ in 0..8 {
        assert_eq!(b.send(post("/hooks/reg", &[], body)).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = b.send(post("/hooks/reg", &[("authorization", "Bearer s3cret-token")], body)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
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
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok\n"));
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
