//! Row 6, end to end: the example audit team (`todo-scan`) over a generated
//! tree of 20,000 files, planned from a team file and run in-process
//! through the library exactly as `swarm-host run` does, with 2 teammates
//! against 1 teammate (the serial single agent) on a 2-worker runtime.
//! Runs alternate (1, 2, 1, 2, ...). The speed of this shared virtual
//! machine drifts by tens of percent over seconds (the same run takes
//! 0.6 s or 1 s), so the speedup is the median of the ratios of adjacent
//! runs, not the ratio of two medians; the times are printed as median
//! (min–max). After each pair the machine's own ceiling is measured: how
//! much faster its 2 cores run native CPU work on 2 threads than on 1.
//! The share of CPU time the hypervisor reported stolen is printed too.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;

use crate::common;
use crate::stats::{CpuTime, Line, dur, median, median_f64};

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
    let (mut pairs, mut machine) = (Vec::new(), Vec::new());
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
        // Adjacent runs see the same machine: their ratio is the speedup.
        let (one, two) = (times[0].last().unwrap(), times[1].last().unwrap());
        pairs.push(one.as_secs_f64() / two.as_secs_f64());
        machine.push(machine_speedup());
    }
    let speedup = median_f64(&mut pairs);
    let machine = median_f64(&mut machine);
    let spread = |t: &[Duration]| {
        let (lo, hi) = (t.iter().min().copied().unwrap_or_default(), t.iter().max().copied().unwrap_or_default());
        format!("{} ({}–{})", dur(median(t)), dur(lo), dur(hi))
    };
    let files = DIRS * FILES_PER_DIR;
    let stolen = CpuTime::now().stolen_since(&cpu);
    vec![
        Line::new(
            "6 end to end",
            format!(
                "todo-scan, {files} files, {TASKS} tasks, 2 teammates; median (min–max) of {RUNS}, speedup = median of \
                 the {RUNS} adjacent pairs"
            ),
            spread(&times[1]),
            format!("{speedup:.2}× faster than 1 teammate (pairs: {:.2}–{:.2}×)", pairs[0], pairs[pairs.len() - 1]),
        )
        .target("≥ 1.8× on 2 cores", speedup >= 1.8),
        Line::new("6 end to end", "baseline: the same team with 1 teammate (serial)", spread(&times[0]), "1×"),
        Line::new(
            "6 end to end",
            format!(
                "baseline: the machine's own ceiling, native crunch({MACHINE_ROUNDS}) on 2 threads against 1, \
                 measured after each pair, median"
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
/// finishes it once: what these 2 cores give any program now, the ceiling
/// of the team's speedup.
fn machine_speedup() -> f64 {
    let work = || std::hint::black_box(crunch_kernel::crunch(std::hint::black_box(MACHINE_ROUNDS)));
    let started = Instant::now();
    work();
    let one = started.elapsed();
    let started = Instant::now();
    std::thread::scope(|s| {
        let other = s.spawn(work);
        work();
        other.join().expect("crunch thread");
    });
    2.0 * one.as_secs_f64() / started.elapsed().as_secs_f64()
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
