//! Each format's sample body from the senders' docs (tests/fixtures/webhooks/, copied from
//! ../shared/webhooks/), the negative cases of its SAMPLES.md, and a proptest per parser: no
//! panic on any bytes.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;
use crate::config::ReceiverKind as K;

macro_rules! sample {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/", $name))
    };
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().iter().fold(String::new(), |mut s, b| {
        use std::fmt::Write as _;
        write!(s, "{b:02x}").unwrap();
        s
    })
}

fn one(events: &[PushEvent]) -> (&str, &str, &str, Option<&str>) {
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    (e.registry.as_str(), e.repository.as_str(), e.tag.as_str(), e.digest.as_deref())
}

#[test]
fn distribution_takes_the_tagged_index_and_ignores_blobs_untagged_manifests_and_pulls() {
    let events = parse(K::Distribution, &HeaderMap::new(), sample!("distribution-push.json")).unwrap();
    assert_eq!(
        one(&events),
        (
            "registry.example.com",
            "team/app",
            "1.4.2",
            Some("sha256:ee056287c496a8d3dda18dc79f7a570f0585cd1a410066273d1b9f87f938e599")
        )
    );
    assert_eq!(events[0].delivery.as_deref(), Some("a0eaf6a5-3001-5126-8e31-5c59b975bcb5"));
}

#[test]
fn gitlab_is_distribution_with_nested_groups() {
    let events = parse(K::Gitlab, &HeaderMap::new(), sample!("gitlab-push.json")).unwrap();
    assert_eq!(
        one(&events),
        (
            "registry.gitlab.example.com",
            "group/project/app",
            "v2.0.0",
            Some("sha256:357e8836ee1b49f60b0673ed2fa83efb4a6359c38373b41e987d4fd48d3fe401")
        )
    );
}

#[test]
fn github_lower_cases_the_owner_and_takes_the_manifest_digest() {
    let h = headers(&[("x-github-event", "package"), ("x-github-delivery", "d-1")]);
    let events = parse(K::Github, &h, sample!("github-push.json")).unwrap();
    assert_eq!(
        one(&events),
        (
            "ghcr.io",
            "example-org/app",
            "1.4.2",
            Some("sha256:dc1f07df60192fe01436dca62374f46b341513e477456b63ef85cfe55b9128c2")
        )
    );
    assert_eq!(events[0].delivery.as_deref(), Some("d-1"));
    let legacy =
        String::from_utf8_lossy(sample!("github-push.json")).replacen("\"package\":", "\"registry_package\":", 1);
    let h = headers(&[("x-github-event", "registry_package")]);
    assert_eq!(parse(K::Github, &h, legacy.as_bytes()).unwrap().len(), 1, "registry_package (GitHub Apps)");
    assert!(parse(K::Github, &headers(&[("x-github-event", "ping")]), b"{}").unwrap().is_empty());
}

#[test]
fn github_platform_manifests_without_a_tag_deploy_nothing() {
    let body = String::from_utf8_lossy(sample!("github-push.json")).replace("\"name\": \"1.4.2\"", "\"name\": \"\"");
    let h = headers(&[("x-github-event", "package")]);
    assert!(parse(K::Github, &h, body.as_bytes()).unwrap().is_empty());
}

#[test]
fn gitea_takes_the_tag_and_leaves_the_digest_to_be_resolved() {
    let h = headers(&[("x-gitea-event", "package"), ("x-gitea-delivery", "u-1")]);
    let events = parse(K::Gitea, &h, sample!("gitea-push.json")).unwrap();
    assert_eq!(one(&events), ("git.example.com", "example-org/app", "1.4.2", None));
    let h = headers(&[("x-forgejo-event", "package")]);
    assert_eq!(parse(K::Gitea, &h, sample!("gitea-push.json")).unwrap().len(), 1, "Forgejo's header");
}

