//! `swarm-host teammate`: one native teammate process. It connects to the
//! coordinator's Unix socket, proves the run's token, receives its launch
//! configuration, and runs its plugin in the same wasmtime sandbox as the
//! in-process backend, every import bridged over the socket. The workspace
//! root is opened here as a capability directory (file bytes never cross
//! the socket); ownership is checked against the task the coordinator
//! handed out. The process ends when its teammate does, or at once when the
//! coordinator closes the connection.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::backend::link::{Connected, connect};
use crate::port::SharedPort;
use crate::protocol::frame::LaunchConfig;
use crate::sandbox::workspace::{Policy, PolicySpec};
use crate::sandbox::{Launch, Sandbox, Workspace};
use crate::team::{Beat, ExitReason};

/// Largest token file accepted, in bytes.
const MAX_TOKEN_BYTES: u64 = 1024;

/// Identity of a teammate process (set by the backend that starts it).
#[derive(Debug, Clone, clap::Args)]
pub struct TeammateArgs {
    /// The teammate id this process runs, e.g. `todo-scan-1`.
    #[arg(long)]
    pub agent_id: String,
    /// The team it belongs to.
    #[arg(long)]
    pub team: String,
    /// The coordinator's Unix socket.
    #[arg(long)]
    pub socket: PathBuf,
    /// The teammate's colour in the team view.
    #[arg(long, default_value = "default")]
    pub color: String,
    /// File holding the run's token [default: `token` beside the socket].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Runs the teammate; the exit code is 0 when it finished cleanly, 1 when
/// it failed, trapped or was killed, 3 when it could not reach the team.
pub async fn main(args: TeammateArgs) -> u8 {
    println!("swarm-host teammate {} of team {} ({})", args.agent_id, args.team, args.color);
    match serve(&args).await {
        Ok(reason) => {
            println!("{}: {reason}", args.agent_id);
            if reason.is_clean() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: teammate {}: {e:#}", args.agent_id);
            3
        }
    }
}

fn read_token(args: &TeammateArgs) -> anyhow::Result<String> {
    let path = match &args.token_file {
        Some(p) => p.clone(),
        None => args.socket.parent().context("the socket path has no directory")?.join("token"),
    };
    let size = std::fs::metadata(&path).with_context(|| format!("cannot read the run token {}", path.display()))?.len();
    if size > MAX_TOKEN_BYTES {
        bail!("token file {} is {size} bytes, over the {MAX_TOKEN_BYTES}-byte limit", path.display());
    }
    let token =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read the run token {}", path.display()))?;
    Ok(token.trim().to_string())
}

async fn serve(args: &TeammateArgs) -> anyhow::Result<ExitReason> {
    let token = read_token(args)?;
    let Connected { config, remote, writer } = connect(&args.socket, &args.agent_id, &token).await?;
    let reason = if config.team != args.team {
        ExitReason::spawn_failed(format!(
            "started for team `{}`, but the coordinator runs team `{}`",
            args.team, config.team
        ))
    } else {
        let link: SharedPort = remote.clone();
        tokio::select! {
            reason = run_teammate(&config, link, remote.clone()) => reason,
            why = remote.lost() => ExitReason::killed(format!("connection to the coordinator lost: {why}")),
        }
    };
    remote.exit(reason.clone(), writer).await;
    Ok(reason)
}

/// Loads the plugin, opens the workspace and runs the teammate to its end.
async fn run_teammate(config: &LaunchConfig, link: SharedPort, models: crate::llm::SharedModelPort) -> ExitReason {
    let spawn_failed = |e: String| ExitReason::spawn_failed(crate::sanitize::line(&e));
    let sandbox = match &config.cache_dir {
        Some(dir) => Sandbox::with_cache(dir.clone()),
        None => Sandbox::new(),
    };
    // Model calls go to the coordinator, which holds the keys; each one's
    // transcript is shown on this process's stderr (its pane).
    let sandbox = sandbox.with_models(std::sync::Arc::new(super::pane::PaneTranscript::new(models)));
    let limits = crate::sandbox::Limits::from(&config.limits);
    let (path, load_limits) = (config.plugin.clone(), limits.clone());
    // Compiling blocks; heartbeats keep flowing from the other workers.
    let plugin = match tokio::task::spawn_blocking(move || sandbox.load(&path, &load_limits)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return spawn_failed(e.to_string()),
        Err(e) => return spawn_failed(format!("plugin loader panicked: {e}")),
    };
    let root = match Workspace::open_root(&config.root) {
        Ok(r) => r,
        Err(e) => return spawn_failed(format!("cannot open workspace root {}: {e}", config.root.display())),
    };
    let rules = &config.workspace;
    let spec = PolicySpec {
        read_allow: rules.read_allow.clone(),
        exclude: rules.exclude.clone(),
        creates: rules.creates.clone(),
        protected: rules.protected.clone(),
    };
    let policy = match Policy::build(&config.root, config.read.into(), &spec) {
        Ok(p) => Arc::new(p),
        Err(e) => return spawn_failed(format!("workspace policy: {e}")),
    };
    let mut workspace = Workspace::with_policy(root, policy, limits.file_bytes());
    if let Some(path) = &rules.overlay {
        match Workspace::open_root(path) {
            Ok(dir) => workspace = workspace.with_overlay(dir),
            Err(e) => return spawn_failed(format!("cannot open the dry-run overlay {}: {e}", path.display())),
        }
    }
    if let Some(path) = &rules.keep {
        match Workspace::open_root(path) {
            Ok(dir) => workspace = workspace.with_keep(dir),
            Err(e) => return spawn_failed(format!("cannot open the diffs' keep directory {}: {e}", path.display())),
        }
    }
    let workspace = Arc::new(workspace);
    let launch = Launch { id: config.id.clone(), group: config.group.clone(), color: config.color.clone(), limits };
    let instance = match plugin.instantiate_linked(&launch, link.clone(), &config.team, workspace).await {
        Ok(i) => i,
        Err(e) => {
            let message = crate::sanitize::line(&format!("{e:#}"));
            return ExitReason::SpawnFailed { message, limit: crate::sandbox::limit_kind_of(&e) };
        }
    };
    link.beat(&config.id, Beat::Started);
    instance.run().await
}
