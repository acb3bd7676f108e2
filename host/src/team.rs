//! Team context: what every teammate reaches the team through (mailbox,
//! task list, the coordinator's event channel) and the roster that tells an
//! idle teammate from a working, stopping or dead one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::mailbox::Mailbox;
use crate::model::{LimitKind, TeammateMessage};
use crate::tasks::TaskList;

/// A teammate's life cycle as the roster shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Being instantiated.
    Spawning,
    /// Holding a task.
    Working,
    /// Waiting for work or messages.
    Idle,
    /// Asked to shut down, not gone yet.
    Stopping,
    /// Gone after returning normally.
    Exited,
    /// Gone after a trap, a limit, or a kill.
    Dead,
}

/// One roster row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// Teammate id, e.g. `todo-scan-1`.
    pub id: String,
    /// Its group (the team file's teammate name).
    pub group: String,
    /// Team view colour.
    pub color: String,
    /// Life-cycle state.
    pub state: Liveness,
    /// The task it holds.
    pub task: Option<String>,
    /// Last progress on that task.
    pub progress: Option<(u32, u32)>,
    /// When it last called into the host (seconds since the epoch).
    pub last_heartbeat: Option<f64>,
    /// Why it ended, once dead or exited.
    pub exit: Option<String>,
    /// Its process id, when it runs as a native process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip)]
    heartbeat: Option<Instant>,
}

/// The roster. A plain mutex: rows are tiny and updates never await.
#[derive(Debug, Default)]
pub struct Roster {
    members: Mutex<BTreeMap<String, Member>>,
    /// Notified when a row's state or task changes (not on mere
    /// heartbeats), so the saved roster follows what `status` shows.
    changed: tokio::sync::Notify,
}

