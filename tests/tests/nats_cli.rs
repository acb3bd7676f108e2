//! `swarm-host run --nats` and `swarm-host worker` (issue 18), end to end:
//! the real CLI, the five shipped checker plugins and a real nats-server on
//! 127.0.0.1 started by each test (`swarm_tests::nats`).
//!
//! - the example team's report through 3 worker processes equals its
//!   in-process report (task outcomes, findings, the changes the fixing
//!   checkers made), and the tree ends the same;
//! - a run with no worker ends at its timeout, saying it waits for
//!   workers, with its tasks not run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use swarm_tests::nats::NatsServer;

const SWARM_HOST: &str = env!("CARGO_BIN_EXE_swarm-host-under-test");
/// Longest a whole run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The tree the team checks: a TODO marker, trailing whitespace, a file
/// without a licence header, a broken link, a fake credential.
const TREE: &[(&str, &str)] = &[
    ("host/src/lib.rs", "// TODO: split this module\npub fn f() {}\n"),
    ("guest-sdk/src/lib.rs", "// FIXME later\n"),
    ("plugins/a/src/lib.rs", "pub fn a() {}\n"),
    ("plugins/b/src/lib.rs", "// SPDX-License-Identifier: Apache-2.0\npub fn b() {}\n"),
    ("tests/t.rs", "fn t() {}   \nfn u() {}\n"),
    ("wit/x.wit", "package a:b;  \n"),
    ("README.md", "See [the guide](docs/GUIDE.md) and [gone](docs/missing.md).\n"),
    ("docs/GUIDE.md", "# Guide\n"),
    ("Cargo.toml", "[package]\nname = \"x\"\n# aws_secret_access_key = \"AKIAIOSFODNN7EXAMPLE\"\n"),
];

/// examples/ci-audit.toml's teammates and tasks, the fixing checkers told
/// to fix (so that tasks write files), over [`TREE`].
fn team_body() -> String {
    let mut body =
        String::from("read = \"root\"\nmax_attempts = 2\n[limits]\ntask_deadline = \"30s\"\nmemory_mib = 64\n");
    for (name, path) in swarm_tests::CHECKERS {
        body.push_str(&format!("[[teammate]]\nname = \"{name}\"\nplugin = \"{path}\"\n"));
    }
    body.push_str(
        r#"
[[task]]
id = "markers"
subject = "markers"
owner = "todo-scan"
owns = ["host/**/*.rs", "guest-sdk/**/*.rs"]

[[task]]
id = "licenses"
subject = "licences"
owner = "license-header"
description = "license=Apache-2.0 fix"
owns = ["plugins/**/*.rs"]

[[task]]
id = "whitespace"
subject = "whitespace"
owner = "whitespace"
description = "max-line=120 fix"
owns = ["tests/**/*.rs", "wit/**/*.wit"]

[[task]]
id = "links"
subject = "links"
owner = "md-links"
owns = ["**/*.md"]

[[task]]
id = "secrets"
subject = "secrets"
owner = "secret-scan"
owns = ["**/*.toml"]
blocked_by = ["markers"]
"#,
    );
    body
}

/// A child process whose stderr lines arrive on a channel and whose
/// stdout is collected; killed when dropped.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn start(args: &[&str], dir: &Path) -> Self {
        let mut child = Command::new(SWARM_HOST)
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let both = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  | {line}");
                let _ = tx.send(line);
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = both.send(line.clone());
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Self { child, lines, stdout: Some(stdout) }
    }

    /// Waits up to `timeout` for a line (stdout or stderr) containing `needle`.
    fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to end (its stdout closes first); exit code
    /// and stdout.
    fn finish(mut self, timeout: Duration) -> (i32, String) {
        let (tx, rx) = mpsc::channel();
        let handle = self.stdout.take().unwrap();
        std::thread::spawn(move || {
            let _ = tx.send(handle.join().unwrap_or_default());
        });
        let out = rx.recv_timeout(timeout).unwrap_or_else(|_| panic!("the run did not end within {timeout:?}"));
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        (code, out)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not a JSON report ({e}):\n{json}"))
}

/// What must be equal across backends: per task, its status, summary,
/// findings and changed files (times, attempts' teammates and the backend
/// left out).
fn outcomes(report: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let diffs: Vec<_> = t["diffs"].as_array().into_iter().flatten().map(|d| (&d["path"], &d["diff"])).collect();
            let view = serde_json::json!({
                "status": t["status"], "summary": t["summary"], "error": t["error"],
                "findings": t["findings"], "diffs": diffs,
            });
            (t["id"].as_str().unwrap().to_string(), view)
        })
        .collect()
}

fn tree_of(dir: &Path) -> BTreeMap<String, String> {
    TREE.iter().map(|(p, _)| (p.to_string(), std::fs::read_to_string(dir.join("tree").join(p)).unwrap())).collect()
}

