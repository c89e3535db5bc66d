//! The web page's security contract, through the router without a socket (`oneshot`), with a
//! stand-in executor that answers `list` and the held pushes and records the work it is sent:
//! session fixation, cookie flags, CSRF, scope, logout, revocation, the failed-auth cap.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt as _;

use crate::domain::{ProjectName, Slot, StageName, Tag, Trigger};
use crate::ops::list::{InstanceItem, ListItem};
use crate::server::executor::{Command, Shared, Work};
use crate::server::queue::{Candidate, Held};
use crate::server::tls::Peer;
use crate::server::{Api, LiveConfig, Phase};
use crate::store::{NewDeploy, NewToken, SqliteStore, Store as _};

const CONFIG: &str = r#"
[server]
auth_failures = 3
trusted_proxies = ["10.0.0.1"]

[projects.shop]
image = "registry.example.com/shop"
port = 8080
[projects.shop.stages.dev]
[projects.shop.stages.prod]
"#;

/// May read and deploy `shop/dev` only.
const DEV: &str = "tf_ui-test-dev-read-deploy";
/// May do everything everywhere.
const ADMIN: &str = "tf_ui-test-admin";
const HOST: &str = "forge.example.com";
const ORIGIN: &str = "http://forge.example.com";

struct Bed {
    router: axum::Router,
    api: Api,
    work: Arc<Mutex<Vec<Work>>>,
    prod_deploy: i64,
    _phase: watch::Sender<Phase>,
    _dir: tempfile::TempDir,
}

fn slot(project: &str, stage: &str, tag: &str) -> Slot {
    Slot {
        project: ProjectName::new(project).unwrap(),
        stage: StageName::new(stage).unwrap(),
        tag: Tag::new(tag).unwrap(),
    }
}

fn instance(stage: &str, tag: &str, deploy_id: i64) -> ListItem {
    ListItem::Instance(InstanceItem {
        container: format!("tf-shop-{stage}-{tag}"),
        container_state: "running".into(),
        created_at: crate::fmt::rfc3339(crate::store::now_ms()),
        deploy_id,
        digest: format!("sha256:{stage}{tag}0123456789abcdef"),
        health: None,
        project: "shop".into(),
        stage: stage.into(),
        status: crate::domain::InstanceStatus::Live,
        tag: tag.into(),
        url: Some(format!("http://shop-{stage}-{tag}.test.local")),
    })
}

fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-forge.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let live = Arc::new(LiveConfig::load(&path, crate::server::live::quiet()).unwrap());
    let store = SqliteStore::in_memory().unwrap();
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let (shop, dev, can) = (v(&["shop"]), v(&["dev"]), v(&["deploy", "read"]));
    let hash = crate::server::auth::hash(DEV);
    store.create_token(&NewToken { name: "qa", hash: &hash, projects: &shop, stages: &dev, actions: &can }).unwrap();
    let all = v(&["deploy", "rollback", "remove", "read"]);
    let hash = crate::server::auth::hash(ADMIN);
    store.create_token(&NewToken { name: "admin", hash: &hash, projects: &[], stages: &[], actions: &all }).unwrap();
    let begin = |stage: &str, tag: &str| {
        let new = NewDeploy {
            slot: slot("shop", stage, tag),
            image: format!("registry.example.com/shop:{tag}"),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        };
        store.begin_deploy(&new).unwrap().0
    };
    let dev_deploy = begin("dev", "feature-a");
    let prod_deploy = begin("prod", "secret-release");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (phase, phases) = watch::channel(Phase::Serving);
    let api = Api::new(Arc::new(Shared::new()), live, store, tx, phases);
    let work = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&work);
    // The executor's stand-in: `list`, the held pushes, and a record of the work sent.
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::List(_, reply) => {
                    let items =
                        vec![instance("dev", "feature-a", dev_deploy), instance("prod", "secret-release", prod_deploy)];
                    let _ = reply.send(Ok(items));
                }
                Command::Approvals(reply) => {
                    let held = |id, stage| Held {
                        id,
                        candidate: Candidate {
                            slot: slot("shop", stage, "v9"),
                            image: "registry.example.com/shop".into(),
                            tag: Tag::new("v9").unwrap(),
                            digest: Some(format!("sha256:{stage}-held-digest")),
                            actor: "webhook:reg:1".into(),
                            trigger: Trigger::Webhook,
                            approval: true,
                        },
                    };
                    let _ = reply.send(vec![held(1, "dev"), held(2, "prod")]);
                }
                Command::Run(w) => recorded.lock().unwrap().push(w),
                Command::Approve { reply, id, .. } => {
                    let _ = reply.send(Ok(slot("shop", if id == 1 { "dev" } else { "prod" }, "v9")));
                }
                Command::Push { .. } => {}
            }
        }
    });
    Bed { router: api.clone().router(), api, work, prod_deploy, _phase: phase, _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn cookie(&self) -> Option<String> {
        self.headers.get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned())
    }

    /// The session id the answer set.
    fn session(&self) -> String {
        let c = self.cookie().expect("a Set-Cookie");
        c.split(';').next().unwrap().strip_prefix("tf_session=").unwrap().to_owned()
    }

    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map_or("", |v| v.to_str().unwrap())
    }
}

