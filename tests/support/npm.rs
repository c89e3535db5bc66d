//! A strict test double of Nginx Proxy Manager's REST API (tokens and proxy hosts), built from
//! the recorded behaviour of NPM v2.15.1 (`tests/fixtures/npm-exchanges.json`, a copy of the
//! shared recording): the same required fields, unknown fields rejected, duplicate domains
//! refused, integer ids never reused, the same status codes and error bodies (no 401, ever),
//! tokens that expire (lifetime settable), and faults to inject.
//!
//! It is a plain threaded HTTP/1.1 server (`Connection: close`), so a fault can stall or drop a
//! connection exactly where a test wants.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

/// What to do to a call.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Answer 500 `Internal Error` without acting.
    Status500,
    /// Answer with this status and NPM-shaped error message, without acting (what NPM does
    /// when it rejects a request, e.g. a host created by someone else a moment earlier).
    Reject(u16, &'static str),
    /// Wait this long, then handle the call normally.
    Stall(Duration),
    /// Close the connection without answering.
    Close,
    /// Handle the call (the change is made), then wait this long before answering: the client
    /// gives up, the change stays.
    ActThenStall(Duration),
    /// Expire every token, then handle the call (it meets `Token has expired`).
    ExpireTokens,
}

/// Which call a fault hits (once).
#[derive(Debug, Clone)]
pub(crate) enum When {
    /// The n-th call from now on (1 = the next one).
    Nth(usize),
    /// The next call with this method whose path starts with this prefix.
    Next(&'static str, &'static str),
    /// As `Next`, after letting this many such calls through.
    NextAfter(&'static str, &'static str, usize),
}

struct State {
    email: String,
    password: String,
    token_lifetime: Duration,
    tokens: HashMap<String, Instant>,
    next_token: u64,
    hosts: BTreeMap<u64, Value>,
    next_id: u64,
    calls: Vec<(String, String)>,
    faults: Vec<(When, Fault)>,
}

