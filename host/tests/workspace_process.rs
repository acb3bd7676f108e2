//! Workspace attacks on the `process` backend: `swarm-host run --backend
//! process` starts every teammate as a `swarm-host teammate` process, which
//! builds its workspace policy from the launch config it gets over the
//! socket (creation patterns, protected directories, `read_allow`). The
//! in-process versions of these attacks, and more, are in the swarm-tests
//! crate's `tests/workspace_attacks.rs`; these live here because cargo
//! gives only this crate's tests the path of the `swarm-host` binary.

use std::path::Path;
use std::process::Command;
use swarm_tests::report_task as task;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-host");

/// Runs `swarm-host run --backend process --json` on the team of `dir`,
/// with the state directory and the compiled-plugin cache inside the
/// workspace root (`tree/state`, `tree/cache`), and returns the report.
fn run_process(dir: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["run", "--backend", "process", "--json"])
        .arg(dir.join("team.toml"))
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.join("tree/state"))
        .env("XDG_CACHE_HOME", dir.join("tree/cache"))
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TERM_PROGRAM")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// The `rule: message` of each finding of task `id`.
fn outcomes(report: &serde_json::Value, id: &str) -> Vec<String> {
    let t = task(report, id);
    assert_eq!(t["status"], "completed", "{t:#}");
    t["findings"].as_array().unwrap().iter().map(|f| format!("{}: {}", f["rule"], f["message"])).collect()
}

#[test]
fn a_teammate_process_writes_through_no_planted_symlink_and_creates_only_its_own_files() {
    let body = format!(
        "[[teammate]]\nname = \"rogue\"\nplugin = {:?}\n\
         [[task]]\nid = \"fix\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"sub/**\"]\nmax_attempts = 1\n\
         description = \"write sub/c.txt\\nwrite sub/new/made.txt\\nwrite sub/gen_1.rs\\nwrite b.txt\"\n\
         [[task]]\nid = \"other\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"b.txt\", \"**/gen_*.rs\"]\n",
        swarm_tests::ROGUE
    );
    let dir = swarm_tests::team_dir("proc", &[("sub/c.txt", "c"), ("b.txt", "belongs to `other`")], &body);
    let root = dir.path().join("tree");
    std::os::unix::fs::symlink("../b.txt", root.join("sub/.c.txt.swarm-tmp")).unwrap();

    let report = run_process(dir.path());

    assert_eq!(report["backend"], "process");
    assert_eq!(std::fs::read_to_string(root.join("b.txt")).unwrap(), "belongs to `other`");
    let got = outcomes(&report, "fix");
    assert_eq!(got[0], "\"allowed\": \"wrote\"", "{got:#?}");
    assert_eq!(got[1], "\"allowed\": \"wrote\"", "a new file under its own pattern: {got:#?}");
    assert!(got[2].starts_with("\"denied\"") && got[2].contains("`other`"), "two tasks could own it: {got:#?}");
    assert!(got[3].starts_with("\"denied\""), "{got:#?}");
    assert_eq!(std::fs::read_to_string(root.join("sub/c.txt")).unwrap(), "escaped");
    assert_eq!(std::fs::read_to_string(root.join("sub/new/made.txt")).unwrap(), "escaped");
    assert!(!root.join("sub/gen_1.rs").exists());
    assert_eq!(std::fs::read_link(root.join("sub/.c.txt.swarm-tmp")).unwrap(), Path::new("../b.txt"));
}

#[test]
fn a_teammate_process_cannot_reach_the_state_directory_or_the_plugin_cache() {
    let body = format!(
        "read = \"root\"\nread_allow = [\"**\"]\n\
         [[teammate]]\nname = \"rogue\"\nplugin = {:?}\n\
         [[task]]\nid = \"look\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"src/a.rs\"]\nmax_attempts = 1\n\
         description = \"read state/proc/team.json\\nlist state/proc\\nlist cache/swarm-host\\n\
         write state/proc/tasks.json\\nlist \\nread src/a.rs\"\n",
        swarm_tests::ROGUE
    );
    let dir = swarm_tests::team_dir("proc", &[("src/a.rs", "a")], &body);

    let report = run_process(dir.path());

    assert_eq!(report["backend"], "process");
    let got = outcomes(&report, "look");
    for (i, o) in got[..4].iter().enumerate() {
        assert!(o.starts_with("\"denied\"") && o.contains("coordinator's own files"), "attempt {i}: {got:#?}");
    }
    // The root lists `src` and the two directories that hold the
    // coordinator's files, which show nothing of them.
    assert_eq!(got[4], "\"allowed\": \"listed 3 entries\"", "{got:#?}");
    assert_eq!(got[5], "\"allowed\": \"read 1 bytes\"", "{got:#?}");
    let tasks = std::fs::read_to_string(dir.path().join("tree/state/proc/tasks.json")).unwrap();
    assert!(tasks.contains("\"look\""), "the state is the coordinator's: {tasks}");
}
