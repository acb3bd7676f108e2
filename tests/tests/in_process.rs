//! In-process teams of real components: messaging, pulling tasks, traps,
//! deadlines, memory limits and ownership, each checked through the report.

mod common;

use common::{Fixture, outcome, task, teammate};
use swarm_host::tasks::Status;
use swarm_host::team::Liveness;

#[test]
fn two_teammates_exchange_messages_through_the_mailbox() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!(
        "{}{}{}",
        teammate("ping", swarm_tests::PING, 2, ""),
        task("a", "ping the other", "owner = \"ping-1\"\ndescription = \"send-to:ping-2\""),
        task("b", "ping back", "owner = \"ping-2\"\ndescription = \"send-to:ping-1\""),
    ));
    assert!(report.success(), "{}", report.to_text(10));
    assert_eq!(outcome(&report, "a").summary.as_deref(), Some("got: pong from ping-2"));
    assert_eq!(outcome(&report, "b").summary.as_deref(), Some("got: pong from ping-1"));
    assert!(report.teammates.iter().all(|m| m.state == Liveness::Exited), "{:#?}", report.teammates);
}

#[test]
fn teammates_pull_tasks_and_none_runs_twice() {
    let fx = Fixture::new(&[]);
    let tasks: String = (0..40).map(|i| task(&format!("t{i}"), "count", "")).collect();
    let report = fx.run(&format!("{}{tasks}", teammate("counter", swarm_tests::COUNTER, 4, "")));
    assert!(report.success(), "{}", report.to_text(10));
    assert_eq!(report.totals.completed, 40);
    for t in &report.tasks {
        assert_eq!(t.attempts.len(), 1, "{} ran {} times", t.id, t.attempts.len());
        let by = t.teammate.as_deref().unwrap();
        assert_eq!(t.summary.as_deref(), Some(format!("done {} by {by}", t.id).as_str()));
    }
}

#[test]
fn a_trapping_teammate_is_reported_failed_while_the_others_finish() {
    let fx = Fixture::new(&[]);
    let counts: String = (0..6).map(|i| task(&format!("c{i}"), "count", "owner = \"counter\"")).collect();
    let report = fx.run(&format!(
        "{}{}{}{}{counts}",
        teammate("trapper", swarm_tests::TRAPPER, 2, ""),
        teammate("counter", swarm_tests::COUNTER, 2, ""),
        task("boom", "panic now", "owner = \"trapper-1\"\nmax_attempts = 1"),
        task("halt", "unreachable now", "owner = \"trapper-2\"\nmax_attempts = 1"),
    ));
    let boom = outcome(&report, "boom");
    assert_eq!(boom.status, Status::Failed);
    assert!(boom.error.as_deref().unwrap().contains("deliberate panic in task boom"), "{boom:#?}");
    let halt = outcome(&report, "halt");
    assert_eq!(halt.status, Status::Failed);
    assert!(halt.error.as_deref().unwrap().contains("unreachable"), "{halt:#?}");
    for i in 0..6 {
        assert_eq!(outcome(&report, &format!("c{i}")).status, Status::Completed);
    }
    let dead: Vec<_> = report.teammates.iter().filter(|m| m.state == Liveness::Dead).map(|m| m.id.as_str()).collect();
    assert_eq!(dead, ["trapper-1", "trapper-2"]);
    assert!(!report.success());
}

#[test]
fn a_looping_guest_is_stopped_at_its_deadline_while_the_others_finish() {
    let fx = Fixture::new(&[]);
    let counts: String = (0..4).map(|i| task(&format!("c{i}"), "count", "owner = \"counter\"")).collect();
    let report = fx.run(&format!(
        "{}{}{}{counts}",
        teammate("looper", swarm_tests::LOOPER, 1, ""),
        teammate("counter", swarm_tests::COUNTER, 1, ""),
        task("spin", "loop forever", "owner = \"looper\"\ndeadline = \"300ms\"\nmax_attempts = 1"),
    ));
    let spin = outcome(&report, "spin");
    assert_eq!(spin.status, Status::Failed);
    let err = spin.error.as_deref().unwrap();
    assert!(err.contains("deadline hit") && err.contains("300ms"), "{err}");
    let ran = spin.attempts[0].duration.unwrap();
    assert!(ran < std::time::Duration::from_secs(10), "stopped promptly, not after {ran:?}");
    assert_eq!(report.totals.completed, 4);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!(
        "{}{}",
        teammate("memhog", swarm_tests::MEMHOG, 1, "limits = { memory_mib = 24 }"),
        task("hog", "eat memory", "max_attempts = 1"),
    ));
    let hog = outcome(&report, "hog");
    assert_eq!(hog.status, Status::Failed);
    assert!(hog.error.as_deref().unwrap().contains("memory limit hit"), "{hog:#?}");
    assert!(hog.error.as_deref().unwrap().contains("memory_mib = 24 MiB"), "{hog:#?}");
}

#[test]
fn a_write_outside_ownership_is_denied_and_reported() {
    let fx = Fixture::new(&[("mine.txt", "old"), ("theirs.txt", "keep")]);
    let before = common::tree_hash(&fx.root());
    let report = fx.run(&format!(
        "{}{}{}",
        teammate("writer", swarm_tests::WRITER, 1, ""),
        task(
            "bad",
            "write someone else's file",
            "owns = [\"mine.txt\"]\ndescription = \"write:theirs.txt\"\nmax_attempts = 1"
        ),
        task("escape", "write outside the root", "description = \"write:../outside.txt\"\nmax_attempts = 1"),
    ));
    let bad = outcome(&report, "bad");
    assert_eq!(bad.status, Status::Failed);
    assert!(bad.error.as_deref().unwrap().contains("denied"), "{bad:#?}");
    let escape = outcome(&report, "escape");
    assert!(escape.error.as_deref().unwrap().contains("invalid path"), "{escape:#?}");
    assert_eq!(common::tree_hash(&fx.root()), before, "no file changed");
    let denied: Vec<_> = report.denials.iter().map(|d| (d.task.as_deref(), d.operation.as_str())).collect();
    assert_eq!(denied, [(Some("bad"), "write"), (Some("escape"), "write")], "{:#?}", report.denials);
    assert!(report.to_text(5).contains("denied: writer-1 write in task bad"), "{}", report.to_text(5));
    assert!(!fx.dir.path().join("outside.txt").exists());
}

