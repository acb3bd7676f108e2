//! `swarm-host run` and `swarm-host resume`: plan (or restore), run the team
//! with the live view on a terminal and its log files in the state
//! directory, print the report, and pick the exit code.
//!
//! Ctrl-C and SIGTERM are handled alike: the first stops the team gracefully
//! (the report is printed, the state stays resumable), the second kills the
//! teammates. `--timeout` (or the team file's `timeout`) stops the run the
//! same way once it passes.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use super::{
    BackendChoice, CliResult, EXIT_CONFIG, EXIT_INTERNAL, EXIT_LIMIT, ReportFormat, RunArgs, config_error, exit,
    logging,
};
use crate::backend::detect::{Env, Kind};
use crate::coordinator::plan::build_with_planner;
use crate::coordinator::plan::file::PlanFile;
use crate::coordinator::run::{LeadHook, run_on};
use crate::coordinator::state::StateDir;
use crate::coordinator::{Interrupt, Loaded, Observer, Plan, Restored, RunOptions, RunReport, StartError, Verdict};
use crate::sandbox::planner::{Planner, TaskOutcome, TaskResult};
use crate::tasks::Status;

/// `swarm-host run <team.toml> [--plan PLAN.json]`.
pub async fn run(state_dir: &Path, team: &Path, fresh: bool, saved: Option<&Path>, args: RunArgs) -> CliResult {
    args.nats.check_feature()?;
    let loaded = Loaded::read(team).map_err(config_error)?;
    // Keys are read here, by the coordinator only.
    let models = match loaded.llm_config(args.llm_mode()).map_err(config_error)? {
        Some(config) => Some(Arc::new(crate::llm::Models::new(config).map_err(config_error)?)),
        None => None,
    };
    let port = models.clone().map(|m| m as crate::llm::SharedModelPort);
    let (plan, planner) = match saved {
        // A saved plan replaces the team file's tasks and planning; the
        // planner (or lead) still writes the closing text.
        Some(path) => {
            let file = PlanFile::read(path).map_err(config_error)?;
            let plan = file.build(&loaded, path).map_err(config_error)?;
            (plan, closing_planner(&loaded, args.cache.dir(), port).await?)
        }
        None => build_with_planner(&loaded, args.cache.dir().as_deref(), port).await.map_err(|e| {
            // A planner stopped by a sandbox limit is a limit hit, not a bad file
            // (the limit is typed, as the sandbox raised it).
            let code = if e.0.iter().any(|p| p.limit.is_some()) { EXIT_LIMIT } else { EXIT_CONFIG };
            (code, e.to_string())
        })?,
    };
    let planner = planner.map(|p| (p, loaded.team.goal.clone().unwrap_or_default()));
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
    let state = StateDir::create(state_dir, &plan.team)
        .map_err(|e| (EXIT_INTERNAL, format!("cannot keep the team's state: {e}")))?;
    // Held until the run is over: one coordinator per team.
    let _lock = state.lock().map_err(config_error)?;
    let rules = Some(crate::coordinator::steer::ChangeRules::new(&loaded));
    // What `resume` needs to call the same models: names of key variables
    // and paths of key files, never a key.
    if !args.dry_run {
        let settings = loaded.model_settings().map_err(config_error)?;
        state
            .write_models(settings.as_ref())
            .map_err(|e| (EXIT_INTERNAL, format!("cannot keep the team's state: {e}")))?;
    }
    execute(&plan, state, None, (planner, rules), models, args).await
}

/// The team file's planner (or lead), loaded for the closing text of a run
/// of a saved plan.
async fn closing_planner(
    loaded: &Loaded,
    cache: Option<std::path::PathBuf>,
    models: Option<crate::llm::SharedModelPort>,
) -> Result<Option<Planner>, (u8, String)> {
    let Some(entry) = &loaded.team.planner else {
        return Ok(None);
    };
    let (path, limits) = (loaded.dir.join(&entry.get_ref().plugin), loaded.team.limits.clone());
    let planner = tokio::task::spawn_blocking(move || Planner::load_with_cache(&path, &limits, cache.as_deref()))
        .await
        .map_err(|e| (EXIT_INTERNAL, format!("planner load: {e}")))?
        .map_err(config_error)?;
    Ok(Some(match models {
        Some(m) => planner.with_models(m),
        None => planner,
    }))
}

