//! The tmux launcher: one pane per teammate in the coordinator's own window,
//! laid out as a binary tree (see [`layout`](super::layout)).
//!
//! Pane creation is serialised by a mutex and always targets a pane id of
//! the team (never "the current window"), split with `-d` so the focus
//! stays where the user left it. Before each split the window's panes are
//! listed: panes the user closed are dropped from the tree (stale ids), and
//! the largest remaining pane is split. Each pane is titled with its
//! teammate's id and colour, and killed when its teammate ends.
//!
//! A pane that tmux refuses to create (a full window: "no space for new
//! pane") becomes a new window of the coordinator's session instead, whose
//! pane joins the layout as a new root. Every tmux call has a timeout
//! ([`TMUX_TIMEOUT`]): a hung tmux is killed and the error names it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::Mutex;

use super::command::{CommandError, Helper};
use super::layout::{Node, Rect, Split, next_split};
use super::native::{Launcher, Pane};
use crate::sandbox::Launch;

/// Longest one tmux call may take before it is killed.
pub const TMUX_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts teammates in tmux panes.
#[derive(Debug)]
pub struct Tmux {
    socket: PathBuf,
    helper: Helper,
    /// The team's panes, the coordinator's own first. The async mutex
    /// serialises pane creation (two concurrent splits could both pick the
    /// same "largest" pane) and is held across the tmux calls.
    nodes: Mutex<Vec<Node>>,
}

/// Quotes `s` for `sh -c` (tmux runs a pane's command through the shell).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:%@,+".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tmux {
    /// A launcher splitting panes around `anchor` (the coordinator's pane
    /// id, e.g. `%0`) on the tmux server listening at `socket`.
    pub fn new(socket: &Path, anchor: &str) -> Self {
        Self {
            socket: socket.to_path_buf(),
            helper: Helper::new("tmux", TMUX_TIMEOUT, "the tmux call timeout"),
            nodes: Mutex::new(vec![Node { id: anchor.to_string(), depth: 0 }]),
        }
    }

    /// Runs `program` instead of `tmux` (a wrapper, or a fake in tests).
    pub fn with_program(mut self, program: impl AsRef<Path>) -> Self {
        self.helper.program = program.as_ref().to_path_buf();
        self
    }

    /// Gives each tmux call `timeout` instead of [`TMUX_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.helper.timeout = timeout;
        self
    }

    /// The launcher for the tmux session this process runs in, from `$TMUX`
    /// (`socket,pid,session`) and `$TMUX_PANE`.
    pub fn from_env(tmux: Option<&str>, pane: Option<&str>) -> Result<Self, String> {
        let socket = tmux
            .and_then(|t| t.split(',').next())
            .filter(|s| !s.is_empty())
            .ok_or("the tmux backend needs to run inside tmux ($TMUX is not set)")?;
        let pane = pane
            .filter(|p| p.starts_with('%'))
            .ok_or("the tmux backend needs $TMUX_PANE (the coordinator's own pane) to target its window")?;
        Ok(Self::new(Path::new(socket), pane))
    }

    /// Runs `tmux -S <socket> args...` and returns its stdout; killed at
    /// the timeout.
    pub async fn tmux(&self, args: &[&str]) -> Result<String, CommandError> {
        let mut argv: Vec<&std::ffi::OsStr> = vec!["-S".as_ref(), self.socket.as_os_str()];
        argv.extend(args.iter().map(std::ffi::OsStr::new));
        self.helper.run(&argv, args.first().copied().unwrap_or_default()).await
    }

    /// Pane ids and rectangles of every window of the session holding pane
    /// `target` (the team's panes may span windows).
    pub async fn geometry(&self, target: &str) -> anyhow::Result<Vec<(String, Rect)>> {
        let out = self
            .tmux(&[
                "list-panes",
                "-s",
                "-t",
                target,
                "-F",
                "#{pane_id} #{pane_left} #{pane_top} #{pane_width} #{pane_height}",
            ])
            .await?;
        out.lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let n = |i: usize| -> anyhow::Result<u32> {
                    f.get(i).and_then(|v| v.parse().ok()).with_context(|| format!("bad list-panes line `{line}`"))
                };
                Ok((f[0].to_string(), Rect { left: n(1)?, top: n(2)?, width: n(3)?, height: n(4)? }))
            })
            .collect()
    }

    async fn live_panes(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.tmux(&["list-panes", "-a", "-F", "#{pane_id}"]).await?.lines().map(str::to_string).collect())
    }

    /// Opens a detached window named `name` running `command` in the
    /// session of pane `anchor`; returns its pane id.
    async fn new_window(&self, anchor: &str, name: &str, command: &str) -> anyhow::Result<String> {
        let session = self.tmux(&["display-message", "-p", "-t", anchor, "#{session_id}"]).await?;
        let target = format!("{}:", session.trim());
        let out =
            self.tmux(&["new-window", "-d", "-t", &target, "-n", name, "-P", "-F", "#{pane_id}", command]).await?;
        Ok(out.trim().to_string())
    }
}

