//! Task-list persistence and lookups (issue 13 §3), each figure printed
//! beside a floor measured in the same run:
//!
//! ```sh
//! cargo bench -p swarm-tests --bench journal
//! ```
//!
//! - `claims`: claims and completions per second with 10,000 tasks (half
//!   of them owned by a group, half by anyone), against the same number of
//!   first-element removals from a bare `BTreeSet`;
//! - `saves`: a run's saves on a large task list (`SWARM_BENCH_TASKS`
//!   tasks, default 500, with 50 findings each): every claim and completion
//!   rewriting the whole list atomically (what `tasks.json` cost before
//!   the journal), against the journal (one record per change, each
//!   completion waiting for its fsync). Bytes written and wall time.
//!
//! A plain `harness = false` binary: one table, no statistics beyond the
//! best of three for the fast rows.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use swarm_host::coordinator::state::{StateDir, write_atomic};
use swarm_host::mailbox::MailboxState;
use swarm_host::model::{Finding, Severity};
use swarm_host::tasks::{TaskList, TaskReport, TaskSpec};

fn spec(i: usize, owner: Option<&str>) -> TaskSpec {
    TaskSpec {
        id: format!("t{i}"),
        subject: "check".into(),
        description: String::new(),
        owned_files: [format!("src/f{i}.rs")].into_iter().collect(),
        owner: owner.map(Into::into),
        blocked_by: Vec::new(),
        deadline: None,
        max_attempts: 1,
        creates: Vec::new(),
    }
}

fn report(task: &str, findings: usize) -> TaskReport {
    let finding = |n: usize| Finding {
        file: format!("src/{task}.rs"),
        line: Some(n as u32 + 1),
        rule: "todo".into(),
        message: format!("a TODO comment left in the code, number {n}"),
        severity: Severity::Warning,
    };
    TaskReport { summary: format!("{findings} findings"), findings: (0..findings).map(finding).collect() }
}

fn best_of_three(f: impl Fn() -> Duration) -> Duration {
    (0..3).map(|_| f()).min().unwrap_or_default()
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Claims and completes every one of `n` tasks, two teammates of two
/// groups taking turns.
fn claims(n: usize) -> Duration {
    let specs: Vec<TaskSpec> = (0..n).map(|i| spec(i, (i % 2 == 0).then_some("scan"))).collect();
    let list = TaskList::new(specs);
    let empty = TaskReport { summary: String::new(), findings: Vec::new() };
    let started = Instant::now();
    let mut done = 0;
    for turn in 0.. {
        let (id, group) = if turn % 2 == 0 { ("scan-1", "scan") } else { ("lint-1", "lint") };
        match list.claim(id, group) {
            Some(c) => {
                list.complete(id, &c.spec.id, empty.clone()).unwrap();
                done += 1;
            }
            None if list.all_done() => break,
            None => {}
        }
    }
    assert_eq!(done, n);
    started.elapsed()
}

/// The floor: as many first-element removals from a `BTreeSet`.
fn floor(n: usize) -> Duration {
    let mut set: BTreeSet<usize> = (0..n).collect();
    let started = Instant::now();
    let mut sum = 0usize;
    while let Some(i) = set.pop_first() {
        sum = sum.wrapping_add(i);
    }
    std::hint::black_box(sum);
    started.elapsed()
}

fn dir_bytes(written: &HashMap<&str, u64>) -> f64 {
    written.values().sum::<u64>() as f64 / 1e6
}

/// Before: every claim and completion rewrites the whole list atomically.
fn saves_rewriting(n: usize, findings: usize) -> (Duration, f64) {
    let dir = tempfile::tempdir().unwrap();
    let list = TaskList::new((0..n).map(|i| spec(i, None)).collect());
    let mut written = HashMap::from([("tasks.json", 0u64)]);
    let started = Instant::now();
    let mut save = |list: &TaskList| {
        let bytes = serde_json::to_vec_pretty(&list.snapshot()).unwrap();
        *written.get_mut("tasks.json").unwrap() += bytes.len() as u64;
        write_atomic(dir.path(), "tasks.json", &bytes).unwrap();
    };
    while let Some(c) = list.claim("w-1", "w") {
        save(&list);
        list.complete("w-1", &c.spec.id, report(&c.spec.id, findings)).unwrap();
        save(&list);
    }
    (started.elapsed(), dir_bytes(&written))
}

/// After: one journal record per change, each completion awaited until
/// durable; the journal closed at the end, as a run does.
fn saves_journal(n: usize, findings: usize) -> (Duration, f64) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::create(dir.path(), "bench").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = Instant::now();
    let list = TaskList::new((0..n).map(|i| spec(i, None)).collect());
    state.start_journal(&list.snapshot(), &MailboxState::new(), 0).unwrap();
    let (save, flush) = state.with_journal(|j| j.task_hooks()).unwrap();
    let list = list.with_journal(save, flush);
    rt.block_on(async {
        while let Some(c) = list.claim("w-1", "w") {
            list.complete("w-1", &c.spec.id, report(&c.spec.id, findings)).unwrap();
            list.flushed().await;
        }
    });
    // The end of a run closes the journal (it no longer compacts).
    state.close_journal();
    let journal = std::fs::metadata(state.path().join("journal.jsonl")).unwrap().len();
    let first = std::fs::metadata(state.path().join("tasks.json")).unwrap().len();
    assert!(state.failures().is_empty(), "{:?}", state.failures());
    let written = HashMap::from([("journal.jsonl", journal), ("first tasks.json", first)]);
    (started.elapsed(), dir_bytes(&written))
}

fn main() {
    // `cargo bench` passes `--bench`; a name filters the rows.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |row: &str| filter.is_empty() || filter.iter().any(|f| row.contains(f.as_str()));

    if wanted("claims") {
        let n = 10_000;
        let list = best_of_three(|| claims(n));
        let bare = best_of_three(|| floor(n));
        println!(
            "claims   {n} tasks: {:>12.0} claims+completions/s   floor (BTreeSet pop_first) {:>12.0}/s   ratio {:.1}x",
            per_second(n, list),
            per_second(n, bare),
            list.as_secs_f64() / bare.as_secs_f64()
        );
    }
    if wanted("saves") {
        let n: usize = std::env::var("SWARM_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
        let findings = 50;
        let (before, before_mb) = saves_rewriting(n, findings);
        let (after, after_mb) = saves_journal(n, findings);
        println!(
            "saves    {n} tasks x {findings} findings: rewriting tasks.json {:>8.2} s {:>8.1} MB   journal {:>8.2} s {:>8.1} MB   ratio {:.1}x time, {:.1}x bytes",
            before.as_secs_f64(),
            before_mb,
            after.as_secs_f64(),
            after_mb,
            before.as_secs_f64() / after.as_secs_f64(),
            before_mb / after_mb
        );
    }
}