/// `swarm-host resume <team> [--allow-changed-plugins]`.
pub async fn resume(state_dir: &Path, team: &str, allow_changed_plugins: bool, args: RunArgs) -> CliResult {
    args.nats.check_feature()?;
    let state = StateDir::open(state_dir, team).map_err(config_error)?;
    // Held until the run is over; taken before reading, so that what is read
    // is what the last coordinator left.
    let _lock = state.lock().map_err(config_error)?;
    let plan = state.read_plan().map_err(config_error)?;
    for warning in state.check_plugins(allow_changed_plugins).map_err(config_error)? {
        tracing::warn!("{warning}");
    }
    let restored = Restored::load(&state, &plan).map_err(config_error)?;
    // The run's model settings were kept with its state; the keys are read
    // again now, from this environment (and key files).
    let models = match state.read_models().map_err(config_error)? {
        Some(settings) => {
            let file = state.path().join(crate::coordinator::state::MODELS_FILE);
            let config = settings
                .config(args.llm_mode())
                .map_err(|e| config_error(format!("{}: {} (resuming team `{team}`)", file.display(), e.message)))?;
            Some(Arc::new(crate::llm::Models::new(config).map_err(config_error)?))
        }
        None => None,
    };
    // The team file is not kept with the state: a resumed run has no lead
    // and no rules for a lead's changes.
    execute(&plan, state, Some(restored), (None, None), models, args).await
}

/// The planner (or lead) with the team's goal, and the rules the lead's
/// changes are checked against (none in a resumed run).
type Lead = (Option<(Planner, String)>, Option<crate::coordinator::steer::ChangeRules>);

async fn execute(
    plan: &Plan,
    state: StateDir,
    restored: Option<Restored>,
    planner: Lead,
    models: Option<Arc<crate::llm::Models>>,
    args: RunArgs,
) -> CliResult {
    let logs = logging::team_logs();
    let log_dir = super::team_logs::dir_of(state.path());
    if let Err(e) = logs.open(&log_dir, restored.is_none()) {
        tracing::warn!("cannot write the team's log files in {}: {e}", log_dir.display());
    }
    let result = execute_logged(plan, state, restored, planner, models, &args).await;
    logs.close();
    let mut report = result?;
    logging::finish_view();
    report.verdict = Some(Verdict::of(&report, args.fail_on.into()));
    match args.report_format() {
        ReportFormat::Text => print!("{}", report.to_text(args.max_findings)),
        ReportFormat::Json => println!("{}", report.to_json()),
        ReportFormat::Sarif => println!("{}", report.to_sarif()),
        ReportFormat::Junit => print!("{}", report.to_junit()),
        ReportFormat::Html => print!("{}", report.to_html()),
    }
    if let Some(path) = &args.html
        && let Err(e) = std::fs::write(path, report.to_html())
    {
        eprintln!("error: cannot write the HTML report to {}: {e}", path.display());
        return Ok(EXIT_INTERNAL);
    }
    if let Some(path) = &args.patch
        && let Err(e) = write_patch(path, &report)
    {
        eprintln!("error: cannot write the patch to {}: {e}", path.display());
        return Ok(EXIT_INTERNAL);
    }
    github_outputs(&report, &args);
    let code = exit::of_report(&report);
    if code == EXIT_INTERNAL {
        let why = report.state_errors.first().or(report.interrupted.as_ref()).map_or("", String::as_str);
        eprintln!("error: {}", crate::sanitize::line(why));
    }
    // The process exits next: freeing every finding one by one (114,000 in
    // the row-6 run of docs/BENCHMARKS.md, several ms) would only delay it.
    std::mem::forget(report);
    Ok(code)
}

/// Puts each task's model transcript, as the host saw the calls, in the
/// report.
fn fill_transcripts(report: &mut RunReport, models: &crate::llm::Models) {
    use crate::coordinator::report::{TranscriptEntry, TranscriptKind};
    use crate::llm::transcript::EntryKind;
    for t in &mut report.tasks {
        let (entries, dropped) = models.transcript(&t.id);
        t.transcript = entries
            .into_iter()
            .map(|e| TranscriptEntry {
                kind: match e.kind {
                    EntryKind::Model => TranscriptKind::Model,
                    EntryKind::ToolCall => TranscriptKind::ToolCall,
                    EntryKind::ToolResult => TranscriptKind::ToolResult,
                    EntryKind::Message => TranscriptKind::Message,
                },
                name: e.name,
                text: e.text,
                denied: e.error,
            })
            .collect();
        if dropped > 0 {
            t.transcript.push(TranscriptEntry {
                kind: TranscriptKind::Model,
                name: None,
                text: format!("… {dropped} more entries left out (the transcript keeps the first ones)"),
                denied: false,
            });
        }
    }
}

