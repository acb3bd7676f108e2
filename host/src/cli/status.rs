//! `swarm-host status [team]`: the roster and task list of a running or
//! finished team, or the list of teams with state.

use std::path::Path;

use super::{CliResult, EXIT_OK, config_error};
use crate::state::StateDir;
use crate::tasks::Status;

/// `swarm-host status [team] [--json]`.
pub fn status(state_dir: &Path, team: Option<&str>, json: bool) -> CliResult {
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
    let logs = super::team_logs::dir_of(state.path());
    if json {
        let value = serde_json::json!({
            "v": 1, "team": team, "phase": phase, "run": run, "roster": roster, "tasks": tasks, "logs": logs,
        });
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
    println!("Logs: {}", logs.display());
    Ok(EXIT_OK)
}
