//! Attacks on the workspace capability through real guests, in-process:
//! each plants something in the repository (a symlink where the host used
//! to put its temp file, a hard link, a second task's `owns` pattern) or
//! aims at what the coordinator keeps under the root (`.git`, the state
//! directory), runs the `writer` or `rogue` guest against it, and checks
//! both what the guest was told and that no file outside the held task's
//! changed.
//!
//! The same attacks on the `process` backend (teammate processes of the
//! `swarm-host` binary) are in `host/tests/workspace_process.rs`, where
//! cargo provides that binary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Fixture, outcome, task, teammate};
use swarm_host::coordinator::state::StateDir;
use swarm_host::coordinator::{Loaded, Plan, RunOptions, RunReport, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_host::tasks::Status;

fn plan(fx: &Fixture, body: &str) -> Plan {
    let loaded = Loaded::read(&fx.team(body)).unwrap();
    Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `plan` in-process, keeping state in `state` if given.
fn run(plan: &Plan, state: Option<StateDir>) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let options = RunOptions { shutdown_grace: Duration::from_secs(5), state, ..RunOptions::default() };
        tokio::time::timeout(Duration::from_secs(120), run_in_process(plan, &Sandbox::new(), options))
            .await
            .expect("the run finished within 120 s")
            .expect("the run started")
    })
}

/// A `writer` task: `write:<path>` or `read:<path>`, one attempt.
fn writer_task(id: &str, owns: &[&str], instruction: &str) -> String {
    task(id, id, &format!("owner = \"writer\"\nowns = {owns:?}\ndescription = {instruction:?}\nmax_attempts = 1"))
}

fn writer() -> String {
    teammate("writer", swarm_tests::WRITER, 1, "")
}

fn error_of(report: &RunReport, id: &str) -> String {
    let t = outcome(report, id);
    assert_eq!(t.status, Status::Failed, "{t:#?}");
    t.error.clone().unwrap_or_default()
}

