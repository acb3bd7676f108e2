//! Per-task diffs and `run --patch`, end to end through the `swarm-host`
//! binary on the in-process and the `process` backend: the coordinator
//! diffs what each task changed (a guest cannot lie about it), the report
//! holds the diffs, and the patch applies with `git apply` to a copy of
//! the tree as it was, giving the tree the run left. With `--dry-run` the
//! root stays byte-for-byte as it was, reads in the run see the overlay,
//! and the patch is the output.

// Dependency results and model transcripts share this test binary (one
// binary less to link in CI).
#[path = "diff/dependencies.rs"]
mod dependencies;
#[path = "diff/transcript.rs"]
mod transcript;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-host");

/// The tree before the run.
const FILES: &[(&str, &str)] = &[
    ("src/a.rs", "fn a() {}\n"),
    ("src/keep.rs", "unchanged\n"),
    ("docs/b.md", "# B\n\nold text\n"),
    ("docs/c.md", "not touched\n"),
];

/// Two `rogue` tasks: `one` replaces `src/a.rs` and creates a file under
/// its pattern; `two` replaces `docs/b.md` and leaves `docs/c.md` alone.
fn body() -> String {
    format!(
        "[[teammate]]\nname = \"rogue\"\nplugin = {:?}\n\
         [[task]]\nid = \"one\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"src/a.rs\", \"src/new/**\"]\n\
         max_attempts = 1\ndescription = \"write src/a.rs\\nwrite src/new/made.txt\"\n\
         [[task]]\nid = \"two\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"docs/b.md\", \"docs/c.md\"]\n\
         max_attempts = 1\ndescription = \"write docs/b.md\"\n",
        swarm_tests::ROGUE
    )
}

/// Runs the team of `dir` on `backend` with `--json --patch dir/out.patch`
/// plus `extra`, state and cache outside the tree; returns the report.
fn run(dir: &Path, backend: &str, extra: &[&str]) -> serde_json::Value {
    let patch = dir.join("out.patch");
    let mut args = vec!["run", "--backend", backend, "--json", "--patch", patch.to_str().unwrap()];
    args.extend_from_slice(extra);
    report_of(dir, &args)
}

/// Runs `swarm-host ARGS dir/team.toml` with the state and the cache outside
/// the tree and no terminal multiplexer in its environment; returns the
/// JSON report it printed.
fn report_of(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(args)
        .arg(dir.join("team.toml"))
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TERM_PROGRAM")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// Writes `FILES` under `dir`.
fn plant(dir: &Path) {
    for (path, contents) in FILES {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

/// Every regular file under `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn git_apply(copy: &Path, patch: &Path, check: bool) {
    let mut cmd = Command::new("git");
    cmd.arg("apply");
    if check {
        cmd.arg("--check");
    }
    let out = cmd.arg(patch).current_dir(copy).output().expect("git runs");
    assert!(
        out.status.success(),
        "git apply{} failed: {}\n{}",
        if check { " --check" } else { "" },
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(patch).unwrap_or_default()
    );
}

/// The changed paths of task `id` in `report`.
fn changed(report: &serde_json::Value, id: &str) -> Vec<String> {
    let t = swarm_tests::report_task(report, id);
    assert_eq!(t["status"], "completed", "{t:#}");
    t["diffs"].as_array().map_or(Vec::new(), |d| d.iter().map(|d| d["path"].as_str().unwrap().to_string()).collect())
}

fn diffs_match_the_tree_and_the_patch_applies(backend: &str) {
    let body = body();
    let dir = swarm_tests::team_dir("diffs", FILES, &body);
    let copy = dir.path().join("copy");
    plant(&copy);

    let report = run(dir.path(), backend, &[]);

    assert_eq!(report["backend"], backend);
    assert_eq!(changed(&report, "one"), ["src/a.rs", "src/new/made.txt"]);
    assert_eq!(changed(&report, "two"), ["docs/b.md"], "the untouched owned file is not listed");
    let one = &report["tasks"][0]["diffs"];
    assert_eq!(
        one[0]["diff"],
        "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1 +1 @@\n-fn a() {}\n+escaped\n\\ No \
         newline at end of file\n"
    );
    assert!(one[1]["diff"].as_str().unwrap().contains("new file mode 100644\n--- /dev/null\n+++ b/src/new/made.txt"));
    let patch = dir.path().join("out.patch");
    git_apply(&copy, &patch, true);
    git_apply(&copy, &patch, false);
    assert_eq!(snapshot(&copy), snapshot(&dir.path().join("tree")), "the patched copy is the tree the run left");
}

#[test]
fn in_process_diffs_match_the_tree_and_the_patch_applies_with_git() {
    diffs_match_the_tree_and_the_patch_applies("in-process");
}

#[test]
fn teammate_process_diffs_match_the_tree_and_the_patch_applies_with_git() {
    diffs_match_the_tree_and_the_patch_applies("process");
}

/// The dry-run team: `one` also reads back what it wrote and lists the
/// directory it created a file in.
fn dry_body() -> String {
    body().replace(
        "description = \"write src/a.rs\\nwrite src/new/made.txt\"",
        "description = \"write src/a.rs\\nwrite src/new/made.txt\\nread src/a.rs\\nlist src/new\"",
    )
}

fn dry_run_leaves_the_root_unchanged_and_its_patch_applies(backend: &str) {
    let body = dry_body();
    assert_ne!(body, self::body(), "the dry-run team reads back");
    let dir = swarm_tests::team_dir("dry", FILES, &body);
    let tree = dir.path().join("tree");
    let before = snapshot(&tree);
    let copy = dir.path().join("copy");
    plant(&copy);

    let report = run(dir.path(), backend, &["--dry-run"]);

    assert_eq!(snapshot(&tree), before, "nothing under the root changed");
    assert!(!tree.join("src/new").exists(), "no directory was created under the root");
    assert_eq!(changed(&report, "one"), ["src/a.rs", "src/new/made.txt"]);
    assert_eq!(changed(&report, "two"), ["docs/b.md"]);
    let one = &report["tasks"][0];
    let seen: Vec<String> = one["findings"].as_array().unwrap().iter().map(|f| f["message"].to_string()).collect();
    assert_eq!(seen[2], "\"read 7 bytes\"", "a read in the run sees the overlay's `escaped`: {seen:#?}");
    assert_eq!(seen[3], "\"listed 1 entries\"", "a listing in the run sees the created file: {seen:#?}");
    let patch = dir.path().join("out.patch");
    git_apply(&copy, &patch, true);
    git_apply(&copy, &patch, false);
    let mut want: Vec<(String, Vec<u8>)> = FILES
        .iter()
        .map(|(p, c)| {
            let c = if ["src/a.rs", "docs/b.md"].contains(p) { "escaped" } else { c };
            (p.to_string(), c.as_bytes().to_vec())
        })
        .collect();
    want.push(("src/new/made.txt".into(), b"escaped".to_vec()));
    want.sort();
    assert_eq!(snapshot(&copy), want, "the patch makes the changes the run made in its overlay");
}

#[test]
fn in_process_dry_run_leaves_the_root_byte_for_byte_unchanged_and_its_patch_applies() {
    dry_run_leaves_the_root_unchanged_and_its_patch_applies("in-process");
}

#[test]
fn teammate_process_dry_run_leaves_the_root_byte_for_byte_unchanged_and_its_patch_applies() {
    dry_run_leaves_the_root_unchanged_and_its_patch_applies("process");
}
