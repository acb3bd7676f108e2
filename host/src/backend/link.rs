//! How a teammate's host side reaches its team: [`TeamLink::Local`] calls the
//! [`Team`] directly (in-process backend), [`TeamLink::Remote`] sends the same
//! calls over the Unix socket (native teammate processes). Either way the
//! call is answered by [`serve_call`] against the coordinator's real team,
//! so deadlines, ownership checks and limits are the same code.
//!
//! The teammate process's outbox is bounded: at most [`OUTBOX_EVENTS`]
//! one-way events wait to be written (a guest that emits faster waits for
//! room, as it would on the in-process event channel); requests wait for
//! their answer, so one is queued at a time; roster beats follow host calls
//! that wait on the writer; and at most one heartbeat is ever queued.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::mailbox::{Incoming, SendError};
use crate::protocol::TeammateMessage;
use crate::protocol::frame::{
    Beat, Call, FrameReader, LaunchConfig, MAX_FRAME_BYTES, Reply, ToCoordinator, ToTeammate, WireIncoming,
    WireSendError, encode_frame, write_frame,
};
use crate::tasks::{Claimed, TaskReport};
use crate::team::{Event, Team};

/// Events a teammate process may have waiting to be written to the socket.
pub const OUTBOX_EVENTS: usize = 64;

/// Longest task id, recipient or other id a guest may name: longer is no
/// id of this team (ids come from the plan), and is refused before it
/// reaches a frame.
pub const MAX_ID_BYTES: usize = 4096;

/// Why a call over the link failed (only the remote link fails): the guest
/// traps with this, as it would on any host failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
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

/// A teammate's way to its team. Cheap to clone.
#[derive(Debug, Clone)]
pub enum TeamLink {
    /// The team lives in this process.
    Local(Arc<Team>),
    /// The team lives in the coordinator, across the socket.
    Remote(Arc<Remote>),
}

/// Answers one call of teammate `id` (of `group`) against the real team.
/// The coordinator runs this for in-process and socket teammates alike.
pub async fn serve_call(team: &Team, id: &str, group: &str, call: Call) -> Reply {
    match call {
        Call::Recv { timeout_ms } => {
            let got = team.mailbox.recv(id, Duration::from_millis(timeout_ms)).await;
            Reply::Incoming { entry: got.map(to_wire) }
        }
        // A message sent, a completion or a failure is answered once the
        // state journal has it on disk (no lock is held while waiting).
        Call::Send { to, body, summary } => {
            let msg = Incoming::Message { sender: id.to_string(), body, summary };
            let error = team.mailbox.send(&to, msg).err().map(send_error_to_wire);
            team.mailbox.flushed().await;
            Reply::Sent { error }
        }
        Call::Broadcast { body, summary } => {
            let msg = Incoming::Message { sender: id.to_string(), body, summary };
            let error = team.mailbox.broadcast(id, &msg).err().map(send_error_to_wire);
            team.mailbox.flushed().await;
            Reply::Sent { error }
        }
        Call::Roster => Reply::Roster { ids: team.mailbox.roster().to_vec() },
        Call::Claim => Reply::Claimed { task: team.tasks.claim(id, group).map(|c| (c.spec, c.attempt)) },
        Call::Complete { task_id, report } => {
            let error = team.tasks.complete(id, &task_id, report).err().map(|e| e.to_string());
            team.tasks.flushed().await;
            Reply::Done { error }
        }
        Call::Fail { task_id, reason } => {
            let error = team.tasks.fail(id, &task_id, &reason).err().map(|e| e.to_string());
            team.tasks.flushed().await;
            Reply::Done { error }
        }
    }
}

fn to_wire(i: Incoming) -> WireIncoming {
    match i {
        Incoming::Message { sender, body, summary } => WireIncoming::Message { sender, body, summary },
        Incoming::Shutdown { request_id, reason } => WireIncoming::Shutdown { request_id, reason },
        Incoming::TasksAvailable => WireIncoming::TasksAvailable,
    }
}

fn from_wire(i: WireIncoming) -> Incoming {
    match i {
        WireIncoming::Message { sender, body, summary } => Incoming::Message { sender, body, summary },
        WireIncoming::Shutdown { request_id, reason } => Incoming::Shutdown { request_id, reason },
        WireIncoming::TasksAvailable => Incoming::TasksAvailable,
    }
}

