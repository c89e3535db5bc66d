//! The Docker adapter against a scripted Engine API (`test_server`): what it sends, and what it
//! makes of the answers.

use std::collections::BTreeMap;
use std::time::Duration;

use super::images::{repo_digest_of, split_reference};
use super::services::{bollard_spec, nanos};
use super::*;
use crate::engine::service::update_bound;
use crate::engine::{
    Containers as _, EndpointMode, Images as _, LABEL_MANAGED, RegistryAuth, ServiceSpec, Services as _, TaskInfo,
};
use crate::image_ref::Reference;
use bollard::models::{
    EndpointSpecModeEnum, ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum,
};

proptest::proptest! {
    #[test]
    fn any_reference_splits_without_panicking(r in "(?s).{0,80}") {
        let _ = split_reference(&r);
    }
}

#[test]
fn the_repo_digest_is_found_in_any_spelling_and_by_the_digest_served() {
    let digests = vec!["nginx@sha256:aaa".to_owned(), "nginx@sha256:bbb".to_owned(), "other@sha256:ccc".to_owned()];
    let wanted = Reference::parse("docker.io/library/nginx:1.27").unwrap();
    assert_eq!(repo_digest_of(&digests, &wanted, None).as_deref(), Some("nginx@sha256:aaa"));
    assert_eq!(repo_digest_of(&digests, &wanted, Some("sha256:bbb")).as_deref(), Some("nginx@sha256:bbb"));
    assert_eq!(repo_digest_of(&digests, &wanted, Some("sha256:ccc")), None);
    let acme = Reference::parse("docker.io/acme/shop:v1").unwrap();
    assert_eq!(repo_digest_of(&["acme/shop@sha256:d".to_owned()], &acme, None).as_deref(), Some("acme/shop@sha256:d"));
}

