//! Running a plan: load plugins, build the team context, spawn every
//! teammate, route events until every task is done, shut the team down
//! gracefully, and synthesize the report.
//!
//! The coordinator is one event loop over teammate events and interrupts:
//! no polling. A teammate that dies releases its task (requeued or failed
//! under the max-attempts policy); a task nobody left can run fails visibly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::plan::Plan;
use super::report::{LeadMessage, RunReport};
use crate::backend::{InProcess, TeammateBackend};
use crate::mailbox::{Incoming, Mailbox};
use crate::protocol::TeammateMessage;
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
    /// A teammate could not be spawned.
    #[error("cannot spawn teammate `{id}`: {message}")]
    Spawn {
        /// The teammate.
        id: String,
        /// Why.
        message: String,
    },
}

/// Knobs of one run.
#[derive(Debug)]
pub struct RunOptions {
    /// Grace period of a graceful shutdown before the hard kill.
    pub shutdown_grace: Duration,
    /// Each message is one Ctrl-C: the first stops the team gracefully, the
    /// second kills it.
    pub interrupts: mpsc::Receiver<()>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            interrupts: mpsc::channel(1).1,
        }
    }
}

/// Builds the team context of a plan.
pub fn team_of(plan: &Plan) -> (Arc<Team>, mpsc::Receiver<Event>) {
    let mailbox = Mailbox::new(
        plan.teammates
            .iter()
            .map(|t| (t.id.as_str(), t.limits.inbox_len as usize)),
    );
    let roster = Roster::default();
    for t in &plan.teammates {
        roster.add(&t.id, &t.group, &t.color);
    }
    Team::new(&plan.team, mailbox, TaskList::new(plan.tasks.clone()), roster)
}

/// Runs `plan` in-process.
pub async fn run_in_process(plan: &Plan, sandbox: &Sandbox, options: RunOptions) -> Result<RunReport, StartError> {
    let mut plugins = HashMap::new();
    for t in &plan.teammates {
        if !plugins.contains_key(&t.group) {
            plugins.insert(t.group.clone(), sandbox.load(&t.plugin, &t.limits)?);
        }
    }
    let root = Workspace::open_root(&plan.root).map_err(|source| StartError::Root {
        path: plan.root.clone(),
        source,
    })?;
    let (team, events) = team_of(plan);
    let backend = InProcess::new(team.clone(), root, plan.read, plugins);
    run(plan, Arc::new(backend), events, options).await
}

