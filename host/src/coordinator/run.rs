//! Running a plan: load plugins, build the team context, spawn every
//! teammate, route events until every task is done, shut the team down
//! gracefully, and synthesize the report.
//!
//! The coordinator is one event loop over teammate events, interrupts
//! (Ctrl-C, SIGTERM) and the run's timeout: no polling. A teammate that dies
//! releases its task (requeued or failed under the max-attempts policy); a
//! task nobody left can run fails visibly. An interrupt, the timeout, or a
//! teammate that cannot be started after others were stops the team
//! gracefully (shutdown requests, then a kill after the grace period): the
//! tasks in flight go back to pending, so `swarm-host resume` continues the
//! run. State that cannot be saved is kept in the report (exit 3).
//!
//! Persistence ([`super::state`]): [`team_of`] compacts the saved state into
//! fresh snapshots and installs the journal's hooks on the task list and
//! the mailbox, which then append every change as it happens; [`run`]
//! closes the journal at the end and writes the report, off the async
//! workers. The end does not compact: the journal already holds every
//! change durably, and the next `load` replays it (see
//! [`super::state::journal`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::changes::Baseline;
use super::events::{EventBook, Kind as EventKind, Log};
use super::plan::Plan;
use super::report::{Denial, LeadMessage, RunReport, StopCause};
use super::state::{RunInfo, StateDir, StateError};
use super::steer::Steering;
use super::steer::control::{ControlEvent, ControlServer};
use super::steer::lead::{LEAD_QUEUE, LeadWorker, PERSON};
use crate::backend::detect::Kind;
use crate::backend::native::Launcher;
use crate::backend::server::{HEARTBEAT_TIMEOUT, LinkServer, SocketDir, SocketError};
use crate::backend::{Headless, InProcess, Iterm, Native, NativeSetup, TeammateBackend, Tmux};
use crate::mailbox::{Incoming, Mailbox, MailboxState};
use crate::model::TeammateMessage;
use crate::sandbox::workspace::{Keep, Overlay, OverlayError, Policy, PolicyError, PolicySpec};
use crate::sandbox::{Launch, LoadError, Sandbox, Workspace};
use crate::sanitize;
use crate::tasks::TaskList;
use crate::team::{Event, Liveness, Roster, Team};

/// How long a teammate has to answer a shutdown request and exit.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] LoadError),
    /// The workspace root could not be opened.
    #[error("cannot open workspace root {path}: {source}")]
    Root {
        /// The root.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The workspace policy (`read_allow`, `exclude`, `owns` globs, the
    /// protected directories) could not be built.
    #[error("workspace policy: {0}")]
    Workspace(#[from] PolicyError),
    /// The chosen backend cannot run here.
    #[error(transparent)]
    Unavailable(#[from] crate::backend::detect::Unavailable),
    /// The private socket directory for native teammates could not be set up.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The coordinator's socket could not be bound.
    #[error("cannot listen on the teammate socket: {0}")]
    Listen(std::io::Error),
    /// The `swarm-host` binary to start teammate processes with is unknown.
    #[error("cannot find the swarm-host binary to start teammates with: {0}")]
    Exe(std::io::Error),
    /// A teammate could not be spawned.
    #[error("cannot spawn teammate `{id}`: {message}")]
    Spawn {
        /// The teammate.
        id: String,
        /// Why.
        message: String,
    },
    /// The team's state could not be saved before anything started.
    #[error("cannot save the team's state: {0}")]
    State(#[from] StateError),
    /// The `--dry-run` overlay could not be set up.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// The team's NATS objects could not be set up (`run --nats`).
    #[error("scale-out over NATS: {0}")]
    ScaleOut(String),
}

/// A request from outside to stop the run: the first stops the team
/// gracefully, the second kills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Ctrl-C (SIGINT).
    CtrlC,
    /// SIGTERM (what CI runners and `timeout(1)` send).
    Terminate,
}

/// Knobs of one run.
#[derive(Debug)]
pub struct RunOptions {
    /// Grace period of a graceful shutdown before the hard kill.
    pub shutdown_grace: Duration,
    /// Each message is one Ctrl-C or SIGTERM: the first stops the team
    /// gracefully, the second kills it.
    pub interrupts: mpsc::Receiver<Interrupt>,
    /// Longest time the team may run, from the start of [`run`]: then it is
    /// stopped like by a first interrupt (its teammates then have
    /// `shutdown_grace` to exit). `None` = no limit.
    pub timeout: Option<Duration>,
    /// Where to keep crash-safe state; `None` keeps nothing.
    pub state: Option<StateDir>,
    /// Saved state to continue from (`swarm-host resume`).
    pub restored: Option<Restored>,
    /// Called after every coordinator event and once at the end (the live
    /// team view).
    pub observer: Option<Observer>,
    /// Put each task's changed files, diffed, in the report
    /// ([`super::changes`]): the teammates keep each file as it was before
    /// its first write, and only those are diffed. On by default.
    pub diffs: bool,
    /// `--dry-run`: the teammates write to a private overlay directory
    /// outside the root ([`Overlay`]) and nothing under the root changes;
    /// the report's diffs (always computed then) are the output.
    pub dry_run: bool,
    /// The lead component, for messages to `team-lead` while the team runs
    /// ([`super::steer::lead`]); `None`: they are only logged and reported.
    pub lead: Option<LeadHook>,
    /// Checks the lead's changes (the team file's rules); `None` refuses
    /// every change.
    pub rules: Option<super::steer::ChangeRules>,
    /// The team's state directory, where the control socket's pointer file
    /// goes; `None`: no control socket.
    pub control: Option<std::path::PathBuf>,
}

pub use super::steer::lead::LeadHook;

/// A callback that looks at the team after each change.
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn(&Team) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            interrupts: mpsc::channel(1).1,
            timeout: None,
            state: None,
            restored: None,
            observer: None,
            diffs: true,
            dry_run: false,
            lead: None,
            rules: None,
            control: None,
        }
    }
}

