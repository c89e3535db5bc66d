//! A real Caddy (Debian's package) on loopback: the admin API on one free port and an HTTP
//! server `srv0` with no routes on another. Like the registry, it runs under a shell that kills
//! it when the test process goes away.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Caddy {
    pub(crate) admin_port: u16,
    pub(crate) http_port: u16,
    child: Option<Child>,
    /// The config it started with (what a restart without `--resume` comes back to).
    config: serde_json::Value,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Caddy {
    pub(crate) fn start() -> Self {
        Self::start_with(Some(serde_json::json!([])))
    }

    /// A Caddy whose server `srv0` starts with `routes` (`None`: no `routes` key at all).
    pub(crate) fn start_with(routes: Option<serde_json::Value>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (admin_port, http_port) = (free_port(), free_port());
        let config = dir.path().join("caddy.json");
        let mut json = serde_json::json!({
            "admin": {"listen": format!("127.0.0.1:{admin_port}")},
            "apps": {"http": {"servers": {"srv0": {
                "listen": [format!("127.0.0.1:{http_port}")],
                // Plain HTTP on loopback: no certificates for test host names.
                "automatic_https": {"disable": true}
            }}}}
        });
        if let Some(r) = routes {
            json["apps"]["http"]["servers"]["srv0"]["routes"] = r;
        }
        std::fs::write(&config, json.to_string()).unwrap();
        let script = format!(
            "caddy run --config '{}' >'{}' 2>&1 & pid=$!; read _; kill $pid",
            config.display(),
            dir.path().join("log").display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .stdin(Stdio::piped())
            .spawn()
            .expect("caddy (apt-get install caddy)");
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when its admin API answers (a listening port alone could be another process's,
        // or a Caddy still loading its config, which resets connections).
        while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err() || !admin_answers(admin_port) {
            assert!(Instant::now() < deadline, "caddy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { admin_port, http_port, child: Some(child), config: json, _dir: dir }
    }

    /// Loads the config it started with, as a restart without `--resume` does: every route
    /// added through the API is gone.
    pub(crate) fn reset(&self) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = crate::support::client()
                .post(format!("{}/load", self.admin_url()))
                .json(&self.config)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "caddy /load: {}", r.status());
        });
    }

    pub(crate) fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// As [`Caddy::get`], with basic-auth credentials.
    pub(crate) fn get_with_auth(&self, host: &str, user: &str, password: &str) -> (u16, String) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = crate::support::client()
                .get(format!("http://127.0.0.1:{}/", self.http_port))
                .header("Host", host)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    /// GET `/` through Caddy with this Host header: (status, body).
    pub(crate) fn get(&self, host: &str) -> (u16, String) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = crate::support::client()
                .get(format!("http://127.0.0.1:{}/", self.http_port))
                .header("Host", host)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"\n");
            }
            let _ = child.wait();
        }
    }
}

/// The routes of server `srv0`, read from Caddy's admin API at `admin` (none when it has no
/// `routes` key). The test fails when Caddy does not answer 200.
pub(crate) fn routes(admin: &str) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = crate::support::client()
            .get(format!("{admin}/config/apps/http/servers/srv0/routes"))
            .send()
            .await
            .expect("Caddy's admin API");
        assert_eq!(r.status().as_u16(), 200, "Caddy's admin API refused to list routes");
        match r.json::<serde_json::Value>().await.unwrap() {
            serde_json::Value::Array(list) => list,
            _ => Vec::new(),
        }
    })
}

/// Caddy's admin API as older Caddy versions answered it: in front of a real Caddy, it passes
/// every request through (one per connection) and turns the 404 for an unknown `@id` into the
/// 500 `unknown object ID` those versions sent.
pub(crate) struct OlderAdmin {
    port: u16,
}

impl OlderAdmin {
    pub(crate) fn start(caddy: &Caddy) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let admin_port = caddy.admin_port;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || relay(stream, admin_port));
            }
        });
        Self { port }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Passes one request to Caddy's admin API and its answer back, rewritten as older Caddy sent it.
fn relay(mut client: std::net::TcpStream, admin_port: u16) {
    use std::fmt::Write as _;
    use std::io::{BufRead as _, BufReader, Read as _};
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut head = request_line;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" | "connection" => continue,
            "content-length" => length = value.trim().parse().unwrap(),
            _ => {}
        }
        head.push_str(&line);
    }
    // Caddy accepts only its own address as Host; one exchange per connection.
    write!(head, "Host: 127.0.0.1:{admin_port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut upstream = std::net::TcpStream::connect(("127.0.0.1", admin_port)).unwrap();
    upstream.write_all(head.as_bytes()).unwrap();
    upstream.write_all(&body).unwrap();
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let text = if text.starts_with("HTTP/1.1 404 ") && text.contains("unknown object ID") {
        text.replacen("HTTP/1.1 404 Not Found", "HTTP/1.1 500 Internal Server Error", 1)
    } else {
        text.into_owned()
    };
    let _ = client.write_all(text.as_bytes());
}

/// Does Caddy's admin API on `port` answer `GET /config/` with 200?
fn admin_answers(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /config/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}
