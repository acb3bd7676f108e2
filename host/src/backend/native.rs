//! Teammates as native processes (`swarm-host teammate`), each running its
//! plugin in the same wasmtime sandbox and reaching the team over the Unix
//! socket of a [`LinkServer`]. Where the process runs — a tmux pane, an
//! iTerm2 pane, or headless — is the job of a [`Launcher`]; everything else
//! (handshake, liveness, exits, kills) is shared here.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use super::TeammateBackend;
use super::server::{HEARTBEAT_INTERVAL, LinkServer};
use crate::protocol::frame::LaunchConfig;
use crate::protocol::wire::WorkspaceRules;
use crate::sandbox::limits::FRAME_HEADROOM;
use crate::sandbox::workspace::PolicySpec;
use crate::sandbox::{Launch, Limits, ReadScope};
use crate::team::{ExitReason, Liveness, Team};

/// Time a started teammate process has to connect and say hello.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a teammate process was started.
#[derive(Debug)]
pub enum Pane {
    /// A child process of the coordinator (headless).
    Process {
        /// Its pid.
        pid: u32,
        /// Notified to kill it.
        kill: Arc<Notify>,
        /// Set (to how it ended) once it exited.
        gone: watch::Receiver<Option<String>>,
    },
    /// A tmux pane.
    Tmux {
        /// Its pane id, e.g. `%3`.
        pane_id: String,
    },
    /// An iTerm2 session.
    Iterm {
        /// Its unique id.
        session_id: String,
    },
}

impl Pane {
    /// Resolves (with how it ended) when the process is known to be gone;
    /// never for panes whose process the coordinator cannot watch.
    async fn gone(&self) -> String {
        match self {
            Self::Process { gone, .. } => {
                let mut rx = gone.clone();
                match rx.wait_for(Option::is_some).await {
                    Ok(v) => v.clone().unwrap_or_default(),
                    Err(_) => "gone".into(),
                }
            }
            _ => std::future::pending().await,
        }
    }
}

/// Starts teammate processes somewhere.
pub trait Launcher: Send + Sync + 'static {
    /// Short name for reports, e.g. `tmux`.
    fn name(&self) -> &'static str;

    /// Starts `argv` (the `swarm-host teammate ...` command line) for the
    /// teammate of `launch`.
    fn open(&self, argv: Vec<String>, launch: &Launch) -> impl Future<Output = anyhow::Result<Pane>> + Send;

    /// Closes the pane or kills the process; harmless when already gone.
    fn close(&self, pane: &Pane) -> impl Future<Output = ()> + Send;
}

/// What the teammate processes of a run need to know.
#[derive(Debug, Clone)]
pub struct NativeSetup {
    /// The `swarm-host` binary to start.
    pub exe: PathBuf,
    /// Workspace root (absolute).
    pub root: PathBuf,
    /// Read scope.
    pub read: ReadScope,
    /// The rest of the workspace policy.
    pub workspace: PolicySpec,
    /// Plugin path (absolute) per teammate group.
    pub plugins: HashMap<String, PathBuf>,
    /// Compiled-plugin cache.
    pub cache_dir: Option<PathBuf>,
}

/// The wire form of a workspace policy spec.
pub(crate) fn rules_of(spec: &PolicySpec, overlay: Option<&PathBuf>, keep: Option<&PathBuf>) -> WorkspaceRules {
    WorkspaceRules {
        overlay: overlay.cloned(),
        keep: keep.cloned(),
        read_allow: spec.read_allow.clone(),
        exclude: spec.exclude.clone(),
        creates: spec.creates.clone(),
        protected: spec.protected.clone(),
    }
}

/// A running native teammate.
#[derive(Debug, Clone)]
pub struct Handle {
    id: String,
    pane: Arc<Pane>,
    kill: Arc<watch::Sender<Option<String>>>,
    exit: watch::Receiver<Option<ExitReason>>,
    connected: watch::Receiver<Option<(u32, Duration)>>,
}

