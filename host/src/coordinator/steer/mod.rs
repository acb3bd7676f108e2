//! Steering a running team: teammates' requests for files their task does
//! not own ([`requests`]), the lead's actions on messages to `team-lead`
//! ([`lead`]), and the control socket people use from another terminal
//! ([`control`]). Every change goes through the task list's own checks
//! (under its lock) after the plan's rules ([`ChangeRules`]).
//!
//! [`Steering`] is what the run loop and the control socket share: the
//! pending `ask` decisions, every decision taken (for the report), and the
//! feed of lines `swarm-host attach` follows.

pub mod control;
pub mod lead;
pub mod requests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

pub use crate::coordinator::plan::runtime::ChangeRules;
use crate::team::Team;

/// How long an `ask` request waits for a person when `ask_timeout` is not set.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(120);

/// Lines of the attach feed kept for a slow follower (older ones are
/// skipped for it, and it is told how many), and the last lines a new
/// follower is shown first.
const FEED_LINES: usize = 256;

/// What a request for a file the held task does not own gets: the team
/// file's `ownership_requests`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestPolicy {
    /// Refused.
    #[default]
    Deny,
    /// Granted when no unfinished task owns the file.
    GrantUnowned,
    /// A person decides (`swarm-host answer` or `attach`), within
    /// `ask_timeout`; no answer is a denial.
    Ask,
}

impl RequestPolicy {
    /// The name in the team file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::GrantUnowned => "grant-unowned",
            Self::Ask => "ask",
        }
    }
}

/// A decision on a file request, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDecision {
    /// The request's id (`r1`, `r2`, ...).
    pub id: String,
    /// Who asked.
    pub teammate: String,
    /// For which task.
    pub task: String,
    /// The file.
    pub path: String,
    /// Why it was asked for.
    pub reason: String,
    /// True if the file moved to the task.
    pub granted: bool,
    /// Who decided and why: the policy, a person, the timeout.
    pub decided_by: String,
}

/// A request waiting for a person.
#[derive(Debug)]
struct Pending {
    /// What is asked, one line for people.
    line: String,
    /// Where the answer goes: true grants.
    answer: oneshot::Sender<bool>,
}

/// What the run loop, the lead's worker and the control socket share.
#[derive(Debug, Clone)]
pub struct Steering {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    team: Arc<Team>,
    policy: RequestPolicy,
    ask_timeout: Duration,
    // Plain mutexes: held for a map or vector update, never across an await.
    pending: Mutex<BTreeMap<String, Pending>>,
    decisions: Mutex<Vec<FileDecision>>,
    /// The lead's changes, applied or refused, one line each.
    changes: Mutex<Vec<String>>,
    next: Mutex<u64>,
    /// The last [`FEED_LINES`] lines said; its lock is held while a line is
    /// sent, so a new follower sees each line once, in the backlog or live.
    said: Mutex<std::collections::VecDeque<String>>,
    feed: broadcast::Sender<String>,
}

impl Steering {
    /// Steering of `team` under the request `policy`.
    pub fn new(team: Arc<Team>, policy: RequestPolicy, ask_timeout: Option<Duration>) -> Self {
        let (feed, _) = broadcast::channel(FEED_LINES);
        Self {
            inner: Arc::new(Inner {
                team,
                policy,
                ask_timeout: ask_timeout.unwrap_or(DEFAULT_ASK_TIMEOUT),
                pending: Mutex::new(BTreeMap::new()),
                decisions: Mutex::new(Vec::new()),
                changes: Mutex::new(Vec::new()),
                next: Mutex::new(0),
                said: Mutex::new(std::collections::VecDeque::new()),
                feed,
            }),
        }
    }

    /// The team.
    pub fn team(&self) -> &Arc<Team> {
        &self.inner.team
    }

    /// Tells followers (`swarm-host attach`) `line`, and logs it.
    pub fn say(&self, line: String) {
        tracing::info!("{}", crate::sanitize::line(&line));
        self.tell(line);
    }

    /// Tells followers `line` (already logged elsewhere).
    pub fn tell(&self, line: String) {
        let mut said = lock(&self.inner.said);
        if said.len() == FEED_LINES {
            said.pop_front();
        }
        said.push_back(line.clone());
        let _ = self.inner.feed.send(line);
    }

    /// The last lines said (at most [`FEED_LINES`]), and a receiver of
    /// every line said after them.
    pub fn follow(&self) -> (Vec<String>, broadcast::Receiver<String>) {
        let said = lock(&self.inner.said);
        (said.iter().cloned().collect(), self.inner.feed.subscribe())
    }

    /// The requests waiting for a person, one line each.
    pub fn pending(&self) -> Vec<String> {
        lock(&self.inner.pending).values().map(|p| p.line.clone()).collect()
    }

    /// A person's answer to the pending request `id`.
    pub fn answer(&self, id: &str, grant: bool) -> Result<(), String> {
        let Some(p) = lock(&self.inner.pending).remove(id) else {
            let waiting: Vec<String> = lock(&self.inner.pending).keys().cloned().collect();
            let known = if waiting.is_empty() { "none is waiting".to_string() } else { waiting.join(", ") };
            return Err(format!("no request `{}` is waiting for an answer ({known})", crate::sanitize::line(id)));
        };
        p.answer.send(grant).map_err(|_| format!("request `{id}` was decided meanwhile"))
    }

    /// Every decision so far, in order.
    pub fn decisions(&self) -> Vec<FileDecision> {
        lock(&self.inner.decisions).clone()
    }

    /// Every change the lead made or had refused, one line each.
    pub fn changes(&self) -> Vec<String> {
        lock(&self.inner.changes).clone()
    }

    fn next_id(&self) -> String {
        let mut n = lock(&self.inner.next);
        *n += 1;
        format!("r{n}")
    }

    fn decided(&self, d: FileDecision) {
        let verb = if d.granted { "granted" } else { "denied" };
        self.say(format!(
            "request {}: {} to {} (task {}) {verb} by {}",
            d.id, d.path, d.teammate, d.task, d.decided_by
        ));
        lock(&self.inner.decisions).push(d);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tells every idle teammate that could claim a task now that work waits.
pub fn wake_idle(team: &Team) {
    let idle: Vec<_> = team.roster.snapshot().into_iter().filter(|m| m.state == crate::team::Liveness::Idle).collect();
    // One pass over the tasks for all of them, not one per teammate.
    for id in team.tasks.who_can_claim(idle.iter().map(|m| (m.id.as_str(), m.group.as_str()))) {
        let _ = team.mailbox.send(id, crate::mailbox::Incoming::TasksAvailable);
    }
}
