//! Row 6, end to end: the example audit team (`todo-scan`) over a generated
//! tree of 20,000 files (about 114,000 markers), as a user runs it: the
//! release `swarm-host run` binary as a child process (`--backend
//! in-process`, a fresh state directory, so the team's state files and log
//! files are written, the compiled-plugin cache warm, the text report on
//! stdout), with 2 teammates and with 1 (the serial single agent), on this
//! machine's 2 cores.
//!
//! The floor for the state and logs, measured in the same run: the same
//! team run through the library with the state off (`RunOptions::state =
//! None`, no log files): read the team file, plan, load the plugin from the
//! same warm cache into the sandbox the CLI would make, run, render the
//! text report. That is everything the CLI run does but start a process,
//! keep state and write logs (the CLI has no switch to turn state off). The
//! same library run with a state directory (no logs) shows what the state
//! alone costs.
//!
//! Runs alternate within each of [`RUNS`] rounds. The speed of this shared
//! virtual machine drifts by tens of percent over seconds, so each ratio
//! is the median of the ratios within rounds, not the ratio of two medians;
//! the times are printed as median (min–max). After each round the
//! machine's own ceiling is measured: how much faster its 2 cores run
//! native CPU work on 2 threads than on 1. The share of CPU time the
//! hypervisor reported stolen is printed too. Every run must find every
//! marker (the CLI's from its `report.json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swarm_host::coordinator::state::StateDir;
use swarm_host::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;

use crate::common;
use crate::stats::{CpuTime, Line, dur, median, median_f64};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 200;
/// Tasks the tree is split into (5 directories each).
const TASKS: usize = 20;
const RUNS: usize = 9;

/// The runs of one round, in order.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    /// The library, state off, no logs.
    Library,
    /// The library with a state directory, no logs.
    LibraryState,
    /// The `swarm-host run` binary: state and logs on.
    Cli,
}

const ROUND: &[(Way, usize)] =
    &[(Way::Library, 1), (Way::Library, 2), (Way::Cli, 2), (Way::Cli, 1), (Way::LibraryState, 2)];

/// Runs the row.
pub fn run() -> Vec<Line> {
    let exe = match crate::native::swarm_host_exe() {
        Ok(exe) => exe,
        Err(e) => return vec![Line::new("6 end to end", "swarm-host run", "FAILED", e)],
    };
    let dir = tempfile::tempdir().unwrap();
    let markers = generate(&dir.path().join("tree"));
    for n in [1, 2] {
        team_file(dir.path(), n);
    }
    let cache = dir.path().join("cache");
    let rt = common::runtime(2);
    // Fill the compiled-plugin cache, as an earlier run would have.
    cli(&exe, dir.path(), &cache, 2, 0, markers);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ROUND.len()];
    let (mut machine, mut runs) = (Vec::new(), 0);
    let cpu = CpuTime::now();
    for _ in 0..RUNS {
        for (i, &(way, n)) in ROUND.iter().enumerate() {
            runs += 1;
            let took = match way {
                Way::Library => library(&rt, dir.path(), &cache, n, None, markers),
                Way::LibraryState => library(&rt, dir.path(), &cache, n, Some(runs), markers),
                Way::Cli => cli(&exe, dir.path(), &cache, n, runs, markers),
            };
            times[i].push(took);
        }
        machine.push(machine_speedup());
    }
    let at = |way: Way, n: usize| ROUND.iter().position(|r| *r == (way, n)).expect("a run of the round");
    let (lib1, lib2, cli2, cli1, lib2_state) =
        (at(Way::Library, 1), at(Way::Library, 2), at(Way::Cli, 2), at(Way::Cli, 1), at(Way::LibraryState, 2));
    // Ratios within each round: the same machine.
    let ratios = |a: usize, b: usize| -> (f64, f64, f64) {
        let mut r: Vec<f64> = times[a].iter().zip(&times[b]).map(|(x, y)| x.as_secs_f64() / y.as_secs_f64()).collect();
        let m = median_f64(&mut r);
        (m, r[0], r[r.len() - 1])
    };
    let (cli_speedup, cli_lo, cli_hi) = ratios(cli1, cli2);
    let (lib_speedup, lib_lo, lib_hi) = ratios(lib1, lib2);
    let (state_cost, state_lo, state_hi) = ratios(cli2, lib2);
    let (state_only, so_lo, so_hi) = ratios(lib2_state, lib2);
    let (serial_cost, sc_lo, sc_hi) = ratios(cli1, lib1);
    let machine = median_f64(&mut machine);
    let spread = |t: &[Duration]| {
        let (lo, hi) = (t.iter().min().copied().unwrap_or_default(), t.iter().max().copied().unwrap_or_default());
        format!("{} ({}–{})", dur(median(t)), dur(lo), dur(hi))
    };
    let files = DIRS * FILES_PER_DIR;
    let stolen = CpuTime::now().stolen_since(&cpu);
    let row = "6 end to end";
    vec![
        Line::new(
            row,
            format!(
                "`swarm-host run` (release, in-process, state and logs on), todo-scan, {files} files, {markers} \
                 findings, {TASKS} tasks, 2 teammates; median (min–max) of {RUNS}"
            ),
            spread(&times[cli2]),
            format!("{state_cost:.2}× of the library run with state off ({state_lo:.2}–{state_hi:.2}×)"),
        )
        .target("≤ 1.3× of state off", state_cost <= 1.3),
        Line::new(
            row,
            "`swarm-host run`, 2 teammates against 1: speedup, median of the rounds' ratios",
            format!("{cli_speedup:.2}× (rounds: {cli_lo:.2}–{cli_hi:.2}×)"),
            format!(
                "the machine's ceiling is {machine:.2}×: the team reaches {:.0}% of it",
                100.0 * cli_speedup / machine
            ),
        )
        .target("≥ 1.8× on 2 cores", cli_speedup >= 1.8),
        Line::new(
            row,
            "`swarm-host run` with 1 teammate (the serial single agent)",
            spread(&times[cli1]),
            format!("{serial_cost:.2}× of the library run with state off ({sc_lo:.2}–{sc_hi:.2}×)"),
        ),
        Line::new(
            row,
            "floor: the library run, state off, no logs, 2 teammates (plan, load from the cache, run, text report)",
            spread(&times[lib2]),
            "1×",
        ),
        Line::new(
            row,
            "the library run with a state directory (no logs), 2 teammates",
            spread(&times[lib2_state]),
            format!("{state_only:.2}× of state off ({so_lo:.2}–{so_hi:.2}×)"),
        ),
        Line::new(
            row,
            "the library run, state off, 1 teammate; speedup of 2 teammates over it",
            spread(&times[lib1]),
            format!("2 teammates: {lib_speedup:.2}× faster (rounds: {lib_lo:.2}–{lib_hi:.2}×)"),
        ),
        Line::new(
            row,
            format!(
                "floor of the speedup: the machine's own ceiling, native crunch({MACHINE_ROUNDS}) on 2 threads \
                 against 1, after each round, median"
            ),
            format!("{machine:.2}×"),
            "",
        ),
        Line::new(row, "CPU time the hypervisor gave to other guests during the runs", format!("{stolen:.1}%"), ""),
    ]
}

