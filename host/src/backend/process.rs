//! The headless launcher: each teammate is a child process of the
//! coordinator with no UI, for CI and servers. Its log lines go to the
//! coordinator's stderr.

use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use super::native::{Launcher, Pane};
use crate::sandbox::Launch;

/// Starts teammates as headless child processes.
#[derive(Debug, Default)]
pub struct Headless;

/// The only variables a teammate process inherits, on every native
/// backend: the coordinator's environment may hold model API keys
/// (`key_env`), which a teammate process must never see.
pub const TEAMMATE_ENV: &[&str] =
    &["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TERM", "NO_COLOR", "RUST_LOG", "RUST_BACKTRACE"];

/// The [`TEAMMATE_ENV`] variables this process has, with their values.
pub fn teammate_env() -> Vec<(&'static str, std::ffi::OsString)> {
    TEAMMATE_ENV.iter().filter_map(|var| std::env::var_os(var).map(|v| (*var, v))).collect()
}

/// `argv` run by `env -i` with only the [`teammate_env`] variables, for a
/// pane: a tmux or iTerm2 pane's process starts from the terminal's own
/// environment (the tmux server's, which holds whatever the shell that
/// started it had), not the coordinator's, so it must be cleared there.
/// A value that is not UTF-8 is left out.
pub fn in_clean_env(argv: Vec<String>) -> Vec<String> {
    let vars = teammate_env().into_iter().filter_map(|(k, v)| v.into_string().ok().map(|v| format!("{k}={v}")));
    ["env".to_string(), "-i".to_string()].into_iter().chain(vars).chain(argv).collect()
}

impl Launcher for Headless {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn open(&self, argv: Vec<String>, launch: &Launch) -> anyhow::Result<Pane> {
        let (exe, args) = argv.split_first().context("empty teammate command line")?;
        let mut command = tokio::process::Command::new(exe);
        // Deny by default: only what logging and the platform need.
        command.env_clear().envs(teammate_env());
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {exe} for teammate `{}`", launch.id))?;
        let pid = child.id().unwrap_or_default();
        let kill = Arc::new(Notify::new());
        let (gone_tx, gone) = watch::channel(None);
        let killer = kill.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killer.notified() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let why = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("cannot wait for it: {e}"),
            };
            let _ = gone_tx.send(Some(why));
        });
        Ok(Pane::Process { pid, kill, gone })
    }

    async fn close(&self, pane: &Pane) {
        if let Pane::Process { kill, .. } = pane {
            // Stores a permit if the waiter is not parked yet.
            kill.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pane_command_clears_the_environment_and_passes_only_the_allowed_variables() {
        let argv = in_clean_env(vec!["/bin/swarm host".into(), "teammate".into()]);
        assert_eq!(argv[..2], ["env", "-i"]);
        assert_eq!(argv[argv.len() - 2..], ["/bin/swarm host", "teammate"]);
        let passed: Vec<&str> = argv[2..argv.len() - 2].iter().map(|a| a.split('=').next().unwrap()).collect();
        assert!(passed.iter().all(|name| TEAMMATE_ENV.contains(name)), "{passed:?}");
        // cargo runs this test with CARGO_* variables set: none is passed.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(!argv.iter().any(|a| a.starts_with("CARGO")), "{argv:?}");
        assert!(passed.contains(&"PATH"), "{passed:?}");
    }
}
