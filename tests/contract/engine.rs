//! [`ContainerRuntime`]: `FakeRuntime` and `DockerRuntime` (the real engine) tell the same story.

use std::collections::BTreeMap;

use tiny_forge::engine::{
    ContainerRuntime, ContainerSpec, DockerRuntime, LABEL_MANAGED, LABEL_PROJECT, LABEL_SLOT, Removal, RestartPolicy,
    RuntimeError,
};
use tiny_forge::engine::{Containers as _, Images as _, Networks as _};
use tiny_forge::testing::FakeRuntime;

use super::block_on;
use crate::support::{Sandbox, images};

fn spec(name: &str, image: &str, network: &str, project: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        env: vec![("MESSAGE".into(), "contract".into())],
        labels: BTreeMap::from([
            (LABEL_MANAGED.into(), "true".into()),
            (LABEL_PROJECT.into(), project.into()),
            (LABEL_SLOT.into(), format!("{project}/dev/v1")),
        ]),
        network: network.to_owned(),
        port: 8080,
        restart: RestartPolicy::No,
        memory: None,
        nano_cpus: None,
        command: None,
        volumes: Vec::new(),
    }
}

/// The engine's behaviour the saga relies on, in order.
async fn story<R: ContainerRuntime>(rt: &R, image: &str, network: &str, name: &str, project: &str) {
    let pulled = rt.pull(image, None, &mut |_| {}).await.expect("pull");
    assert!(pulled.digest.starts_with("sha256:"), "{pulled:?}");
    assert!(pulled.reference.ends_with(&format!("@{}", pulled.digest)), "{pulled:?}");

    assert!(rt.ensure_network(network).await.unwrap(), "a missing network is created");
    assert!(!rt.ensure_network(network).await.unwrap(), "an existing one is left as it is");

    let s = spec(name, &pulled.reference, network, project);
    rt.create(&s).await.expect("create");
    match rt.create(&s).await {
        Err(RuntimeError::NameTaken { name: taken }) => assert_eq!(taken, name),
        other => panic!("a second create of one name must say the name is taken, got {other:?}"),
    }
    let created = rt.inspect(name, network).await.into_result().unwrap().expect("created");
    assert_ne!(created.state, "running");
    assert_eq!(created.labels.get(LABEL_PROJECT).map(String::as_str), Some(project));

    rt.start(name).await.expect("start");
    let running = rt.inspect(name, network).await.into_result().unwrap().expect("running");
    assert_eq!(running.state, "running");
    assert_eq!(running.exit_code, None);
    assert!(running.ip.is_some(), "an address on {network}");
    let listed = rt.list_managed().await.unwrap().into_iter().find(|c| c.name == name).expect("listed as managed");
    assert_eq!(listed.addresses.get(network).copied(), running.ip, "the list says its address on {network}");
    // One slot's containers, by label: its own, and nothing of another slot.
    let of_slot = rt.list_managed_of_slot(&format!("{project}/dev/v1")).await.unwrap();
    assert_eq!(of_slot.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), [name], "{of_slot:?}");
    assert!(rt.list_managed_of_slot(&format!("{project}/dev/v2")).await.unwrap().is_empty());
    rt.logs_tail(name, 5).await.expect("logs");
    // Which of some images a container uses: only those asked about, and only exact ids.
    let image_id = rt
        .list_images()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.digests().contains(pulled.digest.as_str()))
        .expect("the pulled image is listed")
        .id;
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000".to_owned();
    let asked = std::collections::BTreeSet::from([image_id.clone(), other.clone()]);
    assert_eq!(rt.images_in_use(&asked).await.unwrap(), std::collections::BTreeSet::from([image_id.clone()]));
    assert!(rt.images_in_use(&std::collections::BTreeSet::from([other])).await.unwrap().is_empty());

    assert_eq!(rt.remove(name).await.unwrap(), Removal::Removed);
    assert_eq!(rt.remove(name).await.unwrap(), Removal::AlreadyGone);
    assert!(rt.inspect(name, network).await.into_result().unwrap().is_none());
    assert!(!rt.list_managed().await.unwrap().iter().any(|c| c.name == name));
    assert!(rt.start(name).await.is_err(), "starting what is gone fails");
}

#[test]
fn the_fake_engine_keeps_the_contract() {
    block_on(story(&FakeRuntime::default(), "127.0.0.1:5000/demo:v1", "net", "tf-contract-1", "contract"));
}

#[test]
fn the_docker_engine_keeps_the_contract() {
    let sb = Sandbox::new("ctreng");
    let image = format!("{}:v1", images().repo);
    let name = format!("tf-{}-contract", sb.project);
    block_on(async {
        let rt = DockerRuntime::connect().await.unwrap();
        story(&rt, &image, &sb.network, &name, &sb.project).await;
    });
}

/// A container whose restart policy already undid its crash runs again, and its state no longer
/// has the code: `wait_exit` still answers the crash's code (from the engine's `die` events), and
/// does not wait for an exit that never comes.
#[test]
fn a_crash_the_restart_policy_already_undid_keeps_its_exit_code() {
    let sb = Sandbox::new("ctrexit");
    let image = format!("{}:v1", images().repo);
    let name = format!("tf-{}-crash", sb.project);
    block_on(async {
        let rt = DockerRuntime::connect().await.unwrap();
        assert!(rt.ensure_network(&sb.network).await.unwrap());
        // Other tests' image cleanup may take the shared image between the pull and the create.
        let mut made = false;
        for _ in 0..5 {
            let pulled = rt.pull(&image, None, &mut |_| {}).await.expect("pull");
            let mut s = spec(&name, &pulled.reference, &sb.network, &sb.project);
            s.restart = RestartPolicy::Always;
            s.env = [("EXIT_AFTER_MS", "100"), ("EXIT_CODE", "3"), ("EXIT_ONCE", "1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .to_vec();
            match rt.create(&s).await {
                Ok(_) => {
                    made = true;
                    break;
                }
                Err(RuntimeError::MissingImage { .. }) => {}
                Err(e) => panic!("create: {e}"),
            }
        }
        assert!(made, "the image kept vanishing");
        rt.start(&name).await.expect("start");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let info = rt.inspect(&name, &sb.network).await.into_result().unwrap().expect("the container");
            if info.restarts >= 1 && info.state == "running" {
                assert_eq!(info.exit_code, None, "running again: its state has no code");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never restarted: {info:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let code = tokio::time::timeout(std::time::Duration::from_secs(60), rt.wait_exit(&name))
            .await
            .expect("an answer, not a wait for an exit that never comes");
        assert_eq!(code.expect("the code"), 3);
        assert_eq!(rt.remove(&name).await.unwrap(), Removal::Removed);
    });
}
