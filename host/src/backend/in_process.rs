//! The in-process backend: every teammate is a component instance in its
//! own wasmtime `Store`, run on its own tokio task, sharing one `Engine` and
//! one pre-instantiated component per plugin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::TeammateBackend;
use cap_std::fs::Dir;

use crate::sandbox::workspace::Policy;
use crate::sandbox::{Launch, Plugin, ReadScope, Workspace};
use crate::team::{ExitReason, Liveness, Team};

/// A running in-process teammate.
#[derive(Debug, Clone)]
pub struct Handle {
    id: String,
    abort: AbortHandle,
    kill_reason: Arc<Mutex<Option<String>>>,
    exit: watch::Receiver<Option<ExitReason>>,
}

/// Runs teammates as sandboxed component instances in this process.
#[derive(Debug)]
pub struct InProcess {
    team: Arc<Team>,
    root: Dir,
    /// The run's workspace rules, shared by every teammate's workspace.
    policy: Arc<Policy>,
    plugins: HashMap<String, Plugin>,
    /// `--dry-run`: where the teammates' writes land.
    overlay: Option<Dir>,
    /// Where the teammates keep files before their first write (diffs).
    keep: Option<Dir>,
}

impl InProcess {
    /// A backend running the plugins of `plugins` (keyed by teammate group)
    /// over the workspace `root`, with only the read scope `read` as policy
    /// (nothing protected, no creation of new files).
    pub fn new(team: Arc<Team>, root: Dir, read: ReadScope, plugins: HashMap<String, Plugin>) -> Self {
        Self::with_policy(team, root, Arc::new(Policy::new(read)), plugins)
    }

    /// A backend running the plugins of `plugins` over the workspace `root`
    /// under the run's `policy`.
    pub fn with_policy(team: Arc<Team>, root: Dir, policy: Arc<Policy>, plugins: HashMap<String, Plugin>) -> Self {
        Self { team, root, policy, plugins, overlay: None, keep: None }
    }

    /// Every teammate writes to the `--dry-run` overlay `dir` instead of
    /// the root.
    pub fn with_overlay(mut self, dir: Option<Dir>) -> Self {
        self.overlay = dir;
        self
    }

    /// Every teammate keeps each file in `dir` before its first write (see
    /// `sandbox::workspace::Keep`).
    pub fn with_keep(mut self, dir: Option<Dir>) -> Self {
        self.keep = dir;
        self
    }
}

impl TeammateBackend for InProcess {
    type Handle = Handle;

    fn name(&self) -> &'static str {
        "in-process"
    }

    fn team(&self) -> &Arc<Team> {
        &self.team
    }

    fn id<'a>(&self, handle: &'a Handle) -> &'a str {
        &handle.id
    }

    async fn spawn(&self, launch: Launch) -> anyhow::Result<Handle> {
        let plugin = self
            .plugins
            .get(&launch.group)
            .ok_or_else(|| anyhow::anyhow!("no plugin loaded for teammate group `{}`", launch.group))?
            .clone();
        let root = self.root.try_clone().map_err(|e| anyhow::anyhow!("cannot share the workspace root: {e}"))?;
        let mut workspace = Workspace::with_policy(root, self.policy.clone(), launch.limits.file_bytes());
        if let Some(overlay) = &self.overlay {
            let overlay = overlay.try_clone().map_err(|e| anyhow::anyhow!("cannot share the dry-run overlay: {e}"))?;
            workspace = workspace.with_overlay(overlay);
        }
        if let Some(keep) = &self.keep {
            let keep = keep.try_clone().map_err(|e| anyhow::anyhow!("cannot share the diffs' keep directory: {e}"))?;
            workspace = workspace.with_keep(keep);
        }
        let workspace = Arc::new(workspace);
        let team = self.team.clone();
        let id = launch.id.clone();
        let guest = tokio::spawn(async move {
            let instance = match plugin.instantiate(&launch, team.clone(), workspace).await {
                Ok(i) => i,
                Err(e) => {
                    let message = crate::sanitize::line(&format!("{e:#}"));
                    return ExitReason::SpawnFailed { message, limit: crate::sandbox::limit_kind_of(&e) };
                }
            };
            team.roster.update(&launch.id, |m| {
                if m.state == Liveness::Spawning {
                    m.state = Liveness::Working;
                }
            });
            instance.run().await
        });
        let (tx, rx) = watch::channel(None);
        let kill_reason = Arc::new(Mutex::new(None));
        let handle = Handle { id: id.clone(), abort: guest.abort_handle(), kill_reason: kill_reason.clone(), exit: rx };
        let team = self.team.clone();
        // The watcher outlives the guest task so that an exit is reported
        // however the guest ended: returned, trapped, panicked, or aborted.
        tokio::spawn(async move {
            let reason = match guest.await {
                Ok(reason) => reason,
                Err(e) if e.is_cancelled() => ExitReason::killed(
                    kill_reason.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default(),
                ),
                Err(e) => ExitReason::trapped(format!("host task panicked: {e}")),
            };
            super::publish_exit(&team, id, reason, &tx).await;
        });
        Ok(handle)
    }

    async fn result(&self, handle: &Handle) -> ExitReason {
        super::wait_exit(&handle.exit).await
    }

    async fn kill(&self, handle: &Handle, why: &str) -> ExitReason {
        self.team.roster.update(&handle.id, |m| m.state = Liveness::Stopping);
        handle.kill_reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| why.to_string());
        // Aborting drops the guest's future at its next yield point: at once
        // if it waits in a host call, within one epoch tick if it computes.
        handle.abort.abort();
        self.result(handle).await
    }
}