impl Bed {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    async fn get(&self, uri: &str, session: &str) -> Answer {
        let req = Request::get(uri).header(header::HOST, HOST).header(header::COOKIE, format!("tf_session={session}"));
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, uri: &str, session: Option<&str>, origin: Option<&str>, form: &str) -> Answer {
        let mut req = Request::post(uri)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(s) = session {
            req = req.header(header::COOKIE, format!("tf_session={s}"));
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        self.send(req.body(Body::from(form.to_owned())).unwrap()).await
    }

    async fn sign_in(&self, token: &str) -> String {
        let a = self.post("/ui/login", None, Some(ORIGIN), &format!("token={token}")).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(a.location(), "/ui");
        a.session()
    }

    /// The work sent to the executor so far (the stand-in runs when the test yields).
    async fn work(&self) -> Vec<Work> {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        std::mem::take(&mut *self.work.lock().unwrap())
    }
}

#[tokio::test]
async fn sign_in_sets_a_new_http_only_strict_cookie_holding_no_token() {
    let b = bed();
    let a = b.post("/ui/login", None, Some(ORIGIN), &format!("token={DEV}")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let cookie = a.cookie().unwrap();
    assert!(cookie.starts_with("tf_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http, no trusted proxy: {cookie}");
    assert!(!cookie.contains(DEV), "the cookie never holds the token");
    assert_eq!(a.session().len(), 43, "32 random bytes");
    // The state file keeps the id's hash, never the id.
    let id = a.session();
    assert!(b.api.store().session_token(&id, 0).unwrap().is_none(), "the id itself is no key");
    assert!(b.api.store().session_token(&crate::server::auth::hash(&id), 0).unwrap().is_some());
    let page = b.get("/ui", &a.session()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Signed in with token <b>qa</b>"), "{}", page.body);
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_proxy_over_https_and_when_serve_speaks_tls() {
    let b = bed();
    let login = |peer: &str, proto: &str| {
        let mut req = Request::post("/ui/login")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, format!("https://{HOST}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", proto)
            .body(Body::from(format!("token={DEV}")))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(Peer(peer.parse::<SocketAddr>().unwrap())));
        req
    };
    let secure = |a: &Answer| a.cookie().unwrap().contains("; Secure");
    assert!(secure(&b.send(login("10.0.0.1:5000", "https")).await), "trusted proxy over https");
    assert!(!secure(&b.send(login("10.0.0.1:5000", "http")).await), "trusted proxy over http");
    assert!(!secure(&b.send(login("192.0.2.9:5000", "https")).await), "an untrusted peer's header counts for nothing");
    let mut tls = b.api.clone();
    tls.settings.tls = Some(("cert.pem".into(), "key.pem".into()));
    let a = tls.router().oneshot(login("192.0.2.9:5000", "http")).await.unwrap();
    assert!(a.headers()[header::SET_COOKIE].to_str().unwrap().contains("; Secure"), "serve speaks TLS");
}

#[tokio::test]
async fn each_sign_in_makes_a_new_session_and_ends_the_one_the_browser_brought() {
    let b = bed();
    // A session id planted by an attacker is never adopted.
    let planted = "attacker-chosen-session-id";
    let a = b.post("/ui/login", Some(planted), Some(ORIGIN), &format!("token={DEV}")).await;
    assert_ne!(a.session(), planted);
    assert_eq!(b.get("/ui", planted).await.status, StatusCode::SEE_OTHER, "the planted id opens nothing");
    // Signing in again from a signed-in browser replaces its session.
    let first = a.session();
    let again = b.post("/ui/login", Some(&first), Some(ORIGIN), &format!("token={DEV}")).await;
    let second = again.session();
    assert_ne!(first, second);
    assert_eq!(b.get("/ui", &first).await.status, StatusCode::SEE_OTHER, "the old session ended");
    assert_eq!(b.get("/ui", &second).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_session_every_page_sends_the_browser_to_sign_in() {
    let b = bed();
    for uri in ["/ui", "/ui/deploys", "/ui/deploys/1", "/ui/changes", "/ui/deploys/1/events", "/ui/jobs/1"] {
        let a = b.get(uri, "no-such-session").await;
        assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/login"), "{uri}");
    }
    let root = b.send(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!((root.status, root.location()), (StatusCode::SEE_OTHER, "/ui"));
    let login = b.send(Request::get("/ui/login").body(Body::empty()).unwrap()).await;
    assert!(login.body.contains(r#"name="token""#));
    assert!(login.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_does_nothing() {
    let b = bed();
    let s = b.sign_in(DEV).await;
    let form = "project=shop&stage=dev&tag=feature-a";
    for origin in [Some("http://evil.example"), Some("null"), Some("http://forge.example.com.evil.example"), None] {
        let a = b.post("/ui/redeploy", Some(&s), origin, form).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{origin:?}");
    }
    // Sec-Fetch-Site: cross-site is refused even with a matching Origin.
    let req = Request::post("/ui/redeploy")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "cross-site")
        .header(header::COOKIE, format!("tf_session={s}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    assert_eq!(b.send(req).await.status, StatusCode::FORBIDDEN);
    let a = b.post("/ui/login", None, Some("http://evil.example"), &format!("token={DEV}")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "login CSRF too");
    assert!(a.cookie().is_none());
    let a = b.post("/ui/logout", Some(&s), Some("http://evil.example"), "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/ui", &s).await.status, StatusCode::OK, "a cross-site logout did not end the session");
    assert!(b.work().await.is_empty(), "nothing was queued");
    // The same request from the page itself (a Referer, without Origin, counts too).
    let req = Request::post("/ui/redeploy")
        .header(header::HOST, HOST)
        .header(header::REFERER, format!("{ORIGIN}/ui?project=shop"))
        .header(header::COOKIE, format!("tf_session={s}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let a = b.send(req).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(a.location().starts_with("/ui/jobs/"));
    let work = b.work().await;
    assert_eq!(work.len(), 1);
    assert_eq!((work[0].actor.as_str(), work[0].force), ("token:qa", true));
}

#[tokio::test]
async fn a_token_for_shop_dev_sees_nothing_of_shop_prod_and_cannot_act_there() {
    let b = bed();
    let s = b.sign_in(DEV).await;
    let page = b.get("/ui", &s).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("shop-dev-feature-a.test.local"), "{}", page.body);
    assert!(page.body.contains("dev-held-digest"), "the held push of its stage");
    for hidden in ["prod", "secret-release"] {
        assert!(!page.body.contains(hidden), "`{hidden}` shown to a dev-only token:\n{}", page.body);
    }
    let prod_filter = b.get("/ui?project=shop&stage=prod", &s).await;
    assert!(!prod_filter.body.contains("secret-release"), "a filter never widens the scope");
    let history = b.get("/ui/deploys", &s).await;
    assert!(history.body.contains("feature-a") && !history.body.contains("secret-release"), "{}", history.body);
    let prod = b.prod_deploy;
    assert_eq!(b.get(&format!("/ui/deploys/{prod}"), &s).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get(&format!("/ui/deploys/{prod}/events"), &s).await.status, StatusCode::NOT_FOUND);
    // Acting on prod: refused as the API refuses it, nothing queued or approved.
    let a = b.post("/ui/redeploy", Some(&s), Some(ORIGIN), "project=shop&stage=prod&tag=secret-release").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = b.post("/ui/approvals/2", Some(&s), Some(ORIGIN), "digest=sha256%3Aprod-held-digest").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "not 403: nothing learned about prod");
    let a = b.get("/ui/remove?project=shop&stage=dev&tag=feature-a", &s).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "qa may not remove");
    assert!(!b.get("/ui", &s).await.body.contains("Remove…"), "no button it may not use");
    assert!(b.work().await.is_empty());
    // The admin sees both stages.
    let admin = b.sign_in(ADMIN).await;
    let page = b.get("/ui", &admin).await;
    assert!(page.body.contains("secret-release") && page.body.contains("feature-a"));
    assert!(page.body.contains("Remove…"));
}

#[tokio::test]
async fn a_removal_asks_first_and_an_approval_releases_the_digest_shown() {
    let b = bed();
    let s = b.sign_in(ADMIN).await;
    let ask = b.get("/ui/remove?project=shop&stage=dev&tag=feature-a", &s).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Yes, remove it"));
    let form = "project=shop&stage=dev&tag=feature-a";
    let a = b.post("/ui/remove", Some(&s), Some(ORIGIN), form).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "no confirmation, no removal");
    assert!(b.work().await.is_empty());
    let a = b.post("/ui/remove", Some(&s), Some(ORIGIN), &format!("{form}&confirm=yes")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let work = b.work().await;
    assert_eq!(work.len(), 1);
    assert_eq!((work[0].kind, work[0].actor.as_str()), (crate::server::executor::WorkKind::Remove, "token:admin"));
    let a = b.post("/ui/approvals/1", Some(&s), Some(ORIGIN), "digest=sha256%3Adev-held-digest").await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui?project=shop&stage=dev"));
}

#[tokio::test]
async fn logout_ends_the_session_and_deletes_the_cookie() {
    let b = bed();
    let s = b.sign_in(DEV).await;
    let a = b.post("/ui/logout", Some(&s), Some(ORIGIN), "").await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/ui/login"));
    let cookie = a.cookie().unwrap();
    assert!(cookie.starts_with("tf_session=;") && cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(b.get("/ui", &s).await.status, StatusCode::SEE_OTHER, "the session is gone on the server");
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let b = bed();
    let s = b.sign_in(DEV).await;
    let other = b.sign_in(ADMIN).await;
    assert!(b.api.store().revoke_token("qa").unwrap());
    assert_eq!(b.get("/ui", &s).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/ui", &other).await.status, StatusCode::OK, "other tokens' sessions stay");
    let a = b.post("/ui/login", None, Some(ORIGIN), &format!("token={DEV}")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "a revoked token cannot sign in");
}

#[tokio::test]
async fn failed_sign_ins_count_against_the_api_s_failure_cap() {
    let b = bed();
    // `auth_failures = 3`: two failed API calls and one failed sign-in fill the window …
    for _ in 0..2 {
        let req = Request::get("/v1/instances").header(header::AUTHORIZATION, "Bearer tf_wrong").body(Body::empty());
        assert_eq!(b.send(req.unwrap()).await.status, StatusCode::UNAUTHORIZED);
    }
    let a = b.post("/ui/login", None, Some(ORIGIN), "token=tf_wrong").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("Not signed in") && a.cookie().is_none());
    // … so the next failure, by either door, is answered 429.
    let a = b.post("/ui/login", None, Some(ORIGIN), "token=tf_wrong-again").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    let req = Request::get("/v1/instances").header(header::AUTHORIZATION, "Bearer tf_wrong").body(Body::empty());
    assert_eq!(b.send(req.unwrap()).await.status, StatusCode::TOO_MANY_REQUESTS);
    // A token that verifies is never refused by the cap.
    b.sign_in(DEV).await;
}

#[tokio::test]
async fn pages_and_assets_stay_small_and_load_nothing_from_elsewhere() {
    let b = bed();
    let s = b.sign_in(ADMIN).await;
    let css = b.get("/ui/assets/ui.css", &s).await;
    let js = b.get("/ui/assets/ui.js", &s).await;
    for uri in ["/ui", "/ui/deploys", &format!("/ui/deploys/{}", b.prod_deploy), "/ui/login"] {
        let page = b.get(uri, &s).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let total = page.body.len() + css.body.len() + js.body.len();
        assert!(total < 100_000, "{uri}: {total} bytes");
        for outside in ["src=\"http", "src=\"//", "stylesheet\" href=\"http", "stylesheet\" href=\"//"] {
            assert!(!page.body.contains(outside), "{uri} loads from elsewhere: {outside}");
        }
    }
    assert!(!css.body.contains("url(") && !css.body.contains("@import"), "the stylesheet loads nothing");
}