/// The team file of the run with `instances` teammates in `dir`.
fn team_path(dir: &Path, instances: usize) -> PathBuf {
    dir.join(format!("team-{instances}.toml"))
}

/// One library run, timed from reading the team file to the rendered
/// report; with a fresh state directory `state-<k>` when `state` is
/// `Some(k)`.
fn library(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    cache: &Path,
    instances: usize,
    state: Option<usize>,
    markers: usize,
) -> Duration {
    let started = Instant::now();
    let plan = plan(&team_path(dir, instances));
    // The sandbox `swarm-host run` makes for this team.
    let sandbox =
        Sandbox::with_cache(cache.to_path_buf()).for_in_process_team(plan.teammates.iter().map(|t| &t.limits));
    let state_dir = state.map(|k| dir.join(format!("state-{k}")));
    let state = state_dir.as_ref().map(|d| StateDir::create(d, &plan.team).expect("state dir"));
    let options = RunOptions { state, ..RunOptions::default() };
    let report = rt.block_on(run_in_process(&plan, &sandbox, options)).expect("the audit team starts");
    let text = report.to_text(20);
    let took = started.elapsed();
    assert!(report.success(), "{text}");
    let found: usize = report.tasks.iter().map(|t| t.findings.len()).sum();
    assert_eq!(found, markers, "every marker found");
    if let Some(d) = state_dir {
        std::fs::remove_dir_all(d).expect("remove the state directory");
    }
    took
}

/// One `swarm-host run` of the team with `instances` teammates in a fresh
/// state directory `state-<k>`, timed from starting the process to its
/// exit; checks its exit code and the findings of its `report.json`.
fn cli(exe: &Path, dir: &Path, cache: &Path, instances: usize, k: usize, markers: usize) -> Duration {
    let state = dir.join(format!("state-{k}"));
    let started = Instant::now();
    let out = Command::new(exe)
        .arg("--state-dir")
        .arg(&state)
        .args(["run", "--backend", "in-process", "--cache-dir"])
        .arg(cache)
        .arg(team_path(dir, instances))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("start swarm-host run");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "swarm-host run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).lines().rev().take(5).collect::<Vec<_>>().join(" / ")
    );
    let report = std::fs::read(state.join(format!("e2e-{instances}")).join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_slice(&report).expect("report.json is JSON");
    let tasks = report
        .pointer("/data/tasks")
        .or_else(|| report.get("tasks"))
        .and_then(|t| t.as_array())
        .expect("report.json lists tasks");
    let found: usize = tasks.iter().map(|t| t.get("findings").and_then(|f| f.as_array()).map_or(0, Vec::len)).sum();
    assert_eq!(found, markers, "every marker found by swarm-host run");
    std::fs::remove_dir_all(&state).expect("remove the state directory");
    took
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

/// Writes the team file of the run with `instances` teammates.
fn team_file(dir: &Path, instances: usize) {
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
    std::fs::write(team_path(dir, instances), team).unwrap();
}

/// Reads and plans a team file, as `swarm-host run` does.
fn plan(path: &Path) -> Plan {
    let loaded = Loaded::read(path).expect("read the team file");
    Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"))
}
