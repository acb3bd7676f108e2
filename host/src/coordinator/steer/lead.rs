//! The lead while the team runs: messages to `team-lead` (from teammates,
//! and from people through the control socket) reach the lead component
//! one at a time, in order, and its actions are applied: an answer to the
//! sender, a broadcast, a task added, a task that has not started given to
//! another owner. Every change is checked with the plan's rules
//! ([`ChangeRules`]) and then by the task list under its lock; a refused
//! change is answered to the sender with every reason.
//!
//! At the end of the run the message being handled gets
//! [`FINISH_GRACE`] to finish; the messages still queued then are not
//! handed to the lead (their senders are gone) but returned, so the report
//! lists them as not answered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{ChangeRules, Steering, lock, wake_idle};
use crate::coordinator::report::LeadMessage;
use crate::mailbox::{Incoming, TEAM_LEAD};
use crate::sandbox::planner::{LeadAction, SteerInput, TaskView};
use crate::tasks::Status;

/// The sender name of a message a person sent with `swarm-host send`.
pub const PERSON: &str = "person";

/// Messages waiting for the lead, at most; more are reported, not answered.
pub const LEAD_QUEUE: usize = 64;

/// How long the message the lead is handling may take once the run ends.
pub const FINISH_GRACE: Duration = Duration::from_secs(10);

/// Asks the lead component what to do about a message: `(sender, body,
/// tasks)` in, the actions (or why there are none) out. The caller fills
/// the team and goal.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct LeadHook(
    pub  Arc<
        dyn Fn(SteerInput) -> futures_util::future::BoxFuture<'static, Result<Vec<LeadAction>, String>> + Send + Sync,
    >,
);

impl std::fmt::Debug for LeadHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeadHook")
    }
}

/// The lead's queue and the task that works it off.
#[derive(Debug)]
pub struct LeadWorker {
    queue: Arc<Queue>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Queue {
    items: Mutex<VecDeque<LeadMessage>>,
    in_flight: Mutex<Option<LeadMessage>>,
    closed: AtomicBool,
    wake: tokio::sync::Notify,
}

impl LeadWorker {
    /// Starts handing messages to `hook`; changes are checked with `rules`
    /// (`None`: every change is refused, e.g. in a resumed run).
    pub fn start(hook: LeadHook, rules: Option<ChangeRules>, steering: Steering, teammates: Vec<String>) -> Self {
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let task = tokio::spawn(async move {
            loop {
                let waiting = q.wake.notified();
                if q.closed.load(Ordering::Acquire) {
                    break;
                }
                let Some(msg) = lock(&q.items).pop_front() else {
                    waiting.await;
                    continue;
                };
                *lock(&q.in_flight) = Some(msg.clone());
                let input = SteerInput {
                    sender: msg.from.clone(),
                    body: msg.body.clone(),
                    tasks: views(&steering),
                    teammates: teammates.clone(),
                    ..SteerInput::default()
                };
                match (hook.0)(input).await {
                    Ok(actions) => {
                        for action in actions {
                            apply(&steering, rules.as_ref(), &msg.from, action);
                        }
                    }
                    Err(e) => tracing::warn!(teammate = %msg.from, "the lead could not answer: {e}"),
                }
                *lock(&q.in_flight) = None;
            }
        });
        Self { queue, task }
    }

    /// Queues a message for the lead; `false` if the queue is full.
    pub fn offer(&self, from: &str, body: &str) -> bool {
        let mut items = lock(&self.queue.items);
        if items.len() >= LEAD_QUEUE || self.queue.closed.load(Ordering::Acquire) {
            return false;
        }
        items.push_back(LeadMessage {
            from: from.to_string(),
            body: body.to_string(),
            at_unix_ms: Some(crate::tasks::unix_ms()),
        });
        drop(items);
        self.queue.wake.notify_one();
        true
    }