/// A running double. Dropping it stops accepting connections.
pub(crate) struct NpmDouble {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// A read-only view of a double's hosts, for the test bed's "nothing left" check.
#[derive(Clone)]
pub(crate) struct NpmView(Arc<Mutex<State>>);

impl NpmView {
    /// Live (not deleted) hosts whose names contain `needle`.
    pub(crate) fn hosts_with(&self, needle: &str) -> Vec<Value> {
        live_hosts(&self.0).into_iter().filter(|h| h["domain_names"].to_string().contains(needle)).collect()
    }
}

fn live_hosts(state: &Mutex<State>) -> Vec<Value> {
    state.lock().unwrap().hosts.values().filter(|h| !h["_deleted"].as_bool().unwrap_or(false)).cloned().collect()
}

const PATTERN: &str = r#"^[^&| @!#%^();:/\\}{=+?<>,~`'"]+$"#;

fn now_sql() -> String {
    let s = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    s.trim_end_matches('Z').replace('T', " ")
}

fn owner() -> Value {
    json!({"id": 1, "created_on": "2026-11-27 05:12:16", "modified_on": "2026-11-27 05:12:16", "is_disabled": false,
           "email": "admin@example.com", "name": "Administrator", "nickname": "Administrator",
           "avatar": "//www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?default=mm", "roles": ["admin"]})
}

fn err(code: u16, message: &str) -> (u16, Value) {
    (code, json!({"error": {"code": code, "message": message}}))
}

impl NpmDouble {
    /// Starts a double with one user (`email`, `password`) on a free loopback port.
    pub(crate) fn start(email: &str, password: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            email: email.to_owned(),
            password: password.to_owned(),
            token_lifetime: Duration::from_secs(86_400),
            tokens: HashMap::new(),
            next_token: 0,
            hosts: BTreeMap::new(),
            next_id: 1,
            calls: Vec::new(),
            faults: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &st));
            }
        });
        Self { port, state }
    }

    /// Starts the double's data plane, as NPM's nginx would serve: a request whose Host names a
    /// live host is forwarded to its `forward_host:forward_port` (one request per connection),
    /// any other gets 404, an upstream that cannot be reached or does not answer 502. Returns
    /// its port on loopback.
    pub(crate) fn serve_traffic(&self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::clone(&self.state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = Arc::clone(&shared);
                std::thread::spawn(move || forward(stream, &st));
            }
        });
        port
    }

    /// `http://127.0.0.1:PORT` (the NPM base URL, without `/api`).
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Live (not deleted) hosts as stored.
    pub(crate) fn hosts(&self) -> Vec<Value> {
        live_hosts(&self.state)
    }

    /// A view for the test bed.
    pub(crate) fn view(&self) -> NpmView {
        NpmView(Arc::clone(&self.state))
    }

    /// Every call so far, as (method, path).
    pub(crate) fn calls(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Injects a one-shot fault.
    pub(crate) fn inject(&self, when: When, fault: Fault) {
        let mut st = self.state.lock().unwrap();
        let when = match when {
            When::Nth(n) => When::Nth(st.calls.len() + n),
            w => w,
        };
        st.faults.push((when, fault));
    }

    /// Drops every fault not yet triggered.
    pub(crate) fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Lifetime of tokens issued from now on.
    pub(crate) fn set_token_lifetime(&self, d: Duration) {
        self.state.lock().unwrap().token_lifetime = d;
    }

    /// Adds a host directly (as if someone made it in NPM's UI).
    pub(crate) fn add_host(&self, domain: &str, forward_host: &str, meta: Value) -> u64 {
        let mut st = self.state.lock().unwrap();
        let id = st.next_id;
        st.next_id += 1;
        let mut h = default_host(id);
        h["domain_names"] = json!([domain]);
        h["forward_host"] = json!(forward_host);
        h["forward_port"] = json!(80);
        h["meta"] = meta;
        merge_nginx(&mut h);
        st.hosts.insert(id, h);
        id
    }
}

fn default_host(id: u64) -> Value {
    let now = now_sql();
    json!({"id": id, "created_on": now, "modified_on": now, "owner_user_id": 1, "domain_names": [],
           "forward_host": "", "forward_port": 80, "access_list_id": 0, "certificate_id": 0, "ssl_forced": false,
           "caching_enabled": false, "block_exploits": false, "advanced_config": "", "meta": {},
           "allow_websocket_upgrade": false, "http2_support": false, "forward_scheme": "http", "enabled": true,
           "locations": null, "hsts_enabled": false, "hsts_subdomains": false, "trust_forwarded_proto": false})
}

/// What "configuring nginx" leaves in `meta`. `nginx -t` fails, as in NPM, when a custom
/// location's `forward_host` does not resolve (the main `forward_host` is not resolved), or when
/// `advanced_config` holds an unknown directive (`bogus_directive` here).
fn merge_nginx(h: &mut Value) {
    use std::net::ToSocketAddrs as _;
    let id = h["id"].as_u64().unwrap_or(0);
    let mut error = None;
    if h["advanced_config"].as_str().unwrap_or("").contains("bogus_directive") {
        error = Some(format!(
            "nginx: [emerg] unknown directive \"bogus_directive\" in /data/nginx/proxy_host/{id}.conf:40\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
        ));
    }
    for loc in h["locations"].as_array().cloned().unwrap_or_default() {
        let host = loc["forward_host"].as_str().unwrap_or("");
        if (host, 80).to_socket_addrs().is_err() {
            error = Some(format!(
                "2026/11/27 05:12:25 [emerg] 16034#16034: host not found in upstream \"{host}\" in /data/nginx/proxy_host/{id}.conf:48\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
            ));
        }
    }
    let meta = h["meta"].as_object_mut().unwrap();
    meta.insert("nginx_online".into(), json!(error.is_none()));
    meta.insert("nginx_err".into(), error.map_or(Value::Null, Value::String));
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) =
        target.split_once('?').map_or((target.clone(), String::new()), |(p, q)| (p.to_owned(), q.to_owned()));
    Some(Request { method, path, query, headers, body })
}