#[test]
fn gitea_untagged_manifests_deploy_nothing() {
    let digest = "sha256:9e4ebe29dec967efb9352585ac345e51d790c0e634652f1f265e1a6ad7e37bd5";
    let body = String::from_utf8_lossy(sample!("gitea-push.json"))
        .replace("\"version\": \"1.4.2\"", &format!("\"version\": \"{digest}\""));
    let h = headers(&[("x-gitea-event", "package")]);
    assert!(parse(K::Gitea, &h, body.as_bytes()).unwrap().is_empty());
}

#[test]
fn harbor_takes_host_from_the_resource_url() {
    let events = parse(K::Harbor, &HeaderMap::new(), sample!("harbor-push.json")).unwrap();
    assert_eq!(
        one(&events),
        (
            "harbor.example.com",
            "team/app",
            "1.4.2",
            Some("sha256:c7824ed9bbb8d7e61063c439b925b46218b92e1b51c8ccaafe87d4c280035420")
        )
    );
}

#[test]
fn harbor_tag_equal_to_the_digest_deploys_nothing() {
    let digest = "sha256:c7824ed9bbb8d7e61063c439b925b46218b92e1b51c8ccaafe87d4c280035420";
    let body = String::from_utf8_lossy(sample!("harbor-push.json"))
        .replace("\"tag\": \"1.4.2\"", &format!("\"tag\": \"{digest}\""));
    assert!(parse(K::Harbor, &HeaderMap::new(), body.as_bytes()).unwrap().is_empty());
}

#[test]
fn harbor_cloudevents_are_understood() {
    let body = br#"{"specversion":"1.0","id":"ce-1","type":"harbor.artifact.pushed","data":{"resources":[{"digest":"sha256:c7824ed9bbb8d7e61063c439b925b46218b92e1b51c8ccaafe87d4c280035420","tag":"1.4.2","resource_url":"harbor.example.com/team/app:1.4.2"}],"repository":{"repo_full_name":"team/app"}}}"#;
    let events = parse(K::Harbor, &HeaderMap::new(), body).unwrap();
    assert_eq!(events[0].delivery.as_deref(), Some("ce-1"));
}

#[test]
fn dockerhub_and_quay_name_the_repository_and_tag_only() {
    let events = parse(K::Dockerhub, &HeaderMap::new(), sample!("dockerhub-push.json")).unwrap();
    assert_eq!(one(&events), ("docker.io", "exampleorg/app", "1.4.2", None));
    let events = parse(K::Quay, &HeaderMap::new(), sample!("quay-push.json")).unwrap();
    assert_eq!(one(&events), ("quay.io", "exampleorg/app", "1.4.2", None));
    let old = br#"{"docker_url":"quay.io/ns/app","updated_tags":{"1.0":"abc","latest":"abc"}}"#;
    assert_eq!(parse(K::Quay, &HeaderMap::new(), old).unwrap().len(), 2, "the old tag map");
}

#[test]
fn cosign_signature_and_attestation_tags_are_not_deploy_tags() {
    let hex = "a".repeat(64);
    for t in [
        format!("sha256-{hex}.sig"),
        format!("sha256-{hex}.att"),
        format!("sha256-{hex}.sbom"),
        format!("sha256:{hex}"),
        String::new(),
    ] {
        assert!(!is_deploy_tag(&t), "{t}");
    }
    for t in ["main", "pr-42", "v1.2.3", "sha256-notahash"] {
        assert!(is_deploy_tag(t), "{t}");
    }
}

#[test]
fn images_split_like_docker_does() {
    assert_eq!(split_image("127.0.0.1:5000/tf-test/demo"), ("127.0.0.1:5000".into(), "tf-test/demo".into()));
    assert_eq!(split_image("exampleorg/app"), ("docker.io".into(), "exampleorg/app".into()));
    assert_eq!(split_image("nginx"), ("docker.io".into(), "library/nginx".into()));
    assert_eq!(split_image("index.docker.io/exampleorg/app"), ("docker.io".into(), "exampleorg/app".into()));
    assert_eq!(split_image("localhost/app"), ("localhost".into(), "app".into()));
    assert_eq!(split_image("GHCR.io/Example-Org/App"), ("ghcr.io".into(), "example-org/app".into()));
}

