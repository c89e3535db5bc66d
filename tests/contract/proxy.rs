//! [`Proxy`] through the contract the saga relies on ([`ensure`] and [`remove`], by name, with
//! ownership): `FakeProxy`, the NPM backend against the NPM double, and the Caddy backend
//! against a real Caddy tell the same story.

use std::time::Duration;

use tiny_forge::config::SecretSource;
use tiny_forge::domain::Address;
use tiny_forge::proxy::NpmSettings;
use tiny_forge::proxy::{
    CaddyProxy, Deleted, Ensured, HostAccess, Marker, NpmProxy, Owner, Proxy, ProxyError, Removed, Upstream, ensure,
    remove,
};
use tiny_forge::secret::Secret;
use tiny_forge::testing::FakeProxy;

use super::block_on;
use crate::support::caddy::Caddy;
use crate::support::npm::NpmDouble;

fn up(name: &str, last: u8) -> Upstream {
    Upstream { name: name.to_owned(), ip: Some(std::net::IpAddr::from([10, 0, 0, last])), port: 8080 }
}

/// The story; `foreign(domain)` makes a host for `domain` the way someone else would.
async fn story<P: Proxy>(p: &P, domain: &str, other_domain: &str, protected: &HostAccess, foreign: impl FnOnce(&str)) {
    let ours = Marker { state: "s1".into(), slot: "shop/dev/latest".into() };
    let (a, b) = (up("tf-shop-dev-latest-1", 2), up("tf-shop-dev-latest-2", 3));
    assert_eq!(p.find(domain).await.into_result().unwrap(), None);

    let (done, url) = ensure(p, domain, &ours, &a, &HostAccess::Public).await.expect("create");
    assert!(matches!(done, Ensured::Created { .. }), "{done:?}");
    assert!(url.ends_with(domain), "{url}");
    let h = p.find(domain).await.into_result().unwrap().expect("found by name");
    assert_eq!(h.owner, Owner::Marked(ours.clone()));
    assert_eq!(h.target, Some(p.target(domain, &a).unwrap()));
    assert_eq!(h.problem, None);
    assert!(p.list_marked().await.unwrap().iter().any(|x| x.domain == domain));

    let (again, _) = ensure(p, domain, &ours, &a, &HostAccess::Public).await.unwrap();
    assert!(matches!(again, Ensured::Unchanged { .. }), "ensure twice does nothing the second time: {again:?}");
    let (switched, _) = ensure(p, domain, &ours, &b, &HostAccess::Public).await.unwrap();
    assert_eq!(switched, Ensured::Switched { id: h.id.clone(), from: Some(p.target(domain, &a).unwrap()) });
    assert_eq!(p.find(domain).await.into_result().unwrap().unwrap().target, Some(p.target(domain, &b).unwrap()));

    // Protected, then public again: read back each time.
    let (guarded, _) = ensure(p, domain, &ours, &b, protected).await.expect("protect");
    assert!(matches!(guarded, Ensured::Switched { .. }), "{guarded:?}");
    assert_eq!(p.find(domain).await.into_result().unwrap().unwrap().access, *protected);
    let (again, _) = ensure(p, domain, &ours, &b, protected).await.unwrap();
    assert!(matches!(again, Ensured::Unchanged { .. }), "{again:?}");
    ensure(p, domain, &ours, &b, &HostAccess::Public).await.unwrap();
    assert_eq!(p.find(domain).await.into_result().unwrap().unwrap().access, HostAccess::Public);

    // Another slot's, another state file's: refused, untouched.
    let other_slot = Marker { state: "s1".into(), slot: "web/dev/2".into() };
    assert!(matches!(ensure(p, domain, &other_slot, &a, &HostAccess::Public).await, Err(ProxyError::OtherSlot { .. })));
    let other_state = Marker { state: "s2".into(), slot: "shop/dev/latest".into() };
    assert!(matches!(
        ensure(p, domain, &other_state, &a, &HostAccess::Public).await,
        Err(ProxyError::OtherState { .. })
    ));
    assert_eq!(remove(p, domain, &other_slot).await.unwrap(), Removed::NotOurs { id: h.id.clone() });
    assert_eq!(remove(p, domain, &other_state).await.unwrap(), Removed::NotOurs { id: h.id.clone() });
    assert_eq!(p.find(domain).await.into_result().unwrap().unwrap().target, Some(p.target(domain, &b).unwrap()));

    assert_eq!(remove(p, domain, &ours).await.unwrap(), Removed::Deleted { id: h.id.clone() });
    assert_eq!(p.find(domain).await.into_result().unwrap(), None);
    assert_eq!(remove(p, domain, &ours).await.unwrap(), Removed::AlreadyGone);
    assert_eq!(p.delete(&h.id, domain).await.unwrap(), Deleted::AlreadyGone, "a second delete is already gone");

    // Someone else's host: never taken, never listed as ours.
    foreign(other_domain);
    let theirs = p.find(other_domain).await.into_result().unwrap().expect("their host");
    assert_eq!(theirs.owner, Owner::Unmarked);
    assert!(matches!(ensure(p, other_domain, &ours, &a, &HostAccess::Public).await, Err(ProxyError::Foreign { .. })));
    assert!(matches!(remove(p, other_domain, &ours).await.unwrap(), Removed::NotOurs { .. }));
    assert!(!p.list_marked().await.unwrap().iter().any(|x| x.domain == other_domain));
}