impl Roster {
    /// Adds a teammate in the `Spawning` state.
    pub fn add(&self, id: &str, group: &str, color: &str) {
        let m = Member {
            id: id.to_string(),
            group: group.to_string(),
            color: color.to_string(),
            state: Liveness::Spawning,
            task: None,
            progress: None,
            last_heartbeat: None,
            exit: None,
            pid: None,
            heartbeat: None,
        };
        self.lock().insert(id.to_string(), m);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` to the row of `id` and records a heartbeat. Rows of
    /// teammates that are already gone are left alone.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Member)) {
        if let Some(m) = self.lock().get_mut(id) {
            if matches!(m.state, Liveness::Exited | Liveness::Dead) {
                return;
            }
            let before = (m.state, m.task.clone());
            f(m);
            if before != (m.state, m.task.clone()) {
                self.changed.notify_one();
            }
            m.heartbeat = Some(Instant::now());
            m.last_heartbeat = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
        }
    }

    /// Resolves when a row's state or task changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Marks `id` gone for good.
    pub fn gone(&self, id: &str, state: Liveness, why: String) {
        if let Some(m) = self.lock().get_mut(id) {
            m.state = state;
            m.task = None;
            m.exit = Some(why);
            self.changed.notify_one();
        }
    }

    /// A copy of every row, sorted by id.
    pub fn snapshot(&self) -> Vec<Member> {
        self.lock().values().cloned().collect()
    }

    /// Ids and groups of teammates not yet gone.
    pub fn live(&self) -> Vec<(String, String)> {
        self.lock()
            .values()
            .filter(|m| !matches!(m.state, Liveness::Exited | Liveness::Dead))
            .map(|m| (m.id.clone(), m.group.clone()))
            .collect()
    }
}

/// How a teammate ended.
///
/// A sandbox limit that stopped it travels as a typed [`LimitKind`] beside
/// the message (and across the socket, in the teammate process's exit
/// frame), so the exit code is decided from what the host raised, never
/// from words a guest could have written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ExitReason {
    /// `run` returned `ok`.
    Finished,
    /// `run` returned `err` with this message (the guest's own words: never
    /// a limit).
    Failed(String),
    /// The guest trapped; the message says why.
    Trapped {
        /// What happened: the limit hit, the panic message, or the trap.
        message: String,
        /// The sandbox limit the host raised, when one stopped it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<LimitKind>,
    },
    /// The host killed it.
    Killed {
        /// Why.
        message: String,
        /// The limit it was killed for, when it was killed for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<LimitKind>,
    },
    /// It could not be instantiated.
    SpawnFailed {
        /// Why.
        message: String,
        /// The limit instantiating it hit (e.g. `instances`), if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<LimitKind>,
    },
}

impl ExitReason {
    /// A trap that no limit caused (a panic, `unreachable`, ...).
    pub fn trapped(message: impl Into<String>) -> Self {
        Self::Trapped { message: message.into(), limit: None }
    }

    /// A kill that no limit caused.
    pub fn killed(message: impl Into<String>) -> Self {
        Self::Killed { message: message.into(), limit: None }
    }

    /// A failed instantiation that no limit caused.
    pub fn spawn_failed(message: impl Into<String>) -> Self {
        Self::SpawnFailed { message: message.into(), limit: None }
    }

    /// True for a normal return.
    pub fn is_clean(&self) -> bool {
        matches!(self, Self::Finished)
    }

    /// The sandbox limit that ended the teammate, if one did.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            Self::Trapped { limit, .. } | Self::Killed { limit, .. } | Self::SpawnFailed { limit, .. } => *limit,
            Self::Finished | Self::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Finished => write!(f, "finished"),
            Self::Failed(m) => write!(f, "run returned an error: {m}"),
            Self::Trapped { message, .. } => write!(f, "trapped: {message}"),
            Self::Killed { message, .. } => write!(f, "killed: {message}"),
            Self::SpawnFailed { message, .. } => write!(f, "could not start: {message}"),
        }
    }
}

/// A teammate asks for a file its held task does not own; the coordinator
/// answers on `answer` (a dropped sender is a refusal).
#[derive(Debug)]
pub struct FileRequest {
    /// The teammate (the sandbox's id, never the guest's word).
    pub from: String,
    /// The task it holds.
    pub task: String,
    /// The file: clean, relative, `/`-separated.
    pub path: String,
    /// Why it asks, as the guest wrote it.
    pub reason: String,
    /// Where the decision goes: `Err` says why not.
    pub answer: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// What the coordinator hears.
#[derive(Debug)]
pub enum Event {
    /// A protocol message from a teammate.
    Message(TeammateMessage),
    /// A teammate is gone.
    Exited {
        /// Its id.
        id: String,
        /// How it ended.
        reason: ExitReason,
    },
    /// A teammate asks for a file.
    FileRequest(FileRequest),
}

/// Shared by the coordinator and every teammate's host side.
#[derive(Debug)]
pub struct Team {
    /// Team name.
    pub name: String,
    /// Inboxes.
    pub mailbox: Mailbox,
    /// The shared task list.
    pub tasks: TaskList,
    /// Who is on the team and how they are.
    pub roster: Roster,
    /// Teammate → coordinator events. Bounded: a coordinator that falls
    /// behind slows senders down instead of growing memory.
    pub events: mpsc::Sender<Event>,
}

impl Team {
    /// A team and the receiving end of its event channel.
    pub fn new(name: &str, mailbox: Mailbox, tasks: TaskList, roster: Roster) -> (Arc<Self>, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(4096);
        (Arc::new(Self { name: name.to_string(), mailbox, tasks, roster, events }), rx)
    }
}

/// A roster update a teammate's host side asks for (in-process, or as a
/// beat frame over the socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// Only "it is alive".
    Alive,
    /// Instantiated: `Spawning` becomes `Working`.
    Started,
    /// Sets the life-cycle state.
    State {
        /// The new state.
        state: Liveness,
    },
    /// Idle, unless already stopping.
    Idle,
    /// Holding `task`, progress reset.
    Working {
        /// The task id.
        task: String,
    },
    /// No task held any more.
    TaskCleared,
    /// Progress on the held task.
    Progress {
        /// Units done.
        done: u32,
        /// Units in all.
        total: u32,
    },
}

impl Roster {
    /// Applies a roster update a teammate's host side asked for (the same
    /// updates in-process and over the socket).
    pub fn beat(&self, id: &str, beat: &Beat) {
        self.update(id, |m| match beat {
            Beat::Alive => {}
            Beat::Started => {
                if m.state == Liveness::Spawning {
                    m.state = Liveness::Working;
                }
            }
            Beat::State { state } => m.state = *state,
            Beat::Idle => {
                if m.state != Liveness::Stopping {
                    m.state = Liveness::Idle;
                }
            }
            Beat::Working { task } => {
                m.state = Liveness::Working;
                m.task = Some(task.clone());
                m.progress = None;
            }
            Beat::TaskCleared => {
                m.task = None;
                m.progress = None;
            }
            Beat::Progress { done, total } => m.progress = Some(((*done).min(*total), *total)),
        });
    }
}
