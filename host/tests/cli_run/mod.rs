//! Running the real `swarm-host` binary from a CLI test: no colour, the
//! state under the test's directory and one compiled-plugin cache shared by
//! the tests of this target dir.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `swarm-host ARGS` with its state in `dir/state`.
pub fn swarm_host(dir: &Path, args: &[&str]) -> Output {
    command(dir).args(args).output().unwrap()
}

/// `swarm-host` with its state in `dir/state`, to add arguments and
/// environment to.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swarm-host"));
    c.env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.join("state"))
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"));
    c
}

/// Output bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
