//! The NPM test double replays NPM's own recorded exchanges and must answer alike: same status,
//! same body (timestamps and tokens aside), same content type and redirect target. This is what
//! makes it a faithful stand-in. The exchanges a replay cannot give are pinned by the named
//! tests below, each against its recording.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::npm::NpmDouble;

/// Exchanges a replay with one valid token cannot give, by seq, and why. Every other one is
/// replayed.
const NOT_REPLAYED: &[(u64, &str)] = &[
    (1, "first run: the double always starts with its user (tiny-forge never sets NPM up)"),
    (2, "first run: login before any user exists"),
    (3, "first run: creating the first user"),
    (26, "a token that expires in 1 s: a_token_refreshed_with_an_expiry_lasts_that_long"),
    (28, "an expired token: expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed"),
    (29, "an expired token: expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed"),
    (30, "a forged token: expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed"),
    (31, "a garbage token: expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed"),
    (44, "an expired token: expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed"),
    (45, "an expired token: a_create_with_an_expired_token_is_refused_and_creates_nothing"),
    (46, "a garbage token: a_delete_with_a_garbage_token_is_a_500_and_deletes_nothing"),
];

/// The recording has this many exchanges; all but [`NOT_REPLAYED`] are replayed.
const RECORDED: usize = 122;

fn exchanges() -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/npm-exchanges.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The recorded exchange `seq`.
fn recorded(seq: u64) -> Value {
    exchanges().into_iter().find(|e| e["seq"] == seq).unwrap()
}