#[test]
fn an_owned_write_lands() {
    let fx = Fixture::new(&[("mine.txt", "old")]);
    let report = fx.run(&format!(
        "{}{}",
        teammate("writer", swarm_tests::WRITER, 1, ""),
        task("ok", "write my file", "owns = [\"mine.txt\"]\ndescription = \"write:mine.txt\""),
    ));
    assert!(report.success(), "{}", report.to_text(10));
    assert_eq!(std::fs::read_to_string(fx.root().join("mine.txt")).unwrap(), "written by writer-1");
}

#[test]
fn todo_scan_reports_markers_with_file_and_line() {
    let fx = Fixture::new(&[
        ("src/a.rs", "fn a() {}\n// TODO: tidy\n"),
        ("src/b.rs", "// FIXME(bob) later\nlet todo_list = 1; // XXX\n"),
        ("docs/x.md", "TODOS are not markers\n"),
    ]);
    let report = fx.run(&format!(
        "{}{}{}",
        teammate("todo-scan", swarm_tests::TODO_SCAN, 2, ""),
        task("src", "scan src", "owns = [\"src/**/*.rs\"]"),
        task("docs", "scan docs", "owns = [\"docs/*.md\"]"),
    ));
    assert!(report.success(), "{}", report.to_text(10));
    let src = outcome(&report, "src");
    let found: Vec<_> = src.findings.iter().map(|f| (f.file.as_str(), f.line, f.rule.as_str())).collect();
    assert_eq!(found, [("src/a.rs", Some(2), "todo"), ("src/b.rs", Some(1), "fixme"), ("src/b.rs", Some(2), "xxx")]);
    assert!(outcome(&report, "docs").findings.is_empty());
}

#[test]
fn dependency_order_is_respected() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!(
        "{}{}{}{}",
        teammate("counter", swarm_tests::COUNTER, 3, ""),
        task("last", "count", "blocked_by = [\"middle\"]"),
        task("middle", "count", "blocked_by = [\"first\"]"),
        task("first", "count", ""),
    ));
    assert!(report.success(), "{}", report.to_text(10));
    let attempt = |id: &str| outcome(&report, id).attempts[0].clone();
    let (first, middle, last) = (attempt("first"), attempt("middle"), attempt("last"));
    assert!(first.ended_seq.unwrap() < middle.claimed_seq, "{first:?} {middle:?}");
    assert!(middle.ended_seq.unwrap() < last.claimed_seq, "{middle:?} {last:?}");
}

#[test]
fn a_guest_waiting_in_a_host_call_is_cancelled_at_its_deadline() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!(
        "{}{}{}",
        teammate("counter", swarm_tests::COUNTER, 2, ""),
        task("stuck", "wait ten minutes", "description = \"wait:600000\"\ndeadline = \"300ms\"\nmax_attempts = 1"),
        task("fine", "count", ""),
    ));
    let stuck = outcome(&report, "stuck");
    assert_eq!(stuck.status, Status::Failed);
    let err = stuck.error.as_deref().unwrap();
    assert!(err.contains("deadline hit: task stuck ran past task_deadline = 300ms"), "{err}");
    assert!(stuck.attempts[0].duration.unwrap() < std::time::Duration::from_secs(10));
    assert_eq!(outcome(&report, "fine").status, Status::Completed);
}

#[test]
fn deep_recursion_hits_the_stack_limit_and_guests_see_no_environment() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!(
        "{}{}{}{}",
        teammate("deep", swarm_tests::TRAPPER, 1, "limits = { wasm_stack_kib = 64 }"),
        teammate("plain", swarm_tests::TRAPPER, 1, ""),
        task("down", "recurse forever", "owner = \"deep\"\nmax_attempts = 1"),
        task("env", "count env", "owner = \"plain\""),
    ));
    let down = outcome(&report, "down");
    assert_eq!(down.status, Status::Failed);
    assert_eq!(down.error.as_deref(), Some("trapped: stack limit hit: wasm stack overflow (wasm_stack_kib = 64 KiB)"));
    assert_eq!(outcome(&report, "env").summary.as_deref(), Some("env=0 args=0"));
}

#[test]
fn with_read_owned_a_teammate_cannot_read_other_files() {
    let fx = Fixture::new(&[("mine.txt", "mine"), ("theirs.txt", "secret")]);
    let report = fx.run(&format!(
        "read = \"owned\"\n{}{}{}",
        teammate("writer", swarm_tests::WRITER, 1, ""),
        task("own", "read my file", "owns = [\"mine.txt\"]\ndescription = \"read:mine.txt\""),
        task("peek", "read their file", "description = \"read:theirs.txt\"\nmax_attempts = 1"),
    ));
    assert_eq!(outcome(&report, "own").summary.as_deref(), Some("read 4 bytes from mine.txt"));
    let peek = outcome(&report, "peek");
    assert_eq!(peek.status, Status::Failed);
    assert!(peek.error.as_deref().unwrap().contains("reads are limited to the held task's files"), "{peek:#?}");
    assert_eq!(report.denials.len(), 1);
}
