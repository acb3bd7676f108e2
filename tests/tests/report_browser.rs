//! The HTML report in a real browser: Debian's Chromium, headless, with
//! `--dump-dom` (the DOM after the page's script ran) and `--enable-logging`
//! (every console message, including uncaught errors and blocked requests,
//! arrives on stderr as a `:CONSOLE` line). No driver crate: one process per
//! page, no DevTools session to keep, nothing but the browser to install.
//! Chromium is pointed at a proxy that is a listener of this test, so any
//! request the page makes, to any host, is seen (a control page proves it);
//! the calls Chromium itself makes to its own services are told apart by host.
//!
//! Checked as a person would see it: one lane per teammate, one bar per
//! attempt, a task's diff and transcript open, a guest's `<script>` shown as
//! text, no console message, no request leaving the page.

mod common;

use std::io::Read as _;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use swarm_host::coordinator::RunReport;

/// What the browser made of a page.
struct Rendered {
    /// The DOM after the page's script ran.
    dom: String,
    /// Console lines (errors, logs, policy violations).
    console: Vec<String>,
    /// Requests the page made (through the proxy), as request lines.
    requests: Vec<String>,
    /// How long Chromium took, start to exit.
    took: Duration,
}

/// Hosts Chromium itself calls (network time, component updates, sign-in),
/// told apart from the page's requests by the proxy.
const BROWSER_SERVICES: &[&str] = &[".google.com", ".googleapis.com", ".gvt1.com", ".gstatic.com"];

