//! `swarm-host status [team]`: the roster and task list of a running or
//! finished team, or the list of teams with state. A run that a timeout, a
//! signal or a failed start stopped early shows as stopped, with its cause,
//! until `swarm-host resume` finishes it. A team is running if and only if
//! a coordinator holds its lock (see `coordinator::state::lock`).

use std::path::Path;

use super::{CliResult, EXIT_OK, config_error};
use crate::coordinator::StopCause;
use crate::coordinator::state::{StateDir, if_present};
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
    // The snapshot plus the journal; a torn last record (a coordinator
    // killed mid-write) is noted, a corrupt one is an error naming it.
    let saved = state.load().map_err(config_error)?;
    for note in &saved.notes {
        eprintln!("note: {}", crate::sanitize::line(note));
    }
    let tasks = saved.tasks.unwrap_or_default();
    let running = state.is_running().map_err(config_error)?;
    // Every file is written atomically: one that does not parse is corrupt,
    // and is named rather than shown as an empty roster or an unknown run.
    let roster = if_present(state.read_roster()).map_err(config_error)?.unwrap_or_default();
    let run = if_present(state.read_run()).map_err(config_error)?;
    let unfinished = tasks.iter().any(|t| matches!(t.status, Status::Pending | Status::InProgress));
    let stopped_by = state.read_report().ok().and_then(|r| r.stopped_by);
    let phase = match (&run, stopped_by) {
        // Decided by the team's lock, which only a live coordinator holds.
        _ if running => "running".to_string(),
        (Some(r), Some(cause)) if r.finished && unfinished => {
            let why = match cause {
                StopCause::Interrupt => "interrupted",
                StopCause::Terminate => "terminated by SIGTERM",
                StopCause::Timeout => "timeout",
                StopCause::StartFailed => "a teammate could not start",
            };
            format!("stopped ({why}): `swarm-host resume` continues it")
        }
        (Some(r), _) if r.finished => "finished".to_string(),
        (Some(_), _) => "stopped (coordinator gone: `swarm-host resume` continues it)".to_string(),
        (None, _) => "unknown".to_string(),
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
