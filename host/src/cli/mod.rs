//! The `swarm-host` command line: the clap types and the dispatch, one arm
//! per command; each command lives in its own module.
//!
//! Exit codes are in [`exit`]: 0 every task completed; 1 some task failed
//! (or `--fail-on` failed the run on findings, or Ctrl-C / SIGTERM stopped
//! it); 2 usage, team file or plugin error (nothing ran); 3 internal error;
//! 4 a sandbox limit stopped a task; 5 the run's timeout stopped it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::protocol::control::ControlOp;

pub mod exit;
pub mod inspect;
pub mod logging;
pub mod new;
pub mod pane;
pub mod plan;
pub mod run;
pub mod status;
pub mod steer;
pub mod team_logs;
pub mod teammate;
pub mod validate;
pub mod view;
pub mod worker;

pub use exit::{EXIT_CONFIG, EXIT_INTERNAL, EXIT_LIMIT, EXIT_OK, EXIT_TASKS_FAILED, EXIT_TIMEOUT};

/// Runs multi-agent teams of sandboxed WebAssembly teammates.
#[derive(Debug, Parser)]
#[command(name = "swarm-host", version, about, after_help = exit::EXIT_CODES_HELP)]
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

/// How a run's report is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportFormat {
    /// Human text.
    #[default]
    Text,
    /// The versioned JSON report.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// JUnit XML, one test case per task, for CI test tabs.
    Junit,
    /// One self-contained HTML page: timeline, tasks, findings, totals.
    Html,
}

/// What in a report fails the run (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FailOnChoice {
    /// Nothing in the report: failed tasks and findings are only reported.
    Never,
    /// Failed tasks, or tasks that did not run (findings do not fail it).
    #[default]
    Error,
    /// Failed tasks, and findings of severity warning or error.
    Warning,
    /// Failed tasks, and findings of any severity (note, warning, error).
    Note,
}

impl From<FailOnChoice> for crate::coordinator::FailOn {
    fn from(c: FailOnChoice) -> Self {
        match c {
            FailOnChoice::Never => Self::Never,
            FailOnChoice::Error => Self::Error,
            FailOnChoice::Warning => Self::Warning,
            FailOnChoice::Note => Self::Note,
        }
    }
}

/// Options shared by the commands that run a team.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Print the report as JSON (same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Where teammates run.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Time a teammate has to answer a shutdown request before it is killed.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Stop the whole run gracefully after this long (e.g. `10m`): shutdown
    /// requests, then a kill after --shutdown-grace; unfinished tasks are
    /// reported as not run, `swarm-host resume` continues them, and the exit
    /// code is 5. Overrides `timeout` in the team file.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// What in the report fails the run (exit 1): `error` failed tasks only;
    /// `warning` also findings of severity warning or error; `note` also any
    /// finding; `never` nothing (the report is only printed).
    #[arg(long, value_enum, default_value_t = FailOnChoice::Error)]
    pub fail_on: FailOnChoice,
    /// Findings shown per task in the text report.
    #[arg(long, default_value_t = 20)]
    pub max_findings: usize,
    /// Also write the HTML report to this file, whatever `--format` prints.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write every file the tasks changed as one patch (`git diff`
    /// form, for `git apply`) to this file. Binary files and files over the
    /// diff size limit are left out, and named on stderr.
    #[arg(long, value_name = "FILE")]
    pub patch: Option<PathBuf>,
    /// Change nothing under the root: teammates write to a private overlay
    /// (reads see their changes); the report's diffs and `--patch` are the
    /// output. Nothing is kept to resume.
    #[arg(long)]
    pub dry_run: bool,
    /// In GitHub Actions (`GITHUB_ACTIONS=true`), also print findings and
    /// failed tasks as `::error`/`::warning`/`::notice` annotations (on
    /// stderr). The job summary is written to `$GITHUB_STEP_SUMMARY` there
    /// either way.
    #[arg(long)]
    pub annotations: bool,
    /// Shared plugin-cache options.
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Record every model call in DIR, one cassette per teammate
    /// (`<teammate>.jsonl`: request fingerprint, canonical request, answer;
    /// no headers, no keys).
    #[arg(long, value_name = "DIR", conflicts_with = "llm_replay")]
    pub llm_record: Option<PathBuf>,
    /// Answer every model call from the cassettes in DIR, with no network
    /// and no key; a call that matches nothing is a `replay-miss`.
    #[arg(long, value_name = "DIR")]
    pub llm_replay: Option<PathBuf>,
    /// Run the tasks on NATS workers (`swarm-host worker`) instead of
    /// local teammates; see docs/BACKENDS.md, "Scaling out".
    #[command(flatten)]
    pub nats: worker::NatsArgs,
    /// With --nats: how long a worker may go without a heartbeat before its
    /// task is handed to another worker.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "nats")]
    pub ack_wait: Duration,
}