    /// Stops taking messages: the one being handled gets [`FINISH_GRACE`];
    /// returns those the lead did not handle.
    pub async fn finish(self) -> Vec<LeadMessage> {
        self.queue.closed.store(true, Ordering::Release);
        self.queue.wake.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(FINISH_GRACE, &mut task).await.is_err() {
            task.abort();
        }
        let mut left: Vec<LeadMessage> = lock(&self.queue.in_flight).take().into_iter().collect();
        left.extend(lock(&self.queue.items).drain(..));
        left
    }
}

/// What the lead sees of the tasks.
fn views(steering: &Steering) -> Vec<TaskView> {
    steering
        .team()
        .tasks
        .snapshot()
        .into_iter()
        .map(|t| TaskView {
            status: match t.status {
                Status::Pending => "pending",
                Status::InProgress => "in-progress",
                Status::Completed => "completed",
                Status::Failed => "failed",
            }
            .to_string(),
            started: !t.attempts.is_empty(),
            owns: t.spec.owned_files.iter().take(crate::sandbox::planner::steer::MAX_OWNS_SHOWN).cloned().collect(),
            id: t.spec.id,
            subject: t.spec.subject,
            owner: t.spec.owner,
        })
        .collect()
}

/// Applies one action of the lead about a message from `from`.
fn apply(steering: &Steering, rules: Option<&ChangeRules>, from: &str, action: LeadAction) {
    let team = steering.team();
    match action {
        LeadAction::Answer(text) => answer(steering, from, text),
        LeadAction::Broadcast(text) => {
            let msg = Incoming::Message { sender: TEAM_LEAD.to_string(), body: text.clone(), summary: None };
            if let Err(e) = team.mailbox.broadcast(TEAM_LEAD, &msg) {
                tracing::warn!("the lead's broadcast did not reach everyone: {e}");
            }
            steering.say(format!("team-lead to everyone: {}", crate::sanitize::line(&text)));
        }
        LeadAction::AddTask(task) => {
            let what = format!("add task `{}`", crate::sanitize::line(&task.id));
            let added = match rules {
                None => Err(vec![no_rules()]),
                Some(rules) => {
                    rules.add(&team.tasks.snapshot(), &task).and_then(|spec| team.tasks.add(spec).map_err(|e| vec![e]))
                }
            };
            changed(steering, from, &what, added);
        }
        LeadAction::Reassign { task, owner } => {
            let to = owner.as_deref().map_or_else(|| "anyone".to_string(), |o| format!("`{o}`"));
            let what = format!("give task `{}` to {}", crate::sanitize::line(&task), crate::sanitize::line(&to));
            let moved = match rules {
                None => Err(vec![no_rules()]),
                Some(rules) => rules
                    .reassign(&team.tasks.snapshot(), &task, owner.as_deref())
                    .and_then(|()| team.tasks.reassign(&task, owner.clone()).map_err(|e| vec![e])),
            };
            changed(steering, from, &what, moved);
        }
    }
}

fn no_rules() -> String {
    "this run has no team file to check changes against (a resumed run): the plan cannot change".to_string()
}

/// Records a change of the lead; a refused one is answered to `from`.
fn changed(steering: &Steering, from: &str, what: &str, result: Result<(), Vec<String>>) {
    match result {
        Ok(()) => {
            steering.say(format!("the lead's change applied: {what}"));
            lock(&steering.inner.changes).push(format!("applied: {what}"));
            wake_idle(steering.team());
        }
        Err(problems) => {
            let why = problems.join("; ");
            tracing::warn!("the lead's change was refused: {what}: {}", crate::sanitize::line(&why));
            lock(&steering.inner.changes).push(format!("refused: {what}: {why}"));
            answer(steering, from, format!("The lead's change was refused ({what}): {why}"));
        }
    }
}

/// Answers `to`: a teammate by a message from `team-lead`, a person on the
/// attach feed.
fn answer(steering: &Steering, to: &str, text: String) {
    if to == PERSON {
        steering.say(format!("team-lead answers the person: {}", crate::sanitize::line(&text)));
        return;
    }
    let msg = Incoming::Message { sender: TEAM_LEAD.to_string(), body: text, summary: None };
    match steering.team().mailbox.send(to, msg) {
        Ok(()) => tracing::info!(teammate = %to, "the lead answered"),
        Err(e) => tracing::warn!(teammate = %to, "the lead's answer was not delivered: {e}"),
    }
}
