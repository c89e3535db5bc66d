//! A forward proxy that only tunnels (HTTP `CONNECT`, as clients use for https URLs), and
//! records every request it gets: tunnels it opened and anything else (answered 502), so a test
//! can count what went through it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the proxy got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `CONNECT 172.18.0.1:40123 HTTP/1.1`, `GET http://… HTTP/1.1`, …
    pub(crate) request_line: String,
    /// The `Proxy-Authorization` header, if any.
    pub(crate) authorization: Option<String>,
}

impl Seen {
    /// The target of a `CONNECT`, `None` for any other request.
    pub(crate) fn connect_target(&self) -> Option<&str> {
        self.request_line.strip_prefix("CONNECT ")?.split_whitespace().next()
    }
}

pub(crate) struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ConnectProxy {
    /// Listens on `ip` (e.g. a Docker network's gateway, for a client in a container).
    pub(crate) fn start(ip: IpAddr) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { addr, seen }
    }

    /// `http://user:password@ip:port`
    pub(crate) fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(client: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("proxy-authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
    }
    let entry = Seen { request_line: request_line.trim().to_owned(), authorization };
    let target = entry.connect_target().map(str::to_owned);
    seen.lock().unwrap().push(entry);
    let mut client = client;
    let Some(upstream) = target.and_then(|t| TcpStream::connect(t).ok()) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").is_err() {
        return;
    }
    // The client speaks only after our answer, so nothing is left in `reader`'s buffer.
    let (mut up_read, mut client_write) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(std::net::Shutdown::Write);
    });
    let mut up_write = upstream;
    let _ = std::io::copy(&mut reader, &mut up_write);
    let _ = up_write.shutdown(std::net::Shutdown::Write);
}
