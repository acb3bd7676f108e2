//! Plans cannot crash or stall the host: a plan of any shape, from a team
//! file or a planner, is validated in time linear in its size and without
//! recursion, and a plan over one of the named limits is refused with exit
//! 2 naming the limit. Also what a plan says about files: names that are
//! not UTF-8 are skipped with a warning, and `owns` patterns grant the
//! creation of new files, with warnings where two tasks could create one.

mod cli_run;

use cli_run::{swarm_host, text};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use swarm_host::coordinator::plan::{
    MAX_BLOCKED_BY, MAX_DEPENDENCY_DEPTH, MAX_GLOBS, MAX_ID_LEN, MAX_SUBJECT_LEN, MAX_TASKS,
};
use swarm_host::coordinator::{Loaded, Plan, PlanError};

/// Stack of the thread that validates the big plans: recursion along a
/// 10,000-task chain would overflow it.
const SMALL_STACK: usize = 256 * 1024;
/// Generous: validation takes well under a second in a release build.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A team file over a one-file tree: one teammate group, then `tasks`.
fn team_file(tasks: &str) -> String {
    format!("name = \"big\"\nroot = \"tree\"\n[[teammate]]\nname = \"w\"\nplugin = \"w.wasm\"\n{tasks}")
}

/// Plans `source` (a team file in a temp dir with `tree/a.rs`) on a thread
/// with a [`SMALL_STACK`], waiting at most [`TIMEOUT`].
fn plan_on_small_stack(source: String) -> Result<Plan, PlanError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("tree/a.rs"), "").unwrap();
    let path = dir.path().join("team.toml");
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let loaded = Loaded::parse(&path, source).unwrap();
            let _ = tx.send(Plan::build(&loaded));
        })
        .unwrap();
    let out = rx.recv_timeout(TIMEOUT).expect("the plan was validated within the timeout");
    drop(dir);
    out
}

fn task(id: &str, blocked_by: &[String]) -> String {
    format!("[[task]]\nid = \"{id}\"\nsubject = \"s\"\nblocked_by = {blocked_by:?}\n")
}

/// `n` tasks `c1..cn`, each blocked by the one after it: the first task in
/// plan order ends the whole chain, so a depth-first walk from it would
/// recurse `n` deep.
fn chain(n: usize) -> String {
    (1..=n).map(|i| task(&format!("c{i}"), &if i == n { vec![] } else { vec![format!("c{}", i + 1)] })).collect()
}

#[test]
fn a_ten_thousand_task_chain_is_refused_by_its_depth_without_recursing() {
    let e = plan_on_small_stack(team_file(&chain(MAX_TASKS))).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "task `c1` ends a blocked_by chain of {MAX_TASKS} tasks, over max_dependency_depth = {MAX_DEPENDENCY_DEPTH}"
        )),
        "{e}"
    );
}

#[test]
fn the_widest_and_deepest_plan_the_limits_allow_is_accepted() {
    // A chain, and tasks blocked by as many tasks as allowed (a fan-in) that
    // end it as deep as allowed, then independent tasks up to the task limit.
    let depth = MAX_DEPENDENCY_DEPTH - 1;
    let mut tasks = chain(depth);
    let mut fan_in: Vec<String> = (1..=depth).map(|i| format!("c{i}")).collect();
    fan_in.extend((0..MAX_BLOCKED_BY - depth).map(|i| format!("x{i}")));
    for i in 0..10 {
        tasks.push_str(&task(&format!("f{i}"), &fan_in));
    }
    for i in 0..MAX_TASKS - depth - 10 {
        tasks.push_str(&task(&format!("x{i}"), &[]));
    }
    let plan = plan_on_small_stack(team_file(&tasks)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.tasks.len(), MAX_TASKS);
}

#[test]
fn a_cycle_through_the_whole_plan_is_named_without_recursing() {
    let mut tasks: String = (1..MAX_TASKS).map(|i| task(&format!("c{i}"), &[format!("c{}", i + 1)])).collect();
    tasks.push_str(&task(&format!("c{MAX_TASKS}"), &["c1".to_string()]));
    let e = plan_on_small_stack(team_file(&tasks)).unwrap_err().to_string();
    assert!(e.contains("dependency cycle: c1 → c2 → c3"), "{}", &e[..e.len().min(500)]);
    assert!(e.contains(&format!("c{MAX_TASKS} → c1")), "the cycle closes");
}

#[test]
fn a_plan_over_the_task_limit_is_refused_naming_the_limit() {
    let tasks: String = (0..=MAX_TASKS).map(|i| task(&format!("t{i}"), &[])).collect();
    let e = plan_on_small_stack(team_file(&tasks)).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert!(
        e.to_string().contains(&format!("the plan has {} tasks, over max_tasks = {MAX_TASKS}", MAX_TASKS + 1)),
        "{e}"
    );
}