/// One request of the data plane (see [`NpmDouble::serve_traffic`]).
fn forward(mut stream: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&stream) else { return };
    let answer = |stream: &mut TcpStream, status: &str| {
        let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let host = req.headers.get("host").map(|h| h.split(':').next().unwrap_or_default().to_ascii_lowercase());
    let host = host.unwrap_or_default();
    let target = live_hosts(state).into_iter().find_map(|h| {
        let names = h["domain_names"].as_array()?;
        names.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(&host))).then(|| {
            (h["forward_host"].as_str().unwrap_or_default().to_owned(), h["forward_port"].as_u64().unwrap_or(80))
        })
    });
    let Some((to, port)) = target else { return answer(&mut stream, "404 Not Found") };
    let Ok(mut up) = TcpStream::connect((to.as_str(), u16::try_from(port).unwrap_or(80))) else {
        return answer(&mut stream, "502 Bad Gateway");
    };
    up.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let target = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    let head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        req.method,
        req.body.len()
    );
    let mut response = Vec::new();
    let sent = up.write_all(head.as_bytes()).and_then(|()| up.write_all(&req.body));
    // The demo app keeps a connection open until the client's side ends.
    let _ = up.shutdown(std::net::Shutdown::Write);
    if sent.is_err() || up.read_to_end(&mut response).is_err() || response.is_empty() {
        return answer(&mut stream, "502 Bad Gateway");
    }
    let _ = stream.write_all(&response);
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&stream) else { return };
    let fault = {
        let mut st = state.lock().unwrap();
        st.calls.push((req.method.clone(), req.path.clone()));
        let n = st.calls.len();
        let mut pos = None;
        for (i, (w, _)) in st.faults.iter_mut().enumerate() {
            let hit = match w {
                When::Nth(k) => *k == n,
                When::Next(m, p) => *m == req.method && req.path.starts_with(*p),
                When::NextAfter(m, p, skip) if *m == req.method && req.path.starts_with(*p) => {
                    if *skip == 0 {
                        true
                    } else {
                        *skip -= 1;
                        false
                    }
                }
                When::NextAfter(..) => false,
            };
            if hit {
                pos = Some(i);
                break;
            }
        }
        pos.map(|i| st.faults.remove(i).1)
    };
    if req.method == "GET" && req.path == "/api" {
        return redirect_to_api(&mut stream, &req);
    }
    match fault {
        Some(Fault::Close) => return,
        Some(Fault::Status500) => return respond(&mut stream, err(500, "Internal Error")),
        Some(Fault::Reject(code, message)) => return respond(&mut stream, err(code, message)),
        Some(Fault::Stall(d)) => std::thread::sleep(d),
        Some(Fault::ActThenStall(d)) => {
            let answer = handle(&req, &mut state.lock().unwrap());
            std::thread::sleep(d);
            return respond(&mut stream, answer);
        }
        Some(Fault::ExpireTokens) => {
            let mut st = state.lock().unwrap();
            let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
            st.tokens.values_mut().for_each(|e| *e = past);
        }
        None => {}
    }
    let answer = handle(&req, &mut state.lock().unwrap());
    respond(&mut stream, answer);
}

/// What NPM's own nginx, in front of the API, answers for `/api` without its slash: a 302 to
/// `/api/` on the same host, with nginx's HTML page.
fn redirect_to_api(stream: &mut TcpStream, req: &Request) {
    const PAGE: &str = "<html>\r\n<head><title>302 Found</title></head>\r\n<body>\r\n<center><h1>302 Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    let host = req.headers.get("host").map_or("", String::as_str);
    let _ = write!(
        stream,
        "HTTP/1.1 302 Moved Temporarily\r\nContent-Type: text/html\r\nContent-Length: {}\r\nLocation: http://{host}/api/\r\nConnection: close\r\n\r\n{PAGE}",
        PAGE.len()
    );
}

