//! A local webhook receiver, plain or https: records every request (headers and body) and
//! answers as told.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// 200 OK.
    Ok,
    /// Accept, read, never answer.
    Hang,
}

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

pub(crate) struct Receiver {
    pub(crate) port: u16,
    addr: SocketAddr,
    tls: bool,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Plain HTTP on loopback.
    pub(crate) fn start(mode: Mode) -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), mode, None)
    }

    /// HTTPS on `ip` (e.g. a Docker network's gateway, for a client in a container), presenting
    /// the certificate of `tls` (see `support::tls::TestCa::server_config`).
    pub(crate) fn start_tls(ip: IpAddr, mode: Mode, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_on(ip, mode, Some(tls))
    }

    fn start_on(ip: IpAddr, mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&got);
        let is_tls = tls.is_some();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (shared, tls) = (Arc::clone(&shared), tls.clone());
                std::thread::spawn(move || serve(stream, tls, mode, &shared));
            }
        });
        Self { port: addr.port(), addr, tls: is_tls, got }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://{}/hook", if self.tls { "https" } else { "http" }, self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, mode: Mode, got: &Mutex<Vec<Received>>) {
    match tls {
        None => handle(stream, mode, got),
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else { return };
            handle(rustls::StreamOwned::new(conn, stream), mode, got);
        }
    }
}

/// Reads one request (a failed TLS handshake reads nothing and records nothing), records it,
/// answers.
fn handle<S: Read + Write>(stream: S, mode: Mode, got: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    got.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned() });
    match mode {
        Mode::Ok => {
            let s = reader.get_mut();
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = s.flush();
        }
        Mode::Hang => std::thread::sleep(std::time::Duration::from_secs(120)),
    }
}