impl Handle {
    /// Its process id and how long it took from spawn to a welcomed
    /// connection, once connected.
    pub async fn connected(&self) -> Option<(u32, Duration)> {
        let mut rx = self.connected.clone();
        let got = rx.wait_for(Option::is_some).await.ok()?;
        *got
    }

    /// Where it runs.
    pub fn pane(&self) -> &Pane {
        &self.pane
    }
}

/// Runs teammates as native processes started by `L`.
pub struct Native<L: Launcher> {
    team: Arc<Team>,
    server: Arc<LinkServer>,
    launcher: Arc<L>,
    setup: NativeSetup,
    /// The frame cap every connection of the team gets at least.
    frame_bytes: usize,
    /// `--dry-run`: where the teammates' writes land.
    overlay: Option<PathBuf>,
    /// Where the teammates keep files before their first write (diffs).
    keep: Option<PathBuf>,
}

/// The frame cap for a team's connections: the largest frame any of
/// `limits` lets a teammate cause (a message one sends reaches another's
/// connection), the largest task a claim hands out, and the roster, each
/// with [`FRAME_HEADROOM`]; never less than default limits need.
pub fn team_frame_bytes<'a>(team: &Team, limits: impl IntoIterator<Item = &'a Limits>) -> usize {
    let teammates = limits.into_iter().map(Limits::frame_bytes).max().unwrap_or(0);
    let teammates = teammates.max(Limits::default().frame_bytes());
    let tasks =
        team.tasks.snapshot().iter().map(|t| serde_json::to_vec(&t.spec).map_or(0, |v| v.len())).max().unwrap_or(0);
    let roster = serde_json::to_vec(team.mailbox.roster()).map_or(0, |v| v.len());
    teammates.max(tasks.max(roster).saturating_add(FRAME_HEADROOM))
}

impl<L: Launcher> std::fmt::Debug for Native<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native").field("launcher", &self.launcher.name()).finish_non_exhaustive()
    }
}

impl<L: Launcher> Native<L> {
    /// A backend starting teammates with `launcher`, served by `server`.
    /// Its frame cap fits the team's tasks and roster and default limits;
    /// see [`Native::with_team_limits`].
    pub fn new(team: Arc<Team>, server: Arc<LinkServer>, launcher: L, setup: NativeSetup) -> Self {
        let frame_bytes = team_frame_bytes(&team, []);
        Self { team, server, launcher: Arc::new(launcher), setup, frame_bytes, overlay: None, keep: None }
    }

    /// Every teammate writes to the `--dry-run` overlay directory `path`
    /// instead of the root.
    pub fn with_overlay(mut self, path: Option<PathBuf>) -> Self {
        self.overlay = path;
        self
    }

    /// Every teammate keeps each file in the directory `path` before its
    /// first write (see `sandbox::workspace::Keep`).
    pub fn with_keep(mut self, path: Option<PathBuf>) -> Self {
        self.keep = path;
        self
    }

    /// Sizes every connection's frame cap for the limits of all the team's
    /// teammates: a teammate with a larger `message_kib` may send to one
    /// with the default.
    pub fn with_team_limits<'a>(mut self, limits: impl IntoIterator<Item = &'a Limits>) -> Self {
        self.frame_bytes = team_frame_bytes(&self.team, limits);
        self
    }

    /// The frame cap every connection of the team gets at least.
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// The launcher.
    pub fn launcher(&self) -> &L {
        &self.launcher
    }
}

impl<L: Launcher> TeammateBackend for Native<L> {
    type Handle = Handle;

