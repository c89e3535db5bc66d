//! The NPM test double replays NPM's own recorded exchanges and must answer alike: same status,
//! same body (timestamps and tokens aside). This is what makes it a faithful stand-in.

use serde_json::Value;

use crate::support::npm::NpmDouble;

/// Exchanges that need what a replay cannot give: first-run setup, a token that has expired
/// with time, or a forged one. Their behaviour is pinned by the tests below instead.
fn replayable(e: &Value) -> bool {
    let seq = e["seq"].as_u64().unwrap();
    !matches!(seq, 1..=5 | 26 | 28..=31 | 44..=46 | 122)
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

#[test]
fn double_answers_every_recorded_exchange_like_npm() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/npm-exchanges.json")).unwrap();
    let exchanges: Vec<Value> = serde_json::from_str(&text).unwrap();
    let npm = NpmDouble::start("admin@example.com", "changeme-Secret1");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    crate::support::client();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token: String = rt.block_on(async {
        let r = client
            .post(format!("{}/api/tokens", npm.url()))
            .json(&serde_json::json!({"identity": "admin@example.com", "secret": "changeme-Secret1"}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    });
    let mut checked = 0;
    for e in exchanges.iter().filter(|e| replayable(e)) {
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
        let (status, mut body) = rt.block_on(async {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        });
        assert_eq!(
            status,
            u16::try_from(e["status"].as_u64().unwrap()).unwrap(),
            "#{} {name}: status; body {body}",
            e["seq"]
        );
        let mut expected = e["response_body"].clone();
        if expected.get("_non_json_body").is_none() {
            scrub(&mut expected);
            scrub(&mut body);
            assert_eq!(body, expected, "#{} {name}: body", e["seq"]);
        }
        checked += 1;
    }
    assert!(checked > 100, "replayed {checked} exchanges");
}

#[test]
fn expired_tokens_get_400_token_has_expired_and_cannot_be_refreshed() {
    let npm = NpmDouble::start("a@b.c", "pw");
    npm.set_token_lifetime(std::time::Duration::from_millis(1));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = crate::support::client();
        let t: Value = c
            .post(format!("{}/api/tokens", npm.url()))
            .json(&serde_json::json!({"identity": "a@b.c", "secret": "pw"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let bearer = format!("Bearer {}", t["token"].as_str().unwrap());
        for path in ["/api/nginx/proxy-hosts", "/api/tokens", "/api/nginx/proxy-hosts/1"] {
            let r = c.get(format!("{}{path}", npm.url())).header("Authorization", &bearer).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 400, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["message"], "Token has expired");
            assert_eq!(v["error"]["message_i18n"]["name"], "TokenExpiredError");
        }
        let r = c
            .get(format!("{}/api/nginx/proxy-hosts", npm.url()))
            .header("Authorization", "Bearer garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500);
    });
}
