//! A Unix socket in front of the real Docker socket that fails chosen requests (by method and
//! path) and passes the rest through, byte for byte: `DOCKER_HOST=unix://…` for the tiny-forge
//! under test, so that a failed look is a real Engine API answer and everything else is the real
//! engine. Issue 21.
//!
//! Each connection is served on its own thread. A request that no rule matches is forwarded
//! with `Connection: close` (so that the client opens a fresh connection, whose first request
//! is matched again), and the two sockets are spliced until either side closes. A matched
//! request is answered with the rule's status and a JSON message, then the connection closes.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One fault: requests whose method is `method` and whose path (with its query) matches `path`
/// are answered `status`.
#[derive(Clone)]
struct Rule {
    method: String,
    path: regex::Regex,
    status: u16,
    /// Instead of failing: hold the request this long, then pass it on whatever the client did
    /// meanwhile (an engine slow to act on a request whose client has hung up).
    delay: Option<std::time::Duration>,
}

/// The socket and its rules; dropped, it stops accepting.
pub(crate) struct FaultyDocker {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    rules: Arc<Mutex<Vec<Rule>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// Paths of the Engine API, as regular expressions over `[/vX.Y]/…?query` (the version prefix is
/// there or not, as the client negotiated).
pub(crate) mod path {
    /// Inspect one container.
    pub(crate) const CONTAINER_INSPECT: &str = r"^(/v[0-9.]+)?/containers/[^/?]+/json";
    /// Create a container.
    pub(crate) const CONTAINER_CREATE: &str = r"^(/v[0-9.]+)?/containers/create";
    /// List containers.
    pub(crate) const CONTAINER_LIST: &str = r"^(/v[0-9.]+)?/containers/json";
    /// Remove a container.
    pub(crate) const CONTAINER_DELETE: &str = r"^(/v[0-9.]+)?/containers/[^/?]+(\?|$)";
    /// List services.
    pub(crate) const SERVICE_LIST: &str = r"^(/v[0-9.]+)?/services(\?|$)";
    /// Inspect one service.
    pub(crate) const SERVICE_INSPECT: &str = r"^(/v[0-9.]+)?/services/[^/?]+(\?|$)";
}

impl FaultyDocker {
    /// Starts the socket, in front of the engine the test process itself uses.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let upstream = real_socket();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, f, s) = (rules.clone(), failed.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (r, f, up) = (r.clone(), f.clone(), upstream.clone());
                        std::thread::spawn(move || serve(client, &up, &r, &f));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
        });
        Self { _dir: dir, socket, rules, failed, stop }
    }

    /// `unix://…`: the `DOCKER_HOST` of a tiny-forge that talks through this socket.
    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// From now on, answers `status` to every `method` request whose path matches `path` (one of
    /// [`path`]'s expressions).
    pub(crate) fn fail(&self, method: &str, path: &str, status: u16) {
        let rule = Rule { method: method.to_owned(), path: regex::Regex::new(path).unwrap(), status, delay: None };
        self.rules.lock().unwrap().push(rule);
    }

    /// From now on, holds every `method` request whose path matches `path` for `delay`, then
    /// passes it to the engine even when the client has gone meanwhile.
    pub(crate) fn delay(&self, method: &str, path: &str, delay: std::time::Duration) {
        let rule =
            Rule { method: method.to_owned(), path: regex::Regex::new(path).unwrap(), status: 0, delay: Some(delay) };
        self.rules.lock().unwrap().push(rule);
    }

    /// Every request passes again.
    pub(crate) fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many requests were failed so far (a test that injects a fault must see it used).
    pub(crate) fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyDocker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The socket of the engine the test process uses (`DOCKER_HOST=unix://…`, else the default).
fn real_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// Serves one client connection: its first request is failed or forwarded.
fn serve(mut client: UnixStream, upstream: &PathBuf, rules: &Mutex<Vec<Rule>>, failed: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut first = text.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
    let rule = rules.lock().unwrap().iter().find(|r| r.method == method && r.path.is_match(path)).cloned();
    if let Some(delay) = rule.as_ref().and_then(|r| r.delay) {
        return held(client, upstream, &text, delay);
    }
    if let Some(rule) = rule {
        failed.fetch_add(1, Ordering::SeqCst);
        let body = format!("{{\"message\":\"injected fault: {method} {path} answered {}\"}}", rule.status);
        let answer = format!(
            "HTTP/1.1 {} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            rule.status,
            body.len()
        );
        let _ = client.write_all(answer.as_bytes());
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    let Ok(mut engine) = UnixStream::connect(upstream) else {
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    };
    // One request per connection: the client reconnects for the next one, which is matched.
    let forwarded = closing(&text);
    if engine.write_all(forwarded.as_bytes()).is_err() {
        return;
    }
    let (Ok(mut client_r), Ok(mut engine_w)) = (client.try_clone(), engine.try_clone()) else { return };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut engine_w);
        let _ = engine_w.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut engine, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = engine.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

/// A held request: its body read now, then, after `delay`, the whole request passed to the
/// engine (whether or not the client still listens) and the answer relayed if it does.
fn held(mut client: UnixStream, upstream: &PathBuf, head: &str, delay: std::time::Duration) {
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if client.read_exact(&mut body).is_err() {
        return;
    }
    std::thread::sleep(delay);
    let Ok(mut engine) = UnixStream::connect(upstream) else { return };
    let forwarded = closing(head);
    if engine.write_all(forwarded.as_bytes()).is_err() || engine.write_all(&body).is_err() {
        return;
    }
    let _ = std::io::copy(&mut engine, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}

/// A request head as the engine gets it: its own `Connection` header replaced by `close`.
fn closing(head: &str) -> String {
    let mut forwarded = String::new();
    for line in head.split("\r\n").take_while(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    forwarded
}
