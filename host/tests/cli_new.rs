//! `swarm-host new` end to end: the generated crate passes its own test
//! natively, builds to a wasm component, validates, and runs in the team
//! file it was generated with.

use std::path::Path;
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn swarm_host(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "swarm_host=info")
        .env("SWARM_STATE_DIR", state)
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .output()
        .unwrap()
}

/// Variables of the outer `cargo test` that must not leak into a nested build.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
];

/// Runs cargo in `krate` with a target directory shared by runs of this
/// test (under the test target dir), so only the first run builds the SDK.
fn cargo(krate: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(krate).args(args);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-plugin-target"));
    cmd.output().unwrap()
}

#[test]
fn a_new_plugin_passes_its_test_builds_and_runs_in_a_team() {
    let tmp = tempfile::tempdir().unwrap();
    let krate = tmp.path().join("demo-lint");
    let state = tmp.path().join("state");
    let out = swarm_host(&state, &["new", "demo-lint", "--path", &krate.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Created plugin `demo-lint`"), "{}", text(&out.stdout));

    // Pin the dependencies to the versions this workspace was tested with
    // (cargo drops the entries the plugin does not use).
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    let test = cargo(&krate, &["test"]);
    assert!(test.status.success(), "cargo test failed:\n{}\n{}", text(&test.stdout), text(&test.stderr));
    assert!(text(&test.stdout).contains("finds_only_the_long_lines ... ok"), "{}", text(&test.stdout));

    let build = cargo(&krate, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(build.status.success(), "wasm build failed:\n{}", text(&build.stderr));
    // Put the component where the generated team file expects it.
    let built = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-plugin-target/wasm32-wasip2/release/demo_lint.wasm");
    let expected = krate.join("target/wasm32-wasip2/release/demo_lint.wasm");
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    std::fs::copy(&built, &expected).unwrap();

    std::fs::write(krate.join("notes.md"), format!("short\n{}\n", "y".repeat(120))).unwrap();
    let team = krate.join("team.toml").to_string_lossy().into_owned();
    let valid = swarm_host(&state, &["validate", &team]);
    assert_eq!(valid.status.code(), Some(0), "{}{}", text(&valid.stdout), text(&valid.stderr));

    let out = swarm_host(&state, &["run", "--json", &team]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["completed"], 1, "{report}");
    let task = &report["tasks"][0];
    // src/lib.rs, README.md, notes.md, Cargo.toml, team.toml, rules.toml.
    assert_eq!(task["summary"], "1 long line(s) in 6 file(s)", "{task}");
    assert_eq!(task["findings"][0]["file"], "notes.md");
    assert_eq!(task["findings"][0]["line"], 2);
    assert_eq!(task["findings"][0]["rule"], "long-line");
    // The scaffold's rules.toml is in the component: the report's rule text
    // is the plugin's own.
    assert_eq!(report["rules"]["long-line"]["help"], "Break the line, or raise the limit in demo-lint's source.");
    let log = std::fs::read_to_string(state.join("demo-lint/logs/demo-lint-1.log")).unwrap();
    assert!(log.contains("checking 6 file(s)"), "the plugin's own log line is in its log file: {log}");
}