/// Removes what differs from run to run.
fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["created_on", "modified_on", "expires", "token", "expiredAt"] {
                m.remove(k);
            }
            m.values_mut().for_each(scrub);
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Fails unless (`status`, `body`) is what NPM answered in exchange `seq` (scrubbed).
#[track_caller]
fn assert_like_recorded(seq: u64, status: u16, body: &Value) {
    let e = recorded(seq);
    assert_eq!(u64::from(status), e["status"].as_u64().unwrap(), "#{seq} {}: status; body {body}", e["name"]);
    let (mut got, mut want) = (body.clone(), e["response_body"].clone());
    scrub(&mut got);
    scrub(&mut want);
    assert_eq!(got, want, "#{seq} {}: body", e["name"]);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn login(c: &reqwest::Client, npm: &NpmDouble, email: &str, password: &str) -> String {
    let r = c
        .post(format!("{}/api/tokens", npm.url()))
        .json(&json!({"identity": email, "secret": password}))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[test]
fn double_answers_every_recorded_exchange_like_npm() {
    let exchanges = exchanges();
    assert_eq!(exchanges.len(), RECORDED, "the recording");
    let npm = NpmDouble::start("admin@example.com", "changeme-Secret1");
    let rt = runtime();
    crate::support::client();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token = rt.block_on(login(&client, &npm, "admin@example.com", "changeme-Secret1"));
    let host = npm.url().trim_start_matches("http://").to_owned();
    let mut replayed = Vec::new();
    for e in &exchanges {
        let seq = e["seq"].as_u64().unwrap();
        if NOT_REPLAYED.iter().any(|(s, _)| *s == seq) {
            continue;
        }
        let name = e["name"].as_str().unwrap();
        let method = reqwest::Method::from_bytes(e["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut req = client.request(method, format!("{}{}", npm.url(), e["path"].as_str().unwrap()));
        for (k, v) in e["request_headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap().replace("<token>", &token));
        }
        match &e["request_body"] {
            Value::Null => {}
            Value::String(s) => req = req.body(s.clone()),
            body => req = req.body(body.to_string()),
        }
        let (status, headers, text) = rt.block_on(async {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.headers().clone(), r.text().await.unwrap())
        });
        let want_headers = &e["response_headers"];
        let header = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("content-type").as_deref(),
            want_headers["Content-Type"].as_str(),
            "#{seq} {name}: content type"
        );
        if let Some(location) = want_headers["Location"].as_str() {
            let want = location.replace("<npm-host>:81", &host);
            assert_eq!(header("location"), Some(want), "#{seq} {name}: redirect target");
        }
        match e["response_body"].get("_non_json_body") {
            Some(page) => {
                assert_eq!(u64::from(status), e["status"].as_u64().unwrap(), "#{seq} {name}: status");
                assert_eq!(text, page.as_str().unwrap(), "#{seq} {name}: body");
            }
            None => assert_like_recorded(seq, status, &serde_json::from_str(&text).unwrap_or(Value::Null)),
        }
        replayed.push(seq);
    }
    assert_eq!(replayed.len(), RECORDED - NOT_REPLAYED.len(), "replayed {replayed:?}");
    assert_eq!(replayed.len(), 111);
    for seq in [4, 5, 122] {
        assert!(replayed.contains(&seq), "#{seq} is replayed");
    }
}

#[test]
fn expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed() {
    let npm = NpmDouble::start("a@b.c", "pw");
    npm.set_token_lifetime(std::time::Duration::from_millis(1));
    runtime().block_on(async {
        let c = crate::support::client();
        let token = login(&c, &npm, "a@b.c", "pw").await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let bearer = format!("Bearer {token}");
        for (seq, path) in [(28, "/api/nginx/proxy-hosts"), (29, "/api/tokens"), (44, "/api/nginx/proxy-hosts/1")] {
            let r = c.get(format!("{}{path}", npm.url())).header("Authorization", &bearer).send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            assert_like_recorded(seq, status, &v);
            assert_eq!(v["error"]["message_i18n"]["name"], "TokenExpiredError");
        }
        // A token signed by someone else, and one that is no token at all: 500, not 401.
        for (seq, token) in [(30, "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcGkifQ.c2lnbmVkLWVsc2V3aGVyZQ"), (31, "garbage")] {
            let r = c
                .get(format!("{}/api/nginx/proxy-hosts", npm.url()))
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert_like_recorded(seq, status, &r.json().await.unwrap());
        }
    });
}

/// Exchange 26: `GET /api/tokens?expiry=1s` gives a token whose `expires` is a second ahead,
/// that works until then and gets `Token has expired` after; a bad expiry is refused (25).
#[test]
fn a_token_refreshed_with_an_expiry_lasts_that_long() {
    let npm = NpmDouble::start("a@b.c", "pw");
    runtime().block_on(async {
        let c = crate::support::client();
        let token = login(&c, &npm, "a@b.c", "pw").await;
        let refresh =
            |expiry: &str| c.get(format!("{}/api/tokens?expiry={expiry}", npm.url())).bearer_auth(&token).send();
        let r = refresh("banana").await.unwrap();
        let status = r.status().as_u16();
        assert_like_recorded(25, status, &r.json().await.unwrap());

        let asked = SystemTime::now();
        let r = refresh("1s").await.unwrap();
        let answered = SystemTime::now();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_like_recorded(26, status, &v);
        let expires = humantime::parse_rfc3339(v["expires"].as_str().unwrap()).unwrap();
        // `expires` is written to the millisecond.
        let ms = Duration::from_millis(1);
        assert!(
            expires + ms >= asked + Duration::from_secs(1) && expires <= answered + Duration::from_secs(1),
            "expires {v} is not a second after the refresh"
        );
        let short = v["token"].as_str().unwrap().to_owned();
        let list = || c.get(format!("{}/api/nginx/proxy-hosts", npm.url())).bearer_auth(&short).send();
        assert_eq!(list().await.unwrap().status().as_u16(), 200, "valid at once");
        let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(left + Duration::from_millis(100)).await;
        let r = list().await.unwrap();
        let status = r.status().as_u16();
        assert_like_recorded(28, status, &r.json().await.unwrap());
    });
}

/// Exchange 45: a create with an expired token is refused with `Token has expired`, and no host
/// is made.
#[test]
fn a_create_with_an_expired_token_is_refused_and_creates_nothing() {
    let npm = NpmDouble::start("a@b.c", "pw");
    npm.set_token_lifetime(Duration::from_millis(1));
    let e = recorded(45);
    runtime().block_on(async {
        let c = crate::support::client();
        let token = login(&c, &npm, "a@b.c", "pw").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = c
            .post(format!("{}/api/nginx/proxy-hosts", npm.url()))
            .bearer_auth(&token)
            .json(&e["request_body"])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_like_recorded(45, status, &r.json().await.unwrap());
    });
    assert_eq!(npm.hosts(), Vec::<Value>::new(), "no host was created");
}

/// Exchange 46: a delete with a garbage token is a 500 `Internal Error` (never 401), and the
/// host stays.
#[test]
fn a_delete_with_a_garbage_token_is_a_500_and_deletes_nothing() {
    let npm = NpmDouble::start("a@b.c", "pw");
    let id = npm.add_host("a.example.test", "myapp-dev-1", json!({}));
    assert_eq!(id, 1, "the recording deletes host 1");
    let e = recorded(46);
    runtime().block_on(async {
        let r = crate::support::client()
            .delete(format!("{}{}", npm.url(), e["path"].as_str().unwrap()))
            .header("Authorization", "Bearer garbage")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_like_recorded(46, status, &r.json().await.unwrap());
    });
    let ids: Vec<u64> = npm.hosts().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1], "the host is still there");
}