/// Writes every change of the run as one patch to `path`; names the files
/// left out of it on stderr.
fn write_patch(path: &Path, report: &RunReport) -> std::io::Result<()> {
    let (patch, left_out) = crate::coordinator::changes::patch(report);
    for file in &left_out {
        eprintln!("warning: not in the patch: {}", crate::sanitize::line(file));
    }
    std::fs::write(path, patch)
}

/// In GitHub Actions: annotations on stderr when asked for (the runner
/// reads workflow commands from both streams; stdout keeps the report
/// alone), and the Markdown summary appended to `$GITHUB_STEP_SUMMARY`.
fn github_outputs(report: &RunReport, args: &RunArgs) {
    if std::env::var_os("GITHUB_ACTIONS").is_none_or(|v| v != "true") {
        return;
    }
    if args.annotations {
        eprint!("{}", report.github_annotations());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(report.github_summary().as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot append the job summary to {}: {e}", Path::new(&path).display());
        }
    }
}

/// Forwards Ctrl-C and SIGTERM to the run as [`Interrupt`]s, for as long
/// as the run listens. Installing the handlers replaces the default action
/// (exit at once) for the rest of the process.
fn forward_signals(tx: tokio::sync::mpsc::Sender<Interrupt>) -> Result<(), (u8, String)> {
    use tokio::signal::unix::{SignalKind, signal};
    let internal = |e: std::io::Error| (EXIT_INTERNAL, format!("cannot handle signals: {e}"));
    let mut sigint = signal(SignalKind::interrupt()).map_err(internal)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(internal)?;
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                s = sigint.recv() => s.map(|()| Interrupt::CtrlC),
                s = sigterm.recv() => s.map(|()| Interrupt::Terminate),
            };
            match got {
                Some(interrupt) if tx.send(interrupt).await.is_ok() => {}
                _ => break,
            }
        }
    });
    Ok(())
}