fn respond(stream: &mut TcpStream, (code, body): (u16, Value)) {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

enum Auth {
    Ok,
    Missing,
    Expired,
    Bad,
}

fn auth(req: &Request, st: &State) -> Auth {
    let Some(token) = req.headers.get("authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return Auth::Missing;
    };
    match st.tokens.get(token) {
        Some(exp) if *exp > Instant::now() => Auth::Ok,
        Some(_) => Auth::Expired,
        None => Auth::Bad,
    }
}

fn expired() -> (u16, Value) {
    (
        400,
        json!({"error": {"code": 400, "message": "Token has expired",
            "message_i18n": {"name": "TokenExpiredError", "message": "jwt expired", "expiredAt": humantime::format_rfc3339_millis(SystemTime::now()).to_string()}}}),
    )
}

fn issue_token(st: &mut State, lifetime: Duration) -> (u16, Value) {
    st.next_token += 1;
    let token = format!("tok-{}-{}", st.next_token, std::process::id());
    st.tokens.insert(token.clone(), Instant::now() + lifetime);
    let expires = humantime::format_rfc3339_millis(SystemTime::now() + lifetime).to_string();
    (200, json!({"token": token, "expires": expires}))
}

/// Parses a JSON body as NPM does: JSON or form-encoded only.
fn parse_body(req: &Request) -> Result<Value, (u16, Value)> {
    let ctype = req.headers.get("content-type").map_or("", String::as_str);
    if ctype.starts_with("application/json") {
        serde_json::from_slice(&req.body).map_err(|_| err(400, "Internal Error"))
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(&req.body);
        let mut m = Map::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(k.to_owned(), json!(v.replace("%40", "@")));
        }
        Ok(Value::Object(m))
    } else {
        Err(err(400, "Payload is undefined"))
    }
}

fn handle(req: &Request, st: &mut State) -> (u16, Value) {
    let p = req.path.as_str();
    match (req.method.as_str(), p) {
        ("GET", "/api/") => {
            (200, json!({"status": "OK", "setup": true, "version": {"major": 2, "minor": 15, "revision": 1}}))
        }
        ("POST", "/api/tokens") => login(req, st),
        ("GET", "/api/tokens") => match auth(req, st) {
            Auth::Missing | Auth::Bad => err(500, "Internal Error"),
            Auth::Expired => expired(),
            Auth::Ok => {
                let expiry = req.query.split('&').find_map(|kv| kv.strip_prefix("expiry="));
                match expiry.map(parse_expiry) {
                    None => {
                        let lifetime = st.token_lifetime;
                        issue_token(st, lifetime)
                    }
                    Some(Some(d)) => issue_token(st, d),
                    Some(None) => err(400, &format!("Invalid expiry time: {}", expiry.unwrap_or(""))),
                }
            }
        },
        _ if p == "/api/nginx/proxy-hosts" || p.starts_with("/api/nginx/proxy-hosts/") => hosts(req, st),
        _ => err(404, &format!("Not Found - {}", p.trim_start_matches("/api"))),
    }
}

fn parse_expiry(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "M" => 2_592_000,
        "Q" => 7_776_000,
        "y" => 31_536_000,
        _ => return None,
    };
    Some(Duration::from_secs(n * unit))
}

