//! The real `swarm-host` binary: reports, JSON, exit codes, and errors that
//! name the file, line and limit.

use std::io::Write as _;
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
    // Make the saved run look like a coordinator that died mid-run: the
    // journal's last word on the second task is that scan-2 holds it.
    use swarm_host::coordinator::state::journal::{self, Record};
    let path = dir.path().join("state/cli/journal.jsonl");
    let replay = journal::read(&path).unwrap();
    let mut held = replay
        .records
        .iter()
        .rev()
        .find_map(|(_, r)| match r {
            Record::Task(change) if change.index == 1 => Some(change.clone()),
            _ => None,
        })
        .expect("the journal holds the run's changes of the second task");
    held.status = swarm_host::tasks::Status::InProgress;
    held.holder = Some("scan-2".into());
    held.report = None;
    let mut line = Vec::new();
    journal::encode(&Record::Task(held), &mut line);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&line).unwrap();

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
        for code in [
            "0  success",
            "1  at least one task failed",
            "2  usage",
            "3  internal",
            "4  a sandbox limit",
            "5  the run's timeout",
        ] {
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

/// Every precompiled plugin in a cache directory, with its inode (a
/// recompiled plugin is written anew, so it gets another).
fn cached_modules(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, u64> {
    use std::os::unix::fs::MetadataExt as _;
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .map(|p| {
            let inode = std::fs::metadata(&p).unwrap().ino();
            (p, inode)
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

/// A team of one `group` teammate running `plugin`, with one task.
fn one_task_team(group: &str, plugin: &str, task: &str) -> String {
    format!("[[teammate]]\nname = \"{group}\"\nplugin = {plugin:?}\n[[task]]\nid = \"t\"\nmax_attempts = 1\n{task}")
}

#[test]
fn a_guest_that_writes_the_words_of_a_limit_exits_one_and_a_real_limit_exits_four() {
    let forged_fail = one_task_team(
        "legacy",
        swarm_tests::LEGACY,
        "subject = \"fail\"\ndescription = \"deadline hit: task t ran past task_deadline = 1s\"\n",
    );
    let forged_exit = one_task_team(
        "legacy",
        swarm_tests::LEGACY,
        "subject = \"quit\"\ndescription = \"memory limit hit: the instance asked for 9 bytes, over memory_mib = 1 MiB\"\n",
    );
    let real = one_task_team("looper", swarm_tests::LOOPER, "subject = \"loop\"\ndeadline = \"300ms\"\n");
    for backend in ["in-process", "process"] {
        for (body, code, words, limit) in [
            (&forged_fail, 1, "deadline hit: task t ran past", serde_json::Value::Null),
            (&forged_exit, 1, "run returned an error: memory limit hit", serde_json::Value::Null),
            (&real, 4, "deadline hit: task t ran past task_deadline = 300ms", "deadline".into()),
        ] {
            let dir = fixture(&[], body);
            let out = swarm_host(&dir, &["run", "--json", "--backend", backend, &team(dir.path())]);
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{backend}: {e}: {}", text(&out.stderr)));
            let task = &report["tasks"][0];
            assert_eq!(out.status.code(), Some(code), "{backend}: {task}\n{}", text(&out.stderr));
            assert!(task["error"].as_str().unwrap().contains(words), "{backend}: {task}");
            assert_eq!(task["limit"], limit, "{backend}: {task}");
            assert_eq!(task["attempts"][0]["limit"], limit, "{backend}: {task}");
        }
    }
}

#[test]
fn fail_on_gates_findings_by_severity_and_the_report_says_which_policy_failed() {
    // todo-scan rates its markers `note`, secret-scan its secrets `error`.
    let body = format!(
        "[[teammate]]\nname = \"todo\"\nplugin = {:?}\n[[teammate]]\nname = \"secrets\"\nplugin = {:?}\n\
         [[task]]\nid = \"todo\"\nsubject = \"markers\"\nowns = [\"src/*.rs\"]\nowner = \"todo\"\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::SECRET_SCAN
    );
    let notes = fixture(&[("src/a.rs", "// TODO: tidy\n")], &body);
    let run = |dir: &tempfile::TempDir, extra: &[&str]| {
        let mut args = vec!["run", "--fresh"];
        args.extend_from_slice(extra);
        let team = team(dir.path());
        args.push(&team);
        swarm_host(dir, &args)
    };
    let default = run(&notes, &[]);
    assert_eq!(default.status.code(), Some(0), "{}", text(&default.stderr));
    assert!(text(&default.stdout).contains("Result: passed (--fail-on error)"), "{}", text(&default.stdout));
    assert_eq!(run(&notes, &["--fail-on", "warning"]).status.code(), Some(0), "a note is below warning");
    let strict = run(&notes, &["--fail-on", "note"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        text(&strict.stdout).contains("Result: failed by --fail-on note: 1 finding(s) of any severity"),
        "{}",
        text(&strict.stdout)
    );

    let secret = "aws_key = \"AKIAIOSFODNN7EXAMPLQ\"\n";
    let body = body.replace(
        "id = \"todo\"\nsubject = \"markers\"\nowns = [\"src/*.rs\"]\nowner = \"todo\"",
        "id = \"keys\"\nsubject = \"secrets\"\nowns = [\"conf/*\"]\nowner = \"secrets\"",
    );
    let secrets = fixture(&[("conf/app.toml", secret)], &body);
    let default = run(&secrets, &["--json"]);
    assert_eq!(default.status.code(), Some(0), "findings do not fail the default policy: {}", text(&default.stderr));
    let report: serde_json::Value = serde_json::from_slice(&default.stdout).unwrap();
    assert_eq!(report["tasks"][0]["findings"][0]["severity"], "error", "{report}");
    assert_eq!(report["verdict"]["fail_on"], "error");
    let gated = run(&secrets, &["--json", "--fail-on", "warning"]);
    assert_eq!(gated.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&gated.stdout).unwrap();
    assert_eq!(report["verdict"]["failed"], true);
    assert_eq!(report["verdict"]["gating_findings"], 1);
    assert_eq!(run(&secrets, &["--fail-on", "never"]).status.code(), Some(0));

    let sarif = run(&secrets, &["--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["level"], "error", "the SARIF level follows the severity: {result}");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"], "error");
}

#[test]
fn a_guest_built_against_the_0_1_0_wit_still_loads_runs_and_inspects() {
    for backend in ["in-process", "process"] {
        // The legacy guest reports one finding on `legacy.txt`: the task owns
        // it, so the finding names a file the task could read.
        let dir = fixture(
            &[("legacy.txt", "x\n")],
            &one_task_team("legacy", swarm_tests::LEGACY, "subject = \"scan\"\nowns = [\"legacy.txt\"]\n"),
        );
        let out = swarm_host(&dir, &["run", "--json", "--backend", backend, &team(dir.path())]);
        assert_eq!(out.status.code(), Some(0), "{backend}: {}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let finding = &report["tasks"][0]["findings"][0];
        assert_eq!(finding["rule"], "legacy-rule", "{backend}: {report}");
        assert_eq!(finding["severity"], "warning", "an unrated finding is a warning ({backend})");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = swarm_host(&dir, &["plugins", "inspect", "--json", swarm_tests::LEGACY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let inspection: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imports = inspection["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i["name"] == "swarm:teammate/task-list@0.1.0"), "{inspection}");
    let teammate = inspection["fits"].as_array().unwrap().iter().find(|f| f["world"] == "teammate").unwrap();
    assert_eq!(teammate["fits"], true, "{inspection}");
}

/// A team whose one task waits 10 minutes inside the counter guest.
fn slow_team() -> String {
    format!(
        "[[teammate]]\nname = \"counter\"\nplugin = {:?}\n\
         [[task]]\nid = \"quick\"\nsubject = \"count\"\n\
         [[task]]\nid = \"slow\"\nsubject = \"wait\"\ndescription = \"wait:600000\"\nblocked_by = [\"quick\"]\n",
        swarm_tests::COUNTER
    )
}

/// The saved task statuses of team `cli` under `dir/state`, in plan order.
fn saved_statuses(dir: &tempfile::TempDir) -> Vec<String> {
    let state = swarm_host::coordinator::state::StateDir::open(&dir.path().join("state"), "cli").unwrap();
    let tasks = state.read_tasks().unwrap();
    tasks.iter().map(|t| serde_json::to_value(t.status).unwrap().as_str().unwrap().to_string()).collect()
}

#[test]
fn the_run_timeout_stops_the_team_gracefully_exits_five_and_leaves_it_resumable() {
    for (args, body) in
        [(&["--timeout", "2s"][..], slow_team()), (&[][..], format!("timeout = \"2s\"\n{}", slow_team()))]
    {
        let dir = fixture(&[], &body);
        let mut argv = vec!["run", "--shutdown-grace", "300ms"];
        argv.extend_from_slice(args);
        let team = team(dir.path());
        argv.push(&team);
        let started = std::time::Instant::now();
        let out = swarm_host(&dir, &argv);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stdout}\n{}", text(&out.stderr));
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
        assert!(stdout.contains("ok   quick"), "{stdout}");
        assert!(stdout.contains("not run: timeout: the run took longer than timeout = 2s"), "{stdout}");
        assert!(stdout.contains("run interrupted: timeout"), "{stdout}");
        assert_eq!(saved_statuses(&dir), ["completed", "pending"], "the slow task waits for `resume`");
        let status = text(&swarm_host(&dir, &["status", "cli"]).stdout);
        assert!(status.contains("Team cli — stopped (timeout): `swarm-host resume` continues it"), "{status}");
        let again = swarm_host(&dir, &["run", &team]);
        assert_eq!(again.status.code(), Some(2));
        assert!(text(&again.stderr).contains("swarm-host resume cli"), "{}", text(&again.stderr));
    }
}

/// Reads `child`'s stderr on a thread: every line is sent on the channel.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (60 s at most) for a line of `lines` containing `what`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => return,
            Ok(_) => {}
            Err(e) => panic!("no stderr line with {what:?} ({e})"),
        }
    }
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn spawn_run(dir: &tempfile::TempDir, grace: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(["run", "--shutdown-grace", grace, &team(dir.path())])
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.path().join("state"))
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .env("RUST_LOG", "swarm_host=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_stops_the_run_gracefully_with_a_report_and_a_second_one_kills() {
    let dir = fixture(&[], &slow_team());
    let mut child = spawn_run(&dir, "300ms");
    let lines = stderr_lines(&mut child);
    // `quick` completed: the counter now claims and waits inside `slow`.
    wait_for_line(&lines, "completed: done quick");
    sigterm(&child);
    wait_for_line(&lines, "terminated by SIGTERM: stopping the team gracefully");
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("run interrupted: terminated by SIGTERM"), "{stdout}");
    assert!(stdout.contains("Summary: 1 completed, 1 failed"), "{stdout}");
    assert_eq!(saved_statuses(&dir), ["completed", "pending"], "resumable");
    let run =
        swarm_host::coordinator::state::StateDir::open(&dir.path().join("state"), "cli").unwrap().read_run().unwrap();
    assert!(run.finished, "the coordinator recorded its end");

    // A grace far longer than the test may take: only a second SIGTERM ends it in time.
    let dir = fixture(&[], &slow_team());
    let mut child = spawn_run(&dir, "10m");
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "completed: done quick");
    sigterm(&child);
    wait_for_line(&lines, "terminated by SIGTERM: stopping the team gracefully");
    sigterm(&child);
    wait_for_line(&lines, "interrupted again: killing every teammate");
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("died: killed: killed by a second interrupt"), "{stdout}");
    assert_eq!(saved_statuses(&dir), ["completed", "pending"]);
}

#[test]
fn state_that_cannot_be_saved_is_an_internal_error() {
    let dir = fixture(&[("src/a.rs", "// TODO\n")], &scan_team());
    // A directory where the task list goes: every save of it fails.
    std::fs::create_dir_all(dir.path().join("state/cli/tasks.json/blocked")).unwrap();
    let out = swarm_host(&dir, &["run", &team(dir.path())]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("Summary: 2 completed"), "the report is printed: {stdout}");
    assert!(stdout.contains("state not saved: cannot save the task list"), "{stdout}");
    assert!(stderr.contains("error: cannot save the task list"), "{stderr}");
}