fn send_error_to_wire(e: SendError) -> WireSendError {
    match e {
        SendError::UnknownRecipient(recipient) => WireSendError::UnknownRecipient { recipient },
        SendError::InboxFull { recipient, limit } => WireSendError::InboxFull { recipient, limit },
    }
}

fn send_error_from_wire(e: WireSendError) -> SendError {
    match e {
        WireSendError::UnknownRecipient { recipient } => SendError::UnknownRecipient(recipient),
        WireSendError::InboxFull { recipient, limit } => SendError::InboxFull { recipient, limit },
    }
}

/// The first 64 characters of a guest-chosen id, for an error message.
fn truncated(id: &str) -> String {
    id.chars().take(64).collect()
}

fn not_held(task_id: &str, id: &str) -> String {
    format!("task `{}…` is not held by `{id}` (no task id is over {MAX_ID_BYTES} bytes)", truncated(task_id))
}

fn unexpected(call: &'static str, reply: &Reply) -> LinkError {
    LinkError::Protocol { call, reply: format!("{reply:?}") }
}

impl TeamLink {
    async fn call(&self, id: &str, group: &str, call: Call) -> Result<Reply, LinkError> {
        match self {
            Self::Local(team) => Ok(serve_call(team, id, group, call).await),
            Self::Remote(remote) => remote.call(call).await,
        }
    }

    /// Waits up to `wait` for the next inbox entry of `id`.
    pub async fn recv(&self, id: &str, wait: Duration) -> Result<Option<Incoming>, LinkError> {
        let call = Call::Recv { timeout_ms: wait.as_millis().min(u128::from(u64::MAX)) as u64 };
        match self.call(id, "", call).await? {
            Reply::Incoming { entry } => Ok(entry.map(from_wire)),
            other => Err(unexpected("recv", &other)),
        }
    }

    /// Sends a text message from `id` to teammate `to`.
    pub async fn send(
        &self,
        id: &str,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> Result<Result<(), SendError>, LinkError> {
        if to.len() > MAX_ID_BYTES {
            return Ok(Err(SendError::UnknownRecipient(format!("{}…", truncated(&to)))));
        }
        match self.call(id, "", Call::Send { to, body, summary }).await? {
            Reply::Sent { error } => Ok(error.map_or(Ok(()), |e| Err(send_error_from_wire(e)))),
            other => Err(unexpected("send", &other)),
        }
    }

    /// Sends a text message from `id` to every other teammate.
    pub async fn broadcast(
        &self,
        id: &str,
        body: String,
        summary: Option<String>,
    ) -> Result<Result<(), SendError>, LinkError> {
        match self.call(id, "", Call::Broadcast { body, summary }).await? {
            Reply::Sent { error } => Ok(error.map_or(Ok(()), |e| Err(send_error_from_wire(e)))),
            other => Err(unexpected("broadcast", &other)),
        }
    }

    /// The roster's ids.
    pub async fn roster(&self, id: &str) -> Result<Vec<String>, LinkError> {
        match self.call(id, "", Call::Roster).await? {
            Reply::Roster { ids } => Ok(ids),
            other => Err(unexpected("roster", &other)),
        }
    }

    /// Claims the next task `id` of `group` may run.
    pub async fn claim(&self, id: &str, group: &str) -> Result<Option<Claimed>, LinkError> {
        match self.call(id, group, Call::Claim).await? {
            Reply::Claimed { task } => Ok(task.map(|(spec, attempt)| Claimed { spec, attempt })),
            other => Err(unexpected("claim", &other)),
        }
    }

    /// Completes `task_id`; the inner error says why it was refused.
    pub async fn complete(
        &self,
        id: &str,
        task_id: String,
        report: TaskReport,
    ) -> Result<Result<(), String>, LinkError> {
        if task_id.len() > MAX_ID_BYTES {
            return Ok(Err(not_held(&task_id, id)));
        }
        match self.call(id, "", Call::Complete { task_id, report }).await? {
            Reply::Done { error } => Ok(error.map_or(Ok(()), Err)),
            other => Err(unexpected("complete", &other)),
        }
    }

    /// Fails `task_id`; the inner error says why it was refused.
    pub async fn fail(&self, id: &str, task_id: String, reason: String) -> Result<Result<(), String>, LinkError> {
        if task_id.len() > MAX_ID_BYTES {
            return Ok(Err(not_held(&task_id, id)));
        }
        match self.call(id, "", Call::Fail { task_id, reason }).await? {
            Reply::Done { error } => Ok(error.map_or(Ok(()), Err)),
            other => Err(unexpected("fail", &other)),
        }
    }

    /// Tells the coordinator `msg`. The future owns what it needs (not
    /// `&self`), so host futures stay `Send`.
    pub fn emit(&self, msg: TeammateMessage) -> impl Future<Output = ()> + Send + 'static {
        let link = self.clone();
        async move {
            match link {
                // The coordinator outlives its teammates; a closed channel
                // means the run is being torn down and nobody is left to tell.
                Self::Local(team) => {
                    let _ = team.events.send(Event::Message(msg)).await;
                }
                Self::Remote(remote) => remote.event(msg).await,
            }
        }
    }

