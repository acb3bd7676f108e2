//! Crash safety: SIGKILL the coordinator at random points, check that every
//! state file still parses, resume, and check that no task was lost and
//! none completed twice.
//!
//! Rounds: `SWARM_CRASH_ROUNDS` (default 200). The seed is printed; set
//! `SWARM_CRASH_SEED` to replay a failing sequence.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swarm_host::state::StateDir;
use swarm_host::tasks::Status;

const TASKS: usize = 12;

/// xorshift64*: a few random numbers without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn command(dir: &Path, state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swarm-host"));
    c.args(args)
        .current_dir(dir)
        .env("SWARM_STATE_DIR", state)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-cache"))
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn team_file(dir: &Path, rng: &mut Rng) {
    let mut body = format!(
        "name = \"crash\"\nroot = \".\"\n[[teammate]]\nname = \"counter\"\nplugin = {:?}\ninstances = 3\n",
        swarm_tests::COUNTER
    );
    for i in 0..TASKS {
        let blocked = if i % 4 == 3 { format!("blocked_by = [\"t{}\"]\n", i - 1) } else { String::new() };
        body.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\nsubject = \"count\"\ndescription = \"wait:{}\"\n{blocked}",
            rng.below(12)
        ));
    }
    std::fs::write(dir.join("team.toml"), body).unwrap();
}

/// Every state file present parses with its version and kind.
fn assert_state_parses(state: &StateDir) {
    let dir = state.path();
    let present = |f: &str| dir.join(f).exists();
    if present("team.json") {
        state.read_plan().expect("team.json parses");
    }
    if present("tasks.json") {
        let tasks = state.read_tasks().expect("tasks.json parses");
        assert_eq!(tasks.len(), TASKS, "no task lost from tasks.json");
    }
    if present("roster.json") {
        state.read_roster().expect("roster.json parses");
    }
    if present("mailbox.json") {
        state.read_mailbox().expect("mailbox.json parses");
    }
    if present("run.json") {
        state.read_run().expect("run.json parses");
    }
    if present("report.json") {
        state.read_report().expect("report.json parses");
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        // `logs/` holds the append-only log files, not state.
        let logs = name == "logs" && entry.file_type().unwrap().is_dir();
        assert!(logs || name.ends_with(".json") || name.ends_with(".tmp"), "unexpected file {name}");
    }
}

