//! Row 6, end to end: the example audit team (`todo-scan`) over a generated
//! tree of 20,000 files, planned from a team file and run in-process
//! through the library exactly as `swarm-host run` does, with 2 teammates
//! against 1 teammate (the serial single agent) on a 2-worker runtime.
//! Runs alternate (1, 2, 1, 2, ...) and each figure is the median; the
//! best of each is printed too, with the share of CPU time the hypervisor
//! stole meanwhile, and the machine's own ceiling: how much faster its 2
//! cores run native CPU work on 2 threads than on 1 (a shared virtual
//! machine's cores need not give 2×).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;

use crate::common;
use crate::stats::{CpuTime, Line, dur, median};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 200;
/// Tasks the tree is split into (5 directories each).
const TASKS: usize = 20;
const RUNS: usize = 9;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let dir = tempfile::tempdir().unwrap();
    let markers = generate(&dir.path().join("tree"));
    let plans: Vec<(usize, Plan)> = [1, 2].into_iter().map(|n| (n, plan(dir.path(), n))).collect();
    let rt = common::runtime(2);
    let sandbox = Sandbox::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); plans.len()];
    let cpu = CpuTime::now();
    for _ in 0..RUNS {
        for (i, (_, plan)) in plans.iter().enumerate() {
            let started = Instant::now();
            let report =
                rt.block_on(run_in_process(plan, &sandbox, RunOptions::default())).expect("the audit team starts");
            times[i].push(started.elapsed());
            assert!(report.success(), "{}", report.to_text(5));
            let found: usize = report.tasks.iter().map(|t| t.findings.len()).sum();
            assert_eq!(found, markers, "every marker found");
        }
    }
    let (one, two) = (median(&times[0]), median(&times[1]));
    let speedup = one.as_secs_f64() / two.as_secs_f64();
    let best = |t: &[Duration]| t.iter().min().copied().unwrap_or_default();
    let (best_one, best_two) = (best(&times[0]), best(&times[1]));
    let files = DIRS * FILES_PER_DIR;
    let stolen = CpuTime::now().stolen_since(&cpu);
    let machine = machine_speedup();
    vec![
        Line::new(
            "6 end to end",
            format!("todo-scan, {files} files, {TASKS} tasks, 2 teammates, median of {RUNS}"),
            dur(two),
            format!("{speedup:.2}× faster than 1 teammate"),
        )
        .target("≥ 1.8× on 2 cores", speedup >= 1.8),
        Line::new("6 end to end", "baseline: the same team with 1 teammate (serial)", dur(one), "1×"),
        Line::new(
            "6 end to end",
            format!("best of {RUNS}: 2 teammates / 1 teammate"),
            format!("{} / {}", dur(best_two), dur(best_one)),
            format!("{:.2}× faster than 1 teammate", best_one.as_secs_f64() / best_two.as_secs_f64()),
        ),
        Line::new(
            "6 end to end",
            format!(
                "baseline: the machine's own ceiling, native crunch({MACHINE_ROUNDS}) on 2 threads against 1, median of {RUNS}"
            ),
            format!("{machine:.2}×"),
            format!("the team reaches {:.0}% of it", 100.0 * speedup / machine),
        ),
        Line::new(
            "6 end to end",
            "CPU time the hypervisor gave to other guests during the runs",
            format!("{stolen:.1}%"),
            "",
        ),
    ]
}

/// Rounds of `crunch_kernel::crunch` per thread for the machine's ceiling
/// (about 80 ms on this machine class).
const MACHINE_ROUNDS: u32 = 1000;

/// How much faster 2 threads finish twice the native CPU work than 1 thread
/// finishes it once: what these 2 cores give any program, the ceiling of
/// the team's speedup. Alternating, median of [`RUNS`] each.
fn machine_speedup() -> f64 {
    let work = || std::hint::black_box(crunch_kernel::crunch(std::hint::black_box(MACHINE_ROUNDS)));
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        work();
        one.push(started.elapsed());
        let started = Instant::now();
        std::thread::scope(|s| {
            let other = s.spawn(work);
            work();
            other.join().expect("crunch thread");
        });
        two.push(started.elapsed());
    }
    2.0 * median(&one).as_secs_f64() / median(&two).as_secs_f64()
}

/// Writes `DIRS` × `FILES_PER_DIR` small source files, one marker in every
/// seventh line, and returns how many markers there are.
fn generate(root: &Path) -> usize {
    let mut markers = 0;
    for d in 0..DIRS {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            let mut text = String::new();
            for line in 0..40 {
                if (d + f + line) % 7 == 0 {
                    markers += 1;
                    writeln!(text, "    // TODO: item {line} of file {f} in dir {d}").unwrap();
                } else {
                    writeln!(text, "    let value_{line} = compute({line}, {f}, {d}); // plain code").unwrap();
                }
            }
            std::fs::write(dir.join(format!("f{f:03}.rs")), text).unwrap();
        }
    }
    markers
}

fn plan(dir: &Path, instances: usize) -> Plan {
    let mut team = format!(
        "name = \"e2e-{instances}\"\nroot = \"tree\"\nread = \"owned\"\n\n[[teammate]]\nname = \"todo-scan\"\n\
         plugin = {:?}\ninstances = {instances}\n",
        swarm_tests::TODO_SCAN
    );
    let per = DIRS / TASKS;
    for t in 0..TASKS {
        let owns: Vec<String> = (t * per..(t + 1) * per).map(|d| format!("\"d{d:03}/**\"")).collect();
        write!(team, "\n[[task]]\nid = \"t{t:02}\"\nsubject = \"scan part {t}\"\nowns = [{}]\n", owns.join(", "))
            .unwrap();
    }
    let path = dir.join(format!("team-{instances}.toml"));
    std::fs::write(&path, team).unwrap();
    let loaded = Loaded::read(&path).expect("read the team file");
    Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"))
}
