//! Integration-test support for swarm-host.
//!
//! The build script (`tests/build.rs`) compiles the shipped plugins and the
//! test guests in `tests/guests/` to `wasm32-wasip2` components; this crate
//! exposes their absolute paths as constants, e.g. [`TODO_SCAN`], for the
//! tests in `tests/tests/`, plus [`tmux::TmuxServer`], a private tmux server
//! for the tests and benches of the tmux backend.
//!
//! Every guest uses `swarm-guest-sdk`; what each one does with a task is in
//! its constant's doc comment.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_is_a_built_component() {
        assert_eq!(ALL.len(), 15);
        for (name, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{name} is not a component");
        }
    }
}