#[test]
fn sigkill_at_random_points_then_resume_loses_nothing_and_repeats_nothing() {
    let rounds: usize = std::env::var("SWARM_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(200);
    let seed = std::env::var("SWARM_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash test: {rounds} rounds, SWARM_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    team_file(dir.path(), &mut rng);

    // Calibrate: how long does a whole run take here? Kills land within it.
    // The shortest of three runs: the first also fills the compiled-plugin
    // cache, and a run slowed by other tests would push most kills past the
    // end of the runs that follow.
    let mut span = u64::MAX;
    for n in 0..3 {
        let calib = dir.path().join(format!("calibration-{n}"));
        let started = Instant::now();
        let status = command(dir.path(), &calib, &["run", "team.toml"]).status().unwrap();
        assert!(status.success(), "an uninterrupted run succeeds");
        span = span.min(started.elapsed().as_micros() as u64);
    }

    let mut killed_mid_run = 0;
    for round in 0..rounds {
        let base = dir.path().join(format!("state-{round}"));
        let mut child = command(dir.path(), &base, &["run", "team.toml"]).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        child.kill().unwrap(); // SIGKILL
        let exited = child.wait().unwrap();
        if !exited.success() {
            killed_mid_run += 1;
        }

        let Ok(state) = StateDir::open(&base, "crash") else {
            // Killed before the plan was saved: nothing may be half there.
            assert!(!base.join("crash/tasks.json").exists(), "round {round}: tasks.json without team.json");
            continue;
        };
        assert_state_parses(&state);

        let resumed = command(dir.path(), &base, &["resume", "crash"]).status().unwrap();
        assert!(resumed.success(), "round {round}: resume finishes every task (seed {seed})");
        assert_state_parses(&state);
        let tasks = state.read_tasks().unwrap();
        for t in &tasks {
            assert_eq!(t.status, Status::Completed, "round {round}: {} lost (seed {seed})", t.spec.id);
            let completions = t.attempts.iter().filter(|a| !a.interrupted && a.error.is_none()).count();
            assert_eq!(completions, 1, "round {round}: {} completed {completions} times (seed {seed})", t.spec.id);
        }
        assert!(state.read_run().unwrap().finished);
    }
    eprintln!("crash test: {killed_mid_run} of {rounds} runs were killed before they finished");
    assert!(killed_mid_run > rounds / 4, "most kills should land mid-run (calibrated span {span} µs)");
}

/// A teammate that cannot be started after another one was: the one
/// started is stopped again, the report says what ran and why the run
/// stopped, the state stays resumable, and the exit code is 3 (internal),
/// not 2 ("nothing ran").
#[test]
fn a_start_failure_after_some_teammates_started_stops_them_and_exits_three() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use swarm_host::backend::InProcess;
    use swarm_host::cli::exit::{EXIT_INTERNAL, of_report};
    use swarm_host::coordinator::run::{RunOptions, run, team_of};
    use swarm_host::coordinator::{Loaded, Plan};
    use swarm_host::sandbox::{Sandbox, Workspace};
    use swarm_host::team::Liveness;

    let dir = swarm_tests::team_dir(
        "start",
        &[],
        &format!(
            "[[teammate]]\nname = \"first\"\nplugin = {:?}\n[[teammate]]\nname = \"second\"\nplugin = {:?}\n\
             [[task]]\nid = \"slow\"\nsubject = \"wait\"\ndescription = \"wait:600000\"\nowner = \"second\"\n",
            swarm_tests::COUNTER,
            swarm_tests::COUNTER
        ),
    );
    let plan = Plan::build(&Loaded::read(&dir.path().join("team.toml")).unwrap()).unwrap();
    let state = StateDir::create(&dir.path().join("state"), "start").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let sandbox = Sandbox::new();
        // Only `first` has a plugin: spawning `second` fails.
        let first = &plan.teammates[0];
        let plugins = HashMap::from([(first.group.clone(), sandbox.load(&first.plugin, &first.limits).unwrap())]);
        let (team, events) = team_of(&plan, None, Some(&state));
        let backend = InProcess::new(team, Workspace::open_root(&plan.root).unwrap(), plan.read, plugins);
        let options = RunOptions { state: Some(state.clone()), ..RunOptions::default() };
        let run = run(&plan, Arc::new(backend), events, options);
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("the run ended").expect("a report")
    });
    let why = report.interrupted.as_deref().unwrap();
    assert!(why.contains("cannot spawn teammate `second-1`"), "{why}");
    let first = report.teammates.iter().find(|m| m.id == "first-1").unwrap();
    assert_eq!(first.state, Liveness::Exited, "the started teammate was stopped: {first:?}");
    assert_eq!(report.tasks[0].status, Status::Pending, "not run, left for resume");
    assert_eq!(of_report(&report), EXIT_INTERNAL);
    assert!(state.read_run().unwrap().finished);
    assert_eq!(state.read_tasks().unwrap()[0].status, Status::Pending);
}

#[test]
fn a_corrupt_state_file_stops_resume_and_status_naming_the_file() {
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().unwrap();
    team_file(dir.path(), &mut rng);
    let base = dir.path().join("state");
    assert!(command(dir.path(), &base, &["run", "team.toml"]).status().unwrap().success());
    for file in ["mailbox.json", "run.json"] {
        let path = base.join("crash").join(file);
        let saved = std::fs::read(&path).unwrap();
        std::fs::write(&path, b"{\"v\":1,\"kind\":").unwrap();
        let out = command(dir.path(), &base, &["resume", "crash"]).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "a corrupt {file} is refused: {stderr}");
        assert!(stderr.contains(file) && stderr.contains("not valid JSON"), "the error names {file}: {stderr}");
        std::fs::write(&path, saved).unwrap();
    }
    // `status` names a corrupt roster instead of showing an empty one.
    let path = base.join("crash/roster.json");
    std::fs::write(&path, b"[").unwrap();
    let out = command(dir.path(), &base, &["status", "crash"]).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a corrupt roster.json is refused: {stderr}");
    assert!(stderr.contains("roster.json"), "the error names roster.json: {stderr}");
}
