//! `swarm-host plan <team.toml>`: the validated plan of a team, without
//! running it, so that a person can review the breakdown before any
//! teammate writes a line. A team with a `goal` is planned by its lead with
//! the team's models (rejected plans go back to the lead, as in `run`);
//! the model usage is printed on stderr. `--json` prints the saved-plan
//! format that `run --plan` reads; `--output` writes it to a file.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use super::{CacheArgs, CliResult, EXIT_CONFIG, EXIT_LIMIT, EXIT_OK, config_error};
use crate::coordinator::plan::build_with_planner;
use crate::coordinator::plan::file::PlanFile;
use crate::coordinator::{Loaded, Plan};

/// `swarm-host plan` options.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The team file.
    pub team: PathBuf,
    /// Print the plan as JSON (the format `run --plan` reads).
    #[arg(long)]
    pub json: bool,
    /// Also write the plan as JSON to this file.
    #[arg(long, short, value_name = "PLAN.json")]
    pub output: Option<PathBuf>,
    /// Shared plugin-cache options.
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Record the lead's model calls in DIR (as `run --llm-record`).
    #[arg(long, value_name = "DIR", conflicts_with = "llm_replay")]
    pub llm_record: Option<PathBuf>,
    /// Answer the lead's model calls from the cassettes in DIR.
    #[arg(long, value_name = "DIR")]
    pub llm_replay: Option<PathBuf>,
}

/// `swarm-host plan <team.toml>`.
pub async fn plan(args: &PlanArgs) -> CliResult {
    let loaded = Loaded::read(&args.team).map_err(config_error)?;
    let mode = match (&args.llm_record, &args.llm_replay) {
        (Some(dir), _) => crate::llm::Mode::Record(dir.clone()),
        (None, Some(dir)) => crate::llm::Mode::Replay(dir.clone()),
        (None, None) => crate::llm::Mode::Live,
    };
    let models = match loaded.llm_config(mode).map_err(config_error)? {
        Some(config) => Some(Arc::new(crate::llm::Models::new(config).map_err(config_error)?)),
        None => None,
    };
    let port = models.clone().map(|m| m as crate::llm::SharedModelPort);
    let (plan, _) = build_with_planner(&loaded, args.cache.dir().as_deref(), port).await.map_err(|e| {
        let code = if e.0.iter().any(|p| p.limit.is_some()) { EXIT_LIMIT } else { EXIT_CONFIG };
        (code, e.to_string())
    })?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let file = PlanFile::of(&plan, loaded.team.goal.as_deref());
    let json = serde_json::to_string_pretty(&file).map_err(|e| (super::EXIT_INTERNAL, e.to_string()))?;
    if let Some(path) = &args.output {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| (super::EXIT_INTERNAL, format!("cannot write the plan to {}: {e}", path.display())))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", text(&plan, loaded.team.goal.as_deref()));
    }
    if let Some(m) = models.filter(|m| !m.usage().is_empty()) {
        let t = m.usage().total;
        eprintln!(
            "planning used {} model call(s), {} tokens in, {} out, ~${:.4}",
            t.calls, t.input_tokens, t.output_tokens, t.usd
        );
    }
    Ok(EXIT_OK)
}

/// Files listed per task in the text form; the rest are counted.
const FILES_SHOWN: usize = 10;

/// The plan for people: one block per task; text from the team file or a
/// model is sanitised.
pub fn text(plan: &Plan, goal: Option<&str>) -> String {
    let s = crate::sanitize::line;
    let mut out = format!("Plan of team {}: {} task(s)\n", s(&plan.team), plan.tasks.len());
    if let Some(goal) = goal {
        let _ = writeln!(out, "goal: {}", s(goal));
    }
    for t in &plan.tasks {
        let _ = writeln!(out, "\n{}: {}", s(&t.id), s(&t.subject));
        let _ = writeln!(out, "  owner: {}", t.owner.as_deref().map_or_else(|| "any teammate".into(), s));
        if !t.blocked_by.is_empty() {
            let _ = writeln!(out, "  after: {}", t.blocked_by.iter().map(|b| s(b)).collect::<Vec<_>>().join(", "));
        }
        let _ = writeln!(out, "  owns: {}", t.creates.iter().map(|p| s(p)).collect::<Vec<_>>().join(", "));
        let files: Vec<String> = t.owned_files.iter().take(FILES_SHOWN).map(|f| s(f)).collect();
        let more = t.owned_files.len().saturating_sub(FILES_SHOWN);
        let _ = write!(out, "  {} existing file(s)", t.owned_files.len());
        if !files.is_empty() {
            let _ = write!(out, ": {}", files.join(", "));
        }
        if more > 0 {
            let _ = write!(out, " and {more} more");
        }
        out.push('\n');
        for line in t.description.lines() {
            let _ = writeln!(out, "  | {}", s(line));
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {}", s(w));
    }
    out
}
