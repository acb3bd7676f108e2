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

/// The only variables a headless teammate process inherits.
pub const TEAMMATE_ENV: &[&str] =
    &["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TERM", "NO_COLOR", "RUST_LOG", "RUST_BACKTRACE"];

impl Launcher for Headless {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn open(&self, argv: Vec<String>, launch: &Launch) -> anyhow::Result<Pane> {
        let (exe, args) = argv.split_first().context("empty teammate command line")?;
        let mut command = tokio::process::Command::new(exe);
        // Deny by default: the coordinator's environment may hold model API
        // keys (`key_env`), which a teammate process must never see; it
        // gets only what logging and the platform need.
        command.env_clear();
        for var in TEAMMATE_ENV {
            if let Some(v) = std::env::var_os(var) {
                command.env(var, v);
            }
        }
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