/// Runs `plan` on `backend`, whose team came from [`team_of`].
pub async fn run<B: TeammateBackend>(
    plan: &Plan,
    backend: Arc<B>,
    mut events: mpsc::Receiver<Event>,
    mut options: RunOptions,
) -> Result<RunReport, StartError> {
    let started = Instant::now();
    let team = backend.team().clone();
    let mut handles = HashMap::new();
    let mut live = HashSet::new();
    for t in &plan.teammates {
        let launch = Launch {
            id: t.id.clone(),
            group: t.group.clone(),
            color: t.color.clone(),
            limits: t.limits.clone(),
        };
        let handle = backend.spawn(launch).await.map_err(|e| StartError::Spawn {
            id: t.id.clone(),
            message: format!("{e:#}"),
        })?;
        handles.insert(t.id.clone(), handle);
        live.insert(t.id.clone());
    }
    tracing::info!(team = %plan.team, teammates = live.len(), tasks = plan.tasks.len(), backend = backend.name(), "team started");

    let mut lead = Coordinator {
        team: team.clone(),
        messages: Vec::new(),
    };
    let mut stoppers = JoinSet::new();
    let mut shutting_down = false;
    let mut interrupted: Option<String> = None;
    let mut interrupts_open = true;

    loop {
        if !shutting_down && (team.tasks.all_done() || interrupted.is_some()) {
            shutting_down = true;
            let reason = interrupted.clone().unwrap_or_else(|| "all tasks are done".into());
            for (id, handle) in handles.iter().filter(|(id, _)| live.contains(*id)) {
                let (backend, handle) = (backend.clone(), handle.clone());
                let (request_id, reason, grace) = (format!("shutdown-{id}"), reason.clone(), options.shutdown_grace);
                stoppers.spawn(async move { backend.stop(&handle, &request_id, &reason, grace).await });
            }
        }
        if live.is_empty() {
            break;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Message(msg)) => lead.on_message(msg),
                Some(Event::Exited { id, reason }) => {
                    live.remove(&id);
                    let why = reason.to_string();
                    if reason.is_clean() {
                        tracing::info!(teammate = %id, "exited");
                    } else {
                        tracing::warn!(teammate = %id, "{}", sanitize::line(&why));
                    }
                    if let Some((task, after)) = team.tasks.release(&id, &why) {
                        tracing::warn!(teammate = %id, task = %task, "task released: {after:?}");
                    }
                    for task in team.tasks.fail_unrunnable(&team.roster.live()) {
                        tracing::warn!(task = %task, "task can no longer run");
                    }
                    lead.wake_idle();
                }
                // Every teammate holds a sender through the team; this only
                // happens once all are gone, which `live` already tracks.
                None => break,
            },
            got = options.interrupts.recv(), if interrupts_open => match got {
                Some(()) if interrupted.is_none() => {
                    tracing::warn!("interrupted: stopping the team gracefully (interrupt again to kill)");
                    interrupted = Some("interrupted by the user".into());
                }
                Some(()) => {
                    tracing::warn!("interrupted again: killing every teammate");
                    for (_, handle) in handles.iter().filter(|(id, _)| live.contains(*id)) {
                        let (backend, handle) = (backend.clone(), handle.clone());
                        stoppers.spawn(async move { backend.kill(&handle, "killed by a second interrupt").await });
                    }
                }
                None => interrupts_open = false,
            },
        }
    }
    stoppers.shutdown().await;
    if let Some(why) = &interrupted {
        team.tasks.abandon(&format!("not finished: {why}"));
    }
    let members = team.roster.snapshot();
    Ok(RunReport::synthesize(super::report::Parts {
        team: plan.team.clone(),
        backend: backend.name().to_string(),
        duration: started.elapsed(),
        tasks: team.tasks.snapshot(),
        teammates: members,
        messages: lead.messages,
        warnings: plan.warnings.clone(),
        interrupted,
    }))
}

/// The coordinator's reactions to teammate messages.
struct Coordinator {
    team: Arc<Team>,
    messages: Vec<LeadMessage>,
}

impl Coordinator {
    fn on_message(&mut self, msg: TeammateMessage) {
        match msg {
            TeammateMessage::TaskCompleted {
                from,
                task_id,
                summary,
                findings,
            } => {
                tracing::info!(teammate = %from, task = %task_id, findings = findings.len(), "completed: {}", sanitize::line(&summary));
                self.wake_idle();
            }
            TeammateMessage::Error { from, task_id, message } => {
                tracing::warn!(teammate = %from, task = ?task_id, "failed: {}", sanitize::line(&message));
                self.wake_idle();
            }
            TeammateMessage::IdleNotification { from, .. } => {
                tracing::debug!(teammate = %from, "idle");
                self.wake(&from);
            }
            TeammateMessage::Progress { from, done, total, .. } => {
                tracing::debug!(teammate = %from, "progress {done}/{total}");
            }
            TeammateMessage::ShutdownResponse {
                from, approve, reason, ..
            } => {
                if approve {
                    tracing::debug!(teammate = %from, "approved shutdown");
                } else {
                    let why = reason.as_deref().map(sanitize::line).unwrap_or_default();
                    tracing::warn!(teammate = %from, "rejected shutdown: {why}");
                }
            }
            TeammateMessage::ShutdownRequest { from, reason, .. } => {
                tracing::info!(teammate = %from, "asks to shut down: {}", sanitize::line(&reason));
            }
            TeammateMessage::Message { from, body, .. } => {
                tracing::info!(teammate = %from, "to team-lead: {}", sanitize::line(&body));
                self.messages.push(LeadMessage { from, body });
            }
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
        for m in self
            .team
            .roster
            .snapshot()
            .into_iter()
            .filter(|m| m.state == Liveness::Idle)
        {
            if self.team.tasks.has_claimable_for(&m.id, &m.group) {
                let _ = self.team.mailbox.send(&m.id, Incoming::TasksAvailable);
            }
        }
    }
}