    /// Updates the roster row of `id` (and records that it is alive).
    pub fn beat(&self, id: &str, beat: Beat) {
        match self {
            Self::Local(team) => team.roster.beat(id, &beat),
            // The coordinator records every request and heartbeat as a sign
            // of life; a frame that says only that would be one more frame
            // (and wake-up) per call.
            Self::Remote(_) if beat == Beat::Alive => {}
            Self::Remote(remote) => remote.notify(ToCoordinator::Beat { beat }),
        }
    }
}

/// A frame on its way to the writer, with the outbox room it holds (an
/// event's), given back once the frame is written.
#[derive(Debug)]
struct Outgoing {
    frame: ToCoordinator,
    room: Option<OwnedSemaphorePermit>,
}

/// The teammate-process end of the socket: sends requests and notices,
/// matches responses to requests by id.
#[derive(Debug)]
pub struct Remote {
    /// Frames to the writer task, in order. The channel itself is unbounded
    /// so that roster beats can be sent from synchronous code; what bounds
    /// it: an event needs one of [`OUTBOX_EVENTS`] permits of `room`, every
    /// request waits for its answer, beats come from host calls that then
    /// wait on one of those, and at most one heartbeat is queued.
    /// `None` once the exit frame is queued, so the writer drains and ends.
    out: Mutex<Option<mpsc::UnboundedSender<Outgoing>>>,
    room: Arc<Semaphore>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next: AtomicU64,
    lost: watch::Receiver<Option<String>>,
}

impl Remote {
    async fn call(&self, call: Call) -> Result<Reply, LinkError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        if !self.send(ToCoordinator::Request { id, call }) {
            return Err(LinkError::Lost(self.lost_reason()));
        }
        rx.await.map_err(|_| LinkError::Lost(self.lost_reason()))
    }

    fn send(&self, frame: ToCoordinator) -> bool {
        self.queue(Outgoing { frame, room: None })
    }

    fn queue(&self, outgoing: Outgoing) -> bool {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.as_ref().is_some_and(|o| o.send(outgoing).is_ok())
    }

    /// Queues an event once the outbox has room for it.
    async fn event(&self, message: TeammateMessage) {
        // The semaphore is never closed.
        let Ok(room) = self.room.clone().acquire_owned().await else { return };
        self.queue(Outgoing { frame: ToCoordinator::Event { message }, room: Some(room) });
    }

    /// Events queued and not yet written.
    pub fn queued_events(&self) -> usize {
        OUTBOX_EVENTS - self.room.available_permits()
    }

    fn notify(&self, frame: ToCoordinator) {
        // A closed writer means the connection is gone; the next request
        // reports that, and the process is about to end anyway.
        self.send(frame);
    }

    fn lost_reason(&self) -> String {
        self.lost.borrow().clone().unwrap_or_else(|| "closed".into())
    }

    /// Resolves with the reason once the connection to the coordinator is
    /// gone (closed by it, or broken).
    pub async fn lost(&self) -> String {
        let mut rx = self.lost.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => "closed".into(),
        }
    }

    /// Sends the last frame and waits (briefly) for it to be written.
    pub async fn exit(&self, reason: crate::team::ExitReason, writer: tokio::task::JoinHandle<()>) {
        self.notify(ToCoordinator::Exit { reason });
        self.out.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }
}

/// A connected, welcomed teammate process.
pub struct Connected {
    /// What to run.
    pub config: LaunchConfig,
    /// The link its imports use.
    pub remote: Arc<Remote>,
    /// The task writing frames; ends once every sender is gone.
    pub writer: tokio::task::JoinHandle<()>,
}