#[test]
fn every_field_has_a_named_bound() {
    let long_id = "i".repeat(200);
    let long_subject = "s".repeat(MAX_SUBJECT_LEN + 1);
    let many: Vec<String> = (0..=MAX_BLOCKED_BY).map(|i| format!("x{i}")).collect();
    let long_path = format!("{}.rs", "d/".repeat(3000));
    let tasks = format!(
        "[[task]]\nid = \"{long_id}\"\nsubject = \"s\"\n\
         [[task]]\nid = \"a\"\nsubject = \"{long_subject}\"\n\
         [[task]]\nid = \"b\"\nsubject = \"s\"\nblocked_by = {many:?}\n\
         [[task]]\nid = \"c\"\nsubject = \"s\"\nowns = [\"{long_path}\"]\n"
    );
    let e = plan_on_small_stack(team_file(&tasks)).unwrap_err().to_string();
    for want in [
        format!("must be 1-{MAX_ID_LEN} of [A-Za-z0-9._-] (max_id_len = {MAX_ID_LEN})"),
        format!("task `a`: subject is {} bytes, over max_subject_len = {MAX_SUBJECT_LEN}", MAX_SUBJECT_LEN + 1),
        format!("task `b`: blocked_by has {} entries, over max_blocked_by = {MAX_BLOCKED_BY}", MAX_BLOCKED_BY + 1),
        "bytes, over max_pattern_len = 4096".to_string(),
    ] {
        assert!(e.contains(&want), "missing {want:?} in {e}");
    }
    // Problems quote what is wrong, shortened: no line of the error carries
    // the whole 200-byte id or 6,000-byte path.
    assert!(!e.contains(&long_id) && !e.contains(&long_path), "{e}");
}

#[test]
fn too_many_globs_are_refused_and_literal_paths_do_not_count() {
    let globs: String = (0..=MAX_GLOBS)
        .map(|i| format!("[[task]]\nid = \"g{i}\"\nsubject = \"s\"\nowns = [\"d{i}/*.rs\"]\n"))
        .collect();
    let e = plan_on_small_stack(team_file(&globs)).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{} owns globs (patterns with a wildcard), over max_globs = {MAX_GLOBS}", MAX_GLOBS + 1)),
        "{e}"
    );

    let literals: String = (0..MAX_TASKS)
        .map(|i| format!("[[task]]\nid = \"l{i}\"\nsubject = \"s\"\nowns = [\"d{i}/f.rs\", \"d{i}/g.rs\"]\n"))
        .collect();
    let plan = plan_on_small_stack(team_file(&literals)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.tasks[7].creates, ["d7/f.rs", "d7/g.rs"]);
}

#[test]
fn ten_thousand_files_are_matched_against_ten_thousand_tasks_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    for i in 0..MAX_TASKS {
        std::fs::write(dir.path().join(format!("tree/f{i}.rs")), "").unwrap();
    }
    let tasks: String = (0..MAX_TASKS)
        .map(|i| format!("[[task]]\nid = \"t{i}\"\nsubject = \"s\"\nowns = [\"f{i}.rs\", \"new/f{i}.md\"]\n"))
        .collect();
    let path = dir.path().join("team.toml");
    let source = team_file(&tasks);
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let _ = tx.send(Plan::build(&Loaded::parse(&path, source).unwrap()).map_err(|e| e.to_string()));
        })
        .unwrap();
    let plan = rx.recv_timeout(TIMEOUT).expect("the plan was validated within the timeout").unwrap();
    assert!(
        plan.tasks
            .iter()
            .enumerate()
            .all(|(i, t)| t.owned_files.len() == 1 && t.owned_files.contains(&format!("f{i}.rs")))
    );
    // Each task's `new/f<i>.md` does not exist: it is a file the task may create.
    assert_eq!(plan.warnings.len(), 101, "100 kept and a count");
    assert_eq!(plan.warnings[100], format!("and {} more warnings", MAX_TASKS - 100));
}

// ---- The binary: exit 2 and the limit named, from `validate` and `run`. ----

fn team(dir: &Path) -> String {
    dir.join("team.toml").to_string_lossy().into_owned()
}

#[test]
fn validate_and_run_refuse_a_plan_over_a_limit_with_exit_two() {
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n{}",
        swarm_tests::TODO_SCAN,
        (0..=MAX_TASKS).map(|i| task(&format!("t{i}"), &[])).collect::<String>()
    );
    let dir = swarm_tests::team_dir("big", &[("a.rs", "")], &body);
    let want = format!("over max_tasks = {MAX_TASKS}");
    for cmd in ["validate", "run"] {
        let out = swarm_host(dir.path(), &[cmd, &team(dir.path())]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(stderr.contains(&want), "{cmd}: {stderr}");
    }
}

