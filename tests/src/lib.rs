//! Integration-test support for swarm-host.
//!
//! The build script (`tests/build.rs`) compiles the shipped plugins and the
//! test guests in `tests/guests/` to `wasm32-wasip2` components; this crate
//! exposes their absolute paths as constants, e.g. [`TODO_SCAN`], for the
//! tests in `tests/tests/`, plus [`tmux::TmuxServer`], a private tmux server
//! for the tests and benches of the tmux backend, and [`team_dir`], a team
//! file over a tree of files for tests that run the `swarm-host` binary.
//!
//! Every guest but [`LEGACY`] (built against the `swarm:teammate@0.1.0` WIT
//! without the SDK) uses `swarm-guest-sdk`; what each one does with a task is
//! in its constant's doc comment.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

pub mod lang;
pub mod nats;
pub mod proc;
pub mod tmux;

/// The five shipped checkers as `(teammate name in examples/ci-audit.toml,
/// component path)`, for tests that run the example with this build's
/// components instead of `target/wasm32-wasip2/release`.
pub const CHECKERS: &[(&str, &str)] = &[
    ("todo-scan", TODO_SCAN),
    ("license-header", LICENSE_HEADER),
    ("whitespace", WHITESPACE),
    ("md-links", MD_LINKS),
    ("secret-scan", SECRET_SCAN),
];

/// A temp dir holding `tree/` with `files` (path, contents) and a
/// `team.toml` for team `name` over that tree, followed by `body` (its
/// teammates and tasks).
pub fn team_dir(name: &str, files: &[(&str, &str)], body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tree")).unwrap();
    for (path, contents) in files {
        let p = dir.path().join("tree").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    std::fs::write(dir.path().join("team.toml"), format!("name = \"{name}\"\nroot = \"tree\"\n{body}")).unwrap();
    dir
}

/// The task `id` of a JSON report (`swarm-host run --format json`, or
/// `report.json`'s `data`); panics naming the id and showing the report if
/// it has none.
pub fn report_task<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in the report: {report:#}"))
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id}: {report:#}"))
}

/// A repeatable pseudo-random sequence from `seed` (xorshift64), for tests
/// that choose what to disturb without a dependency.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// The release `swarm-host` binary beside the running bench (where `cargo
/// build --release -p swarm-host` puts it: `<target>/release/swarm-host`
/// for a bench at `<target>/release/deps/<bench>-<hash>`), or the path in
/// `SWARM_HOST_BIN`. Benches run the binary built from the same commit.
pub fn release_swarm_host() -> Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("SWARM_HOST_BIN") {
        return Ok(std::path::PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    match me.parent().and_then(std::path::Path::parent).map(|release| release.join("swarm-host")) {
        Some(exe) if exe.is_file() => Ok(exe),
        _ => Err("no swarm-host binary next to the bench: run `cargo build --release -p swarm-host` first \
                  (or set SWARM_HOST_BIN)"
            .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_is_a_built_component() {
        assert_eq!(ALL.len(), 20);
        for (name, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{name} is not a component");
        }
    }
}