impl Launcher for Tmux {
    fn name(&self) -> &'static str {
        "tmux"
    }

    async fn open(&self, argv: Vec<String>, launch: &Launch) -> anyhow::Result<Pane> {
        let mut nodes = self.nodes.lock().await;
        let live = self.live_panes().await?;
        nodes.retain(|n| {
            let alive = live.contains(&n.id);
            if !alive {
                tracing::debug!(pane = %n.id, "tmux pane is gone; dropped from the layout");
            }
            alive
        });
        let Some(first) = nodes.first().map(|n| n.id.clone()) else {
            bail!("every pane of the team's tmux window is gone (the coordinator's pane was closed)");
        };
        let geometry = self.geometry(&first).await?;
        let rects: Vec<Rect> = nodes
            .iter()
            .map(|n| {
                geometry.iter().find(|(id, _)| *id == n.id).map(|(_, r)| *r).unwrap_or(Rect {
                    left: 0,
                    top: 0,
                    width: 0,
                    height: 0,
                })
            })
            .collect();
        let (i, split) = next_split(&nodes, &rects).context("no pane to split")?;
        let flag = match split {
            Split::SideBySide => "-h",
            Split::Stacked => "-v",
        };
        let argv = super::process::in_clean_env(argv);
        let command = argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        let target = nodes[i].id.clone();
        let split = self.tmux(&["split-window", "-d", flag, "-t", &target, "-P", "-F", "#{pane_id}", &command]).await;
        // The new pane, and the node it split (none for a new window).
        let (pane_id, parent) = match split {
            Ok(out) => (out.trim().to_string(), Some(i)),
            // tmux answered no (a full window says "no space for new
            // pane"): a window of its own instead. A hung or missing tmux
            // is an error as it is.
            Err(refused @ CommandError::Failed { .. }) => {
                tracing::info!(teammate = %launch.id, "no pane for it in the team's window ({refused}); opening a new window");
                (
                    self.new_window(&first, &launch.id, &command).await.with_context(|| {
                        format!(
                            "cannot split tmux pane {target} for teammate `{}` ({refused}), nor open a window",
                            launch.id
                        )
                    })?,
                    None,
                )
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot split tmux pane {target} for teammate `{}`", launch.id));
            }
        };
        if !pane_id.starts_with('%') || !self.live_panes().await?.contains(&pane_id) {
            bail!(
                "tmux did not keep the pane of teammate `{}` (reported `{pane_id}`): its command exited at once",
                launch.id
            );
        }
        let depth = match parent {
            Some(i) => {
                nodes[i].depth += 1;
                nodes[i].depth
            }
            None => 0,
        };
        nodes.push(Node { id: pane_id.clone(), depth });
        drop(nodes);
        let title = format!("{} ({})", launch.id, launch.color);
        if let Err(e) = self.tmux(&["select-pane", "-t", &pane_id, "-T", &title]).await {
            tracing::debug!("cannot title tmux pane {pane_id}: {e:#}");
        }
        let style = format!("fg={}", launch.color);
        if let Err(e) = self.tmux(&["set-option", "-p", "-t", &pane_id, "pane-border-style", &style]).await {
            tracing::debug!("cannot colour tmux pane {pane_id}: {e:#}");
        }
        Ok(Pane::Tmux { pane_id })
    }

    async fn close(&self, pane: &Pane) {
        if let Pane::Tmux { pane_id } = pane {
            let mut nodes = self.nodes.lock().await;
            // Fails harmlessly when the pane closed with its process.
            let _ = self.tmux(&["kill-pane", "-t", pane_id]).await;
            nodes.retain(|n| n.id != *pane_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("/usr/bin/swarm-host"), "/usr/bin/swarm-host");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn the_session_comes_from_tmux_and_tmux_pane() {
        assert!(Tmux::from_env(Some("/run/tmux/default,42,0"), Some("%3")).is_ok());
        let err = Tmux::from_env(None, Some("%3")).unwrap_err();
        assert!(err.contains("$TMUX is not set"), "{err}");
        let err = Tmux::from_env(Some("/run/tmux/x,1,0"), None).unwrap_err();
        assert!(err.contains("$TMUX_PANE"), "{err}");
    }
}
