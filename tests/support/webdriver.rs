//! A small W3C `WebDriver` client for the browser tests: Debian's `chromedriver` driving headless
//! Chromium. One [`Browser`] is one driver process and one session; both end on drop. When the
//! test panics, the browser first writes a screenshot of what it showed to
//! `target/ui-screenshots/NAME.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The driver, from Debian's `chromium-driver` (installed by `scripts/test`).
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser, from Debian's `chromium`.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// W3C's key of an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    name: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub(crate) struct Element(String);

impl Browser {
    /// Starts the driver and a session `name` (the screenshot's name), `width`×`height` pixels.
    pub(crate) fn start(name: &str, width: u32, height: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/chromedriver (Debian's chromium-driver; scripts/test installs it)");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut b = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            name: name.to_owned(),
            rt,
            client: super::client(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.raw("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                format!("--window-size={width},{height}")]}}}});
        let v = b.raw("POST", "/session", Some(caps)).expect("a WebDriver session");
        v["sessionId"].as_str().expect("a session id").clone_into(&mut b.session);
        b.resize(width, height);
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let req = match method {
                "POST" => self.client.post(&url).json(&body.unwrap_or_else(|| json!({}))),
                "DELETE" => self.client.delete(&url),
                _ => self.client.get(&url),
            };
            let r = req.send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            if status.is_success() { Ok(v["value"].clone()) } else { Err(format!("{status}: {}", v["value"])) }
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.raw(method, &path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// The window's size in CSS pixels.
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({"width": width, "height": height})));
    }

    /// Opens `url`.
    pub(crate) fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    /// The URL shown now.
    pub(crate) fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    /// The page's HTML now.
    pub(crate) fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, if any.
    pub(crate) fn find(&self, css: &str) -> Option<Element> {
        let path = format!("/session/{}/element", self.session);
        let v = self.raw("POST", &path, Some(json!({"using": "css selector", "value": css}))).ok()?;
        v[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// The first element matching `css`; panics when there is none.
    #[track_caller]
    pub(crate) fn el(&self, css: &str) -> Element {
        self.find(css).unwrap_or_else(|| panic!("no `{css}` on {}", self.url()))
    }

    /// Types `text` into `el`.
    pub(crate) fn type_in(&self, el: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/value", el.0), Some(json!({"text": text})));
    }

    /// Clicks `el`.
    pub(crate) fn click(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/click", el.0), Some(json!({})));
    }

    /// The text `el` shows; empty when the page replaced the element since it was found (a live
    /// update re-renders parts of the page: a wait then looks again).
    pub(crate) fn text(&self, el: &Element) -> String {
        let path = format!("/session/{}/element/{}/text", self.session, el.0);
        match self.raw("GET", &path, None) {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(e) if e.contains("stale element reference") => String::new(),
            Err(e) => panic!("WebDriver GET {path}: {e}"),
        }
    }

    /// The text of the whole page.
    pub(crate) fn page_text(&self) -> String {
        self.find("body").map(|b| self.text(&b)).unwrap_or_default()
    }

    /// Runs `script` in the page and returns what it returns.
    pub(crate) fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// Waits (at most `secs`) until `f` says yes; panics with `what` otherwise.
    #[track_caller]
    pub(crate) fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f(self) {
            assert!(Instant::now() < deadline, "waited {secs}s for {what}; the page says:\n{}", self.page_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of what the window shows.
    pub(crate) fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).unwrap_or_default()
    }

    /// Writes a screenshot to `path`.
    pub(crate) fn save_screenshot(&self, path: &std::path::Path) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, self.screenshot()).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
            let path = dir.join(format!("{}.png", self.name));
            // Nothing here may panic: a panic while unwinding aborts the test binary.
            let path_in_session = format!("/session/{}/screenshot", self.session);
            let png = self
                .raw("GET", &path_in_session, None)
                .ok()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).ok());
            if let Some(png) = png
                && std::fs::create_dir_all(&dir).is_ok()
                && std::fs::write(&path, png).is_ok()
            {
                eprintln!("screenshot of the failing page: {}", path.display());
            }
        }
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.raw("DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