fn completed(report: &RunReport, id: &str) {
    let t = outcome(report, id);
    assert_eq!(t.status, Status::Completed, "{t:#?}");
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Issue 12, item 1: with a planted `sub/.c.txt.swarm-tmp -> ../b.txt`, a
/// fix-mode write of `sub/c.txt` overwrote another task's `b.txt`; the
/// same trick reached `.git/config`; and a plain file of the temp name,
/// another task's, was renamed away.
#[test]
fn a_planted_temp_file_symlink_does_not_redirect_a_write() {
    let fx = Fixture::new(&[
        ("sub/c.txt", "c"),
        ("sub/d.txt", "d"),
        ("sub/e.txt", "e"),
        ("sub/.e.txt.swarm-tmp", "belongs to `other`"),
        ("b.txt", "belongs to `other`"),
        (".git/config", "[core]"),
    ]);
    let root = fx.root();
    std::os::unix::fs::symlink("../b.txt", root.join("sub/.c.txt.swarm-tmp")).unwrap();
    std::os::unix::fs::symlink("../.git/config", root.join("sub/.d.txt.swarm-tmp")).unwrap();
    let body = format!(
        "{}{}{}{}{}",
        writer(),
        teammate("counter", swarm_tests::COUNTER, 1, ""),
        writer_task("c", &["sub/c.txt"], "write:sub/c.txt"),
        writer_task("d", &["sub/d.txt"], "write:sub/d.txt"),
        writer_task("e", &["sub/e.txt"], "write:sub/e.txt"),
    ) + &task("other", "count", "owner = \"counter\"\nowns = [\"b.txt\", \"sub/.e.txt.swarm-tmp\"]");
    let report = run(&plan(&fx, &body), None);
    for id in ["c", "d", "e", "other"] {
        completed(&report, id);
    }
    for f in ["sub/c.txt", "sub/d.txt", "sub/e.txt"] {
        assert_eq!(read(&root, f), "written by writer-1", "{f}");
    }
    assert_eq!(read(&root, "b.txt"), "belongs to `other`");
    assert_eq!(read(&root, ".git/config"), "[core]");
    assert_eq!(read(&root, "sub/.e.txt.swarm-tmp"), "belongs to `other`");
    assert_eq!(std::fs::read_link(root.join("sub/.c.txt.swarm-tmp")).unwrap(), Path::new("../b.txt"));
    let mut left: Vec<String> =
        std::fs::read_dir(root.join("sub")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, [".c.txt.swarm-tmp", ".d.txt.swarm-tmp", ".e.txt.swarm-tmp", "c.txt", "d.txt", "e.txt"]);
}

/// Issue 12, item 5: `read = "root"` read `.git/config` (remote URLs with
/// tokens), `.env` and private keys; now they need `read_allow`.
#[test]
fn root_scope_does_not_expose_git_or_secrets_unless_read_allow_names_them() {
    let fx = Fixture::new(&[
        ("src/a.rs", "a"),
        (".git/config", "[remote \"origin\"]\nurl = https://token@example.com/r.git\n"),
        (".env", "API_KEY=1"),
        ("deploy/server.pem", "-----BEGIN PRIVATE KEY-----"),
        ("docs/.env.example", "API_KEY="),
    ]);
    let reads = [".git/config", ".env", "deploy/server.pem", "docs/.env.example"];
    let tasks: String =
        reads.iter().enumerate().map(|(i, f)| writer_task(&format!("r{i}"), &[], &format!("read:{f}"))).collect();
    let list = task(
        "ls",
        "escape",
        "owner = \"rogue\"\nowns = [\"src/a.rs\"]\nmax_attempts = 1\ndescription = \"list \\nlist .git\\nlist deploy\"",
    );
    let teams = format!("{}{}", writer(), teammate("rogue", swarm_tests::ROGUE, 1, ""));

    let report = run(&plan(&fx, &format!("read = \"root\"\n{teams}{tasks}{list}")), None);
    for (i, file) in reads.iter().enumerate() {
        let e = error_of(&report, &format!("r{i}"));
        assert!(e.contains("denied") && e.contains("read_allow"), "{file}: {e}");
    }
    let ls = outcome(&report, "ls");
    let listed: Vec<&str> = ls.findings.iter().map(|f| f.message.as_str()).collect();
    // The root shows `deploy`, `docs` and `src`, not `.git` nor `.env`;
    // `.git` cannot be listed; `deploy` shows no key.
    assert_eq!(listed[0], "listed 3 entries", "{ls:#?}");
    assert!(listed[1].contains("read_allow"), "{ls:#?}");
    assert_eq!(listed[2], "listed 0 entries", "{ls:#?}");

    let allow = "read_allow = [\".git/config\", \"**/.env.example\"]\n";
    let report = run(&plan(&fx, &format!("read = \"root\"\n{allow}{teams}{tasks}{list}")), None);
    completed(&report, "r0");
    completed(&report, "r3");
    assert!(error_of(&report, "r1").contains("read_allow"));
    assert!(error_of(&report, "r2").contains("read_allow"));
}

/// Issue 12, item 5: the default read scope is `owned`.
#[test]
fn without_a_read_setting_a_teammate_reads_only_its_own_files() {
    let fx = Fixture::new(&[("mine.txt", "mine"), ("theirs.txt", "theirs")]);
    let body = format!(
        "{}{}{}",
        writer(),
        writer_task("own", &["mine.txt"], "read:mine.txt"),
        writer_task("peek", &[], "read:theirs.txt")
    );
    let report = run(&plan(&fx, &body), None);
    completed(&report, "own");
    let e = error_of(&report, "peek");
    assert!(e.contains("denied") && e.contains("reads are limited to the held task's files"), "{e}");
}

/// Issue 12, item 1: a target with two hard links is refused (writing
/// through it would change the other name's file too); under `owned`,
/// reading through one is refused as well.
#[test]
fn a_hard_linked_file_is_neither_written_nor_read_under_owned() {
    let fx = Fixture::new(&[("a.txt", "belongs to `other`")]);
    let root = fx.root();
    std::fs::hard_link(root.join("a.txt"), root.join("twin.txt")).unwrap();
    let body = format!(
        "{}{}{}",
        teammate("rogue", swarm_tests::ROGUE, 1, ""),
        teammate("counter", swarm_tests::COUNTER, 1, ""),
        task(
            "w",
            "escape",
            "owner = \"rogue\"\nowns = [\"twin.txt\"]\ndescription = \"write twin.txt\\nread twin.txt\""
        ),
    ) + &task("other", "count", "owner = \"counter\"\nowns = [\"a.txt\"]");
    let report = run(&plan(&fx, &body), None);
    let w = outcome(&report, "w");
    let got: Vec<(&str, &str)> = w.findings.iter().map(|f| (f.rule.as_str(), f.message.as_str())).collect();
    assert_eq!(got.len(), 2, "{w:#?}");
    assert_eq!(got[0].0, "denied", "{w:#?}");
    assert!(got[0].1.contains("2 hard links") && got[0].1.contains("elsewhere"), "{w:#?}");
    assert_eq!(got[1].0, "denied", "{w:#?}");
    assert!(got[1].1.contains("hard links"), "{w:#?}");
    completed(&report, "other");
    assert_eq!(read(&root, "a.txt"), "belongs to `other`");
    assert_eq!(read(&root, "twin.txt"), "belongs to `other`");
}

/// Issue 12, item 1: `license-header fix` left a `0755` script `0644`.
#[test]
fn a_write_keeps_an_executable_script_executable() {
    let fx = Fixture::new(&[("run.sh", "#!/bin/sh\n")]);
    let script = fx.root().join("run.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = run(&plan(&fx, &format!("{}{}", writer(), writer_task("w", &["run.sh"], "write:run.sh"))), None);
    completed(&report, "w");
    assert_eq!(read(&fx.root(), "run.sh"), "written by writer-1");
    assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777, 0o755);
}

/// Issue 12, item 2: `owns` globs grant creating new files, still
/// disjoint: a path two tasks' globs match is refused naming both; a
/// created file belongs to its task for the rest of the attempt.
#[test]
fn new_files_are_created_only_where_one_task_alone_could_own_them() {
    let fx = Fixture::new(&[("src/parser/mod.rs", "mod"), ("src/gen/keep.rs", "keep")]);
    let make = "owner = \"rogue\"\nmax_attempts = 1\nowns = [\"src/parser/**\"]\n\
                description = \"write src/parser/lexer/token.rs\\nread src/parser/lexer/token.rs\\n\
                write src/parser/gen_x.rs\\nwrite src/gen/new.rs\\nwrite .env\\nwrite src/parser/mod.rs\"";
    let body = format!(
        "{}{}{}",
        teammate("rogue", swarm_tests::ROGUE, 1, ""),
        task("make", "escape", make),
        task("gen", "escape", "owner = \"rogue\"\nowns = [\"src/**/gen_*.rs\", \"src/gen/**\"]"),
    );
    let report = run(&plan(&fx, &body), None);
    let make = outcome(&report, "make");
    let outcomes: Vec<(&str, &str)> = make.findings.iter().map(|f| (f.rule.as_str(), f.message.as_str())).collect();
    assert_eq!(outcomes[0], ("allowed", "wrote"), "{make:#?}");
    assert_eq!(outcomes[1].0, "allowed", "a created file is the task's own to read: {make:#?}");
    assert_eq!(outcomes[2].0, "denied");
    assert!(outcomes[2].1.contains("`make`") && outcomes[2].1.contains("`gen`"), "both tasks named: {make:#?}");
    assert_eq!(outcomes[3].0, "denied");
    assert!(outcomes[3].1.contains("`owns` patterns of task `make`"), "{make:#?}");
    assert_eq!(outcomes[4].0, "denied", ".env is never created: {make:#?}");
    assert_eq!(outcomes[5], ("allowed", "wrote"));
    let root = fx.root();
    assert_eq!(read(&root, "src/parser/lexer/token.rs"), "escaped");
    assert!(!root.join("src/parser/gen_x.rs").exists());
    assert!(!root.join("src/gen/new.rs").exists());
    assert!(!root.join(".env").exists());
}

/// Issue 12, item 8: the state directory (here inside the root, and with
/// `read = "root"` and a `read_allow` of everything) is neither readable,
/// listable, writable nor creatable.
#[test]
fn the_state_directory_is_out_of_reach_whatever_the_scope() {
    let fx = Fixture::new(&[("src/a.rs", "a")]);
    let state = StateDir::create(&fx.root().join("state"), "test").unwrap();
    let body = format!(
        "read = \"root\"\nread_allow = [\"**\"]\n{}{}{}{}{}",
        writer(),
        teammate("rogue", swarm_tests::ROGUE, 1, ""),
        writer_task("peek", &[], "read:state/test/team.json"),
        writer_task("plant", &["state/**"], "write:state/test/evil.json"),
        task(
            "look",
            "escape",
            "owner = \"rogue\"\nowns = [\"src/a.rs\"]\nmax_attempts = 1\n\
             description = \"list state\\nlist state/test\\nwrite state/test/tasks.json\"",
        ),
    );
    let p = plan(&fx, &body);
    let report = run(&p, Some(state.clone()));
    let e = error_of(&report, "peek");
    assert!(e.contains("denied") && e.contains("coordinator's own files"), "{e}");
    let e = error_of(&report, "plant");
    assert!(e.contains("denied") && e.contains("coordinator's own files"), "{e}");
    assert!(!state.path().join("evil.json").exists());
    let look = outcome(&report, "look");
    let got: Vec<(&str, &str)> = look.findings.iter().map(|f| (f.rule.as_str(), f.message.as_str())).collect();
    assert_eq!(got[0], ("allowed", "listed 0 entries"), "{look:#?}");
    assert_eq!(got[1].0, "denied", "{look:#?}");
    assert_eq!(got[2].0, "denied", "{look:#?}");
    let tasks = std::fs::read_to_string(state.path().join("tasks.json")).unwrap();
    assert!(!tasks.contains("escaped"));
}

/// Issue 12, item 5: a finding's `file` must be one the task could read;
/// others are dropped and counted as denials (operation `finding`), and
/// the kept ones carry the clean path.
#[test]
fn findings_on_files_the_task_could_not_read_are_dropped_and_counted() {
    let fx = Fixture::new(&[("mine.txt", "m"), ("theirs.txt", "t")]);
    let body = format!(
        "{}{}",
        teammate("rogue", swarm_tests::ROGUE, 1, ""),
        task(
            "f",
            "escape",
            "owner = \"rogue\"\nowns = [\"mine.txt\"]\nmax_attempts = 1\ndescription = \"report ./mine.txt\\n\
             report theirs.txt\\nreport ../../etc/passwd\\nreport /etc/shadow\\nreport .git/config\\nreport \"",
        ),
    );
    let report = run(&plan(&fx, &body), None);
    let f = outcome(&report, "f");
    assert_eq!(f.status, Status::Completed, "{f:#?}");
    let files: Vec<&str> = f.findings.iter().map(|x| x.file.as_str()).collect();
    assert_eq!(files, ["mine.txt"], "{f:#?}");
    let dropped: Vec<_> = report.denials.iter().filter(|d| d.operation == "finding").collect();
    assert_eq!(dropped.len(), 5, "{:#?}", report.denials);
    assert!(dropped.iter().all(|d| d.teammate == "rogue-1" && d.task.as_deref() == Some("f")));
}
