//! The port a teammate's host side reaches its team through: what the
//! guest's `mailbox` and `task-list` imports call, whether the team is in
//! this process ([`Team`] implements [`TeamPort`]) or in a coordinator
//! across a socket (the backend's remote link implements it too). The
//! sandbox knows only this trait, never a backend or a wire format.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::mailbox::{Incoming, SendError};
use crate::model::TeammateMessage;
use crate::tasks::{Claimed, TaskReport};
use crate::team::{Beat, Event, Team};

/// A boxed future that owns what it needs.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a call through the port failed (only a remote team fails this way):
/// the guest traps with it, as it would on any host failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The connection to the coordinator is gone.
    #[error("connection to the coordinator lost: {0}")]
    Lost(String),
    /// The coordinator answered with something else than the call's reply.
    #[error("protocol error: the coordinator answered `{call}` with {reply}")]
    Protocol {
        /// The call.
        call: &'static str,
        /// What came back.
        reply: String,
    },
}

/// A teammate's way to its team. `id` is always the calling teammate's own
/// id (the sandbox passes its store's id: a guest cannot forge it).
pub trait TeamPort: Send + Sync + std::fmt::Debug {
    /// Waits up to `wait` for the next inbox entry of `id`.
    fn recv<'a>(&'a self, id: &'a str, wait: Duration) -> PortFuture<'a, Result<Option<Incoming>, PortError>>;

    /// Sends a text message from `id` to teammate `to`.
    fn send<'a>(
        &'a self,
        id: &'a str,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>>;

    /// Sends a text message from `id` to every other teammate.
    fn broadcast<'a>(
        &'a self,
        id: &'a str,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>>;

    /// The roster's ids.
    fn roster<'a>(&'a self, id: &'a str) -> PortFuture<'a, Result<Vec<String>, PortError>>;

    /// Claims the next task `id` of `group` may run.
    fn claim<'a>(&'a self, id: &'a str, group: &'a str) -> PortFuture<'a, Result<Option<Claimed>, PortError>>;

    /// Completes `task_id`; the inner error says why it was refused.
    fn complete<'a>(
        &'a self,
        id: &'a str,
        task_id: String,
        report: TaskReport,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>>;

    /// Fails `task_id`; the inner error says why it was refused.
    fn fail<'a>(
        &'a self,
        id: &'a str,
        task_id: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>>;

    /// Asks for the file `path` (clean, relative) for the task `id` holds;
    /// waits for the coordinator's decision. `Ok(Err(why))` is a refusal.
    fn request_file<'a>(
        &'a self,
        id: &'a str,
        path: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>>;

    /// Tells the coordinator `msg`. The future owns what it needs, so host
    /// futures stay `Send` and need not borrow the store.
    fn emit(&self, msg: TeammateMessage) -> PortFuture<'static, ()>;

    /// Updates the roster row of `id` (and records that it is alive).
    fn beat(&self, id: &str, beat: Beat);
}

/// What the team does for a call of teammate `id`, in this process: the
/// in-process port below and the coordinator's answer to a socket call
/// (`backend::link::serve_call`) both run this, so in-process and native
/// teammates get the same checks. A message sent, a completion or a
/// failure is answered once the state journal has it on disk (no lock is
/// held while waiting; without a journal there is nothing to wait for).
impl Team {
    /// `id` sends `body` to `to`.
    pub async fn send_from(&self, id: &str, to: &str, body: String, summary: Option<String>) -> Result<(), SendError> {
        let sent = self.mailbox.send(to, Incoming::Message { sender: id.to_string(), body, summary });
        self.mailbox.flushed().await;
        sent
    }

    /// `id` sends `body` to every other teammate.
    pub async fn broadcast_from(&self, id: &str, body: String, summary: Option<String>) -> Result<(), SendError> {
        let sent = self.mailbox.broadcast(id, &Incoming::Message { sender: id.to_string(), body, summary });
        self.mailbox.flushed().await;
        sent
    }

    /// `id` completes `task_id`; the error says why it was refused.
    pub async fn complete_for(&self, id: &str, task_id: &str, report: TaskReport) -> Result<(), String> {
        let done = self.tasks.complete(id, task_id, report).map_err(|e| e.to_string());
        self.tasks.flushed().await;
        done
    }

    /// `id` asks for `path` for the task it holds: the coordinator decides
    /// (see `coordinator::steer`), and a grant is journaled before this
    /// returns.
    pub async fn request_file_for(&self, id: &str, path: &str, reason: &str) -> Result<(), String> {
        let Some(task) = self.tasks.held_by(id) else {
            return Err("no task is held: a file is asked for the held task".to_string());
        };
        let (answer, decided) = tokio::sync::oneshot::channel();
        let request = crate::team::FileRequest {
            from: id.to_string(),
            task: task.id,
            path: path.to_string(),
            reason: reason.to_string(),
            answer,
        };
        if self.events.send(Event::FileRequest(request)).await.is_err() {
            return Err("the coordinator is stopping: nobody decides".to_string());
        }
        let decided = decided.await.unwrap_or_else(|_| Err("the coordinator stopped before deciding".to_string()));
        self.tasks.flushed().await;
        decided
    }

    /// `id` fails `task_id`; the error says why it was refused.
    pub async fn fail_for(&self, id: &str, task_id: &str, reason: &str) -> Result<(), String> {
        let done = self.tasks.fail(id, task_id, reason).map(drop).map_err(|e| e.to_string());
        self.tasks.flushed().await;
        done
    }
}

/// The team in this process: every call goes straight to its mailbox, task
/// list and roster.
impl TeamPort for Team {
    fn recv<'a>(&'a self, id: &'a str, wait: Duration) -> PortFuture<'a, Result<Option<Incoming>, PortError>> {
        Box::pin(async move { Ok(self.mailbox.recv(id, wait).await) })
    }

    fn send<'a>(
        &'a self,
        id: &'a str,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(async move { Ok(self.send_from(id, &to, body, summary).await) })
    }

    fn broadcast<'a>(
        &'a self,
        id: &'a str,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(async move { Ok(self.broadcast_from(id, body, summary).await) })
    }

    fn roster<'a>(&'a self, _id: &'a str) -> PortFuture<'a, Result<Vec<String>, PortError>> {
        Box::pin(std::future::ready(Ok(self.mailbox.roster().to_vec())))
    }

    fn claim<'a>(&'a self, id: &'a str, group: &'a str) -> PortFuture<'a, Result<Option<Claimed>, PortError>> {
        Box::pin(std::future::ready(Ok(self.tasks.claim(id, group))))
    }

    fn complete<'a>(
        &'a self,
        id: &'a str,
        task_id: String,
        report: TaskReport,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move { Ok(self.complete_for(id, &task_id, report).await) })
    }

    fn fail<'a>(
        &'a self,
        id: &'a str,
        task_id: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move { Ok(self.fail_for(id, &task_id, &reason).await) })
    }

    fn request_file<'a>(
        &'a self,
        id: &'a str,
        path: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move { Ok(self.request_file_for(id, &path, &reason).await) })
    }

    fn emit(&self, msg: TeammateMessage) -> PortFuture<'static, ()> {
        let events = self.events.clone();
        Box::pin(async move {
            // The coordinator outlives its teammates; a closed channel means
            // the run is being torn down and nobody is left to tell.
            let _ = events.send(Event::Message(msg)).await;
        })
    }

    fn beat(&self, id: &str, beat: Beat) {
        self.roster.beat(id, &beat);
    }
}

/// A shared port, as a teammate's store holds it.
pub type SharedPort = Arc<dyn TeamPort>;