async fn execute_logged(
    plan: &Plan,
    state: StateDir,
    restored: Option<Restored>,
    (planner, rules): Lead,
    models: Option<Arc<crate::llm::Models>>,
    args: &RunArgs,
) -> Result<RunReport, (u8, String)> {
    let (tx, interrupts) = tokio::sync::mpsc::channel(2);
    forward_signals(tx)?;
    let kind = match args.backend {
        BackendChoice::Auto => None,
        BackendChoice::InProcess => Some(Kind::InProcess),
        BackendChoice::Process => Some(Kind::Process),
        BackendChoice::Tmux => Some(Kind::Tmux),
        BackendChoice::Iterm => Some(Kind::Iterm),
    };
    // Decided once per run (a run on NATS workers loads the plugins here
    // only to check them).
    let kind =
        if args.nats.nats.is_some() { Kind::Process } else { Env::current().resolve(kind).map_err(config_error)? };
    let sandbox = match kind {
        // Large in-process teams run on the pooling allocator (the rule and
        // its reasons: `sandbox::pooling_slots`); teammate processes each
        // hold one teammate and keep the on-demand allocator.
        Kind::InProcess => args.cache.sandbox().for_in_process_team(plan.teammates.iter().map(|t| &t.limits)),
        _ => args.cache.sandbox(),
    };
    let sandbox = match &models {
        Some(m) => sandbox.with_models(m.clone()),
        None => sandbox,
    };
    let observer = std::io::stderr().is_terminal().then(|| {
        let view = logging::view(plan.tasks.len());
        if let Some(m) = &models {
            view.show_usage(m.clone());
        }
        Observer(Arc::new(move |team| view.update(team)))
    });
    // A lead answers teammates' messages to `team-lead` while the team runs.
    let planner = planner.map(|(p, goal)| (Arc::new(p), goal));
    let lead = planner.as_ref().filter(|(p, _)| p.is_lead()).map(|(p, goal)| {
        let (p, goal, team) = (p.clone(), goal.clone(), plan.team.clone());
        LeadHook(Arc::new(move |mut input: crate::sandbox::planner::SteerInput| {
            let p = p.clone();
            (input.team, input.goal) = (team.clone(), goal.clone());
            Box::pin(async move { p.steer(input).await.map_err(|e| e.to_string()) })
        }))
    });
    let options = RunOptions {
        shutdown_grace: args.shutdown_grace,
        interrupts,
        timeout: args.timeout.or(plan.timeout),
        // A dry run keeps no state: a resume would write to the root.
        state: (!args.dry_run).then(|| state.clone()),
        restored,
        observer,
        lead,
        rules,
        control: Some(state.path().to_path_buf()),
        diffs: true,
        dry_run: args.dry_run,
    };
    let ran = match nats_options(args)? {
        #[cfg(feature = "nats")]
        Some(conn) => crate::coordinator::run::run_nats(plan, &sandbox, options, &conn, args.ack_wait).await,
        _ => run_on(kind, plan, &sandbox, options, args.cache.dir()).await,
    };
    let mut report = ran.map_err(|e| match e {
        // swarm-host could not keep its own state: not the user's mistake.
        StartError::State(_) => (EXIT_INTERNAL, e.to_string()),
        _ => config_error(e),
    })?;
    if let Some(m) = &models {
        report.llm_usage = Some(m.usage());
        fill_transcripts(&mut report, m);
    }
    if let Some((planner, goal)) = planner {
        let synthesis = if planner.is_lead() {
            planner.synthesize_run(&plan.team, &goal, report.tasks.iter().map(outcome).collect()).await
        } else {
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
            planner.synthesize(&plan.team, results).await
        };
        // The synthesis' model calls are the lead's too: counted again.
        if let Some(m) = &models {
            report.llm_usage = Some(m.usage());
        }
        report.lead_usage =
            report.llm_usage.as_ref().and_then(|u| u.teammates.get(crate::sandbox::planner::PLANNER_ID).copied());
        match synthesis {
            Ok(text) => report.synthesis = Some(text),
            Err(e) => tracing::warn!("the planner's synthesis failed: {e}"),
        }
        if let Err(e) = state.write_report(&report) {
            state.failed("the report", &e);
            report.state_errors = state.failures();
        }
    }
    Ok(report)
}

/// The NATS connection of a `--nats` run; `None` for a local run.
#[cfg(feature = "nats")]
fn nats_options(args: &RunArgs) -> Result<Option<crate::cluster::ConnectOptions>, (u8, String)> {
    let options = args.nats.options()?;
    Ok(options.map(|o| crate::cluster::ConnectOptions { name: Some("swarm-host coordinator".into()), ..o }))
}

/// Without the `nats` feature there is never a connection (`--nats` was
/// refused before anything ran).
#[cfg(not(feature = "nats"))]
fn nats_options(args: &RunArgs) -> Result<Option<std::convert::Infallible>, (u8, String)> {
    args.nats.check_feature().map(|()| None)
}

/// What the lead's `synthesize-run` sees of a task: its outcome, findings
/// and diff stats.
fn outcome(t: &crate::coordinator::report::TaskOutcome) -> TaskOutcome {
    let (mut added, mut removed) = (0u32, 0u32);
    for d in &t.diffs {
        for line in d.diff.lines() {
            if line.starts_with('+') && !line.starts_with("+++") {
                added = added.saturating_add(1);
            } else if line.starts_with('-') && !line.starts_with("---") {
                removed = removed.saturating_add(1);
            }
        }
    }
    TaskOutcome {
        id: t.id.clone(),
        subject: t.subject.clone(),
        completed: t.status == Status::Completed,
        summary: t.summary.clone().or_else(|| t.error.clone()).unwrap_or_default(),
        findings: t
            .findings
            .iter()
            .take(crate::sandbox::planner::lead::MAX_FINDINGS_SHOWN)
            .map(|f| match f.line {
                Some(line) => format!("{}:{line}: {}", f.file, f.message),
                None => format!("{}: {}", f.file, f.message),
            })
            .collect(),
        finding_count: t.findings.len() as u32,
        files_changed: t.diffs.len() as u32,
        lines_added: added,
        lines_removed: removed,
    }
}
