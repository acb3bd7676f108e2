//! The `swarm-host` command line.
//!
//! Exit codes: 0 every task completed; 1 some task failed; 2 usage, team
//! file or plugin error (nothing ran); 3 internal error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub mod teammate;
pub mod view;

use std::sync::{Arc, OnceLock};

use crate::backend::detect::Kind;
use crate::coordinator::plan::build_with_planner;
use crate::coordinator::run::run_on;
use crate::coordinator::{Loaded, Observer, Plan, Restored, RunOptions};
use crate::sandbox::Sandbox;
use crate::sandbox::planner::{Planner, TaskResult};
use crate::state::StateDir;
use crate::tasks::Status;

/// Every task completed.
pub const EXIT_OK: u8 = 0;
/// At least one task failed.
pub const EXIT_TASKS_FAILED: u8 = 1;
/// Bad usage, team file or plugin: nothing ran.
pub const EXIT_CONFIG: u8 = 2;
/// swarm-host itself failed.
pub const EXIT_INTERNAL: u8 = 3;

/// Runs multi-agent teams of sandboxed WebAssembly teammates.
#[derive(Debug, Parser)]
#[command(name = "swarm-host", version, about)]
pub struct Cli {
    /// Where team state lives (one directory per team).
    #[arg(long, global = true, default_value = ".swarm", env = "SWARM_STATE_DIR")]
    pub state_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where teammates run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// tmux panes if inside tmux, else iTerm2 panes if inside iTerm2, else in-process.
    Auto,
    /// Sandboxed component instances inside this process.
    InProcess,
    /// Headless native processes (no UI; for CI and servers).
    #[value(alias = "headless")]
    Process,
    /// Native processes in tmux panes of the coordinator's window.
    Tmux,
    /// Native processes in iTerm2 split panes.
    Iterm,
}

/// Options shared by the commands that run a team.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where teammates run.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Time a teammate has to answer a shutdown request before it is killed.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Findings shown per task in the text report.
    #[arg(long, default_value_t = 20)]
    pub max_findings: usize,
    /// Directory of compiled plugins [default: $XDG_CACHE_HOME/swarm-host or ~/.cache/swarm-host].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile plugins afresh without reading or writing the cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, run and report a team.
    Run {
        /// The team file.
        team: PathBuf,
        /// Start over even if an unfinished run of this team has state.
        #[arg(long)]
        fresh: bool,
        /// Shared run options.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Finish the remaining tasks of a run whose coordinator stopped
    /// (crashed, killed or interrupted): completed tasks are not rerun,
    /// tasks that were in flight are.
    Resume {
        /// The team name.
        team: String,
        /// Shared run options.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Show the roster and task list of a running or finished team, or list
    /// the teams with state.
    Status {
        /// The team name; without it, every team with state is listed.
        team: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one teammate as a native process connected to a coordinator's
    /// socket (started by the process, tmux and iTerm2 backends).
    Teammate(teammate::TeammateArgs),
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("swarm_host=info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogLine(Vec::new()))
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// The live view, once a run shows one; log lines then go above its bars.
static VIEW: OnceLock<Arc<view::TeamView>> = OnceLock::new();

/// One log line, printed when dropped: above the team view's bars if one is
/// shown, else straight to stderr.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        match VIEW.get() {
            Some(view) => view.println(line.trim_end()),
            None => {
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(&self.0);
            }
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    ExitCode::from(runtime.block_on(dispatch(cli)))
}

async fn dispatch(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Run { team, fresh, args } => run(&cli.state_dir, &team, fresh, args).await,
        Command::Resume { team, args } => resume(&cli.state_dir, &team, args).await,
        Command::Status { team, json } => status(&cli.state_dir, team.as_deref(), json),
        Command::Teammate(args) => Ok(teammate::main(args).await),
    };
    result.unwrap_or_else(|(code, message)| {
        eprintln!("error: {message}");
        code
    })
}

type CliResult = Result<u8, (u8, String)>;

fn config_error(e: impl std::fmt::Display) -> (u8, String) {
    (EXIT_CONFIG, e.to_string())
}

async fn run(state_dir: &Path, team: &Path, fresh: bool, args: RunArgs) -> CliResult {
    let loaded = Loaded::read(team).map_err(config_error)?;
    let cache_dir = if args.no_cache { None } else { args.cache_dir.clone().or_else(Sandbox::default_cache_dir) };
    let (plan, planner) = build_with_planner(&loaded, cache_dir.as_deref()).await.map_err(config_error)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    if !fresh
        && let Ok(existing) = StateDir::open(state_dir, &plan.team)
        && let Ok(tasks) = existing.read_tasks()
        && tasks.iter().any(|t| matches!(t.status, Status::Pending | Status::InProgress))
    {
        return Err(config_error(format!(
            "team `{}` has an unfinished run in {}: continue it with `swarm-host resume {}`, or start over with `swarm-host run --fresh`",
            plan.team,
            existing.path().display(),
            plan.team
        )));
    }
    let state = StateDir::create(state_dir, &plan.team).map_err(config_error)?;
    execute(&plan, state, None, planner, args).await
}

async fn resume(state_dir: &Path, team: &str, args: RunArgs) -> CliResult {
    let state = StateDir::open(state_dir, team).map_err(config_error)?;
    let plan = state.read_plan().map_err(config_error)?;
    if let Ok(info) = state.read_run()
        && !info.finished
        && info.pid != std::process::id()
        && info.coordinator_alive()
    {
        return Err(config_error(format!("team `{team}` is still running (coordinator pid {})", info.pid)));
    }
    let restored = Restored::load(&state, &plan).map_err(config_error)?;
    execute(&plan, state, Some(restored), None, args).await
}

async fn execute(
    plan: &Plan,
    state: StateDir,
    restored: Option<Restored>,
    planner: Option<Planner>,
    args: RunArgs,
) -> CliResult {
    let (tx, interrupts) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                break;
            }
        }
    });
    let kind = match args.backend {
        BackendChoice::Auto => None,
        BackendChoice::InProcess => Some(Kind::InProcess),
        BackendChoice::Process => Some(Kind::Process),
        BackendChoice::Tmux => Some(Kind::Tmux),
        BackendChoice::Iterm => Some(Kind::Iterm),
    };
    // Decided once per run.
    let kind = crate::backend::detect::Env::current().resolve(kind).map_err(config_error)?;
    let cache_dir = if args.no_cache { None } else { args.cache_dir.clone().or_else(Sandbox::default_cache_dir) };
    let sandbox = match &cache_dir {
        Some(dir) => Sandbox::with_cache(dir.clone()),
        None => Sandbox::new(),
    };
    let observer = std::io::stderr().is_terminal().then(|| {
        let view = VIEW.get_or_init(|| Arc::new(view::TeamView::new(plan.tasks.len()))).clone();
        Observer(Arc::new(move |team| view.update(team)))
    });
    let options =
        RunOptions { shutdown_grace: args.shutdown_grace, interrupts, state: Some(state.clone()), restored, observer };
    let mut report = run_on(kind, plan, &sandbox, options, cache_dir).await.map_err(config_error)?;
    if let Some(planner) = planner {
        let results = report
            .tasks
            .iter()
            .map(|t| TaskResult {
                id: t.id.clone(),
                completed: t.status == Status::Completed,
                summary: t.summary.clone().or_else(|| t.error.clone()).unwrap_or_default(),
                findings: t.findings.len() as u32,
            })
            .collect();
        match planner.synthesize(&plan.team, results).await {
            Ok(text) => {
                report.synthesis = Some(text);
                if let Err(e) = state.write_report(&report) {
                    tracing::error!("cannot save the report: {e}");
                }
            }
            Err(e) => tracing::warn!("the planner's synthesis failed: {e}"),
        }
    }
    if let Some(view) = VIEW.get() {
        view.finish();
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text(args.max_findings));
    }
    Ok(if report.success() { EXIT_OK } else { EXIT_TASKS_FAILED })
}