    fn name(&self) -> &'static str {
        self.launcher.name()
    }

    fn team(&self) -> &Arc<Team> {
        &self.team
    }

    fn id<'a>(&self, handle: &'a Handle) -> &'a str {
        &handle.id
    }

    async fn spawn(&self, launch: Launch) -> anyhow::Result<Handle> {
        let started = Instant::now();
        let plugin = self
            .setup
            .plugins
            .get(&launch.group)
            .with_context(|| format!("no plugin for teammate group `{}`", launch.group))?
            .clone();
        let config = LaunchConfig {
            team: self.team.name.clone(),
            id: launch.id.clone(),
            group: launch.group.clone(),
            color: launch.color.clone(),
            plugin,
            limits: (&launch.limits).into(),
            root: self.setup.root.clone(),
            read: self.setup.read.into(),
            cache_dir: self.setup.cache_dir.clone(),
            heartbeat_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
            workspace: rules_of(&self.setup.workspace, self.overlay.as_ref(), self.keep.as_ref()),
            frame_bytes: self.frame_bytes.max(launch.limits.frame_bytes()),
        };
        let (kill, kill_rx) = watch::channel(None);
        let expectation = self.server.expect(config, kill_rx.clone());
        let argv = vec![
            self.setup.exe.display().to_string(),
            "teammate".into(),
            "--agent-id".into(),
            launch.id.clone(),
            "--team".into(),
            self.team.name.clone(),
            "--socket".into(),
            self.server.socket().display().to_string(),
            "--color".into(),
            launch.color.clone(),
        ];
        let pane = match self.launcher.open(argv, &launch).await {
            Ok(p) => Arc::new(p),
            Err(e) => {
                self.server.forget(&launch.id);
                return Err(e);
            }
        };
        let (exit_tx, exit) = watch::channel(None);
        let (connected_tx, connected) = watch::channel(None);
        let handle = Handle { id: launch.id.clone(), pane: pane.clone(), kill: Arc::new(kill), exit, connected };
        let (team, server, launcher, id) = (self.team.clone(), self.server.clone(), self.launcher.clone(), launch.id);
        let mut kill_rx = kill_rx;
        tokio::spawn(async move {
            let super::server::Expectation { connected, exit } = expectation;
            let up = tokio::select! {
                pid = connected => pid.map_err(|_| ExitReason::spawn_failed("its connection failed during the hello")),
                why = pane.gone() => Err(ExitReason::spawn_failed(format!("its process ended before connecting: {why}"))),
                _ = tokio::time::sleep(CONNECT_TIMEOUT) => Err(ExitReason::spawn_failed(format!(
                    "it did not connect within {}", humantime::format_duration(CONNECT_TIMEOUT)))),
                Ok(v) = kill_rx.wait_for(Option::is_some) => Err(ExitReason::killed(v.clone().unwrap_or_default())),
            };
            let reason = match up {
                Ok(pid) => {
                    team.roster.update(&id, |m| m.pid = Some(pid));
                    let _ = connected_tx.send(Some((pid, started.elapsed())));
                    tracing::debug!(teammate = %id, pid, "connected after {:.1?}", started.elapsed());
                    exit.await.unwrap_or_else(|_| ExitReason::killed("its connection handler ended"))
                }
                Err(reason) => {
                    server.forget(&id);
                    reason
                }
            };
            if matches!(*pane, Pane::Process { .. }) {
                // Let a process that reported its exit finish on its own.
                let _ = tokio::time::timeout(Duration::from_secs(2), pane.gone()).await;
            }
            launcher.close(&pane).await;
            super::publish_exit(&team, id, reason, &exit_tx).await;
        });
        Ok(handle)
    }

    async fn result(&self, handle: &Handle) -> ExitReason {
        super::wait_exit(&handle.exit).await
    }

    async fn kill(&self, handle: &Handle, why: &str) -> ExitReason {
        self.team.roster.update(&handle.id, |m| m.state = Liveness::Stopping);
        handle.kill.send_if_modified(|k| {
            if k.is_none() {
                *k = Some(why.to_string());
                true
            } else {
                false
            }
        });
        self.launcher.close(&handle.pane).await;
        self.result(handle).await
    }
}