impl RunArgs {
    /// Where model answers come from: `--llm-record`, `--llm-replay`, or live.
    pub fn llm_mode(&self) -> crate::llm::Mode {
        match (&self.llm_record, &self.llm_replay) {
            (Some(dir), _) => crate::llm::Mode::Record(dir.clone()),
            (None, Some(dir)) => crate::llm::Mode::Replay(dir.clone()),
            (None, None) => crate::llm::Mode::Live,
        }
    }

    /// The report format asked for (`--json` is `--format json`).
    pub fn report_format(&self) -> ReportFormat {
        if self.json { ReportFormat::Json } else { self.format }
    }
}

/// Where compiled plugins are cached.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Directory of compiled plugins [default: $XDG_CACHE_HOME/swarm-host or ~/.cache/swarm-host].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile plugins afresh without reading or writing the cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache directory in force, if caching is on.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache { None } else { self.cache_dir.clone().or_else(crate::sandbox::Sandbox::default_cache_dir) }
    }

    /// A sandbox using the cache in force.
    pub fn sandbox(&self) -> crate::sandbox::Sandbox {
        match self.dir() {
            Some(dir) => crate::sandbox::Sandbox::with_cache(dir),
            None => crate::sandbox::Sandbox::new(),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, run and report a team.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Run {
        /// The team file.
        team: PathBuf,
        /// Start over even if an unfinished run of this team has state.
        #[arg(long)]
        fresh: bool,
        /// Run the tasks of this saved plan (`swarm-host plan --json`,
        /// possibly edited) instead of the team file's tasks, planner and
        /// goal; it is validated again like a team file.
        #[arg(long, value_name = "PLAN.json")]
        plan: Option<PathBuf>,
        /// Shared run options.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Plan a team without running it: the team file's tasks and its
    /// planner's or lead's (a goal is planned with the lead's model, with
    /// replans), validated; prints the plan, or saves it for `run --plan`.
    /// Exits 0 with a valid plan, 2 with every problem listed.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Plan(plan::PlanArgs),
    /// Finish the remaining tasks of a run whose coordinator stopped
    /// (crashed, killed or interrupted): completed tasks are not rerun,
    /// tasks that were in flight are.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Resume {
        /// The team name.
        team: String,
        /// Run plugins that changed since the run started (their sha256 is
        /// pinned in the team's state); without it, a changed plugin stops
        /// the resume.
        #[arg(long)]
        allow_changed_plugins: bool,
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
    /// Check a team file without running it: the plan (ownership, owners,
    /// dependencies, the planner's tasks) and every plugin against its WIT
    /// world. Exits 0 if valid, 2 with every problem listed.
    Validate {
        /// The team file.
        team: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Shared plugin-cache options.
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Create a plugin crate: a working teammate with a unit test, a README
    /// and a team file that runs it.
    New(new::NewArgs),
    /// Work with plugin files.
    Plugins {
        /// What to do with a plugin.
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Send a message to a teammate of a running team, or to its lead
    /// (`team-lead`), through the coordinator's control socket.
    Send {
        /// The team name.
        team: String,
        /// A teammate id, or `team-lead`.
        to: String,
        /// The message.
        text: String,
    },
    /// Stop a running team gracefully (like Ctrl-C in its terminal), or one
    /// of its teammates (its task goes back to the others).
    Stop {
        /// The team name.
        team: String,
        /// The teammate; without it, the whole team.
        teammate: Option<String>,
    },
    /// Follow a running team's events and the ownership requests waiting
    /// for a person, until it ends; answer a request by typing `grant <id>`
    /// or `deny <id>` (or with `swarm-host answer` from anywhere).
    Attach {
        /// The team name.
        team: String,
    },
    /// Answer an ownership request waiting for a person (`ownership_requests
    /// = "ask"`).
    Answer {
        /// The team name.
        team: String,
        /// The request id, e.g. `r1` (shown by `attach` and `pending`).
        request: String,
        /// The decision.
        decision: Decision,
    },
    /// List the ownership requests of a running team waiting for a person.
    Pending {
        /// The team name.
        team: String,
    },
    /// Run one teammate as a native process connected to a coordinator's
    /// socket (started by the process, tmux and iTerm2 backends).
    Teammate(teammate::TeammateArgs),
    /// Work for a team whose coordinator runs with `--nats`: pull its
    /// tasks and run their teammates here (needs the `nats` feature).
    Worker(worker::WorkerArgs),
}

/// A person's decision on an ownership request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Decision {
    /// The file moves to the requester's task (unless a running task owns it).
    Grant,
    /// Refused.
    Deny,
}

/// `swarm-host plugins ...`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Show a plugin's world, imports, exports and size, and whether it fits
    /// this host's `teammate` or `planner` world. Exits 2 if it fits neither.
    Inspect {
        /// The `.wasm` component.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Shared plugin-cache options.
        #[command(flatten)]
        cache: CacheArgs,
    },
}

/// What a command ends with: an exit code, or an exit code and a message
/// printed as `error: ...` on stderr.
pub type CliResult = Result<u8, (u8, String)>;

/// A usage, team file or plugin error (exit 2).
pub fn config_error(e: impl std::fmt::Display) -> (u8, String) {
    (EXIT_CONFIG, e.to_string())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    // A teammate process runs one guest: one thread serves it, its socket
    // and its heartbeat, so a call's reply reaches the guest without a
    // wake-up of another thread (compiling still runs on the blocking pool).
    let mut builder = match cli.command {
        Command::Teammate(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    ExitCode::from(runtime.block_on(dispatch(cli)))
}

/// A control request, off the async workers (the client blocks).
async fn blocking(state_dir: PathBuf, team: String, op: ControlOp) -> CliResult {
    tokio::task::spawn_blocking(move || steer::control(&state_dir, &team, op))
        .await
        .unwrap_or_else(|e| Err((EXIT_INTERNAL, format!("the control client stopped: {e}"))))
}

async fn dispatch(cli: Cli) -> u8 {
    let state_dir = cli.state_dir;
    let result = match cli.command {
        Command::Run { team, fresh, plan, args } => run::run(&state_dir, &team, fresh, plan.as_deref(), args).await,
        Command::Plan(args) => plan::plan(&args).await,
        Command::Resume { team, allow_changed_plugins, args } => {
            run::resume(&state_dir, &team, allow_changed_plugins, args).await
        }
        Command::Status { team, json } => status::status(&state_dir, team.as_deref(), json),
        Command::Validate { team, json, cache } => validate::validate(&team, json, &cache).await,
        Command::New(args) => new::new(&args),
        Command::Plugins { command: PluginsCommand::Inspect { file, json, cache } } => {
            inspect::inspect(&file, json, &cache).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "swarm-host", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Teammate(args) => Ok(teammate::main(args).await),
        Command::Send { team, to, text } => blocking(state_dir, team, ControlOp::Send { to, text }).await,
        Command::Stop { team, teammate } => blocking(state_dir, team, ControlOp::Stop { teammate }).await,
        Command::Attach { team } => blocking(state_dir, team, ControlOp::Attach).await,
        Command::Pending { team } => blocking(state_dir, team, ControlOp::Pending).await,
        Command::Answer { team, request, decision } => {
            blocking(state_dir, team, ControlOp::Answer { request, grant: decision == Decision::Grant }).await
        }
        Command::Worker(args) => worker::main(args).await,
    };
    result.unwrap_or_else(|(code, message)| {
        eprintln!("error: {message}");
        code
    })
}
