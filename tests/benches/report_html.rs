//! The HTML report at scale (issue 19): its size and how long headless
//! Chromium takes to show it at 10,000 tasks and 100,000 findings, against
//! a 2-task report and an empty page measured in the same run.
//!
//! ```sh
//! cargo bench -p swarm-tests --bench report_html
//! ```
//!
//! Needs Debian's `chromium` (installed by `.ci/deps`; `CHROMIUM` names
//! another binary).

#[allow(dead_code)]
#[path = "../tests/browser/mod.rs"]
mod browser;

use std::time::Duration;

use browser::{clean, hostile_report, render};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
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