#[test]
fn the_github_published_test_vector_verifies() {
    let auth = Authenticator::GithubHmac(Secret::new("It's a Secret to Everybody".into()));
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert!(auth.verify(&headers(&[("x-hub-signature-256", sig)]), None, b"Hello, World!"));
    assert!(!auth.verify(&headers(&[("x-hub-signature-256", sig)]), None, b"Hello, World?"));
}

#[test]
fn a_changed_byte_or_a_missing_or_empty_signature_is_refused() {
    let body = sample!("gitea-push.json");
    let auth = Authenticator::GiteaHmac(Secret::new("s3cret".into()));
    let good = hex_hmac("s3cret", body);
    assert!(auth.verify(&headers(&[("x-gitea-signature", &good)]), None, body));
    assert!(auth.verify(&headers(&[("x-forgejo-signature", &good)]), None, body));
    assert!(auth.verify(&headers(&[("x-hub-signature-256", &format!("sha256={good}"))]), None, body));
    let mut changed = body.to_vec();
    changed[10] ^= 1;
    assert!(!auth.verify(&headers(&[("x-gitea-signature", &good)]), None, &changed));
    assert!(!auth.verify(&HeaderMap::new(), None, body));
    assert!(!auth.verify(&headers(&[("x-gitea-signature", "")]), None, body));
    let github = Authenticator::GithubHmac(Secret::new("s3cret".into()));
    assert!(!github.verify(&headers(&[("x-hub-signature-256", "sha256=")]), None, body));
    assert!(!github.verify(&headers(&[("x-hub-signature-256", &good)]), None, body), "the prefix is required");
}

#[test]
fn static_headers_and_path_secrets_must_match_exactly() {
    let auth = Authenticator::Header(Secret::new("tok".into()));
    assert!(auth.verify(&headers(&[("authorization", "Bearer tok")]), None, b""));
    assert!(auth.verify(&headers(&[("authorization", "tok")]), None, b""), "Harbor sends it verbatim");
    assert!(!auth.verify(&headers(&[("authorization", "Bearer to")]), None, b""));
    assert!(!auth.verify(&HeaderMap::new(), None, b""));
    let path = Authenticator::Path(Secret::new("p4th".into()));
    assert!(path.verify(&HeaderMap::new(), Some("p4th"), b""));
    assert!(!path.verify(&HeaderMap::new(), Some("p4t"), b""));
    assert!(!path.verify(&HeaderMap::new(), None, b""));
}

fn rule(image: &str, tags: &str, slot: crate::config::RuleSlot) -> PushRule {
    let file = format!(
        "[projects.shop]\nimage = \"{image}\"\nport = 80\n[projects.shop.stages.dev]\ndefault_tag = \"main\"\n[[projects.shop.stages.dev.on_push]]\ntags = \"{tags}\"\nslot = \"{}\"\n",
        match slot {
            crate::config::RuleSlot::Tag => "tag",
            crate::config::RuleSlot::Default => "default",
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, file).unwrap();
    crate::config::load(&path).unwrap().push_rules()[0].clone()
}

#[test]
fn a_payload_never_chooses_an_image_the_config_does_not_name() {
    let rules = [rule("registry.example.com/team/app", "pr-*", crate::config::RuleSlot::Tag)];
    let ev = |registry: &str, repo: &str, tag: &str| PushEvent {
        registry: registry.into(),
        repository: repo.into(),
        tag: tag.into(),
        digest: None,
        delivery: None,
    };
    let ok = candidates(&ev("registry.example.com", "team/app", "pr-7"), &rules, "a", Trigger::Webhook);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].image, "registry.example.com/team/app");
    assert_eq!(ok[0].slot.tag.as_str(), "pr-7");
    for bad in [
        ev("evil.example.com", "team/app", "pr-7"),
        ev("registry.example.com", "team/other", "pr-7"),
        ev("registry.example.com", "team/app", "main"),
        ev("registry.example.com", "team/app/../other", "pr-7"),
    ] {
        assert!(candidates(&bad, &rules, "a", Trigger::Webhook).is_empty(), "{bad:?}");
    }
}

