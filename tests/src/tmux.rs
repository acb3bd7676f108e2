//! A private tmux server for tests and benches: its own socket in a temp
//! dir, one detached 200×50 session, killed on drop. Nothing touches the
//! user's own tmux server.

use std::path::PathBuf;
use std::process::Command;

/// A private tmux server with one detached 200×50 window, killed on drop.
pub struct TmuxServer {
    _dir: tempfile::TempDir,
    /// The server's socket (`tmux -S`).
    pub socket: PathBuf,
}

impl TmuxServer {
    /// Starts the server; panics if tmux is missing or refuses.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts the server with `vars` in its environment (and so in its
    /// global environment, which new panes inherit).
    pub fn start_with_env(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let status = Command::new("tmux")
            .envs(vars.iter().copied())
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "swarm", "-x", "200", "-y", "50", "cat"])
            .status()
            .expect("these tests need tmux installed");
        assert!(status.success(), "cannot start a private tmux server");
        Self { _dir: dir, socket }
    }

    /// Runs a tmux command on this server and returns its trimmed stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The pane the "coordinator" owns.
    pub fn anchor(&self) -> String {
        self.tmux(&["display-message", "-p", "-t", "swarm", "#{pane_id}"])
    }

    /// `$TMUX` as a client of this server would see it.
    pub fn env_tmux(&self) -> String {
        format!("{},{},0", self.socket.display(), self.tmux(&["display-message", "-p", "#{pid}"]))
    }

    /// Every pane id on this server.
    pub fn panes(&self) -> Vec<String> {
        self.tmux(&["list-panes", "-a", "-F", "#{pane_id}"]).lines().map(str::to_string).collect()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").status();
    }
}

/// True if a `tmux` binary runs here.
pub fn installed() -> bool {
    Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
}