#[tokio::test]
async fn an_image_removed_between_its_pull_and_the_look_at_it_is_pulled_again() {
    let inspected = r#"{"Id":"sha256:1","RepoDigests":["127.0.0.1:5000/shop@sha256:abc"]}"#;
    let (addr, server) = super::test_server::scripted_server(vec![
        (200, r#"{"status":"Pulling from shop","id":"v1"}"#),
        (404, r#"{"message":"No such image: 127.0.0.1:5000/shop:v1"}"#),
        (200, r#"{"status":"Pulling from shop","id":"v1"}"#),
        (200, inspected),
    ]);
    let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
    let pulled = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap();
    assert_eq!(pulled.reference, "127.0.0.1:5000/shop@sha256:abc");
    let heads = server.join().unwrap();
    let pulls = heads.iter().filter(|h| h.starts_with("POST ") && h.contains("/images/create?")).count();
    assert_eq!(pulls, 2, "{heads:#?}");
}

/// Review F3: the engine reports `RepoDigests` in the familiar form, whatever was pulled.
#[tokio::test]
async fn a_docker_hub_image_written_in_full_is_found_by_its_familiar_repo_digest() {
    for image in ["docker.io/acme/shop:v1", "acme/shop:v1", "index.docker.io/acme/shop:v1"] {
        let inspected = r#"{"Id":"sha256:1","RepoDigests":["acme/shop@sha256:abc"]}"#;
        let (addr, server) =
            super::test_server::scripted_server(vec![(200, r#"{"status":"Digest: sha256:abc"}"#), (200, inspected)]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        let pulled = DockerRuntime::over(docker).pull(image, None, &mut |_| {}).await.unwrap();
        assert_eq!((pulled.digest.as_str(), pulled.reference.as_str()), ("sha256:abc", "acme/shop@sha256:abc"));
        server.join().unwrap();
    }
}

/// Review F16: one image known by several digests (a rebuild with new attestations) is
/// recorded by the digest the tag resolved to in this pull, not the first in the list.
#[tokio::test]
async fn the_pull_records_the_digest_the_registry_served() {
    let inspected =
        r#"{"Id":"sha256:1","RepoDigests":["127.0.0.1:5000/shop@sha256:aaa","127.0.0.1:5000/shop@sha256:bbb"]}"#;
    let (addr, server) = super::test_server::scripted_server(vec![
        (200, "{\"status\":\"Pulling from shop\",\"id\":\"v1\"}\n{\"status\":\"Digest: sha256:bbb\"}"),
        (200, inspected),
    ]);
    let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
    let pulled = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap();
    assert_eq!(pulled.digest, "sha256:bbb");
    assert_eq!(pulled.reference, "127.0.0.1:5000/shop@sha256:bbb");
    server.join().unwrap();
}

#[tokio::test]
async fn an_image_that_keeps_vanishing_fails_the_pull_after_three_tries() {
    let gone = r#"{"message":"No such image: 127.0.0.1:5000/shop:v1"}"#;
    let pulling = r#"{"status":"Pulling from shop","id":"v1"}"#;
    let (addr, server) = super::test_server::scripted_server(vec![
        (200, pulling),
        (404, gone),
        (200, pulling),
        (404, gone),
        (200, pulling),
        (404, gone),
    ]);
    let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
    let err = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("No such image"), "{err}");
    assert_eq!(server.join().unwrap().len(), 6);
}

const RUNNING: &str = r#"{"Id":"abc","Created":"2026-11-27T18:05:58.123456789Z","State":{"Status":"running","Running":true,"Restarting":false,"ExitCode":0},"RestartCount":1}"#;

#[tokio::test]
async fn the_exit_code_of_a_running_container_comes_from_its_first_die_event_since_its_creation() {
    let die = r#"{"Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"5"}},"time":1}"#;
    let (addr, server) = super::test_server::scripted_server(vec![(200, RUNNING), (200, die)]);
    let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
    assert_eq!(DockerRuntime::over(docker).wait_exit("abc").await.unwrap(), 5);
    let heads = server.join().unwrap();
    let events = heads[1].lines().next().unwrap_or_default();
    assert!(events.contains("/events?") && events.contains("since=1795802758"), "{events}");
}

#[tokio::test]
async fn without_events_the_exit_is_watched_in_the_container_s_state() {
    let exited =
        r#"{"Id":"abc","State":{"Status":"exited","Running":false,"Restarting":false,"ExitCode":7},"RestartCount":1}"#;
    let (addr, server) = super::test_server::scripted_server(vec![
        (200, RUNNING),
        (403, r#"{"message":"events are not allowed"}"#),
        (200, RUNNING),
        (200, exited),
    ]);
    let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
    assert_eq!(DockerRuntime::over(docker).wait_exit("abc").await.unwrap(), 7);
    assert_eq!(server.join().unwrap().len(), 4);
}

#[test]
fn an_identity_token_goes_as_identitytoken_and_a_password_as_basic_credentials() {
    let secret = crate::secret::Secret::new;
    let token = RegistryAuth { username: "<token>".into(), password: secret("eyJ0b2tlbiI".into()) };
    let sent = credentials(Some(&token)).unwrap();
    assert_eq!(sent.identitytoken.as_deref(), Some("eyJ0b2tlbiI"));
    assert_eq!((sent.username, sent.password), (None, None), "never the literal <token> user");
    let basic = RegistryAuth { username: "ci".into(), password: secret("pw".into()) };
    let sent = credentials(Some(&basic)).unwrap();
    assert_eq!(
        (sent.username.as_deref(), sent.password.as_deref(), sent.identitytoken),
        (Some("ci"), Some("pw"), None)
    );
}

#[test]
fn references_split_into_repository_and_tag_or_digest() {
    let split = |s: &str| split_reference(s).map(|(r, w)| (r.repo.as_str().to_owned(), w)).unwrap();
    assert_eq!(split("127.0.0.1:5000/shop:v1"), ("127.0.0.1:5000/shop".into(), "v1".into()));
    assert_eq!(split("127.0.0.1:5000/shop"), ("127.0.0.1:5000/shop".into(), "latest".into()));
    assert_eq!(split("shop@sha256:abc"), ("shop".into(), "sha256:abc".into()));
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "tf-shop-dev-main".into(),
        image: "r/shop@sha256:abc".into(),
        env: vec![("A".into(), "1".into())],
        labels: BTreeMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())]),
        network: "tf-overlay".into(),
        replicas: 2,
        constraints: vec!["node.role == worker".into()],
        endpoint_mode: EndpointMode::Dnsrr,
        health_command: Some(vec!["/app".into(), "probe".into()]),
        health: crate::health::HealthPolicy::default(),
        memory: None,
        nano_cpus: None,
        command: None,
        generation: 7,
    }
}

/// The registry credentials in a request head's `X-Registry-Auth`.
fn registry_auth_of(head: &str) -> serde_json::Value {
    use base64::Engine as _;
    let value = head
        .lines()
        .find_map(|l| l.strip_prefix("x-registry-auth: ").or_else(|| l.strip_prefix("X-Registry-Auth: ")))
        .unwrap_or_else(|| panic!("no X-Registry-Auth header in:\n{head}"));
    let bytes = base64::engine::general_purpose::URL_SAFE.decode(value.trim()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn registry_credentials_go_with_the_service_create_and_update_so_every_node_can_pull() {
    let auth = RegistryAuth { username: "ci".into(), password: crate::secret::Secret::new("s3cret".into()) };
    for update in [false, true] {
        let (addr, server) =
            super::test_server::scripted_server(vec![(if update { 200 } else { 201 }, "{\"ID\":\"svc1\"}")]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        let runtime = DockerRuntime::over(docker);
        if update {
            runtime.update_service(&spec(), 3, Some(&auth)).await.unwrap();
        } else {
            runtime.create_service(&spec(), Some(&auth)).await.unwrap();
        }
        let head = server.join().unwrap().remove(0);
        let creds = registry_auth_of(&head);
        assert_eq!(creds["username"], "ci", "{head}");
        assert_eq!(creds["password"], "s3cret");
        if update {
            assert!(head.starts_with("POST ") && head.contains("/services/tf-shop-dev-main/update?"), "{head}");
            assert!(head.contains("version=3"), "{head}");
        } else {
            assert!(head.contains("/services/create"), "{head}");
        }
    }
}

#[test]
fn a_service_updates_start_first_and_rolls_back_on_failure() {
    let s = bollard_spec(&spec());
    let u = s.update_config.unwrap_or_default();
    assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
    assert_eq!(u.failure_action, Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
    assert_eq!(s.endpoint_spec.and_then(|e| e.mode), Some(EndpointSpecModeEnum::DNSRR));
}

#[test]
fn the_health_command_is_exec_form_and_our_labels_stay_off_the_tasks() {
    let s = bollard_spec(&spec());
    let c = s.task_template.and_then(|t| t.container_spec).unwrap_or_default();
    assert_eq!(c.health_check.and_then(|h| h.test), Some(vec!["CMD".into(), "/app".into(), "probe".into()]));
    assert_eq!(c.labels, None, "task containers must not look like managed containers to prune");
    assert!(s.labels.unwrap_or_default().contains_key(LABEL_MANAGED));
}

/// Review F8: the monitor window is a few health checks, never the start period (which
/// start-first has already spent before a task runs).
#[test]
fn the_monitor_window_leaves_out_the_start_period() {
    let mut s = spec();
    s.health.start_period = Duration::from_secs(100);
    let b = bollard_spec(&s);
    let want = nanos(s.health.interval * (s.health.retries + 1));
    assert_eq!(b.update_config.and_then(|u| u.monitor), Some(want));
    assert_eq!(b.rollback_config.and_then(|r| r.monitor), Some(want));
    assert!(update_bound(&s.health, 1, Duration::ZERO) > s.health.start_period, "the wait bound still covers it");
}

#[test]
fn a_task_that_exited_non_zero_has_failed_and_one_swarm_stopped_has_not() {
    let t = |state: &str, desired: &str, code| TaskInfo {
        id: "t".into(),
        node: "n".into(),
        image: "i".into(),
        generation: 1,
        state: state.into(),
        desired: desired.into(),
        exit_code: code,
        message: String::new(),
        container: None,
        ip: None,
        gateway: None,
    };
    assert!(t("failed", "shutdown", Some(1)).failed());
    assert!(t("rejected", "shutdown", None).failed());
    assert!(!t("shutdown", "shutdown", Some(137)).failed());
    assert!(!t("running", "running", None).failed());
    // Review F10: an instance that exits 0 is not running either.
    assert!(t("complete", "running", Some(0)).failed());
    let mut pending = t("pending", "running", None);
    assert_eq!(pending.unschedulable(), None);
    pending.message = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
    assert!(pending.unschedulable().is_some_and(|m| m.contains("no suitable node")));
}
