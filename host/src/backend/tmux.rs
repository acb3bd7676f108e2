//! The tmux launcher: one pane per teammate in the coordinator's own window,
//! laid out as a binary tree (see [`layout`](super::layout)).
//!
//! Pane creation is serialised by a mutex and always targets a pane id of
//! the team (never "the current window"), split with `-d` so the focus
//! stays where the user left it. Before each split the window's panes are
//! listed: panes the user closed are dropped from the tree (stale ids), and
//! the largest remaining pane is split. Each pane is titled with its
//! teammate's id and colour, and killed when its teammate ends.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::sync::Mutex;

use super::layout::{Node, Rect, Split, next_split};
use super::native::{Launcher, Pane};
use crate::sandbox::Launch;

/// Starts teammates in tmux panes.
#[derive(Debug)]
pub struct Tmux {
    socket: PathBuf,
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
        Self { socket: socket.to_path_buf(), nodes: Mutex::new(vec![Node { id: anchor.to_string(), depth: 0 }]) }
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

    /// Runs `tmux -S <socket> args...` and returns its stdout.
    pub async fn tmux(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("cannot run tmux")?;
        if !out.status.success() {
            bail!("tmux {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Pane ids and rectangles of the window holding pane `target`.
    pub async fn geometry(&self, target: &str) -> anyhow::Result<Vec<(String, Rect)>> {
        let out = self
            .tmux(&[
                "list-panes",
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
        let command = argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        let target = nodes[i].id.clone();
        let out = self
            .tmux(&["split-window", "-d", flag, "-t", &target, "-P", "-F", "#{pane_id}", &command])
            .await
            .with_context(|| format!("cannot split tmux pane {target} for teammate `{}`", launch.id))?;
        let pane_id = out.trim().to_string();
        if !pane_id.starts_with('%') || !self.live_panes().await?.contains(&pane_id) {
            bail!(
                "tmux did not keep the pane of teammate `{}` (reported `{pane_id}`): its command exited at once",
                launch.id
            );
        }
        nodes[i].depth += 1;
        let depth = nodes[i].depth;
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
