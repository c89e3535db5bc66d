//! A tiny HTTP app for tiny-forge's demo and tests: std only, built as a static binary and
//! shipped in a FROM-scratch image. Its behaviour is set by environment variables:
//!
//! | variable         | default | effect                                                    |
//! |------------------|---------|-----------------------------------------------------------|
//! | `PORT`           | 8080    | port to listen on                                         |
//! | `LISTEN_AFTER_MS`| 0       | do not even listen until then                             |
//! | `READY_AFTER_MS` | 0       | `/health` answers 503 until then                          |
//! | `HEALTH_STATUS`  | 200     | status of `/health` once ready                            |
//! | `ROOT_STATUS`    | 200     | status of every other path (`/`)                          |
//! | `EXIT_AFTER_MS`  | unset   | exit after that long with `EXIT_CODE` (default 1)         |
//! | `EXIT_ONCE`      | unset   | with `EXIT_AFTER_MS`: only in the container's first run   |
//! | `SLOW_MS`        | 0       | delay every answer                                        |
//! | `MESSAGE`        | hello   | body of `/` (followed by a newline)                       |
//!
//! Every answer carries the body `MESSAGE` for `/`, and `ok`/`not ready` for `/health`.
//!
//! `demo-app probe [PATH]` asks `127.0.0.1:$PORT` for PATH (default `/health`) and exits 0 on a
//! 200, else 1: a health command for images without a shell (Swarm's `health.command`).
//!
//! `demo-app watch HOST:PORT MS` asks `http://HOST:PORT/` every 20 ms for MS milliseconds and
//! prints `watch: ok=N failed=M` and each distinct answer: a client that counts failed requests
//! during a redeploy.
//!
//! `demo-app once [EXIT_CODE [SLEEP_MS]]` is a one-off command instead (a release or a hook):
//! it prints the `TF_*` variables, `APP_URL` and `DATABASE_URL` (one line each on stdout) and a
//! line on stderr, then sleeps and exits with `EXIT_CODE` (default 0).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn env_ms(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// `demo-app once [EXIT_CODE [SLEEP_MS]]`.
fn once(args: &[String]) -> ! {
    for k in ["TF_PROJECT", "TF_STAGE", "TF_TAG", "TF_SLOT", "TF_HOST", "TF_URL", "APP_URL", "DATABASE_URL"] {
        if let Ok(v) = std::env::var(k) {
            println!("once: {k}={v}");
        }
    }
    eprintln!("once: running (this line goes to stderr)");
    let code: i32 = args.first().and_then(|c| c.parse().ok()).unwrap_or(0);
    if let Some(ms) = args.get(1).and_then(|m| m.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    println!("once: exiting with code {code}");
    std::process::exit(code);
}

/// One `GET path` to `addr`: the status and body, or `None` when it failed.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Read as _;
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    // This server keeps connections open; the end of our side ends its loop.
    s.shutdown(std::net::Shutdown::Write).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_owned();
    Some((status, body))
}

/// `demo-app probe [PATH]`.
fn probe(args: &[String]) -> ! {
    let port = env_ms("PORT").unwrap_or(8080);
    let path = args.first().map_or("/health", String::as_str);
    let ok = get(&format!("127.0.0.1:{port}"), path).is_some_and(|(status, _)| status == 200);
    std::process::exit(if ok { 0 } else { 1 });
}

/// `demo-app watch HOST:PORT MS`.
fn watch(args: &[String]) -> ! {
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:8080".into());
    let total = Duration::from_millis(args.get(1).and_then(|m| m.parse().ok()).unwrap_or(10_000));
    let start = Instant::now();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut seen: Vec<String> = Vec::new();
    while start.elapsed() < total {
        match get(&addr, "/") {
            Some((200, body)) => {
                ok += 1;
                if !seen.contains(&body) {
                    println!("watch: answer {body:?} after {} ms", start.elapsed().as_millis());
                    seen.push(body);
                }
            }
            other => {
                failed += 1;
                println!("watch: failed after {} ms: {other:?}", start.elapsed().as_millis());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("watch: ok={ok} failed={failed}");
    std::process::exit(0);
}

/// Where `EXIT_ONCE` marks that the container exited once.
const EXITED_MARK: &str = "/exited-once";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("once") => once(&args[1..]),
        Some("probe") => probe(&args[1..]),
        Some("watch") => watch(&args[1..]),
        _ => {}
    }
    let start = Instant::now();
    let port = env_ms("PORT").unwrap_or(8080);
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "hello".into());
    let ready_after = Duration::from_millis(env_ms("READY_AFTER_MS").unwrap_or(0));
    let health_status = env_ms("HEALTH_STATUS").unwrap_or(200);
    let slow = Duration::from_millis(env_ms("SLOW_MS").unwrap_or(0));
    // The mark of an earlier run lives in the container's own file system: a restart keeps it.
    let once_done = std::env::var_os("EXIT_ONCE").is_some() && std::path::Path::new(EXITED_MARK).exists();
    if let Some(ms) = env_ms("EXIT_AFTER_MS").filter(|_| !once_done) {
        let code = env_ms("EXIT_CODE").map_or(1, |c| c as i32);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            if std::env::var_os("EXIT_ONCE").is_some() {
                let _ = std::fs::write(EXITED_MARK, b"");
            }
            println!("demo-app: exiting with code {code} as asked (EXIT_AFTER_MS={ms})");
            eprintln!("demo-app: fatal: simulated crash");
            std::process::exit(code);
        });
    }
    if let Some(ms) = env_ms("LISTEN_AFTER_MS") {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let listener = match TcpListener::bind(("0.0.0.0", port as u16)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-app: cannot listen on {port}: {e}");
            std::process::exit(2);
        }
    };
    println!("demo-app: listening on :{port} (ready after {} ms)", ready_after.as_millis());
    eprintln!("demo-app: serving (this line goes to stderr)");
    for stream in listener.incoming().flatten() {
        let message = message.clone();
        std::thread::spawn(move || serve(stream, &message, start, ready_after, health_status, slow));
    }
}

fn serve(stream: TcpStream, message: &str, start: Instant, ready_after: Duration, health_status: u64, slow: Duration) {
    let root_status = env_ms("ROOT_STATUS").unwrap_or(200);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" || header == "\n" {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        std::thread::sleep(slow);
        let (status, body) = if path.starts_with("/health") {
            if start.elapsed() < ready_after {
                (503, "not ready\n".to_owned())
            } else if health_status == 200 {
                println!("demo-app: ready");
                (200, "ok\n".to_owned())
            } else {
                (health_status, format!("status {health_status}\n"))
            }
        } else {
            (root_status, format!("{message}\n"))
        };
        let reason = match status {
            200 => "OK",
            503 => "Service Unavailable",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let resp = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