fn login(req: &Request, st: &mut State) -> (u16, Value) {
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(obj) = body.as_object() else { return err(400, "data must be object") };
    let mut problems = Vec::new();
    for k in ["identity", "secret"] {
        if !obj.contains_key(k) {
            problems.push(format!("data must have required property '{k}'"));
        }
    }
    if !problems.is_empty() {
        return err(400, &problems.join(", "));
    }
    if obj.keys().any(|k| !matches!(k.as_str(), "identity" | "secret" | "scope")) {
        return err(400, "data must NOT have additional properties");
    }
    for k in ["identity", "secret"] {
        match obj[k].as_str() {
            Some("") => return err(400, &format!("data/{k} must NOT have fewer than 1 characters")),
            None => return err(400, &format!("data/{k} must be string")),
            _ => {}
        }
    }
    if obj.get("scope").is_some_and(|s| s != "user") {
        return err(400, "data/scope must be equal to one of the allowed values");
    }
    let identity = obj["identity"].as_str().unwrap_or("");
    if !identity.eq_ignore_ascii_case(&st.email) {
        return err(400, "Invalid email or password");
    }
    if obj["secret"].as_str() != Some(st.password.as_str()) {
        return (
            400,
            json!({"error": {"code": 400, "message": "Invalid email or password", "message_i18n": "error.invalid-auth"}}),
        );
    }
    let lifetime = st.token_lifetime;
    issue_token(st, lifetime)
}

const FIELDS: &[&str] = &[
    "domain_names",
    "forward_scheme",
    "forward_host",
    "forward_port",
    "certificate_id",
    "access_list_id",
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "http2_support",
    "trust_forwarded_proto",
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "enabled",
    "advanced_config",
    "meta",
    "locations",
];

/// Validates a create (`required`) or update body; returns the normalised fields.
#[allow(clippy::too_many_lines, reason = "one flat list of NPM's schema rules")]
fn validate(body: &Value, required: bool) -> Result<Map<String, Value>, (u16, Value)> {
    let Some(obj) = body.as_object() else { return Err(err(400, "data must be object")) };
    if required {
        let missing: Vec<String> = ["domain_names", "forward_scheme", "forward_host", "forward_port"]
            .iter()
            .filter(|k| !obj.contains_key(**k))
            .map(|k| format!("data must have required property '{k}'"))
            .collect();
        if !missing.is_empty() {
            return Err(err(400, &missing.join(", ")));
        }
    } else if obj.is_empty() {
        return Err(err(400, "data must NOT have fewer than 1 properties"));
    }
    if obj.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(400, "data must NOT have additional properties"));
    }
    let mut out = obj.clone();
    if let Some(d) = obj.get("domain_names") {
        let Some(list) = d.as_array() else { return Err(err(400, "data/domain_names must be array")) };
        if list.is_empty() {
            return Err(err(400, "data/domain_names must NOT have fewer than 1 items"));
        }
        if list.len() > 100 {
            return Err(err(400, "data/domain_names must NOT have more than 100 items"));
        }
        for (i, a) in list.iter().enumerate() {
            for (j, b) in list.iter().enumerate().take(i) {
                if a == b {
                    return Err(err(
                        400,
                        &format!(
                            "data/domain_names must NOT have duplicate items (items ## {i} and {j} are identical)"
                        ),
                    ));
                }
            }
        }
        for (i, name) in list.iter().enumerate() {
            let Some(s) = name.as_str() else { return Err(err(400, &format!("data/domain_names/{i} must be string"))) };
            if s.is_empty() || s.chars().any(|c| "&| @!#%^();:/\\}{=+?<>,~`'\"".contains(c)) {
                return Err(err(400, &format!("data/domain_names/{i} must match pattern \"{PATTERN}\"")));
            }
        }
        let mut sorted: Vec<Value> = list.clone();
        sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        out.insert("domain_names".into(), Value::Array(sorted));
    }
    if let Some(s) = obj.get("forward_scheme")
        && !matches!(s.as_str(), Some("http" | "https"))
    {
        return Err(err(400, "data/forward_scheme must be equal to one of the allowed values"));
    }
    if let Some(h) = obj.get("forward_host") {
        match h.as_str() {
            None => return Err(err(400, "data/forward_host must be string")),
            Some("") => return Err(err(400, "data/forward_host must NOT have fewer than 1 characters")),
            Some(s) if s.len() > 255 => {
                return Err(err(400, "data/forward_host must NOT have more than 255 characters"));
            }
            _ => {}
        }
    }
    if let Some(p) = obj.get("forward_port") {
        let n = p.as_i64().or_else(|| p.as_str().and_then(|s| s.parse().ok()));
        match n {
            None => return Err(err(400, "data/forward_port must be integer")),
            Some(n) if n < 1 => return Err(err(400, "data/forward_port must be >= 1")),
            Some(n) if n > 65535 => return Err(err(400, "data/forward_port must be <= 65535")),
            Some(n) => {
                out.insert("forward_port".into(), json!(n));
            }
        }
    }
    for k in [
        "ssl_forced",
        "hsts_enabled",
        "hsts_subdomains",
        "http2_support",
        "trust_forwarded_proto",
        "block_exploits",
        "caching_enabled",
        "allow_websocket_upgrade",
        "enabled",
    ] {
        if obj.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(err(400, &format!("data/{k} must be boolean")));
        }
    }
    for k in ["certificate_id", "access_list_id"] {
        if let Some(v) = obj.get(k)
            && !(v.as_u64().is_some() || (k == "certificate_id" && v == "new"))
        {
            return Err(err(400, &format!("data/{k} must be integer")));
        }
    }
    if obj.get("advanced_config").is_some_and(|v| !v.is_string()) {
        return Err(err(400, "data/advanced_config must be string"));
    }
    if obj.get("meta").is_some_and(|v| !v.is_object()) {
        return Err(err(400, "data/meta must be object"));
    }
    Ok(out)
}