#[test]
fn the_example_team_gives_the_same_report_through_3_workers_as_in_process() {
    let local = swarm_tests::team_dir("audit", TREE, &team_body());
    let (code, out) = Proc::start(
        &["--state-dir", "state", "run", "team.toml", "--backend", "in-process", "--format", "json", "--no-cache"],
        local.path(),
    )
    .finish(RUN_TIMEOUT);
    let in_process = report(&out);
    assert_eq!(code, 0, "the in-process run failed: {out}");

    let server = NatsServer::start();
    let remote = swarm_tests::team_dir("audit", TREE, &team_body());
    let url = server.url();
    let run = Proc::start(
        &["--state-dir", "state", "run", "team.toml", "--nats", &url, "--format", "json", "--no-cache"],
        remote.path(),
    );
    assert!(run.wait_line("team started", RUN_TIMEOUT).is_some(), "the coordinator did not start");
    let workers: Vec<Proc> = (1..=3)
        .map(|n| {
            let id = format!("w{n}");
            let w =
                Proc::start(&["worker", "--nats", &url, "--team", "audit", "--id", &id, "--no-cache"], remote.path());
            assert!(w.wait_line(&format!("worker {id} joined team audit"), RUN_TIMEOUT).is_some(), "{id} did not join");
            w
        })
        .collect();
    let (code, out) = run.finish(RUN_TIMEOUT);
    drop(workers);
    let on_nats = report(&out);
    assert_eq!(code, 0, "the run on NATS failed: {out}");

    assert_eq!(on_nats["backend"], "nats");
    assert_eq!(outcomes(&on_nats), outcomes(&in_process));
    assert!(outcomes(&on_nats)["licenses"]["diffs"].as_array().is_some_and(|d| !d.is_empty()), "no diff reported");
    assert_eq!(on_nats["totals"], in_process["totals"]);
    // The fixing checkers' writes were applied by the coordinator.
    assert_eq!(tree_of(remote.path()), tree_of(local.path()));
    assert_ne!(tree_of(remote.path())["plugins/a/src/lib.rs"], "pub fn a() {}\n", "the licence fix was not applied");
    let scale = &on_nats["scale_out"];
    assert_eq!(scale["committed"], 5, "{scale}");
    assert_eq!(scale["fenced"], 0, "{scale}");
    assert!(scale["executions"].as_u64().unwrap() >= 5, "{scale}");
    assert!(!scale["workers"].as_array().unwrap().is_empty(), "{scale}");
    assert!(in_process.get("scale_out").is_none_or(serde_json::Value::is_null));
}

#[test]
fn a_run_with_no_worker_ends_at_its_timeout_saying_it_waits_for_workers() {
    let server = NatsServer::start();
    let dir = swarm_tests::team_dir("lonely", TREE, &team_body());
    let url = server.url();
    let run = Proc::start(
        &[
            "--state-dir",
            "state",
            "run",
            "team.toml",
            "--nats",
            &url,
            "--timeout",
            "8s",
            "--format",
            "json",
            "--no-cache",
        ],
        dir.path(),
    );
    assert!(run.wait_line("waiting for workers", Duration::from_secs(30)).is_some(), "no line says so");
    let (code, out) = run.finish(Duration::from_secs(60));
    let report = report(&out);
    assert_eq!(code, 5, "expected the timeout's exit code: {out}");
    assert_eq!(report["stopped_by"], "timeout", "{out}");
    assert_eq!(report["totals"]["completed"], 0);
}

#[test]
fn a_coordinator_killed_mid_run_and_resumed_picks_the_results_up_from_the_bucket() {
    let server = NatsServer::start();
    let dir = swarm_tests::team_dir("audit", TREE, &team_body());
    let url = server.url();
    let run = Proc::start(&["--state-dir", "state", "run", "team.toml", "--nats", &url, "--no-cache"], dir.path());
    // Four tasks go out (the fifth waits for `markers`); no worker yet.
    for _ in 0..4 {
        assert!(run.wait_line("published to the workers", RUN_TIMEOUT).is_some(), "4 tasks were not published");
    }
    drop(run); // kill -9
    let worker = Proc::start(
        &["worker", "--nats", &url, "--team", "audit", "--id", "w1", "--slots", "4", "--no-cache"],
        dir.path(),
    );
    for _ in 0..4 {
        assert!(worker.wait_line("committed", RUN_TIMEOUT).is_some(), "the worker did not commit 4 tasks");
    }
    let (code, out) =
        Proc::start(&["--state-dir", "state", "resume", "audit", "--nats", &url, "--format", "json"], dir.path())
            .finish(RUN_TIMEOUT);
    let resumed = report(&out);
    assert_eq!(code, 0, "the resumed run failed: {out}");
    assert_eq!(resumed["totals"]["completed"], 5, "{out}");
    let scale = &resumed["scale_out"];
    assert_eq!(scale["picked_up"], 4, "{scale}");
    assert_eq!(scale["committed"], 1, "{scale}");
    assert_eq!(scale["executions"], 1, "only `secrets` ran after the resume: {scale}");
    assert_eq!(scale["duplicates"], 0, "{scale}");
    assert_ne!(tree_of(dir.path())["plugins/a/src/lib.rs"], "pub fn a() {}\n", "the picked-up fix was not applied");
}

#[test]
fn the_worker_reads_its_token_from_the_variable_it_is_told_and_names_what_is_wrong() {
    let server = NatsServer::start_with(&["--auth", "s3cret-token"]);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let worker = |var: &str, value: Option<&str>| {
        let mut cmd = Command::new(SWARM_HOST);
        cmd.args(["worker", "--nats", &url, "--token-env", var]).current_dir(dir.path()).env_remove(var);
        if let Some(v) = value {
            cmd.env(var, v);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    // The right token connects: the worker gets as far as finding no team.
    let (code, err) = worker("SWARM_TEST_TOKEN", Some("s3cret-token"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no team on this server yet"), "{err}");
    let (code, err) = worker("SWARM_TEST_TOKEN", Some("wrong"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect") || err.to_lowercase().contains("authoriz"), "{err}");
    assert!(!err.contains("wrong"), "the token is echoed: {err}");
    let (code, err) = worker("SWARM_TEST_UNSET", None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`SWARM_TEST_UNSET`") && err.contains("--token-env"), "{err}");
}
