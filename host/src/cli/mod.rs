//! The `swarm-host` command line.
//!
//! Exit codes: 0 every task completed; 1 some task failed; 2 usage, team
//! file or plugin error (nothing ran); 3 internal error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use crate::sandbox::Sandbox;

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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where teammates run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Sandboxed component instances inside this process.
    InProcess,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, run and report a team.
    Run {
        /// The team file.
        team: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Where teammates run.
        #[arg(long, value_enum, default_value = "in-process")]
        backend: BackendChoice,
        /// Time a teammate has to answer a shutdown request before it is killed.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        shutdown_grace: Duration,
        /// Findings shown per task in the text report.
        #[arg(long, default_value_t = 20)]
        max_findings: usize,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("swarm_host=info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
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
    match cli.command {
        Command::Run {
            team,
            json,
            backend: BackendChoice::InProcess,
            shutdown_grace,
            max_findings,
        } => run(team, json, shutdown_grace, max_findings).await,
    }
}

async fn run(team: PathBuf, json: bool, shutdown_grace: Duration, max_findings: usize) -> u8 {
    let loaded = match Loaded::read(&team) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    let plan = match Plan::build(&loaded) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let (tx, interrupts) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                break;
            }
        }
    });
    let sandbox = Sandbox::new();
    let report = match run_in_process(
        &plan,
        &sandbox,
        RunOptions {
            shutdown_grace,
            interrupts,
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text(max_findings));
    }
    if report.success() { EXIT_OK } else { EXIT_TASKS_FAILED }
}