fn in_use(st: &State, names: &[Value], except: Option<u64>) -> Option<String> {
    for n in names {
        let n = n.as_str().unwrap_or("");
        let clash = st.hosts.values().any(|h| {
            !h["_deleted"].as_bool().unwrap_or(false)
                && Some(h["id"].as_u64().unwrap_or(0)) != except
                && h["domain_names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d.as_str().unwrap_or("").eq_ignore_ascii_case(n))
        });
        if clash {
            return Some(format!("{n} is already in use"));
        }
    }
    None
}

fn public(h: &Value) -> Value {
    let mut h = h.clone();
    h.as_object_mut().unwrap().remove("_deleted");
    h
}

fn with_expansions(mut h: Value) -> Value {
    let m = h.as_object_mut().unwrap();
    m.insert("owner".into(), owner());
    m.insert("certificate".into(), Value::Null);
    m.insert("access_list".into(), Value::Null);
    h
}

#[allow(clippy::too_many_lines, clippy::match_same_arms, reason = "NPM's routing table, arm by arm")]
fn hosts(req: &Request, st: &mut State) -> (u16, Value) {
    let rest = req.path.trim_start_matches("/api/nginx/proxy-hosts").trim_start_matches('/');
    let not_found_path = || err(404, &format!("Not Found - {}", req.path.trim_start_matches("/api")));
    let mut segs = rest.split('/').filter(|s| !s.is_empty());
    let id_seg = segs.next();
    let action = segs.next();
    let a = auth(req, st);
    match a {
        Auth::Missing if req.method == "POST" && id_seg.is_none() => return err(500, "Internal Error"),
        Auth::Missing => return not_found_path(),
        Auth::Bad => return err(500, "Internal Error"),
        Auth::Expired => return expired(),
        Auth::Ok => {}
    }
    let live = |st: &State, id: u64| st.hosts.get(&id).is_some_and(|h| !h["_deleted"].as_bool().unwrap_or(false));
    match (req.method.as_str(), id_seg, action) {
        ("GET", None, None) => {
            let expand = req.query.split('&').find_map(|kv| kv.strip_prefix("expand="));
            if let Some(e) = expand
                && e.split(',').any(|x| !matches!(x, "owner" | "access_list" | "certificate"))
            {
                return err(500, "Internal Error");
            }
            let q = req.query.split('&').find_map(|kv| kv.strip_prefix("query=")).map(str::to_ascii_lowercase);
            let mut list: Vec<Value> = st
                .hosts
                .values()
                .filter(|h| !h["_deleted"].as_bool().unwrap_or(false))
                .filter(|h| {
                    q.as_ref().is_none_or(|q| h["domain_names"].to_string().to_ascii_lowercase().contains(q.as_str()))
                })
                .map(|h| if expand.is_some() { with_expansions(public(h)) } else { public(h) })
                .collect();
            list.sort_by_key(|h| h["domain_names"].to_string());
            (200, Value::Array(list))
        }
        ("POST", None, None) => {
            let body = match parse_body(req) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let fields = match validate(&body, true) {
                Ok(f) => f,
                Err(e) => return e,
            };
            if let Some(msg) = in_use(st, fields["domain_names"].as_array().unwrap(), None) {
                return err(400, &msg);
            }
            let id = st.next_id;
            st.next_id += 1;
            let mut h = default_host(id);
            let cert_omitted = !fields.contains_key("certificate_id");
            for (k, v) in &fields {
                h[k] = v.clone();
            }
            if cert_omitted {
                for k in ["ssl_forced", "http2_support", "hsts_enabled", "hsts_subdomains"] {
                    h[k] = json!(false);
                }
            }
            let response = with_expansions(public(&h));
            merge_nginx(&mut h);
            st.hosts.insert(id, h);
            (201, response)
        }
        (method, Some(seg), act) => {
            let Ok(id) = seg.parse::<u64>() else {
                return match method {
                    "GET" if act.is_none() => err(400, "Internal Error"),
                    _ => err(404, "Not Found"),
                };
            };
            match (method, act) {
                ("GET", None) if id == 0 => err(400, "Internal Error"),
                ("GET", None) if !live(st, id) => err(404, &format!("Not Found - {id}")),
                ("GET", None) => {
                    let h = public(&st.hosts[&id]);
                    (200, if req.query.contains("expand=") { with_expansions(h) } else { h })
                }
                ("PUT", None) => {
                    let body = match parse_body(req) {
                        Ok(b) => b,
                        Err(e) => return e,
                    };
                    let fields = match validate(&body, false) {
                        Ok(f) => f,
                        Err(e) => return e,
                    };
                    if !live(st, id) {
                        return err(404, &format!("Not Found - {id}"));
                    }
                    if let Some(names) = fields.get("domain_names").and_then(Value::as_array)
                        && let Some(msg) = in_use(st, names, Some(id))
                    {
                        return err(400, &msg);
                    }
                    let h = st.hosts.get_mut(&id).unwrap();
                    for (k, v) in &fields {
                        h[k] = v.clone();
                    }
                    h["modified_on"] = json!(now_sql());
                    if h["enabled"].as_bool().unwrap_or(true) {
                        merge_nginx(h);
                    }
                    (200, with_expansions(public(h)))
                }
                ("DELETE", None) if !live(st, id) => err(404, &format!("Not Found - {id}")),
                ("DELETE", None) => {
                    st.hosts.get_mut(&id).unwrap()["_deleted"] = json!(true);
                    (200, json!(true))
                }
                ("POST", Some(which @ ("enable" | "disable"))) => {
                    if !live(st, id) {
                        return err(404, &format!("Not Found - {id}"));
                    }
                    let h = st.hosts.get_mut(&id).unwrap();
                    let want = which == "enable";
                    if h["enabled"].as_bool() == Some(want) {
                        return err(400, &format!("Host is already {which}d"));
                    }
                    h["enabled"] = json!(want);
                    if want {
                        merge_nginx(h);
                    }
                    (200, json!(true))
                }
                _ => not_found_path(),
            }
        }
        _ => not_found_path(),
    }
}
