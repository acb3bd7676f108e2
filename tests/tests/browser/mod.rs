//! Headless Chromium for the HTML report's tests and bench: a page
//! rendered with `--dump-dom`, its console lines and the requests it made
//! (through a proxy that is a listener of the caller), and a synthetic
//! report full of a hostile guest's text.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use swarm_host::coordinator::RunReport;

/// What the browser made of a page.
pub struct Rendered {
    /// The DOM after the page's script ran.
    pub dom: String,
    /// Console lines (errors, logs, policy violations).
    pub console: Vec<String>,
    /// Requests the page made (through the proxy), as request lines.
    pub requests: Vec<String>,
    /// How long Chromium took, start to exit.
    #[allow(dead_code)] // read by the report_html bench, not the tests
    pub took: Duration,
}

/// Hosts Chromium itself calls (network time, component updates, sign-in),
/// told apart from the page's requests by the proxy.
const BROWSER_SERVICES: &[&str] = &[".google.com", ".googleapis.com", ".gvt1.com", ".gstatic.com"];

/// The host of a proxy request line (`GET http://host:port/path HTTP/1.1`
/// or `CONNECT host:port HTTP/1.1`), with a leading dot for suffix checks.
pub fn host_of(line: &str) -> String {
    let target = line.split(' ').nth(1).unwrap_or_default();
    let rest = target.split("://").nth(1).unwrap_or(target);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    format!(".{host}")
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Loads `html` (with the URL fragment `hash`) in headless Chromium.
pub fn render(html: &str, hash: &str) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    proxy.set_nonblocking(true).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let counter = {
        let (seen, done) = (seen.clone(), done.clone());
        std::thread::spawn(move || {
            // Accepts until the browser exited; each connection is a
            // request, kept as its first line (`GET http://host/...`,
            // `CONNECT host:443`), then closed unanswered.
            let take = |mut conn: std::net::TcpStream| {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut buf = [0u8; 512];
                let n = conn.read(&mut buf).unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]);
                seen.lock().unwrap().push(text.lines().next().unwrap_or_default().to_string());
            };
            while !done.load(Ordering::SeqCst) {
                match proxy.accept() {
                    Ok((conn, _)) => take(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            while let Ok((conn, _)) = proxy.accept() {
                take(conn);
            }
        })
    };
    let started = Instant::now();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1280,900"])
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{hash}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("chromium does not run ({e}): install Debian's chromium, as .ci/run does"));
    let took = started.elapsed();
    done.store(true, Ordering::SeqCst);
    counter.join().unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Chromium's own services (clock, updates, accounts) call out whatever
    // the page does; every other request came from the page.
    let requests = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|line| !BROWSER_SERVICES.iter().any(|h| host_of(line).ends_with(h)))
        .cloned()
        .collect();
    Rendered {
        dom: String::from_utf8(out.stdout).unwrap(),
        console: stderr.lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect(),
        requests,
        took,
    }
}

/// Checks every page must pass, then returns it.
pub fn clean(r: Rendered) -> Rendered {
    assert!(
        r.dom.contains("data-ready=\"1\""),
        "the page's script did not finish:\n{}",
        &r.dom[..r.dom.len().min(3000)]
    );
    assert!(!r.dom.contains("data-error="), "a script error");
    assert!(r.console.is_empty(), "console messages: {:#?}", r.console);
    assert!(r.requests.is_empty(), "the page made requests: {:#?}", r.requests);
    r
}

pub const HOSTILE: &str = "</script><script>alert(1)</script></style><img src=\"http://127.0.0.1:9/leak\" onerror=\"alert(2)\"> \"' javascript:alert(3)";

/// A synthetic report: a hostile guest's text everywhere, an agent task
/// with a diff and a transcript, a retry after a limit hit, a message.
pub fn hostile_report() -> RunReport {
    let attempt = |who: &str, at: u64, ms: &str, error: Option<&str>, limit: Option<&str>| {
        json!({ "teammate": who, "error": error, "claimed_seq": 1, "ended_seq": 2, "duration": ms,
                "limit": limit, "claimed_unix_ms": 1_000_000 + at })
    };
    serde_json::from_value(json!({
        "v": 1, "team": "hostile", "backend": "in-process", "duration": "2s", "started_unix_ms": 1_000_000,
        "interrupted": null, "warnings": [HOSTILE], "teammates": [],
        "messages": [{ "from": "evil-1", "body": HOSTILE, "at_unix_ms": 1_000_500 }],
        "totals": { "tasks": 2, "completed": 1, "failed": 1, "findings": 1, "retries": 1 },
        "synthesis": HOSTILE,
        "tasks": [
            { "id": "agent", "subject": HOSTILE, "status": "completed", "owned_files": 1, "teammate": "evil-1",
              "attempts": [attempt("evil-1", 100, "400ms", None, None)], "summary": HOSTILE, "error": null,
              "findings": [{ "file": "src/a.rs", "line": 3, "rule": HOSTILE, "message": HOSTILE, "severity": "error" }],
              "diffs": [{ "path": "src/a.rs", "diff": format!("--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1 +1 @@\n-old\n+{HOSTILE}\n") }],
              "transcript": [
                  { "kind": "model", "text": HOSTILE },
                  { "kind": "tool_call", "name": "write_file", "text": "{\"path\":\"../etc/passwd\"}", "denied": true },
                  { "kind": "tool_result", "name": "write_file", "text": "denied: not owned" },
                  { "kind": "message", "name": "evil-2", "text": HOSTILE }
              ] },
            { "id": "retried", "subject": "two", "status": "failed", "owned_files": 1, "teammate": "evil-2",
              "attempts": [attempt("evil-1", 600, "1s", Some(HOSTILE), Some("deadline")), attempt("evil-2", 1700, "200ms", Some("boom"), None)],
              "summary": null, "findings": [], "error": HOSTILE, "limit": "deadline" }
        ]
    }))
    .unwrap()
}
