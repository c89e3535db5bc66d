//! A real registry (Debian's `docker-registry`) on a free loopback port with throwaway storage.
//! It runs under a tiny shell that kills it when our stdin closes, so it goes away with the
//! test process even when the test process dies.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) struct Registry {
    port: u16,
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// The registry every test shares (images are pushed once).
    pub(crate) fn shared() -> &'static Registry {
        static SHARED: OnceLock<Registry> = OnceLock::new();
        SHARED.get_or_init(Registry::start)
    }

    /// A new registry of one's own (e.g. to stop it).
    pub(crate) fn start() -> Registry {
        Self::start_with(None)
    }

    /// A registry that requires basic auth (htpasswd, bcrypt) for `user`:`password`.
    pub(crate) fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::start_with(Some((user, password)))
    }

    /// A registry that notifies `url` of every event, with `Authorization: Bearer <token>`.
    pub(crate) fn start_with_notifications(url: &str, token: &str) -> Registry {
        let notifications = format!(
            "notifications:\n  endpoints:\n    - name: tiny-forge\n      url: {url}\n      headers:\n        Authorization: [Bearer {token}]\n      timeout: 1s\n      threshold: 3\n      backoff: 1s\n      ignoredmediatypes: [application/octet-stream]\n"
        );
        Self::start_full(None, &notifications)
    }

    fn start_with(auth: Option<(&str, &str)>) -> Registry {
        Self::start_full(auth, "")
    }

    fn start_full(auth: Option<(&str, &str)>, extra: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apt-get install apache2-utils)");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            yaml = format!("{yaml}auth:\n  htpasswd:\n    realm: tiny-forge-test\n    path: {}\n", file.display());
        }
        yaml.push_str(extra);
        std::fs::write(&config, yaml).unwrap();
        let script =
            format!("docker-registry serve '{}' >/dev/null 2>&1 & pid=$!; read _; kill $pid", config.display());
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { port, child: Mutex::new(Some(child)), _dir: dir }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it; pulls from it then fail.
    pub(crate) fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"\n");
            }
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
