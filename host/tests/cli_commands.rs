//! The real `swarm-host` binary: `validate` (plan and plugin checks without
//! running) and `plugins inspect` (a component's world, imports, exports).

mod cli_run;

use cli_run::{swarm_host, text};

/// A temp dir with `tree/` holding `files` and `team.toml` = header + `body`.
fn fixture(files: &[&str], body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    for path in files {
        let p = dir.path().join("tree").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "// TODO\n").unwrap();
    }
    std::fs::write(dir.path().join("team.toml"), format!("name = \"v\"\nroot = \"tree\"\n{body}")).unwrap();
    dir
}

fn team(dir: &tempfile::TempDir) -> String {
    dir.path().join("team.toml").to_string_lossy().into_owned()
}

#[test]
fn a_valid_team_validates_without_running() {
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\ninstances = 2\n\
         [[task]]\nid = \"src\"\nsubject = \"s\"\nowns = [\"src/*.rs\"]\n",
        swarm_tests::TODO_SCAN
    );
    let dir = fixture(&["src/a.rs", "src/b.rs"], &body);
    let out = swarm_host(dir.path(), &["validate", &team(&dir)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("team v — 1 task(s), 2 teammate(s), 2 owned file(s)"), "{stdout}");
    assert!(stdout.contains("fits the teammate world"), "{stdout}");
    assert!(stdout.trim_end().ends_with("valid"), "{stdout}");
    assert!(!dir.path().join("state").exists(), "validate runs nothing and keeps no state");

    let out = swarm_host(dir.path(), &["validate", "--json", &team(&dir)]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["plugins"][0]["world"], "teammate");
    assert_eq!(v["plugins"][0]["error"], serde_json::Value::Null);
    assert_eq!(v["plan"]["tasks"][0]["owned_files"], serde_json::json!(["src/a.rs", "src/b.rs"]));
}

#[test]
fn every_problem_is_listed_with_its_line() {
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n\
         [[teammate]]\nname = \"core\"\nplugin = \"core.wasm\"\n\
         [[task]]\nid = \"a\"\nsubject = \"s\"\nowns = [\"src/*.rs\"]\nowner = \"nobody\"\n\
         [[task]]\nid = \"b\"\nsubject = \"s\"\nowns = [\"src/a.rs\"]\nblocked_by = [\"ghost\"]\n",
        swarm_tests::TODO_SCAN
    );
    let dir = fixture(&["src/a.rs"], &body);
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = swarm_host(dir.path(), &["validate", &team(&dir)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "has 4 problems",
        "team.toml:9: task `a`: owner `nobody` is not a teammate",
        "team.toml:14: tasks `a` and `b` both own 1 file(s): src/a.rs",
        "team.toml:14: task `b` is blocked by unknown task `ghost`",
        "team.toml:6: teammate `core`: plugin",
        "is a core wasm module",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in {stderr}");
    }
    assert!(text(&out.stdout).contains("does NOT fit the teammate world"), "{}", text(&out.stdout));

    let out = swarm_host(dir.path(), &["validate", "--json", &team(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["problems"][0]["line"], 9);
}

#[test]
fn a_planner_is_run_and_checked_against_its_world() {
    let planner_team = |planner: &str| {
        format!(
            "[[teammate]]\nname = \"scan\"\nplugin = {:?}\ninstances = 2\n[planner]\nplugin = {planner:?}\nowns = [\"src/**\"]\n",
            swarm_tests::TODO_SCAN
        )
    };
    let dir = fixture(&["src/a.rs", "src/b.rs", "src/c.rs"], &planner_team(swarm_tests::PLANNER));
    let out = swarm_host(dir.path(), &["validate", "--json", &team(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plan"]["tasks"].as_array().unwrap().len(), 2, "the planner's tasks are in the plan: {v}");
    assert_eq!(v["plugins"][0]["world"], "planner");

    // A teammate plugin given as the planner does not fit the planner world.
    let dir = fixture(&["src/a.rs"], &planner_team(swarm_tests::TODO_SCAN));
    let out = swarm_host(dir.path(), &["validate", &team(&dir)]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("team.toml:7:") && stderr.contains("does not fit"), "{stderr}");
}

#[test]
fn a_broken_team_file_is_one_located_problem() {
    let dir = fixture(&[], "[[task]\n");
    let out = swarm_host(dir.path(), &["validate", "--json", &team(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["line"], 3, "{v}");
}

#[test]
fn inspect_shows_world_imports_exports_and_fit() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm_host(dir.path(), &["plugins", "inspect", "--json", swarm_tests::TODO_SCAN]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["world"], "teammate");
    assert_eq!(v["size"], std::fs::metadata(swarm_tests::TODO_SCAN).unwrap().len());
    let imports = v["imports"].as_array().unwrap();
    let mailbox = imports.iter().find(|i| i["name"] == "swarm:teammate/mailbox@0.1.3").expect("mailbox import");
    assert_eq!(mailbox["version"], "0.1.3");
    assert_eq!(mailbox["kind"], "instance");
    let functions: Vec<&str> = mailbox["functions"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(functions.contains(&"recv(timeout-ms)"), "{functions:?}");
    assert!(v["exports"].as_array().unwrap().iter().any(|e| e["name"] == "run" && e["kind"] == "func"), "{v}");
    assert_eq!(v["fits"][0], serde_json::json!({ "world": "teammate", "fits": true, "error": null }));
    assert_eq!(v["fits"][1]["fits"], false);

    let out = swarm_host(dir.path(), &["plugins", "inspect", swarm_tests::PLANNER]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("world planner"), "{stdout}");
    assert!(stdout.contains("swarm:teammate/log@0.1.3 (instance)"), "{stdout}");
    assert!(stdout.contains("fits the planner world"), "{stdout}");
    assert!(stdout.contains("does not fit the teammate world"), "{stdout}");
}

#[test]
fn inspect_rejects_what_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let out = swarm_host(dir.path(), &["plugins", "inspect", &core.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is a core wasm module"), "{}", text(&out.stderr));
    let out = swarm_host(dir.path(), &["plugins", "inspect", "/nonexistent/x.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read plugin"), "{}", text(&out.stderr));
}
