//! The planner runner (`swarm_host::sandbox::planner`) with real planner
//! components: the shipped default planner (`plugins/planner`) and the
//! misbehaving test planner (`tests/guests/bad-planner`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_host::sandbox::planner::{self, PlanInput, PlannedTask, Planner, PlannerError, TaskResult};
use swarm_host::sandbox::{LimitHit, Limits, LoadError};

fn input(files: Vec<String>, groups: u32, subject: &str) -> PlanInput {
    PlanInput { team: "audit".into(), files, groups, subject: subject.into(), teammates: vec!["todo-scan".into()] }
}

/// `n` sorted files spread over a few directories.
fn files(n: usize) -> Vec<String> {
    let mut files: Vec<String> = (0..n).map(|i| format!("{}/f{i:02}.rs", ["host", "sdk", "tests"][i % 3])).collect();
    files.sort();
    files
}

fn planner_path() -> &'static Path {
    Path::new(swarm_tests::PLANNER)
}

fn bad_planner_path() -> &'static Path {
    Path::new(swarm_tests::BAD_PLANNER)
}

async fn plan_ok(input: PlanInput) -> Vec<PlannedTask> {
    planner::plan(planner_path(), &Limits::default(), input).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn groups_are_disjoint_and_cover_every_file_once() {
    let all = files(23);
    let tasks = plan_ok(input(all.clone(), 4, "scan {n}: {first} .. {last}")).await;

    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3", "p4"]);
    let sizes: Vec<usize> = tasks.iter().map(|t| t.owns.len()).collect();
    assert_eq!(sizes, [6, 6, 6, 5], "balanced by count");

    let mut seen = BTreeSet::new();
    let mut in_order = Vec::new();
    for t in &tasks {
        assert_eq!(t.subject, format!("scan {}: {} .. {}", &t.id[1..], t.owns[0], t.owns[t.owns.len() - 1]));
        assert_eq!(t.owner, None);
        assert!(t.blocked_by.is_empty());
        for f in &t.owns {
            assert!(seen.insert(f.clone()), "{f} is owned by two tasks");
        }
        in_order.extend(t.owns.iter().cloned());
    }
    assert_eq!(in_order, all, "every file exactly once, contiguous in sorted order");
}

#[tokio::test]
async fn fewer_files_than_groups_gives_fewer_tasks() {
    let tasks = plan_ok(input(files(3), 8, "")).await;
    assert_eq!(tasks.len(), 3);
    assert!(tasks.iter().all(|t| t.owns.len() == 1));
    assert_eq!(tasks[0].subject, format!("part 1: {0} .. {0}", tasks[0].owns[0]));

    assert!(plan_ok(input(Vec::new(), 8, "")).await.is_empty(), "no files, no tasks");
}

#[tokio::test]
async fn zero_groups_is_refused_by_the_planner() {
    let err = planner::plan(planner_path(), &Limits::default(), input(files(3), 0, "")).await.unwrap_err();
    assert!(matches!(&err, PlannerError::Refused { reason, .. } if reason.contains("groups")), "{err}");
}

#[tokio::test]
async fn synthesis_counts_results_and_lists_failures() {
    let results = vec![
        TaskResult { id: "p1".into(), completed: true, summary: "3 markers".into(), findings: 3 },
        TaskResult { id: "p2".into(), completed: false, summary: "deadline hit: task p2 ran past".into(), findings: 0 },
        TaskResult { id: "p3".into(), completed: true, summary: "2 markers".into(), findings: 2 },
    ];
    let text = planner::synthesize(planner_path(), &Limits::default(), "audit", results).await.unwrap();
    assert_eq!(text, "3 tasks: 2 completed, 1 failed, 5 findings.\n- p2 failed: deadline hit: task p2 ran past");
}

#[tokio::test]
async fn one_load_serves_many_calls_each_in_a_fresh_instance() {
    let loaded = tokio::task::spawn_blocking(|| Planner::load(planner_path(), &Limits::default())).await.unwrap();
    let loaded = loaded.unwrap();
    assert_eq!(loaded.path(), planner_path());
    let first = loaded.plan(input(files(9), 3, "{n}")).await.unwrap();
    let again = loaded.plan(input(files(9), 3, "{n}")).await.unwrap();
    assert_eq!(first, again);
    let text = loaded.synthesize("audit", Vec::new()).await.unwrap();
    assert_eq!(text, "0 tasks: 0 completed, 0 failed, 0 findings.");
}

#[tokio::test]
async fn a_looping_plan_is_stopped_at_its_deadline() {
    let limits = Limits { task_deadline: Duration::from_millis(300), ..Limits::default() };
    let loaded = tokio::task::spawn_blocking(move || Planner::load(bad_planner_path(), &limits)).await.unwrap();
    let loaded = loaded.unwrap();

    let started = Instant::now();
    let err = loaded.plan(input(files(3), 2, "loop")).await.unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(10), "took {took:?}");
    assert!(
        matches!(err.limit(), Some(LimitHit::Deadline { task, deadline }) if task == "plan" && *deadline == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.to_string().contains("deadline hit: task plan ran past task_deadline = 300ms"), "{err}");

    let err = loaded.synthesize("loop", Vec::new()).await.unwrap_err();
    assert!(matches!(err.limit(), Some(LimitHit::Deadline { task, .. }) if task == "synthesize"), "{err:?}");
}

#[tokio::test]
async fn memory_is_capped() {
    let limits = Limits { memory_mib: 16, ..Limits::default() };
    let err = planner::plan(bad_planner_path(), &limits, input(files(1), 1, "hog")).await.unwrap_err();
    assert!(matches!(err.limit(), Some(LimitHit::Memory { limit_mib: 16, .. })), "{err:?}");
    assert!(err.to_string().contains("memory_mib = 16 MiB"), "{err}");
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let err = planner::plan(bad_planner_path(), &Limits::default(), input(files(1), 1, "panic")).await.unwrap_err();
    match &err {
        PlannerError::Trap { call, reason, limit: None, .. } => {
            assert_eq!(*call, "plan");
            assert!(reason.contains("deliberate panic planning team audit"), "{reason}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_is_the_planners_own_error() {
    let err = planner::plan(bad_planner_path(), &Limits::default(), input(files(1), 1, "err")).await.unwrap_err();
    assert!(matches!(&err, PlannerError::Refused { reason, .. } if reason == "refused: audit"), "{err:?}");
    assert!(err.to_string().ends_with("refused to plan: refused: audit"), "{err}");
}

#[tokio::test]
async fn output_over_report_kib_is_refused() {
    let limits = Limits { report_kib: 1, ..Limits::default() };
    let many: Vec<String> = (0..200).map(|i| format!("src/some/long/directory/name/file{i:04}.rs")).collect();
    let err = planner::plan(planner_path(), &limits, input(many, 4, "")).await.unwrap_err();
    assert!(matches!(&err, PlannerError::TooLarge { call: "plan", limit_kib: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("over report_kib = 1 KiB"), "{err}");
}

#[tokio::test]
async fn more_tasks_than_the_groups_asked_for_are_refused_naming_both_numbers() {
    // bad-planner plans one task per file, whatever `groups` says.
    let err = planner::plan(bad_planner_path(), &Limits::default(), input(files(7), 3, "each")).await.unwrap_err();
    assert!(matches!(&err, PlannerError::TooManyTasks { groups: 3, returned: 7, .. }), "{err:?}");
    assert!(err.to_string().ends_with("returned 7 tasks, more than the 3 it was asked for (groups = 3)"), "{err}");
    assert!(err.limit().is_none(), "a plan too large is a bad plan, not a sandbox limit hit");
    let exact = planner::plan(bad_planner_path(), &Limits::default(), input(files(3), 3, "each")).await.unwrap();
    assert_eq!(exact.len(), 3);
}

#[tokio::test]
async fn components_of_other_worlds_and_non_components_do_not_load() {
    let limits = Limits::default();
    // A teammate exports `run`, not `plan` / `synthesize`.
    let err = planner::plan(Path::new(swarm_tests::TODO_SCAN), &limits, input(files(1), 1, "")).await.unwrap_err();
    assert!(matches!(err, PlannerError::Load(LoadError::Incompatible { .. })), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").unwrap();
    let err = planner::plan(&junk, &limits, input(files(1), 1, "")).await.unwrap_err();
    assert!(matches!(err, PlannerError::Load(LoadError::NotAComponent { .. })), "{err:?}");
    assert!(err.to_string().contains("core wasm module"), "{err}");

    let err = planner::synthesize(&dir.path().join("missing.wasm"), &limits, "t", Vec::new()).await.unwrap_err();
    assert!(matches!(err, PlannerError::Load(LoadError::Read { .. })), "{err:?}");

    // The size is checked before anything is parsed: a planner padded past
    // 1 MiB is refused by its size alone.
    let mut padded = std::fs::read(planner_path()).unwrap();
    padded.resize((1 << 20) + 1, 0);
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, padded).unwrap();
    let small = Limits { plugin_mib: 1, ..Limits::default() };
    let err = planner::plan(&big, &small, input(files(1), 1, "")).await.unwrap_err();
    assert!(matches!(err, PlannerError::Load(LoadError::TooLarge { limit_mib: 1, .. })), "{err:?}");
}

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the guest's log calls run on this thread, where
// the capturing subscriber is the default.
#[tokio::test(flavor = "current_thread")]
async fn log_lines_are_sanitised_and_traced() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let tasks = planner::plan(bad_planner_path(), &Limits::default(), input(files(2), 2, "log")).await.unwrap();
    assert_eq!(tasks.len(), 2, "one task per file");

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = out.lines().find(|l| l.contains("planner")).unwrap_or_else(|| panic!("no log line in {out:?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("planner=bad_planner.wasm"), "{line}");
    assert!(line.contains(r"bad\u{1b}[2Jplanner\u{d}\u{a}says hi"), "{line}");
    assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
}
