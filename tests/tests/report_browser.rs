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

mod browser;
mod common;

use browser::{clean, host_of, hostile_report, render};
use serde_json::json;

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

#[test]
fn messages_between_teammates_are_arrows_and_the_lead_plan_shows_as_proposed_and_as_validated() {
    use browser::HOSTILE;
    let mut report = serde_json::to_value(hostile_report()).unwrap();
    report["traffic"] = json!([
        { "from": "evil-1", "to": "evil-2", "at_unix_ms": 1_000_300, "summary": HOSTILE },
        { "from": "team-lead", "to": "evil-1", "at_unix_ms": 1_000_900, "summary": "shutdown request" },
        { "from": "evil-2", "to": "evil-1", "at_unix_ms": 1_001_800, "summary": null }
    ]);
    let task = |id: &str, owns: &[&str]| json!({ "id": id, "subject": HOSTILE, "description": "", "owns": owns, "owner": null, "blocked_by": [] });
    report["lead_plan"] = json!({
        "proposed": [
            { "tasks": [task("p1", &["../outside"])], "problems": [format!("task p1 owns {HOSTILE}")] },
            { "tasks": [task("p1", &["src/**"]), task("p2", &["docs/a.md"])], "problems": [] }
        ],
        "validated": [
            { "id": "p1", "subject": "one", "owner": "evil", "blocked_by": [], "files": ["src/a.rs"], "file_count": 3 },
            { "id": "p2", "subject": "two", "owner": null, "blocked_by": ["p1"], "files": ["docs/a.md"], "file_count": 1 }
        ]
    });
    let report: swarm_host::coordinator::RunReport = serde_json::from_value(report).unwrap();
    let r = clean(render(&report.to_html(), ""));
    let dom = &r.dom;
    // One arrow per message to a teammate, from the sender's lane to the
    // recipient's (the lead's lane is the first), beside the lead's one.
    assert_eq!(dom.matches("<line class=\"send\"").count(), 3, "three messages to teammates");
    assert!(
        dom.contains(
            "<line class=\"send\" data-from=\"evil-1\" data-to=\"evil-2\" x1=\"15%\" x2=\"15%\" y1=\"39\" y2=\"58\""
        ),
        "evil-1 → evil-2 at 300 ms of 2 s, downwards"
    );
    assert!(
        dom.contains("data-from=\"team-lead\" data-to=\"evil-1\" x1=\"45%\" x2=\"45%\" y1=\"13\" y2=\"32\""),
        "the lead's shutdown request"
    );
    assert!(
        dom.contains("data-from=\"evil-2\" data-to=\"evil-1\" x1=\"90%\" x2=\"90%\" y1=\"65\" y2=\"46\""),
        "evil-2 → evil-1, upwards"
    );
    assert!(dom.contains("evil-1 → evil-2: &lt;/script&gt;&lt;script&gt;alert(1)"), "the summary, as text");
    assert_eq!(dom.matches("<line ").count(), 4, "and the message to the lead");
    // The plan: the rejected proposal with its problem, the accepted one,
    // the validated tasks with their files.
    assert!(dom.contains("<section id=\"lead-plan\"><h2>Plan</h2>"), "the plan section");
    assert!(dom.contains("<details class=\"proposal rejected\" data-attempt=\"1\"><summary>As the lead proposed it, attempt 1: 1 task(s), rejected</summary>"));
    assert!(dom.contains("<li class=\"err\">task p1 owns &lt;/script&gt;"), "the problem, as text");
    assert!(dom.contains("<details class=\"proposal accepted\" data-attempt=\"2\"><summary>As the lead proposed it, attempt 2: 2 task(s), validated</summary>"));
    assert!(dom.contains("<td>p2</td><td>two</td><td>anyone</td><td>docs/a.md</td><td>p1</td>"), "a validated task");
    assert!(dom.contains("<td>src/a.rs and 2 more</td>"), "the files a validated task owns, counted past the list");
}