/// The host of a proxy request line (`GET http://host:port/path HTTP/1.1`
/// or `CONNECT host:port HTTP/1.1`), with a leading dot for suffix checks.
fn host_of(line: &str) -> String {
    let target = line.split(' ').nth(1).unwrap_or_default();
    let rest = target.split("://").nth(1).unwrap_or(target);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    format!(".{host}")
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Loads `html` (with the URL fragment `hash`) in headless Chromium.
fn render(html: &str, hash: &str) -> Rendered {
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
fn clean(r: Rendered) -> Rendered {
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

const HOSTILE: &str = "</script><script>alert(1)</script></style><img src=\"http://127.0.0.1:9/leak\" onerror=\"alert(2)\"> \"' javascript:alert(3)";

/// A synthetic report: a hostile guest's text everywhere, an agent task
/// with a diff and a transcript, a retry after a limit hit, a message.
fn hostile_report() -> RunReport {
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

#[test]
fn a_page_that_loads_something_is_seen_by_the_proxy_and_the_console() {
    // The control: the method sees a request and a console line.
    let r = render("<!DOCTYPE html><img src=\"http://example.invalid/x.png\"><script>console.log('hi')</script>", "");
    assert!(r.requests.iter().any(|l| host_of(l) == ".example.invalid"), "the proxy saw no request: {:#?}", r.requests);
    assert!(r.console.iter().any(|l| l.contains("\"hi\"")), "{:#?}", r.console);
}

#[test]
fn a_hostile_report_shows_its_text_as_text_with_the_agent_task_open() {
    let r = clean(render(&hostile_report().to_html(), "#task=agent"));
    let dom = &r.dom;
    assert_eq!(dom.matches("<script").count(), 2, "only the page's own scripts: no guest element");
    assert!(!dom.contains("<img"), "no image element from a guest");
    assert!(dom.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), "the guest's script shows as text");
    // The timeline: a lane per teammate, a bar per attempt, the retry and
    // the limit hit marked, the message as an arrow.
    assert_eq!(dom.matches("class=\"lane\"").count(), 2);
    assert_eq!(dom.matches("class=\"bar ").count(), 3);
    assert_eq!(dom.matches("class=\"bar failed limit\"").count(), 1, "the deadline hit");
    assert_eq!(dom.matches("class=\"bar failed retry\"").count(), 1, "the retry");
    assert_eq!(dom.matches("<line ").count(), 1, "one message, one arrow");
    // The agent task is open, with its diff and transcript.
    assert!(dom.contains("<details class=\"task selected\" id=\"task-0\" data-task=\"agent\" open=\"\""), "task open");
    assert!(dom.contains("<details class=\"diff\" open=\"\"><summary>src/a.rs</summary>"), "diff open");
    assert!(dom.contains("<span class=\"add\">+&lt;/script&gt;"), "the added line, as text");
    assert!(dom.contains("<details class=\"transcript\" open=\"\">"), "transcript open");
    assert!(dom.contains("<li class=\"tool_call denied\">"), "the denied tool call highlighted");
}

#[test]
fn model_usage_shows_in_total_per_teammate_and_per_task() {
    // The usage field comes with the model layer (`llm_usage`); until a
    // report carries it, it is put into the page's data as the model layer
    // serializes it.
    let html = hostile_report().to_html();
    let usage = json!({
        "total": { "calls": 3, "input_tokens": 1200, "output_tokens": 300, "usd": 0.0123 },
        "teammates": { "evil-1": { "calls": 2, "input_tokens": 1000, "output_tokens": 200, "usd": 0.01 },
                       "team-lead": { "calls": 1, "input_tokens": 200, "output_tokens": 100, "usd": 0.0023 } },
        "tasks": { "agent": { "calls": 2, "input_tokens": 1000, "output_tokens": 200, "usd": 0.01 } }
    });
    let html = html.replacen("\"report\":{", &format!("\"report\":{{\"llm_usage\":{usage},"), 1);
    assert!(html.contains("\"llm_usage\""), "the data block starts as expected");
    let r = clean(render(&html, "#task=agent"));
    assert!(r.dom.contains("In total: 3 call(s), 1200 tokens in, 300 out, ~$0.0123"), "total");
    assert!(r.dom.contains("<td>team-lead</td><td class=\"num\">1</td>"), "the lead's row");
    assert!(r.dom.contains("Model usage: 2 call(s), 1000 tokens in, 200 out, ~$0.0100"), "the open task's usage");
}

#[test]
fn the_ci_audit_report_has_a_lane_per_teammate_and_a_bar_per_attempt() {
    let report = common::ci_audit_report();
    let first = report.tasks.iter().find(|t| !t.findings.is_empty()).expect("a task with findings");
    let r = clean(render(&report.to_html(), &format!("#task={}", first.id)));
    let lanes = report.teammates.len();
    assert_eq!(lanes, 5, "the five checkers");
    assert_eq!(r.dom.matches("class=\"lane\"").count(), lanes);
    let attempts: usize = report.tasks.iter().map(|t| t.attempts.len()).sum();
    assert_eq!(r.dom.matches("class=\"bar ").count(), attempts);
    let open = format!("data-task=\"{}\" open=\"\"", first.id);
    assert!(r.dom.contains(&open), "the task from the URL is open");
    assert!(r.dom.contains("<table class=\"findings\">"), "with its findings");
}

/// Size and load time at 10,000 tasks and 100,000 findings, against the
/// floor of an empty page in the same run: `cargo test -p swarm-tests
/// --test report_browser -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures; run by hand"]
fn figures_at_ten_thousand_tasks_and_a_hundred_thousand_findings() {
    let mut report = hostile_report();
    let template = report.tasks[1].clone();
    report.tasks = (0..10_000)
        .map(|i| {
            let mut t = template.clone();
            t.id = format!("task-{i}");
            t.subject = format!("subject {i}");
            t.status = swarm_host::tasks::Status::Completed;
            t.error = None;
            t.attempts.truncate(1);
            t.attempts[0].teammate = format!("checker-{}", i % 8);
            t.attempts[0].claimed_unix_ms = Some(1_000_000 + (i / 8) as u64 * 2);
            t.attempts[0].duration = Some(Duration::from_millis(2));
            t.attempts[0].error = None;
            t.attempts[0].limit = None;
            t.findings = (0..10)
                .map(|n| swarm_host::model::Finding {
                    file: format!("src/file_{i}.rs"),
                    line: Some(n + 1),
                    rule: "todo".into(),
                    message: format!("// TODO: finding {n} of task {i}"),
                    severity: swarm_host::model::Severity::Note,
                })
                .collect();
            t
        })
        .collect();
    report.duration = Duration::from_secs(3);
    let html = report.to_html();
    let empty = clean(render("<!DOCTYPE html><html data-ready=\"1\"></html>", ""));
    let big = clean(render(&html, "#task=task-9999"));
    let small = clean(render(&hostile_report().to_html(), ""));
    let attr = |dom: &str, name: &str| -> f64 {
        let at = dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name}")) + name.len() + 2;
        dom[at..at + dom[at..].find('"').unwrap()].parse().unwrap()
    };
    println!(
        "HTML report at 10,000 tasks / 100,000 findings: {:.1} MiB; ready {:.0} ms after navigation (script {:.0} ms) vs {:.0} ms (script {:.0} ms) for a 2-task report ({:.1}x); Chromium start to exit {:.2?} vs {:.2?} for an empty page ({:.2}x)",
        html.len() as f64 / (1 << 20) as f64,
        attr(&big.dom, "data-ready-ms"),
        attr(&big.dom, "data-script-ms"),
        attr(&small.dom, "data-ready-ms"),
        attr(&small.dom, "data-script-ms"),
        attr(&big.dom, "data-ready-ms") / attr(&small.dom, "data-ready-ms"),
        big.took,
        empty.took,
        big.took.as_secs_f64() / empty.took.as_secs_f64()
    );
}