fn status(state_dir: &Path, team: Option<&str>, json: bool) -> CliResult {
    let Some(team) = team else {
        let teams = StateDir::list(state_dir);
        if json {
            println!("{}", serde_json::json!({ "v": 1, "teams": teams }));
        } else if teams.is_empty() {
            println!("no team state in {}", state_dir.display());
        } else {
            for t in teams {
                println!("{t}");
            }
        }
        return Ok(EXIT_OK);
    };
    let state = StateDir::open(state_dir, team).map_err(config_error)?;
    let tasks = state.read_tasks().map_err(config_error)?;
    let roster = state.read_roster().unwrap_or_default();
    let run = state.read_run().ok();
    let phase = match &run {
        Some(r) if r.finished => "finished",
        Some(r) if r.coordinator_alive() => "running",
        Some(_) => "stopped (coordinator gone: `swarm-host resume` continues it)",
        None => "unknown",
    };
    if json {
        let value =
            serde_json::json!({ "v": 1, "team": team, "phase": phase, "run": run, "roster": roster, "tasks": tasks });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    let s = crate::sanitize::line;
    println!("Team {} — {phase}", s(team));
    for m in &roster {
        let task = m.task.as_deref().map(|t| format!(" on {}", s(t))).unwrap_or_default();
        let progress = m.progress.map(|(d, t)| format!(" {d}/{t}")).unwrap_or_default();
        let exit = m.exit.as_deref().map(|e| format!(" ({})", s(e))).unwrap_or_default();
        println!("  {:<20} {:<9}{task}{progress}{exit}", s(&m.id), format!("{:?}", m.state).to_lowercase());
    }
    let count = |st: Status| tasks.iter().filter(|t| t.status == st).count();
    println!(
        "Tasks: {} completed, {} failed, {} in progress, {} pending",
        count(Status::Completed),
        count(Status::Failed),
        count(Status::InProgress),
        count(Status::Pending)
    );
    for t in &tasks {
        let who = t.holder.as_deref().or(t.attempts.last().map(|a| a.teammate.as_str())).unwrap_or("-");
        println!(
            "  {:<12} {:<11} {:<20} {}",
            s(&t.spec.id),
            format!("{:?}", t.status).to_lowercase(),
            s(who),
            s(&t.spec.subject)
        );
    }
    Ok(EXIT_OK)
}