/// Connects to the coordinator's socket, proves the run's `token`, and
/// starts the reader, writer and heartbeat tasks.
pub async fn connect(socket: &std::path::Path, agent_id: &str, token: &str) -> anyhow::Result<Connected> {
    let stream = UnixStream::connect(socket)
        .await
        .with_context(|| format!("cannot connect to the coordinator at {}", socket.display()))?;
    let (rd, mut wr) = stream.into_split();
    let hello =
        ToCoordinator::Hello { agent_id: agent_id.to_string(), token: token.to_string(), pid: std::process::id() };
    write_frame(&mut wr, &hello).await.context("cannot send the hello")?;
    let mut reader = FrameReader::new(rd, MAX_FRAME_BYTES);
    let config = match tokio::time::timeout(Duration::from_secs(10), reader.next::<ToTeammate>()).await {
        Err(_) => bail!("the coordinator did not answer the hello within 10s"),
        Ok(Err(e)) => bail!("bad answer to the hello: {e}"),
        Ok(Ok(None)) => bail!("the coordinator closed the connection during the hello"),
        Ok(Ok(Some(ToTeammate::Welcome { config }))) => *config,
        Ok(Ok(Some(ToTeammate::Refused { reason }))) => bail!("the coordinator refused this teammate: {reason}"),
        Ok(Ok(Some(other))) => bail!("protocol error: expected a welcome, got {other:?}"),
    };
    if config.id != agent_id {
        bail!("protocol error: welcomed as `{}`, started as `{agent_id}`", config.id);
    }
    let frame_bytes = config.frame_bytes;
    reader.set_limit(frame_bytes);
    let (out, mut frames) = mpsc::unbounded_channel::<Outgoing>();
    let (lost_tx, lost) = watch::channel(None);
    let lost_tx = Arc::new(lost_tx);
    let remote = Arc::new(Remote {
        out: Mutex::new(Some(out.clone())),
        room: Arc::new(Semaphore::new(OUTBOX_EVENTS)),
        pending: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
        lost,
    });
    // Set while a heartbeat waits in the outbox: a stalled socket holds at
    // most one, however long it stalls.
    let heartbeat_queued = Arc::new(AtomicBool::new(false));
    let writer_lost = lost_tx.clone();
    let written = heartbeat_queued.clone();
    let writer = tokio::spawn(async move {
        // Every frame queued by the time the writer runs goes out in one
        // write: a guest's notices and its next request share a syscall.
        // Events give their outbox room back once written.
        let mut batch = Vec::new();
        let mut rooms = Vec::new();
        while let Some(first) = frames.recv().await {
            batch.clear();
            let mut next = Some(first);
            while let Some(Outgoing { frame, room }) = next {
                if matches!(frame, ToCoordinator::Heartbeat) {
                    written.store(false, Ordering::Release);
                }
                if let Err(e) = encode_frame(&frame, &mut batch, frame_bytes) {
                    let _ = writer_lost.send(Some(format!("cannot encode a frame: {e}")));
                    return;
                }
                rooms.extend(room);
                next = frames.try_recv().ok();
            }
            if let Err(e) = wr.write_all(&batch).await {
                let _ = writer_lost.send(Some(format!("cannot write to the socket: {e}")));
                break;
            }
            rooms.clear();
        }
    });
    let reader_remote = remote.clone();
    tokio::spawn(async move {
        let why = loop {
            match reader.next::<ToTeammate>().await {
                Ok(Some(ToTeammate::Response { id, reply })) => {
                    let waiter = reader_remote.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(reply);
                        }
                        None => break format!("protocol error: a response to unknown request {id}"),
                    }
                }
                Ok(Some(other)) => break format!("protocol error: unexpected frame {other:?}"),
                Ok(None) => break "the coordinator closed the connection".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        let _ = lost_tx.send(Some(why));
        // Dropping the waiters fails every request in flight.
        reader_remote.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
    });
    let interval = Duration::from_millis(config.heartbeat_ms.max(10));
    let beats = out.downgrade();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if heartbeat_queued.swap(true, Ordering::AcqRel) {
                continue;
            }
            let heartbeat = Outgoing { frame: ToCoordinator::Heartbeat, room: None };
            match beats.upgrade() {
                Some(out) if out.send(heartbeat).is_ok() => {}
                _ => break,
            }
        }
    });
    drop(out);
    Ok(Connected { config, remote, writer })
}
