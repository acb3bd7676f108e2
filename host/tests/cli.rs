//! The real `swarm-host` binary: reports, JSON, exit codes, and errors that
//! name the file, line and limit.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with its state under `state` and a plugin cache shared
/// by the tests.
fn swarm_host_in(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", state)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .output()
        .unwrap()
}

fn swarm_host(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    swarm_host_in(&dir.path().join("state"), args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temp dir with `tree/` holding `files` and `team.toml` = header + `body`.
fn fixture(files: &[(&str, &str)], body: &str) -> tempfile::TempDir {
    swarm_tests::team_dir("cli", files, body)
}

fn team(dir: &Path) -> String {
    dir.join("team.toml").to_string_lossy().into_owned()
}

fn scan_team() -> String {
    format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\ninstances = 2\n\
         [[task]]\nid = \"src\"\nsubject = \"scan src\"\nowns = [\"src/*.rs\"]\n\
         [[task]]\nid = \"docs\"\nsubject = \"scan docs\"\nowns = [\"*.md\"]\n",
        swarm_tests::TODO_SCAN
    )
}

#[test]
fn run_prints_a_text_report_and_exits_zero() {
    let dir = fixture(&[("src/a.rs", "x\n// TODO: tidy\n"), ("README.md", "FIXME\n")], &scan_team());
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("src/a.rs:2  todo  // TODO: tidy"), "{stdout}");
    assert!(stdout.contains("README.md:1  fixme  FIXME"), "{stdout}");
    assert!(stdout.contains("Summary: 2 completed, 0 failed, 2 finding(s)"), "{stdout}");
}