#[test]
fn a_planner_that_returns_more_tasks_than_its_groups_is_refused_with_exit_two() {
    // bad-planner plans one task per file: 5 files, 2 groups.
    let files: Vec<(String, &str)> = (0..5).map(|i| (format!("src/f{i}.rs"), "")).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n[planner]\nplugin = {:?}\ngroups = 2\nsubject = \"one per file\"\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::BAD_PLANNER
    );
    let dir = swarm_tests::team_dir("greedy", &files, &body);
    for cmd in ["validate", "run"] {
        let out = swarm_host(dir.path(), &[cmd, &team(dir.path())]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(stderr.contains("returned 5 tasks, more than the 2 it was asked for (groups = 2)"), "{cmd}: {stderr}");
    }
}

#[test]
fn planned_paths_with_glob_characters_own_and_create_exactly_that_file() {
    // Each name is a glob that would match more (or other) files if it were
    // not escaped: `*`, a class, and a backslash (an escape in globs).
    let names = ["we*ird.rs", "[x].rs", "b\\c.rs", "weXird.rs", "x.rs", "bc.rs"];
    let files: Vec<(&str, &str)> = names.iter().map(|n| (*n, "")).collect();
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n[planner]\nplugin = {:?}\ngroups = 6\nsubject = \"one per file\"\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::BAD_PLANNER
    );
    let dir = swarm_tests::team_dir("odd", &files, &body);
    let out = swarm_host(dir.path(), &["validate", "--json", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks = v["plan"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), names.len());
    for t in tasks {
        let owned: Vec<&str> = t["owned_files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!(owned.len(), 1, "each planned task owns its one file: {t}");
        let creates = t["creates"].as_array().unwrap();
        assert_eq!(creates.len(), 1, "{t}");
        let glob = globset_matcher(creates[0].as_str().unwrap());
        for name in names {
            assert_eq!(glob(name), name == owned[0], "{} may create {name}? {t}", owned[0]);
        }
    }
}

/// A creation pattern as the workspace reads it: a glob whose `*` does not
/// cross `/`.
fn globset_matcher(pattern: &str) -> impl Fn(&str) -> bool {
    let glob = swarm_host::coordinator::plan::owns::check_glob(pattern).unwrap().compile_matcher();
    move |path| glob.is_match(path)
}

#[test]
fn validate_prints_plan_warnings_about_creation_and_overlapping_globs() {
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n\
         [[task]]\nid = \"parser\"\nsubject = \"s\"\nowns = [\"src/parser/**\"]\n\
         [[task]]\nid = \"all\"\nsubject = \"s\"\nowns = [\"src/**/*.rs\"]\n\
         [[task]]\nid = \"new\"\nsubject = \"s\"\nowns = [\"docs/new.md\"]\n",
        swarm_tests::TODO_SCAN
    );
    let dir = swarm_tests::team_dir("warn", &[("README.md", "")], &body);
    let out = swarm_host(dir.path(), &["validate", &team(dir.path())]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for want in [
        "warning: task `parser`: `src/parser/**` matches no file under the root yet: the task may create files that match it",
        "warning: task `new` owns `docs/new.md`, which does not exist yet: the task may create it",
        "warning: tasks `parser` and `all` could both create the same new file: `src/parser/**` and `src/**/*.rs`",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in {stdout}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn file_names_that_are_not_utf8_are_skipped_with_a_warning_never_owned_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n[[task]]\nid = \"src\"\nsubject = \"s\"\nowns = [\"src/**\"]\n",
        swarm_tests::TODO_SCAN
    );
    let dir = swarm_tests::team_dir("bytes", &[("src/ok.rs", "")], &body);
    let src = dir.path().join("tree/src");
    std::fs::write(src.join(std::ffi::OsStr::from_bytes(b"bad\xff.rs")), "").unwrap();
    std::fs::create_dir(src.join(std::ffi::OsStr::from_bytes(b"dir\xfe"))).unwrap();
    std::fs::write(src.join(std::ffi::OsStr::from_bytes(b"dir\xfe")).join("inner.rs"), "").unwrap();

    let out = swarm_host(dir.path(), &["validate", "--json", &team(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plan"]["tasks"][0]["owned_files"], serde_json::json!(["src/ok.rs"]), "{v}");
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with(r#""src/bad\xFF.rs" is skipped: its name is not UTF-8"#), "{warnings:?}");
    assert!(warnings[1].starts_with(r#""src/dir\xFE" is skipped"#), "{warnings:?}");

    let out = swarm_host(dir.path(), &["validate", &team(dir.path())]);
    assert!(text(&out.stdout).contains(r#"warning: "src/bad\xFF.rs" is skipped"#), "{}", text(&out.stdout));
}