#[test]
fn the_fake_proxy_keeps_the_contract() {
    let p = FakeProxy::default();
    block_on(story(&p, "a.test.local", "b.test.local", &HostAccess::AccessList(3), |d| {
        p.add(d, Owner::Unmarked, tiny_forge::proxy::Target { host: "someone".into(), port: 80 });
    }));
}

#[test]
fn the_npm_backend_keeps_the_contract_against_the_npm_double() {
    let npm = NpmDouble::start("ops@example.com", "pw");
    let settings = NpmSettings {
        url: npm.url(),
        email: "ops@example.com".into(),
        password: SecretSource::Env("UNUSED".into()),
        timeout: Duration::from_secs(5),
        forward: Address::Name,
        certificate_id: None,
        ssl_forced: false,
        http2_support: false,
        hsts_enabled: false,
        hsts_subdomains: false,
        block_exploits: true,
        allow_websocket_upgrade: true,
        caching_enabled: false,
        advanced_config: String::new(),
    };
    let p = NpmProxy::new(settings, Secret::new("pw".into()), crate::support::client());
    block_on(story(&p, "a.test.local", "b.test.local", &HostAccess::AccessList(3), |d| {
        npm.add_host(d, "someone-else", serde_json::json!({}));
    }));
}

#[test]
fn the_caddy_backend_keeps_the_contract_against_a_real_caddy() {
    let caddy = Caddy::start();
    let admin = caddy.admin_url();
    let p =
        CaddyProxy::new(admin.clone(), "srv0".into(), Duration::from_secs(5), Address::Ip, crate::support::client());
    let hash = tiny_forge::secret::Secret::new("$2a$14$zpW1fc91B9plW3hBY5PYh.nW..jKUtH6N.cA.QjvAil.UrWnnN0X.".into());
    let protected = HostAccess::BasicAuth { user: "preview".into(), hash };
    block_on(story(&p, "a.test.local", "b.test.local", &protected, |d| {
        let route =
            serde_json::json!({"match": [{"host": [d]}], "handle": [{"handler": "static_response", "body": "theirs"}]});
        // On a thread of its own: this runs inside the story's runtime.
        let status = std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    crate::support::client()
                        .post(format!("{admin}/config/apps/http/servers/srv0/routes"))
                        .json(&route)
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .join()
            .unwrap()
        });
        assert!(status.is_success());
    }));
}