/// What a resumed run starts from.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The saved task list.
    pub tasks: Vec<crate::tasks::TaskState>,
    /// The saved inboxes.
    pub mailbox: MailboxState,
    /// How many times the run was resumed before this one.
    pub resumes: u32,
    /// The newest generation of the saved snapshots and journal.
    pub generation: u64,
}

impl Restored {
    /// Reads what a resume of `plan` needs from `state`: the snapshots plus
    /// the journal. A coordinator killed between saving the plan and the
    /// first task list left no `tasks.json`: the plan's tasks are then all
    /// still pending. A torn last journal record is logged and ignored.
    pub fn load(state: &StateDir, plan: &Plan) -> Result<Self, StateError> {
        // A file that is not there yet is a fresh start for it; one that is
        // there but does not parse is an error naming it, never dropped.
        let saved = state.load()?;
        for note in &saved.notes {
            tracing::warn!("{note}");
        }
        let tasks = saved.tasks.unwrap_or_else(|| crate::tasks::TaskList::new(plan.tasks.clone()).snapshot());
        let resumes = super::state::if_present(state.read_run())?.map_or(1, |r| r.resumes + 1);
        Ok(Self { tasks, mailbox: saved.mailbox, resumes, generation: saved.generation })
    }
}

/// Builds the team context of a plan, from saved state when resuming. With
/// `state`, compacts what it starts from into fresh snapshots (blocking
/// I/O, before any teammate runs) and journals every change of the task
/// list and mailbox from then on; a failure is recorded in `state`.
pub fn team_of(
    plan: &Plan,
    restored: Option<&Restored>,
    state: Option<&StateDir>,
) -> (Arc<Team>, mpsc::Receiver<Event>) {
    let mailbox = Mailbox::new(plan.teammates.iter().map(|t| (t.id.as_str(), t.limits.inbox_len as usize)));
    let roster = Roster::default();
    for t in &plan.teammates {
        roster.add(&t.id, &t.group, &t.color);
    }
    let tasks = match restored {
        Some(r) => {
            mailbox.restore(&r.mailbox);
            TaskList::restore(r.tasks.clone())
        }
        None => TaskList::new(plan.tasks.clone()),
    };
    let options = plan.teammates.iter().filter(|t| !t.options.is_empty()).map(|t| (t.group.clone(), t.options.clone()));
    let mut tasks = tasks.with_options(options.collect());
    let mut mailbox = mailbox;
    if let Some(state) = state {
        let after = restored.map_or(0, |r| r.generation);
        match state.start_journal(&tasks.snapshot(), &mailbox.snapshot(), after) {
            Ok(()) => {
                if let Some(((ts, tf), (ms, mf))) = state.with_journal(|j| (j.task_hooks(), j.mail_hooks())) {
                    tasks = tasks.with_journal(ts, tf);
                    mailbox = mailbox.with_journal(ms, mf);
                }
            }
            Err(e) => state.failed("the task list", &e),
        }
    }
    Team::new(&plan.team, mailbox, tasks, roster)
}

/// What the workspaces of a run of `plan` are built from: the team file's
/// `read_allow` and `exclude`, every task's `owns` patterns (creation), and
/// the coordinator's own directories (the state directory with its logs,
/// the compiled-plugin cache), kept out of every teammate's reach.
pub fn workspace_spec(plan: &Plan, state: Option<&StateDir>, cache_dir: Option<&std::path::Path>) -> PolicySpec {
    PolicySpec {
        read_allow: plan.read_allow.clone(),
        exclude: plan.exclude.clone(),
        creates: plan.tasks.iter().map(|t| (t.id.clone(), t.creates.clone())).collect(),
        // Absolute: a teammate process may start in another directory.
        protected: state
            .map(|s| s.path())
            .into_iter()
            .chain(cache_dir)
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
            .collect(),
    }
}

/// Runs `plan` in-process.
pub async fn run_in_process(plan: &Plan, sandbox: &Sandbox, options: RunOptions) -> Result<RunReport, StartError> {
    let mut plugins = HashMap::new();
    for t in &plan.teammates {
        if !plugins.contains_key(&t.group) {
            plugins.insert(t.group.clone(), sandbox.load(&t.plugin, &t.limits)?);
        }
    }
    let root =
        Workspace::open_root(&plan.root).map_err(|source| StartError::Root { path: plan.root.clone(), source })?;
    let spec = workspace_spec(plan, options.state.as_ref(), sandbox.cache_dir());
    let policy = Arc::new(Policy::build(&plan.root, plan.read, &spec)?);
    if let (Some(state), None) = (&options.state, &options.restored) {
        state.start_fresh(plan)?;
    }
    let side = WriteSide::create(plan, &options, &policy)?;
    let (overlay, keep) = (WriteSide::open(side.overlay.as_ref())?, WriteSide::open(side.keep.as_ref())?);
    let (team, events) = team_of(plan, options.restored.as_ref(), options.state.as_ref());
    let backend = InProcess::with_policy(team.clone(), root, policy, plugins).with_overlay(overlay).with_keep(keep);
    run_with(plan, Arc::new(backend), events, options, side.baseline).await
}