#[test]
fn a_default_slot_rule_deploys_the_pushed_tag_into_the_default_slot() {
    let rules = [rule("registry.example.com/team/app", "main", crate::config::RuleSlot::Default)];
    let ev = PushEvent {
        registry: "registry.example.com".into(),
        repository: "team/app".into(),
        tag: "main".into(),
        digest: Some("sha256:x".into()),
        delivery: None,
    };
    let c = candidates(&ev, &rules, "a", Trigger::Webhook);
    assert_eq!(c[0].slot.tag.as_str(), "main");
    assert_eq!(c[0].tag.as_str(), "main");
}

fn rules(text: &str) -> Vec<PushRule> {
    let file = format!(
        "[projects.shop]\nimage = \"registry.example.com/team/app\"\nport = 80\n[projects.shop.stages.dev]\ndefault_tag = \"main\"\n{text}"
    );
    crate::config::from_text(&file, std::path::Path::new("/t/c.toml")).unwrap().push_rules().to_vec()
}

#[test]
fn overlapping_rules_for_one_slot_need_approval_when_any_of_them_asks_whatever_their_order() {
    let held = "[[projects.shop.stages.dev.on_push]]\ntags = \"v*\"\napproval = true\n";
    let open = "[[projects.shop.stages.dev.on_push]]\ntags = \"*\"\n";
    for order in [format!("{held}{open}"), format!("{open}{held}")] {
        let rules = rules(&order);
        for digest in [None, Some("sha256:x".to_owned())] {
            let ev = PushEvent {
                registry: "registry.example.com".into(),
                repository: "team/app".into(),
                tag: "v1.0".into(),
                digest: digest.clone(),
                delivery: None,
            };
            let c = candidates(&ev, &rules, "a", Trigger::Webhook);
            assert_eq!(c.len(), 1, "one candidate per slot");
            assert!(c[0].approval, "{order} with digest {digest:?}");
            assert!(needs_approval(&rules, &c[0].slot, &c[0].tag));
        }
        let ev = PushEvent {
            registry: "registry.example.com".into(),
            repository: "team/app".into(),
            tag: "pr-1".into(),
            digest: None,
            delivery: None,
        };
        assert!(!candidates(&ev, &rules, "a", Trigger::Webhook)[0].approval, "only `*` matches pr-1");
    }
}

proptest! {
    #[test]
    fn no_parser_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let h = headers(&[("x-github-event", "package"), ("x-gitea-event", "package")]);
        for k in [K::Distribution, K::Gitlab, K::Github, K::Gitea, K::Harbor, K::Dockerhub, K::Quay] {
            let _ = parse(k, &h, &body);
        }
    }

    #[test]
    fn no_parser_panics_on_json_shaped_like_its_samples(
        cut in 0usize..4000,
        flip in 0usize..4000,
        byte in any::<u8>(),
    ) {
        let h = headers(&[("x-github-event", "package"), ("x-gitea-event", "package")]);
        for (k, sample) in [
            (K::Distribution, &sample!("distribution-push.json")[..]),
            (K::Github, &sample!("github-push.json")[..]),
            (K::Gitea, &sample!("gitea-push.json")[..]),
            (K::Harbor, &sample!("harbor-push.json")[..]),
            (K::Dockerhub, &sample!("dockerhub-push.json")[..]),
            (K::Quay, &sample!("quay-push.json")[..]),
        ] {
            let mut b = sample.to_vec();
            if !b.is_empty() {
                let i = flip % b.len();
                b[i] = byte;
                b.truncate(cut.max(1).min(b.len()));
            }
            let _ = parse(k, &h, &b);
        }
    }

    #[test]
    fn no_authenticator_panics_on_any_header(value in "[ -~]{0,100}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let h = headers(&[("authorization", &value), ("x-hub-signature-256", &value), ("x-gitea-signature", &value)]);
        for k in [K::Distribution, K::Github, K::Gitea, K::Dockerhub] {
            let _ = Authenticator::for_kind(k, Secret::new("s".into())).verify(&h, Some(&value), &body);
        }
    }
}
