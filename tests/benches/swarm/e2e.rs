//! Row 6, end to end: the example audit team (`todo-scan`) over a generated
//! tree of 20,000 files, planned from a team file and run in-process
//! through the library exactly as `swarm-host run` does, with 2 teammates
//! against 1 teammate (the serial single agent) on a 2-worker runtime.
//! Runs alternate (1, 2, 1, 2, ...) and each figure is the median.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;

use crate::common;
use crate::stats::{Line, dur, median};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 200;
/// Tasks the tree is split into (5 directories each).
const TASKS: usize = 20;
const RUNS: usize = 3;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let dir = tempfile::tempdir().unwrap();
    let markers = generate(&dir.path().join("tree"));
    let plans: Vec<(usize, Plan)> = [1, 2].into_iter().map(|n| (n, plan(dir.path(), n))).collect();
    let rt = common::runtime(2);
    let sandbox = Sandbox::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); plans.len()];
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
    let files = DIRS * FILES_PER_DIR;
    vec![
        Line::new(
            "6 end to end",
            format!("todo-scan, {files} files, {TASKS} tasks, 2 teammates, median of {RUNS}"),
            dur(two),
            format!("{speedup:.2}× faster than 1 teammate"),
        )
        .target("≥ 1.8× on 2 cores", speedup >= 1.8),
        Line::new("6 end to end", "baseline: the same team with 1 teammate (serial)", dur(one), "1×"),
    ]
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