/// Runs `plan` on the backend `kind`, resolved for this environment.
/// Native teammates are started from this process's own binary and use the
/// compiled-plugin cache `cache_dir`.
pub async fn run_on(
    kind: Kind,
    plan: &Plan,
    sandbox: &Sandbox,
    options: RunOptions,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<RunReport, StartError> {
    let env = crate::backend::detect::Env::current();
    let kind = env.resolve(Some(kind))?;
    let unavailable = |why: String| crate::backend::detect::Unavailable { backend: kind.name(), why };
    let exe = || std::env::current_exe().map_err(StartError::Exe);
    match kind {
        Kind::InProcess => run_in_process(plan, sandbox, options).await,
        Kind::Process => run_native(plan, sandbox, options, Headless, exe()?, cache_dir).await,
        Kind::Tmux => {
            let tmux = Tmux::from_env(env.tmux.as_deref(), env.tmux_pane.as_deref()).map_err(unavailable)?;
            run_native(plan, sandbox, options, tmux, exe()?, cache_dir).await
        }
        Kind::Iterm => {
            let iterm = Iterm::from_env(env.iterm_session.as_deref()).map_err(unavailable)?;
            run_native(plan, sandbox, options, iterm, exe()?, cache_dir).await
        }
    }
}

/// Runs `plan` with every teammate a native process (the `swarm-host`
/// binary `exe`, subcommand `teammate`) started by `launcher`, talking to
/// this coordinator over a private Unix socket. Plugins are loaded here
/// first, so a bad plugin fails the run before anything starts (and the
/// teammates find them compiled in `cache_dir`).
pub async fn run_native<L: Launcher>(
    plan: &Plan,
    sandbox: &Sandbox,
    options: RunOptions,
    launcher: L,
    exe: std::path::PathBuf,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<RunReport, StartError> {
    let mut plugins = HashMap::new();
    for t in &plan.teammates {
        if !plugins.contains_key(&t.group) {
            sandbox.load(&t.plugin, &t.limits)?;
            let path = std::path::absolute(&t.plugin).unwrap_or_else(|_| t.plugin.clone());
            plugins.insert(t.group.clone(), path);
        }
    }
    // Each teammate process builds the policy again from its launch
    // config; a bad glob fails the run here, before anything starts.
    let (_, root, workspace, policy) = remote_workspace(plan, &options, cache_dir.as_deref())?;
    let side = WriteSide::create(plan, &options, &policy)?;
    if let (Some(state), None) = (&options.state, &options.restored) {
        state.start_fresh(plan)?;
    }
    let (team, events) = team_of(plan, options.restored.as_ref(), options.state.as_ref());
    let dir = SocketDir::create(&plan.team)?;
    let server = LinkServer::start(team.clone(), dir, HEARTBEAT_TIMEOUT).map_err(StartError::Listen)?;
    if let Some(models) = sandbox.models() {
        server.set_models(models.clone());
    }
    let setup = NativeSetup { exe, root, read: plan.read, workspace, plugins, cache_dir };
    let backend = Native::new(team, server, launcher, setup)
        .with_team_limits(plan.teammates.iter().map(|t| &t.limits))
        .with_overlay(side.overlay)
        .with_keep(side.keep);
    run_with(plan, Arc::new(backend), events, options, side.baseline).await
}

/// Runs `plan` with its tasks on NATS workers (`swarm-host worker`), this
/// process the coordinator: it connects with `connect`, creates (or, when
/// resuming, joins) the team's JetStream objects, uploads the plugins and
/// a snapshot of the readable tree, and runs the team with one stand-in
/// per planned teammate (see `backend::nats::coordinator`). Plugins are
/// loaded here first, so a bad plugin fails the run before anything is
/// published.
#[cfg(feature = "nats")]
pub async fn run_nats(
    plan: &Plan,
    sandbox: &Sandbox,
    options: RunOptions,
    connect: &crate::cluster::ConnectOptions,
    ack_wait: Duration,
) -> Result<RunReport, StartError> {
    use crate::backend::nats::{Nats, NatsSetup, tree};
    use crate::cluster::{Cluster, Settings, blobs::MAX_BLOB_BYTES, names::token};
    let nats = |e: &dyn std::fmt::Display| StartError::ScaleOut(e.to_string());
    token("team", &plan.team).map_err(|e| nats(&e))?;
    for t in &plan.teammates {
        token("teammate", &t.id).map_err(|e| nats(&e))?;
    }
    let mut bytes = HashMap::new();
    for t in &plan.teammates {
        if !bytes.contains_key(&t.group) {
            sandbox.load(&t.plugin, &t.limits)?;
            let read = std::fs::read(&t.plugin)
                .map_err(|source| StartError::Plugin(LoadError::Read { path: t.plugin.clone(), source }))?;
            bytes.insert(t.group.clone(), read);
        }
    }
    let (root_dir, root, spec, policy) = remote_workspace(plan, &options, sandbox.cache_dir())?;
    // Workers return their writes; this workspace applies them, checked as
    // a local teammate's writes are, and keeps what they replace for the
    // diffs (or writes them to a dry run's overlay).
    let side = WriteSide::create(plan, &options, &policy)?;
    let mut workspace = Workspace::with_policy(root_dir, policy.clone(), u64::MAX);
    if let Some(dir) = WriteSide::open(side.overlay.as_ref())? {
        workspace = workspace.with_overlay(dir);
    }
    if let Some(dir) = WriteSide::open(side.keep.as_ref())? {
        workspace = workspace.with_keep(dir);
    }
    let client = connect.connect().await.map_err(|e| nats(&e))?;
    let max_attempts = plan.tasks.iter().map(|t| t.max_attempts).max().unwrap_or(1).max(3);
    let settings = Settings { ack_wait, max_attempts, ..Settings::default() };
    let mut cluster = Cluster::create(client, &plan.team, settings).await.map_err(|e| nats(&e))?;
    if options.restored.is_none() {
        cluster.purge().await.map_err(|e| nats(&e))?;
    }
    let mut plugins = HashMap::new();
    for (group, b) in &bytes {
        plugins.insert(group.clone(), cluster.put_blob(b).await.map_err(|e| nats(&e))?);
    }
    let owned: std::collections::BTreeSet<String> =
        plan.tasks.iter().flat_map(|t| t.owned_files.iter().cloned()).collect();
    let (snap_root, snap_policy) = (root.clone(), policy.clone());
    let packed = tokio::task::spawn_blocking(move || {
        tree::snapshot(&snap_root, &snap_policy, &owned, MAX_BLOB_BYTES).and_then(|f| tree::pack(&f, MAX_BLOB_BYTES))
    })
    .await
    .map_err(|e| nats(&e))?
    .map_err(|e| StartError::ScaleOut(format!("the workspace snapshot: {e}")))?;
    let snapshot = cluster.put_blob(&packed).await.map_err(|e| nats(&e))?;
    tracing::info!(team = %plan.team, bytes = packed.len(), "workspace snapshot {snapshot} uploaded");
    if let (Some(state), None) = (&options.state, &options.restored) {
        state.start_fresh(plan)?;
    }
    let (team, events) = team_of(plan, options.restored.as_ref(), options.state.as_ref());
    let setup = NatsSetup {
        plugins,
        snapshot,
        read: plan.read,
        rules: crate::backend::native::rules_of(&spec, None, None),
        frame_bytes: crate::backend::native::team_frame_bytes(&team, plan.teammates.iter().map(|t| &t.limits)),
    };
    let backend = Nats::start(team, cluster, setup, Arc::new(workspace), sandbox.models().cloned())
        .await
        .map_err(|e| nats(&e))?;
    run_with(plan, Arc::new(backend), events, options, side.baseline).await
}

/// What a run whose teammates are not in this process needs of its
/// workspace: the root opened and made absolute, the policy's spec and the
/// policy (a bad glob fails the run here, before anything starts).
type RemoteWorkspace = (cap_std::fs::Dir, std::path::PathBuf, PolicySpec, Arc<Policy>);

fn remote_workspace(
    plan: &Plan,
    options: &RunOptions,
    cache_dir: Option<&std::path::Path>,
) -> Result<RemoteWorkspace, StartError> {
    let root_err = |source| StartError::Root { path: plan.root.clone(), source };
    let dir = Workspace::open_root(&plan.root).map_err(root_err)?;
    let root = std::path::absolute(&plan.root).map_err(root_err)?;
    let spec = workspace_spec(plan, options.state.as_ref(), cache_dir);
    let policy = Arc::new(Policy::build(&root, plan.read, &spec)?);
    Ok((dir, root, spec, policy))
}

/// The run's private directories on the write side: a dry run's overlay
/// (where its writes land), or, when `options` asks for diffs, the keep
/// directory where the teammates keep each file before its first write;
/// and the [`Baseline`] that diffs them after the run (and removes them).
#[derive(Debug, Default)]
struct WriteSide {
    overlay: Option<std::path::PathBuf>,
    keep: Option<std::path::PathBuf>,
    baseline: Option<Baseline>,
}

impl WriteSide {
    fn create(plan: &Plan, options: &RunOptions, policy: &Arc<Policy>) -> Result<Self, StartError> {
        let (root, policy) = (&plan.root, policy.clone());
        if options.dry_run {
            let overlay = Overlay::create(root)?;
            let path = Some(overlay.path().to_path_buf());
            return Ok(Self { overlay: path, keep: None, baseline: Some(Baseline::dry_run(root, overlay, policy)) });
        }
        if !options.diffs {
            return Ok(Self::default());
        }
        match Keep::create(root) {
            Ok(keep) => {
                let path = Some(keep.path().to_path_buf());
                Ok(Self { overlay: None, keep: path, baseline: Some(Baseline::kept(root, keep, policy)) })
            }
            Err(e) => {
                tracing::warn!("the report will have no diffs: {e}");
                Ok(Self::default())
            }
        }
    }

    /// `path` opened as a directory capability for in-process workspaces.
    fn open(path: Option<&std::path::PathBuf>) -> Result<Option<cap_std::fs::Dir>, StartError> {
        path.map(|p| Workspace::open_root(p).map_err(|source| StartError::Root { path: p.clone(), source })).transpose()
    }
}

/// Runs `plan` on `backend`, whose team came from [`team_of`], in named
/// steps: persist the start (`Persisted::open`), spawn the team
/// (`Running::spawn_all`), route events until every teammate is gone
/// (`Running::until_all_gone`), close the journal (`Persisted::close`),
/// synthesize the report (`Running::report`) and persist the end
/// (`Persisted::finish`).
pub async fn run<B: TeammateBackend>(
    plan: &Plan,
    backend: Arc<B>,
    events: mpsc::Receiver<Event>,
    options: RunOptions,
) -> Result<RunReport, StartError> {
    run_with(plan, backend, events, options, None).await
}

/// [`run`], and with `baseline` the report holds each task's diffs.
async fn run_with<B: TeammateBackend>(
    plan: &Plan,
    backend: Arc<B>,
    mut events: mpsc::Receiver<Event>,
    mut options: RunOptions,
    baseline: Option<Baseline>,
) -> Result<RunReport, StartError> {
    let started = Instant::now();
    let team = backend.team().clone();
    let resumes = options.restored.as_ref().map_or(0, |r| r.resumes);
    let mut persisted = Persisted::open(options.state.take(), &team, resumes)?;
    let steering = Steering::new(team.clone(), plan.ownership_requests, plan.ask_timeout);
    let mut running = Running::new(backend, team, steering);
    if let Err(e) = running.spawn_all(plan).await {
        if let Some(p) = persisted {
            p.abandon().await;
        }
        return Err(e);
    }
    tracing::info!(team = %plan.team, teammates = running.live.len(), tasks = plan.tasks.len(), backend = running.backend.name(), "team started");
    running.until_all_gone(&mut events, &mut options, persisted.as_ref()).await;
    if let Some(observer) = &options.observer {
        (observer.0)(&running.team);
    }
    let tasks = match &mut persisted {
        Some(p) => p.close(&running.team).await,
        None => running.team.tasks.finish(),
    };
    let scale_out = running.backend.scale_out();
    // The tasks as the run left them (added ones, granted files): whose
    // each changed file is.
    let specs: Vec<crate::tasks::TaskSpec> = tasks.iter().map(|t| t.spec.clone()).collect();
    let mut report = running.report(plan, started.elapsed(), tasks);
    report.scale_out = scale_out;
    if let Some(baseline) = baseline {
        // Off the async workers: it reads every changed file.
        match tokio::task::spawn_blocking(move || baseline.changes(&specs)).await {
            Ok(changes) => super::changes::fill(&mut report, changes),
            Err(e) => tracing::warn!("the tasks' diffs could not be computed: {e}"),
        }
    }
    Ok(match persisted {
        Some(p) => p.finish(report).await,
        None => report,
    })
}

/// What a run persists beside the journal the task list and mailbox write
/// themselves: `run.json` at the start and the end, the roster as it
/// changes, and `report.json`.
struct Persisted {
    state: StateDir,
    info: RunInfo,
    saver: Saver,
}

impl Persisted {
    /// Writes `run.json` and starts saving the roster; `None` without state.
    fn open(state: Option<StateDir>, team: &Arc<Team>, resumes: u32) -> Result<Option<Self>, StartError> {
        let Some(state) = state else { return Ok(None) };
        let info = RunInfo {
            pid: std::process::id(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            finished: false,
            resumes,
        };
        state.write_run(&info)?;
        let saver = Saver::start(state.clone(), team.clone());
        Ok(Some(Self { state, info, saver }))
    }

    /// Something changed: the roster is saved soon.
    fn dirty(&self) {
        self.saver.dirty();
    }

    /// Nothing started: stops saving and closes the journal.
    async fn abandon(mut self) {
        self.saver.stop().await;
        let state = self.state;
        blocking(move || state.close_journal()).await;
    }

    /// Every teammate is gone: saves the roster a last time and closes the
    /// journal once its last records are on disk (off the async workers).
    /// Nothing changes the task list after this. No compaction here: it
    /// would write every finding a second time just before `report.json`
    /// writes them a third; the next run or resume compacts.
    async fn close(&mut self, team: &Team) -> Vec<crate::tasks::TaskState> {
        let state = self.state.clone();
        // The roster's last save and the journal's last fsync, side by side.
        tokio::join!(self.saver.stop(), blocking(move || state.close_journal()));
        team.tasks.finish()
    }

    /// Marks the run finished and saves the report, off the async workers;
    /// what could not be saved during the run is part of the report.
    async fn finish(mut self, mut report: RunReport) -> RunReport {
        blocking(move || {
            let s = &self.state;
            self.info.finished = true;
            if let Err(e) = s.write_run(&self.info) {
                s.failed("run.json", &e);
            }
            report.state_errors = s.failures();
            if let Err(e) = s.write_report(&report) {
                s.failed("the report", &e);
                report.state_errors = s.failures();
            }
            report
        })
        .await
    }
}

/// Runs blocking state I/O on tokio's blocking pool; a panic there is
/// resumed here, as if it had happened inline.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The team while it runs: who is live, how to stop them, and why the run
/// stops, if it stops before its tasks are done.
struct Running<B: TeammateBackend> {
    backend: Arc<B>,
    team: Arc<Team>,
    handles: HashMap<String, B::Handle>,
    live: HashSet<String>,
    /// Why the run stops early (a start failure, the timeout, a signal).
    interrupted: Option<String>,
    stopped_by: Option<StopCause>,
    lead: Coordinator,
    steering: Steering,
    /// Messages the lead did not handle before the run ended.
    unanswered: Vec<LeadMessage>,
    stoppers: JoinSet<crate::team::ExitReason>,
    shutting_down: bool,
    /// When the run started (unix ms): the report's timeline origin.
    started_unix_ms: u64,
}

impl<B: TeammateBackend> Running<B> {
    fn new(backend: Arc<B>, team: Arc<Team>, steering: Steering) -> Self {
        let lead = Coordinator { team: team.clone(), messages: Vec::new(), book: EventBook::default() };
        Self {
            steering,
            unanswered: Vec::new(),
            backend,
            team,
            handles: HashMap::new(),
            live: HashSet::new(),
            interrupted: None,
            stopped_by: None,
            lead,
            stoppers: JoinSet::new(),
            shutting_down: false,
            started_unix_ms: crate::tasks::unix_ms(),
        }
    }

    /// Spawns every teammate of the plan. If one fails to start and none
    /// runs yet, that is the error; if some run, the run stops gracefully
    /// and reports what ran (`StopCause::StartFailed`).
    async fn spawn_all(&mut self, plan: &Plan) -> Result<(), StartError> {
        for t in &plan.teammates {
            let launch =
                Launch { id: t.id.clone(), group: t.group.clone(), color: t.color.clone(), limits: t.limits.clone() };
            match self.backend.spawn(launch).await {
                Ok(handle) => {
                    self.handles.insert(t.id.clone(), handle);
                    self.live.insert(t.id.clone());
                }
                Err(e) => {
                    let e = StartError::Spawn { id: t.id.clone(), message: format!("{e:#}") };
                    if self.live.is_empty() {
                        return Err(e);
                    }
                    tracing::error!("{e}: stopping the {} teammate(s) already started", self.live.len());
                    for other in plan.teammates.iter().filter(|o| !self.live.contains(&o.id)) {
                        let why = if other.id == t.id { e.to_string() } else { format!("not started: {e}") };
                        self.team.roster.gone(&other.id, Liveness::Dead, why);
                    }
                    self.interrupted = Some(e.to_string());
                    self.stopped_by = Some(StopCause::StartFailed);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Routes events until every teammate is gone: teammate messages to the
    /// lead, exits to the task list, the timeout and signals to a graceful
    /// stop (a second signal kills).
    async fn until_all_gone(
        &mut self,
        events: &mut mpsc::Receiver<Event>,
        options: &mut RunOptions,
        persisted: Option<&Persisted>,
    ) {
        let mut interrupts_open = true;
        let deadline = options.timeout.map(|t| (tokio::time::Instant::now() + t, t));
        let timeout = async move {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        let groups: Vec<String> = {
            let mut g: Vec<String> = self.team.roster.snapshot().into_iter().map(|m| m.group).collect();
            g.sort();
            g.dedup();
            g
        };
        let to_lead = options
            .lead
            .clone()
            .map(|hook| LeadWorker::start(hook, options.rules.clone(), self.steering.clone(), groups));
        let (control_tx, mut control) = mpsc::channel(16);
        let _server = options.control.as_deref().and_then(|dir| {
            ControlServer::start(dir, self.steering.clone(), to_lead.is_some(), control_tx)
                .inspect_err(|e| {
                    tracing::warn!("no control socket (swarm-host send/stop/attach will not reach this run): {e}")
                })
                .ok()
        });
        loop {
            self.stop_when_done(options.shutdown_grace);
            if self.live.is_empty() {
                break;
            }
            if let Some(p) = persisted {
                p.dirty();
            }
            if let Some(observer) = &options.observer {
                (observer.0)(&self.team);
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(Event::Message(msg)) => {
                        let to_team_lead = match &msg {
                            TeammateMessage::Message { from, body, .. } => Some((from.clone(), body.clone())),
                            _ => None,
                        };
                        if let Some((from, body)) = &to_team_lead {
                            self.steering.tell(format!("{from} to team-lead: {}", sanitize::line(body)));
                        }
                        // Recorded (and stamped) before the lead can answer
                        // it, so the report never shows the answer first.
                        self.lead.on_message(msg);
                        if let (Some(lead), Some((from, body))) = (&to_lead, &to_team_lead)
                            && !lead.offer(from, body)
                        {
                            tracing::warn!(teammate = %from, "the lead is busy ({LEAD_QUEUE} messages wait): this one is reported, not answered");
                        }
                    }
                    Some(Event::Exited { id, reason }) => self.on_exit(&id, &reason),
                    Some(Event::FileRequest(req)) => self.steering.on_file_request(req),
                    // Every teammate holds a sender through the team; this
                    // only happens once all are gone, which `live` tracks.
                    None => break,
                },
                Some(ev) = control.recv() => self.on_control(ev, to_lead.as_ref(), options.shutdown_grace),
                () = &mut timeout, if self.interrupted.is_none() && !self.shutting_down => {
                    let after = deadline.map(|(_, t)| humantime::format_duration(t).to_string()).unwrap_or_default();
                    tracing::warn!("the run's timeout of {after} passed: stopping the team gracefully");
                    self.interrupted = Some(format!("timeout: the run took longer than timeout = {after}"));
                    self.stopped_by = Some(StopCause::Timeout);
                }
                got = options.interrupts.recv(), if interrupts_open => match got {
                    Some(signal) => self.on_interrupt(signal),
                    None => interrupts_open = false,
                },
            }
        }
        self.steering.deny_pending();
        if let Some(lead) = to_lead {
            self.unanswered = lead.finish().await;
            for m in &self.unanswered {
                tracing::warn!(teammate = %m.from, "not answered by the lead (the run ended): {}", sanitize::line(&m.body));
            }
        }
        self.stoppers.shutdown().await;
    }

    /// Once the tasks are done or the run is interrupted, asks every live
    /// teammate to shut down (each gets `grace`, then a kill).
    fn stop_when_done(&mut self, grace: Duration) {
        if self.shutting_down || !(self.team.tasks.all_done() || self.interrupted.is_some()) {
            return;
        }
        self.shutting_down = true;
        let reason = self.interrupted.clone().unwrap_or_else(|| "all tasks are done".into());
        for (id, handle) in self.handles.iter().filter(|(id, _)| self.live.contains(*id)) {
            let (backend, handle) = (self.backend.clone(), handle.clone());
            let (request_id, reason) = (format!("shutdown-{id}"), reason.clone());
            self.stoppers.spawn(async move { backend.stop(&handle, &request_id, &reason, grace).await });
        }
    }

    /// A teammate is gone: its task goes back to pending (interrupted) or
    /// is released as a failed attempt, and tasks nobody left can run fail.
    fn on_exit(&mut self, id: &str, reason: &crate::team::ExitReason) {
        let team = &self.team;
        self.live.remove(id);
        let why = reason.to_string();
        if reason.is_clean() {
            tracing::info!(teammate = %id, "exited");
        } else {
            tracing::warn!(teammate = %id, "{}", sanitize::line(&why));
        }
        if let Some(interrupted) = &self.interrupted {
            if let Some(task) = team.tasks.interrupt(id, &format!("interrupted: {interrupted}")) {
                tracing::warn!(teammate = %id, task = %task, "task put back to pending");
            }
            // An interrupted run leaves pending tasks for `resume`.
        } else {
            let released =
                if reason.is_clean() { "the teammate returned from run while holding the task" } else { &why };
            if let Some((task, after)) = team.tasks.release(id, released, reason.limit()) {
                tracing::warn!(teammate = %id, task = %task, "task released: {after:?}");
            }
            for task in team.tasks.fail_unrunnable(&team.roster.live(), &format!("{id} {why}"), reason.limit()) {
                tracing::warn!(task = %task, "task can no longer run");
            }
        }
        self.lead.wake_idle();
    }

    /// A request from the control socket.
    fn on_control(&mut self, ev: ControlEvent, lead: Option<&LeadWorker>, grace: Duration) {
        match ev {
            ControlEvent::StopTeam if self.interrupted.is_none() => {
                self.steering.say("a person stopped the team: stopping gracefully".to_string());
                self.interrupted = Some("stopped by a person (swarm-host stop)".into());
                self.stopped_by = Some(StopCause::Interrupt);
            }
            ControlEvent::StopTeam => {}
            ControlEvent::StopTeammate(id) => {
                let Some(handle) = self.handles.get(&id).filter(|_| self.live.contains(&id)).cloned() else {
                    self.steering.say(format!("{id} is not running: nothing to stop"));
                    return;
                };
                self.steering.say(format!("a person stopped {id}: stopping it gracefully"));
                let backend = self.backend.clone();
                let request_id = format!("shutdown-{id}");
                self.stoppers.spawn(async move {
                    backend.stop(&handle, &request_id, "stopped by a person (swarm-host stop)", grace).await
                });
            }
            ControlEvent::ToLead(text) => {
                self.lead.messages.push(LeadMessage {
                    from: PERSON.to_string(),
                    body: text.clone(),
                    at_unix_ms: Some(crate::tasks::unix_ms()),
                });
                if !lead.is_some_and(|l| l.offer(PERSON, &text)) {
                    self.steering.say("the lead is busy: the person's message is reported, not answered".into());
                }
            }
        }
    }

    /// A signal: the first stops the team gracefully, the next kills it.
    fn on_interrupt(&mut self, signal: Interrupt) {
        if self.interrupted.is_none() {
            let (why, cause) = match signal {
                Interrupt::CtrlC => ("interrupted by the user", StopCause::Interrupt),
                Interrupt::Terminate => ("terminated by SIGTERM", StopCause::Terminate),
            };
            tracing::warn!("{why}: stopping the team gracefully (interrupt again to kill)");
            self.interrupted = Some(why.into());
            self.stopped_by = Some(cause);
            return;
        }
        tracing::warn!("interrupted again: killing every teammate");
        for (_, handle) in self.handles.iter().filter(|(id, _)| self.live.contains(*id)) {
            let (backend, handle) = (self.backend.clone(), handle.clone());
            self.stoppers.spawn(async move { backend.kill(&handle, "killed by a second interrupt").await });
        }
    }

    /// The report of the finished run, from the final task list.
    fn report(self, plan: &Plan, duration: Duration, tasks: Vec<crate::tasks::TaskState>) -> RunReport {
        let lead = self.lead;
        lead.log_unlogged();
        let (denials, denial_counts) = lead.book.into_denials();
        let mut report = RunReport::synthesize(super::report::Parts {
            team: plan.team.clone(),
            backend: self.backend.name().to_string(),
            duration,
            tasks,
            teammates: self.team.roster.snapshot(),
            messages: lead.messages,
            denials,
            denial_counts,
            warnings: plan.warnings.clone(),
            interrupted: self.interrupted,
            stopped_by: self.stopped_by,
            state_errors: Vec::new(),
        });
        report.started_unix_ms = Some(self.started_unix_ms);
        report.file_requests = self.steering.decisions();
        report.lead_changes = self.steering.changes();
        report.lead_unanswered = self.unanswered;
        (report.traffic, report.traffic_dropped) = self.team.mailbox.traffic();
        report.lead_plan = super::report::LeadPlan::of(plan);
        super::report::describe_rules(&mut report, plan);
        report
    }
}

/// The line after the last logged event of `kind` from `teammate`.
fn said_enough(teammate: &str, kind: EventKind) {
    tracing::warn!(
        teammate = %teammate,
        "{} logged {} {}; later ones are counted, not logged (the report has the count)",
        teammate,
        super::events::LOGGED_PER_KIND,
        kind.name()
    );
}

/// Saves the roster when a teammate's state or task changes, at once, and
/// when the coordinator marks it dirty (any event: a heartbeat changed), at
/// most once per [`HEARTBEAT_SAVE_INTERVAL`]. Marks that arrive during a
/// save or the wait coalesce into one more save. Saving on every event
/// rewrote `roster.json` about 1,200 times in the row-6 run of 20 tasks
/// (two fsyncs each), most of what the state cost there.
struct Saver {
    dirty: Arc<tokio::sync::Notify>,
    /// The saving task and how to stop it; `None` once stopped.
    running: Option<(tokio::task::JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
}

impl Saver {
    fn start(state: StateDir, team: Arc<Team>) -> Self {
        let dirty = Arc::new(tokio::sync::Notify::new());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let notified = dirty.clone();
        let task = tokio::spawn(async move {
            let mut last: Option<tokio::time::Instant> = None;
            loop {
                let changed = tokio::select! {
                    _ = notified.notified() => false,
                    _ = team.roster.changed() => true,
                    _ = &mut stopped => break,
                };
                // Only heartbeats changed: wait out the interval, unless a
                // state or task changes meanwhile.
                if let (false, Some(last)) = (changed, last) {
                    tokio::select! {
                        _ = tokio::time::sleep_until(last + HEARTBEAT_SAVE_INTERVAL) => {}
                        _ = team.roster.changed() => {}
                        _ = &mut stopped => break,
                    }
                }
                let (state, team) = (state.clone(), team.clone());
                let _ = tokio::task::spawn_blocking(move || save_team(&state, &team)).await;
                last = Some(tokio::time::Instant::now());
            }
            let _ = tokio::task::spawn_blocking(move || save_team(&state, &team)).await;
        });
        Self { dirty, running: Some((task, stop)) }
    }

    fn dirty(&self) {
        self.dirty.notify_one();
    }

    /// Saves a last time and stops; later calls do nothing.
    async fn stop(&mut self) {
        if let Some((task, stop)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// Least time between two saves of the roster for heartbeats alone.
const HEARTBEAT_SAVE_INTERVAL: Duration = Duration::from_secs(1);

fn save_team(state: &StateDir, team: &Team) {
    if let Err(e) = state.write_roster(&team.roster.snapshot()) {
        state.failed("the roster", &e);
    }
}

/// The coordinator's reactions to teammate messages. What a guest can
/// repeat at will (refused operations, progress, idle, shutdown answers and
/// requests) goes through the [`EventBook`]: counted always, logged only for
/// the first few per teammate and kind, kept in the report only as samples.
struct Coordinator {
    team: Arc<Team>,
    messages: Vec<LeadMessage>,
    book: EventBook,
}

impl Coordinator {
    fn on_message(&mut self, msg: TeammateMessage) {
        match msg {
            // Once per task (the teammate must hold it).
            TeammateMessage::TaskCompleted { from, task_id, summary, findings } => {
                tracing::info!(teammate = %from, task = %task_id, findings = findings.len(), "completed: {}", sanitize::line(&summary));
                self.wake_idle();
            }
            TeammateMessage::Error { from, task_id, message } => {
                tracing::warn!(teammate = %from, task = ?task_id, "failed: {}", sanitize::line(&message));
                self.wake_idle();
            }
            TeammateMessage::IdleNotification { from, .. } => {
                if self.log(&from, EventKind::Idle) {
                    tracing::debug!(teammate = %from, "idle");
                }
                self.wake(&from);
            }
            TeammateMessage::Progress { from, done, total, .. } => {
                if self.log(&from, EventKind::Progress) {
                    tracing::debug!(teammate = %from, "progress {done}/{total}");
                }
            }
            TeammateMessage::ShutdownResponse { from, approve, reason, .. } => {
                if !self.log(&from, EventKind::ShutdownAnswer) {
                } else if approve {
                    tracing::debug!(teammate = %from, "approved shutdown");
                } else {
                    let why = reason.as_deref().map(sanitize::line).unwrap_or_default();
                    tracing::warn!(teammate = %from, "rejected shutdown: {why}");
                }
            }
            TeammateMessage::ShutdownRequest { from, reason, .. } => {
                if self.log(&from, EventKind::ShutdownRequest) {
                    tracing::info!(teammate = %from, "asks to shut down: {}", sanitize::line(&reason));
                }
            }
            TeammateMessage::AccessDenied { from, task_id, operation, reason } => {
                let task = task_id.as_deref().unwrap_or("-").to_string();
                let line = format!("{operation} denied: {}", sanitize::line(&reason));
                let log = self.book.denial(Denial { teammate: from.clone(), task: task_id, operation, reason });
                if log != Log::Counted {
                    tracing::warn!(teammate = %from, task = %task, "{line}");
                }
                if log == Log::LastLine {
                    said_enough(&from, EventKind::Denial);
                }
            }
            // At most `inbox_len` per teammate over the run (the sandbox
            // refuses more with `inbox-full`).
            TeammateMessage::Message { from, body, .. } => {
                tracing::info!(teammate = %from, "to team-lead: {}", sanitize::line(&body));
                self.messages.push(LeadMessage { from, body, at_unix_ms: Some(crate::tasks::unix_ms()) });
            }
        }
    }

    /// Counts an event and says whether to log it.
    fn log(&mut self, from: &str, kind: EventKind) -> bool {
        match self.book.count(from, kind) {
            Log::Line => true,
            Log::LastLine => {
                said_enough(from, kind);
                true
            }
            Log::Counted => false,
        }
    }

    /// Closing lines: how many events of each kind were only counted.
    fn log_unlogged(&self) {
        for (id, kinds) in self.book.unlogged() {
            let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {}", k.name())).collect();
            tracing::info!(teammate = %id, "in all: {}", counts.join(", "));
        }
    }

    /// Tells `id` that work is waiting, if it is idle and could claim some.
    fn wake(&self, id: &str) {
        let Some(member) = self.team.roster.snapshot().into_iter().find(|m| m.id == id) else {
            return;
        };
        if member.state == Liveness::Idle && self.team.tasks.has_claimable_for(&member.id, &member.group) {
            let _ = self.team.mailbox.send(&member.id, Incoming::TasksAvailable);
        }
    }

    /// Wakes every idle teammate that could claim a task now.
    fn wake_idle(&self) {
        super::steer::wake_idle(&self.team);
    }
}