#[test]
fn run_json_is_machine_readable() {
    let dir = fixture(&[("src/a.rs", "// XXX\n")], &scan_team());
    let out = swarm_host(&dir, &["run", "--json", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!(v["totals"]["completed"], 2);
    assert_eq!(v["tasks"][0]["findings"][0]["rule"], "xxx");
    assert_eq!(v["tasks"][0]["findings"][0]["line"], 1);
}

#[test]
fn run_sarif_is_a_code_scanning_log() {
    let dir = fixture(&[("src/a.rs", "// XXX\n")], &scan_team());
    let out = swarm_host(&dir, &["run", "--format", "sarif", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "swarm-host");
    assert_eq!(run["results"][0]["ruleId"], "xxx");
    let location = &run["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "src/a.rs");
    assert_eq!(location["region"]["startLine"], 1);
}

#[test]
fn a_failed_task_exits_one() {
    let body = format!(
        "[[teammate]]\nname = \"trap\"\nplugin = {:?}\n[[task]]\nsubject = \"panic please\"\nmax_attempts = 1\n",
        swarm_tests::TRAPPER
    );
    let dir = fixture(&[], &body);
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("deliberate panic"), "{}", text(&out.stdout));
}

#[test]
fn overlapping_ownership_is_rejected_before_anything_runs() {
    let body = format!(
        "{}[[task]]\nid = \"again\"\nsubject = \"x\"\nowns = [\"src/a.rs\"]\n",
        scan_team().replace(swarm_tests::TODO_SCAN, "/nonexistent/never-loaded.wasm")
    );
    let dir = fixture(&[("src/a.rs", "")], &body);
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tasks `src` and `again` both own 1 file(s): src/a.rs"), "{stderr}");
    assert!(stderr.contains("team.toml:"), "{stderr}");
    assert!(!stderr.contains("never-loaded"), "nothing was loaded or spawned: {stderr}");
}

#[test]
fn config_and_plugin_errors_exit_two_and_say_what_is_wrong() {
    let empty = tempfile::tempdir().unwrap();
    let missing = swarm_host(&empty, &["run", "/nonexistent/team.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read team file"), "{}", text(&missing.stderr));

    let dir = fixture(&[], "[[teammate]]\nname = \"bad\"\nplugin = \"bad.wasm\"\n[[task]]\nsubject = \"x\"\n");
    std::fs::write(dir.path().join("bad.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is a core wasm module"), "{}", text(&out.stderr));

    let dir = fixture(&[], "[limits]\nmemory_mib = \"lots\"\n");
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("team.toml:4"), "{}", text(&out.stderr));
}

#[test]
fn status_shows_a_finished_team_and_lists_teams() {
    let dir = fixture(&[("src/a.rs", "// TODO\n")], &scan_team());
    assert_eq!(swarm_host(&dir, &["run", &team(dir.path())]).status.code(), Some(0));
    let out = swarm_host(&dir, &["status", "cli"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("Team cli — finished"), "{stdout}");
    assert!(stdout.contains("Tasks: 2 completed, 0 failed, 0 in progress, 0 pending"), "{stdout}");
    assert!(stdout.contains("scan-1") && stdout.contains("exited"), "{stdout}");
    let list = text(&swarm_host(&dir, &["status"]).stdout);
    assert_eq!(list.trim(), "cli");
    let json: serde_json::Value =
        serde_json::from_slice(&swarm_host(&dir, &["status", "--json", "cli"]).stdout).unwrap();
    assert_eq!(json["phase"], "finished");
    assert_eq!(json["tasks"].as_array().unwrap().len(), 2);
    let missing = swarm_host(&dir, &["status", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no state for team `nope`"), "{}", text(&missing.stderr));
}

#[test]
fn an_unfinished_run_must_be_resumed_or_started_fresh() {
    let dir = fixture(&[("src/a.rs", "")], &scan_team());
    assert_eq!(swarm_host(&dir, &["run", &team(dir.path())]).status.code(), Some(0));
    // Make the saved run look like a coordinator that died mid-run.
    let tasks = dir.path().join("state/cli/tasks.json");
    let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&tasks).unwrap()).unwrap();
    saved["data"][1]["status"] = "in_progress".into();
    saved["data"][1]["holder"] = "scan-2".into();
    std::fs::write(&tasks, serde_json::to_vec(&saved).unwrap()).unwrap();

    let refused = swarm_host(&dir, &["run", &team(dir.path())]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("swarm-host resume cli"), "{}", text(&refused.stderr));

    let resumed = swarm_host(&dir, &["resume", "--json", "cli"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let report: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["totals"]["completed"], 2);
    let docs = &report["tasks"][1];
    assert_eq!(docs["attempts"].as_array().unwrap().len(), 2, "in-flight task rerun: {docs}");
    assert_eq!(docs["attempts"][0]["interrupted"], true);
    assert_eq!(report["tasks"][0]["attempts"].as_array().unwrap().len(), 1, "completed task not rerun");

    assert_eq!(swarm_host(&dir, &["run", "--fresh", &team(dir.path())]).status.code(), Some(0));
}

fn planner_team(extra: &str) -> String {
    format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\ninstances = 2\n\
         [planner]\nplugin = {:?}\nsubject = \"scan {{first}} .. {{last}}\"\nowns = [\"src/**\"]\n{extra}",
        swarm_tests::TODO_SCAN,
        swarm_tests::PLANNER
    )
}

#[test]
fn a_planner_plugin_splits_the_tree_before_anything_spawns_and_synthesizes() {
    let files: Vec<(String, String)> = (0..7).map(|i| (format!("src/f{i}.rs"), format!("// TODO {i}\n"))).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let dir = fixture(&files, &planner_team(""));
    let out = swarm_host(&dir, &["run", "--json", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks = report["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "one task per teammate by default");
    assert_eq!(tasks[0]["subject"], "scan src/f0.rs .. src/f3.rs");
    let owned: u64 = tasks.iter().map(|t| t["owned_files"].as_u64().unwrap()).sum();
    assert_eq!(owned, 7, "every file owned exactly once");
    assert_eq!(report["totals"]["findings"], 7);
    assert!(
        report["synthesis"].as_str().unwrap().starts_with("2 tasks: 2 completed, 0 failed, 7 findings"),
        "{report}"
    );
}

#[test]
fn planned_tasks_are_validated_with_the_team_file_tasks() {
    let dir = fixture(
        &[("src/a.rs", "")],
        &planner_team("[[task]]\nid = \"mine\"\nsubject = \"x\"\nowns = [\"src/a.rs\"]\n"),
    );
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tasks `mine` and `p1` both own 1 file(s): src/a.rs"), "{stderr}");
}

#[test]
fn status_follows_a_running_team_and_sees_its_coordinator_die() {
    let body = format!(
        "[[teammate]]\nname = \"counter\"\nplugin = {:?}\n[[task]]\nid = \"slow\"\nsubject = \"wait\"\ndescription = \"wait:600000\"\n",
        swarm_tests::COUNTER
    );
    let dir = fixture(&[], &body);
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(["run", &team(dir.path())])
        .env("SWARM_STATE_DIR", &state)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let json = loop {
        let out = swarm_host(&dir, &["status", "--json", "cli"]);
        // The roster is saved coalesced, so it can lag the task list by a
        // moment: wait until both show the claim.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && v["roster"][0]["state"] == "working"
            && v["roster"][0]["task"] == "slow"
            && v["tasks"][0]["status"] == "in_progress"
        {
            break v;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "never saw the team working");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(json["phase"], "running");
    assert!(json["roster"][0]["last_heartbeat"].as_f64().unwrap() > 0.0);

    child.kill().unwrap();
    child.wait().unwrap();
    let out = swarm_host(&dir, &["status", "cli"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("stopped (coordinator gone"), "{stdout}");
    assert!(stdout.contains("Tasks: 0 completed, 0 failed, 1 in progress, 0 pending"), "{stdout}");
}

#[test]
fn a_task_stopped_by_a_sandbox_limit_exits_four() {
    let body = format!(
        "[[teammate]]\nname = \"hog\"\nplugin = {:?}\nlimits = {{ memory_mib = 8 }}\n\
         [[task]]\nsubject = \"eat\"\nmax_attempts = 1\n",
        swarm_tests::MEMHOG
    );
    let dir = fixture(&[], &body);
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("memory limit hit"), "{stdout}");
}

#[test]
fn usage_errors_exit_two_and_internal_errors_exit_three() {
    let dir = fixture(&[("src/a.rs", "")], &scan_team());
    for args in [&["run"][..], &["bogus"], &["run", "--json", "--format", "text", "x.toml"], &["completions", "tcsh"]] {
        let out = swarm_host(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
    // The state directory cannot be created: swarm-host cannot do its job.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let out = swarm_host_in(&blocker, &["run", &team(dir.path())]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot keep the team's state"), "{stderr}");
}

#[test]
fn help_documents_every_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = swarm_host(&dir, args);
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        for code in ["0  success", "1  at least one task failed", "2  usage", "3  internal", "4  a sandbox limit"] {
            assert!(help.contains(code), "{args:?} lacks {code:?}: {help}");
        }
    }
}

#[test]
fn format_json_is_the_same_as_json() {
    let dir = fixture(&[("src/a.rs", "// TODO\n")], &scan_team());
    let out = swarm_host(&dir, &["run", "--format", "json", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"]["findings"], 1);
    let out = swarm_host(&dir, &["run", "--format", "text", &team(dir.path())]);
    assert!(text(&out.stdout).contains("Summary: 2 completed"), "{}", text(&out.stdout));
}

#[test]
fn toml_syntax_errors_and_unknown_fields_point_at_file_and_line() {
    for (body, line, what) in [
        ("[[task]]\nsubject = \"x\nowns = []\n", 4, ""),
        ("max_attempts = 2\ncolour = \"red\"\n", 4, "colour"),
        ("[[teammate]]\nname = \"a\"\nplugin = \"a.wasm\"\ninstance = 2\n", 6, "instance"),
        ("[[task]]\nsubject = \"x\"\nowner_id = \"a\"\n", 5, "owner_id"),
    ] {
        let dir = fixture(&[], body);
        let out = swarm_host(&dir, &["run", &team(dir.path())]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("team.toml:{line}:")), "want line {line} for {body:?}: {stderr}");
        assert!(stderr.contains(what), "{stderr}");
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in
        [("bash", "complete -F _swarm__host"), ("zsh", "#compdef swarm-host"), ("fish", "complete -c swarm-host")]
    {
        let out = swarm_host(&dir, &["completions", shell]);
        let script = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        assert!(script.contains(marker), "{shell}: {script}");
        for cmd in ["validate", "resume", "inspect", "completions"] {
            assert!(script.contains(cmd), "{shell} script lacks {cmd}");
        }
    }
}

#[test]
fn every_teammate_gets_its_own_log_file_in_the_state_dir() {
    let dir = fixture(&[("src/a.rs", "// TODO\n"), ("README.md", "x\n")], &scan_team());
    let out = Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(["run", &team(dir.path())])
        .env("SWARM_STATE_DIR", dir.path().join("state"))
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .env("RUST_LOG", "swarm_host=debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = dir.path().join("state/cli/logs");
    let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let coordinator = read("coordinator.log");
    assert!(coordinator.contains("team started"), "{coordinator}");
    let mut completed = 0;
    for id in ["scan-1", "scan-2"] {
        let own = read(&format!("{id}.log"));
        assert!(own.lines().all(|l| l.contains(&format!("teammate={id}"))), "{id}.log has others' lines: {own}");
        assert!(own.contains("approved shutdown"), "{own}");
        completed += own.matches("completed:").count();
        assert!(coordinator.contains(&format!("teammate={id}")), "{coordinator}");
    }
    assert_eq!(completed, 2, "each completed task is in its teammate's log");
    let status = text(&swarm_host(&dir, &["status", "cli"]).stdout);
    assert!(status.contains("Logs: ") && status.contains("logs"), "{status}");
}

/// Every compiled module in a wasmtime cache directory, with its mtime.
fn cached_modules(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, std::time::SystemTime> {
    walk(dir)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "modules"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains('.'))
        .map(|p| {
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, mtime)
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_second_run_loads_compiled_plugins_from_the_cache() {
    let dir = fixture(&[("src/a.rs", "// TODO\n")], &scan_team());
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_string_lossy().into_owned();
    let team_path = team(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--cache-dir", &cache_arg];
        args.extend_from_slice(extra);
        args.push(&team_path);
        swarm_host(&dir, &args)
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    let first = cached_modules(&cache);
    assert_eq!(first.len(), 1, "one compiled plugin cached: {first:?}");
    assert_eq!(run(&["--fresh"]).status.code(), Some(0));
    assert_eq!(cached_modules(&cache), first, "the second run compiled nothing: it loaded the cached module");

    // A changed plugin is compiled (and cached) again.
    let copy = dir.path().join("scan-copy.wasm");
    let mut bytes = std::fs::read(swarm_tests::TODO_SCAN).unwrap();
    // A custom section changes the bytes, not the behaviour.
    bytes.extend_from_slice(&[0, 6, 5, b'n', b'o', b't', b'e', b'!']);
    std::fs::write(&copy, bytes).unwrap();
    let changed = std::fs::read_to_string(dir.path().join("team.toml"))
        .unwrap()
        .replace(swarm_tests::TODO_SCAN, &copy.to_string_lossy());
    std::fs::write(dir.path().join("team.toml"), changed).unwrap();
    assert_eq!(run(&["--fresh"]).status.code(), Some(0));
    assert_eq!(cached_modules(&cache).len(), 2, "the changed plugin is cached beside the first");

    let uncached = dir.path().join("uncached");
    let out =
        swarm_host(&dir, &["run", "--fresh", "--no-cache", "--cache-dir", &uncached.to_string_lossy(), &team_path]);
    assert_eq!(out.status.code(), Some(0));
    assert!(walk(&uncached).is_empty(), "--no-cache writes no cache");
}
