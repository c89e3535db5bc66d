//! The web page in a real browser: Debian's headless Chromium through `chromedriver`
//! (`support/webdriver.rs`), against a real `tiny-forge serve` with real deploys on the real
//! engine. Sign-in, a preview's URL, a deploy's steps arriving live, an approval, scope and a
//! cross-site POST. A failing test leaves a screenshot in `target/ui-screenshots/`.
//!
//! With `TF_UI_DOCS=1` the tests also write the screenshots of `docs/` (desktop and phone width).

use std::io::{Read as _, Write as _};
use std::time::Duration;

use serde_json::{Value, json};

use crate::serve::{Server, call, digest_of, notification, post_hook, push_config, succeeded, token, wait_for};
use crate::support::webdriver::Browser;
use crate::support::{Sandbox, docker_ok, images};

const DESKTOP: (u32, u32) = (1280, 860);
const PHONE: (u32, u32) = (390, 844);

/// Writes `docs/ui-NAME-{desktop,phone}.png` of the page `b` shows, when `TF_UI_DOCS` is set.
fn doc_shots(b: &Browser, name: &str) {
    if std::env::var_os("TF_UI_DOCS").is_none() {
        return;
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let url = b.url();
    for (kind, (w, h)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        b.resize(w, h);
        b.go(&url);
        std::thread::sleep(Duration::from_millis(300));
        b.save_screenshot(&docs.join(format!("ui-{name}-{kind}.png")));
    }
    b.resize(DESKTOP.0, DESKTOP.1);
    b.go(&url);
}

/// Signs `b` in to `server` with `token`; it lands on the previews.
fn sign_in(b: &Browser, server: &Server, token: &str) {
    b.go(&format!("{}/ui", server.url));
    b.wait_until(10, "the sign-in page", |b| b.url().ends_with("/ui/login"));
    let field = b.el("input[name=token]");
    b.type_in(&field, token);
    b.click(&b.el("form.login button[type=submit]"));
    b.wait_until(10, "the previews after sign-in", |b| b.url().ends_with("/ui") && b.find("h1").is_some());
    assert!(b.page_text().contains("Previews"), "{}", b.page_text());
}

/// Asks `server` to deploy `tag` of `sb`'s dev stage (as the API does); the deploy's id.
fn deploy_over_api(sb: &Sandbox, server: &Server, token: &str, tag: &str) -> i64 {
    let body = json!({"project": sb.project, "stage": "dev", "tag": tag}).to_string();
    let (status, text) = call("POST", &format!("{}/v1/deploys", server.url), token, Some(body));
    assert_eq!(status, 202, "{text}");
    let job = serde_json::from_str::<Value>(&text).unwrap()["id"].as_u64().unwrap();
    wait_for(|| {
        let (_, text) = call("GET", &format!("{}/v1/jobs/{job}?wait=5", server.url), token, None);
        serde_json::from_str::<Value>(&text).unwrap()["deploy_id"].as_i64()
    })
}

/// The live instance of `tag` in `sb`'s state file: its URL.
fn live_url(sb: &Sandbox, tag: &str) -> String {
    let i = sb.instances().into_iter().find(|i| i.tag == tag && i.status.as_str() == "live").expect("a live instance");
    i.url.expect("a URL")
}

#[test]
fn a_reviewer_signs_in_sees_the_preview_and_follows_a_deploy_live() {
    let sb = Sandbox::new("uilive");
    sb.config("", "");
    let p = sb.project.clone();
    sb.run_tf(&["deploy", &p, "dev", "v1"]).code(0);
    let v1 = live_url(&sb, "v1");
    let tok = token(&sb, &["--name", "reviewer", "--project", &p]);
    // The server's deploys wait after `pull` (the deploy page is open before its later steps)
    // and after `health` (the page reloads itself once the deploy ends: the test looks at the
    // live page before that).
    let server = Server::start(&sb, &[("TINY_FORGE_TEST_PAUSE_AFTER", "pull:6s,health:3s")]);
    let b = Browser::start("a_reviewer_signs_in_sees_the_preview_and_follows_a_deploy_live", DESKTOP.0, DESKTOP.1);
    sign_in(&b, &server, &tok);
    let link = b.el(&format!("a.url[href='{v1}']"));
    assert_eq!(b.text(&link), v1, "the preview's URL, as a link");
    let row = b.text(&b.el("tr[data-tag='v1']"));
    assert!(row.contains("live") && row.contains("succeeded"), "state and last deploy in words: {row}");
    doc_shots(&b, "previews");

    // A deploy started elsewhere: its page shows the steps as they happen, without a reload.
    let id = deploy_over_api(&sb, &server, &tok, "v2");
    b.go(&format!("{}/ui/deploys/{id}", server.url));
    b.wait_until(10, "the deploy page", |b| b.find("#log").is_some());
    b.js("window.__tfLoaded = true;");
    let at_load = b.js("return [...document.querySelectorAll('#steps li')].map(li => li.dataset.step);");
    assert!(!at_load.to_string().contains("health"), "the deploy is held after pull: {at_load}");
    b.wait_until(60, "the health step, live", |b| {
        b.find("#steps li[data-step='health']").is_some_and(|e| b.text(&e).contains("done"))
    });
    assert_eq!(b.js("return window.__tfLoaded === true;"), Value::Bool(true), "it arrived without a reload");
    assert!(b.find("#log li").is_some());
    b.wait_until(60, "the outcome", |b| b.find("#outcome").is_some_and(|e| b.text(&e).contains("succeeded")));
    assert_eq!(b.text(&b.el("#exit-code")), "0");
    doc_shots(&b, "deploy");

    // The previews follow a deploy's end without a reload.
    b.go(&format!("{}/ui", server.url));
    b.wait_until(10, "the previews", |b| b.find("tr[data-tag='v2']").is_some());
    b.js("window.__tfLoaded = true;");
    let id3 = deploy_over_api(&sb, &server, &tok, "v3");
    b.wait_until(90, "v3's row, live", |b| b.find("tr[data-tag='v3']").is_some_and(|e| b.text(&e).contains("live")));
    assert_eq!(b.js("return window.__tfLoaded === true;"), Value::Bool(true), "updated in place");
    let v3 = live_url(&sb, "v3");
    assert!(b.find(&format!("a.url[href='{v3}']")).is_some());
    assert!(b.page_text().contains(&format!("#{id3}")), "its last deploy");

    b.go(&format!("{}/ui/deploys", server.url));
    b.wait_until(10, "the history", |b| b.find("table.deploys").is_some());
    let rows = b.text(&b.el("table.deploys tbody"));
    let (newer, older) = (rows.find(&format!("#{id3}")).unwrap(), rows.find(&format!("#{id}")).unwrap());
    assert!(newer < older, "newest first:\n{rows}");
    doc_shots(&b, "deploys");
    b.go(&format!("{}/ui/remove?project={p}&stage=dev&tag=v2", server.url));
    b.wait_until(10, "the removal's question", |b| b.page_text().contains("Yes, remove it"));
    doc_shots(&b, "remove");
    b.click(&b.el("button.danger"));
    wait_for(|| sb.instances().iter().all(|i| i.tag != "v2").then_some(()));
    let removal = sb.deploys().into_iter().find(|d| d.trigger.as_str() == "remove");
    if let Some(r) = removal {
        assert_eq!(r.actor.as_deref(), Some("token:reviewer"));
    }
    // Sign out: the session ends; the pages ask to sign in again.
    b.go(&format!("{}/ui", server.url));
    b.click(&b.el("nav form button[type=submit]"));
    b.wait_until(10, "the sign-in page", |b| b.url().ends_with("/ui/login"));
    doc_shots(&b, "login");
    b.go(&format!("{}/ui/deploys", server.url));
    b.wait_until(10, "the sign-in page again", |b| b.url().ends_with("/ui/login"));
}

#[test]
fn a_held_push_is_approved_from_the_page_and_deploys_its_digest() {
    let sb = Sandbox::new("uiappr");
    let tag = format!("ui-{}", sb.project);
    push_config(&sb, "127.0.0.1:0", &tag, "approval = true");
    crate::support::retag("v6", &tag);
    let tok = token(&sb, &["--name", "releaser", "--project", &sb.project, "--can", "deploy,read"]);
    let server = Server::start(&sb, &[]);
    let digest = digest_of("v6");
    let status = post_hook(
        &format!("{}/hooks/registry", server.url),
        "hook-secret-42",
        &notification("ui-appr-1", &tag, &digest),
    );
    assert_eq!(status, 202);
    let b = Browser::start("a_held_push_is_approved_from_the_page_and_deploys_its_digest", DESKTOP.0, DESKTOP.1);
    sign_in(&b, &server, &tok);
    b.wait_until(30, "the held push", |b| {
        b.go(&format!("{}/ui", server.url));
        b.find(".held").is_some()
    });
    let card = b.text(&b.el(".held .card"));
    assert!(card.contains(&digest), "the digest it approves is shown: {card}");
    doc_shots(&b, "approval");
    b.click(&b.el(".held .card button[type=submit]"));
    wait_for(|| (succeeded(&sb, "webhook").len() == 1).then_some(()));
    let d = &succeeded(&sb, "webhook")[0];
    assert_eq!(d.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(d.actor.as_deref(), Some("webhook:registry:ui-appr-1 approved by token:releaser"));
    b.wait_until(30, "the approved deploy on the page", |b| {
        b.find(&format!("tr[data-tag='{tag}']")).is_some_and(|e| b.text(&e).contains("live"))
    });
    assert!(b.find(".held").is_none(), "nothing waits any more");
    docker_ok(&["rmi", &format!("{}:{tag}", images().repo)]);
}

/// A one-page site on another origin whose form posts to `target` as soon as it loads.
fn hostile_site(target: &str, project: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><title>win a prize</title><form method=post action=\"{target}\">\
         <input name=project value={project}><input name=stage value=dev><input name=tag value=v1></form>\
         <script>document.forms[0].submit()</script>"
    );
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    // `localhost` is another site than `127.0.0.1`, where serve listens.
    format!("http://localhost:{port}/")
}

#[test]
fn a_token_for_one_stage_sees_nothing_of_another_and_a_cross_site_post_is_refused() {
    let sb = Sandbox::new("uiscope");
    let p = sb.project.clone();
    sb.config("", &format!("\n[projects.{p}.stages.prod]\ndefault_tag = \"v2\"\n"));
    sb.run_tf(&["deploy", &p, "dev", "v1"]).code(0);
    sb.run_tf(&["deploy", &p, "prod", "v2"]).code(0);
    let prod_url = sb.instances().into_iter().find(|i| i.stage == "prod").and_then(|i| i.url).unwrap();
    let prod_deploy = sb.deploys().into_iter().find(|d| d.stage == "prod").unwrap().id.0;
    let tok = token(&sb, &["--name", "dev-only", "--project", &p, "--stage", "dev"]);
    let server = Server::start(&sb, &[]);
    let b = Browser::start(
        "a_token_for_one_stage_sees_nothing_of_another_and_a_cross_site_post_is_refused",
        DESKTOP.0,
        DESKTOP.1,
    );
    sign_in(&b, &server, &tok);
    assert!(b.find(&format!("a.url[href='{}']", live_url(&sb, "v1"))).is_some(), "its own stage");
    let html = b.source();
    assert!(!html.contains(&prod_url) && !html.contains("prod"), "nothing of prod:\n{}", b.page_text());
    b.go(&format!("{}/ui?project={p}&stage=prod", server.url));
    assert!(!b.source().contains(&prod_url), "a filter never widens the scope");
    b.go(&format!("{}/ui/deploys", server.url));
    assert!(!b.page_text().contains("prod"), "{}", b.page_text());
    b.go(&format!("{}/ui/deploys/{prod_deploy}", server.url));
    assert!(b.page_text().contains("not found"), "{}", b.page_text());
    // Another site's page posts to ours: refused, nothing done.
    let before = sb.deploys().len();
    b.go(&hostile_site(&format!("{}/ui/redeploy", server.url), &p));
    b.wait_until(20, "the refusal", |b| b.url().contains("/ui/redeploy") && b.page_text().contains("Refused"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sb.deploys().len(), before, "the cross-site POST deployed nothing");
}
