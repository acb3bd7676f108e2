//! How a native teammate process's host side reaches its team across the
//! Unix socket: [`Remote`] implements the [`TeamPort`] the sandbox calls,
//! sending each call as a request frame; the coordinator answers it with
//! [`serve_call`], which runs the same team code as an in-process teammate
//! (`Team`'s own port), so deadlines, ownership checks and limits are the
//! same code. A guest's model call crosses the same way
//! ([`Remote`] implements the sandbox's [`ModelPort`]) and is answered by
//! [`serve_model_call`] against the coordinator's model service, so the
//! keys stay in the coordinator's process.
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

use crate::llm::{BoxFuture, LlmError, ModelCall, ModelPort, ModelResponse};
use crate::mailbox::{Incoming, SendError};
use crate::model::TeammateMessage;
use crate::port::{PortError, PortFuture, TeamPort};
use crate::protocol::frame::{
    Call, FrameReader, LaunchConfig, MAX_FRAME_BYTES, Reply, ToCoordinator, ToTeammate, encode_frame, write_frame,
};
use crate::protocol::wire::WireModelCall;
use crate::tasks::{Claimed, TaskReport};
use crate::team::{Beat, ExitReason, Team};

/// Events a teammate process may have waiting to be written to the socket.
pub const OUTBOX_EVENTS: usize = 64;

/// Answers one call of teammate `id` (of `group`) against the real team
/// and, for a model call, the coordinator's model service `models` (none:
/// the team has no `[models]`). The coordinator runs this for every socket
/// teammate; the calls are `Team`'s own, which in-process teammates make
/// directly.
pub async fn serve_call(team: &Team, models: Option<&dyn ModelPort>, id: &str, group: &str, call: Call) -> Reply {
    match call {
        Call::Model { request } => serve_model_call(models, id, *request).await,
        Call::Recv { timeout_ms } => {
            let got = team.mailbox.recv(id, Duration::from_millis(timeout_ms)).await;
            Reply::Incoming { entry: got.map(Into::into) }
        }
        // A message sent, a completion or a failure is answered once the
        // state journal has it on disk (no lock is held while waiting).
        Call::Send { to, body, summary } => {
            Reply::Sent { error: team.send_from(id, &to, body, summary).await.err().map(Into::into) }
        }
        Call::Broadcast { body, summary } => {
            Reply::Sent { error: team.broadcast_from(id, body, summary).await.err().map(Into::into) }
        }
        Call::Roster => Reply::Roster { ids: team.mailbox.roster().to_vec() },
        Call::Claim => match team.tasks.claim(id, group) {
            Some(c) => Reply::Claimed {
                task: Some((Box::new(c.spec.into()), c.attempt)),
                dependencies: c.dependencies.into_iter().map(Into::into).collect(),
            },
            None => Reply::Claimed { task: None, dependencies: Vec::new() },
        },
        Call::Complete { task_id, report } => {
            Reply::Done { error: team.complete_for(id, &task_id, report.into()).await.err() }
        }
        Call::Fail { task_id, reason } => Reply::Done { error: team.fail_for(id, &task_id, &reason).await.err() },
        Call::RequestFile { path, reason } => {
            Reply::Done { error: team.request_file_for(id, &path, &reason).await.err() }
        }
    }
}

/// Answers one model call of teammate `id` (the connection's id, never the
/// call's word) with the model service `models`. Any transport that carries
/// a [`WireModelCall`] (the socket, a NATS worker's subject) can call it.
pub async fn serve_model_call(models: Option<&dyn ModelPort>, id: &str, call: WireModelCall) -> Reply {
    let Some(models) = models else {
        let error = LlmError::ModelNotAllowed(format!(
            "`{id}` may use no model: the team file has no [models] table (or the run was resumed, which makes no model calls)"
        ));
        return Reply::Model { response: None, error: Some(error.into()) };
    };
    match models.complete(super::wire::model_call_from_wire(id, call)).await {
        Ok(r) => Reply::Model { response: Some(Box::new(r.into())), error: None },
        Err(e) => Reply::Model { response: None, error: Some(e.into()) },
    }
}

/// A teammate process's model calls go to the coordinator: the request
/// frame carries the alias and the conversation, never a key.
impl ModelPort for Remote {
    fn complete(&self, call: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>> {
        Box::pin(async move { model_answer(self.call(Call::Model { request: Box::new(call.into()) }).await) })
    }
}

/// A reply that does not answer `call`.
pub(crate) fn unexpected(call: &'static str, reply: &Reply) -> PortError {
    PortError::Protocol { call, reply: format!("{reply:?}") }
}

/// The answer to a model call, as the sandbox's model port returns it
/// (the socket's and a NATS worker's port share it).
pub(crate) fn model_answer(reply: Result<Reply, PortError>) -> Result<ModelResponse, LlmError> {
    let lost = |e: PortError| LlmError::Provider(format!("the coordinator cannot be reached: {e}"));
    match reply.map_err(lost)? {
        Reply::Model { response: Some(r), error: None } => Ok((*r).into()),
        Reply::Model { response: None, error: Some(e) } => Err(e.into()),
        other => Err(lost(unexpected("model", &other))),
    }
}

/// The answer to `recv`.
pub(crate) fn incoming(reply: Reply) -> Result<Option<Incoming>, PortError> {
    match reply {
        Reply::Incoming { entry } => Ok(entry.map(Into::into)),
        other => Err(unexpected("recv", &other)),
    }
}

/// The answer to `send` or `broadcast` (`call`).
pub(crate) fn sent(call: &'static str, reply: Reply) -> Result<Result<(), SendError>, PortError> {
    match reply {
        Reply::Sent { error } => Ok(error.map_or(Ok(()), |e| Err(e.into()))),
        other => Err(unexpected(call, &other)),
    }
}

/// The answer to `roster`.
pub(crate) fn roster_ids(reply: Reply) -> Result<Vec<String>, PortError> {
    match reply {
        Reply::Roster { ids } => Ok(ids),
        other => Err(unexpected("roster", &other)),
    }
}

impl TeamPort for Remote {
    fn recv<'a>(&'a self, _id: &'a str, wait: Duration) -> PortFuture<'a, Result<Option<Incoming>, PortError>> {
        Box::pin(async move {
            let call = Call::Recv { timeout_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) };
            incoming(self.call(call).await?)
        })
    }

    fn send<'a>(
        &'a self,
        _id: &'a str,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(async move { sent("send", self.call(Call::Send { to, body, summary }).await?) })
    }

    fn broadcast<'a>(
        &'a self,
        _id: &'a str,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(async move { sent("broadcast", self.call(Call::Broadcast { body, summary }).await?) })
    }

    fn roster<'a>(&'a self, _id: &'a str) -> PortFuture<'a, Result<Vec<String>, PortError>> {
        Box::pin(async move { roster_ids(self.call(Call::Roster).await?) })
    }

    fn claim<'a>(&'a self, _id: &'a str, _group: &'a str) -> PortFuture<'a, Result<Option<Claimed>, PortError>> {
        Box::pin(async move {
            match self.call(Call::Claim).await? {
                Reply::Claimed { task, dependencies } => Ok(task.map(|(spec, attempt)| Claimed {
                    spec: (*spec).into(),
                    attempt,
                    dependencies: dependencies.into_iter().map(Into::into).collect(),
                })),
                other => Err(unexpected("claim", &other)),
            }
        })
    }

    fn complete<'a>(
        &'a self,
        _id: &'a str,
        task_id: String,
        report: TaskReport,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move {
            match self.call(Call::Complete { task_id, report: report.into() }).await? {
                Reply::Done { error } => Ok(error.map_or(Ok(()), Err)),
                other => Err(unexpected("complete", &other)),
            }
        })
    }

    fn fail<'a>(
        &'a self,
        _id: &'a str,
        task_id: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move {
            match self.call(Call::Fail { task_id, reason }).await? {
                Reply::Done { error } => Ok(error.map_or(Ok(()), Err)),
                other => Err(unexpected("fail", &other)),
            }
        })
    }

    fn request_file<'a>(
        &'a self,
        _id: &'a str,
        path: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        Box::pin(async move {
            match self.call(Call::RequestFile { path, reason }).await? {
                Reply::Done { error } => Ok(error.map_or(Ok(()), Err)),
                other => Err(unexpected("request_file", &other)),
            }
        })
    }

    fn emit(&self, msg: TeammateMessage) -> PortFuture<'static, ()> {
        // The future owns what it needs: the outbox and its room. The
        // outbox is looked at once there is room, so an event never follows
        // the exit frame.
        let out = self.out.clone();
        let room = self.room.clone();
        Box::pin(async move {
            // The semaphore is never closed.
            let Ok(room) = room.acquire_owned().await else { return };
            let frame = ToCoordinator::Event { message: msg.into() };
            queue(&out, Outgoing { frame, room: Some(room) });
        })
    }

    fn beat(&self, _id: &str, beat: Beat) {
        // The coordinator records every request and heartbeat as a sign of
        // life; a frame that says only that would be one more frame (and
        // wake-up) per call.
        if beat != Beat::Alive {
            self.notify(ToCoordinator::Beat { beat: beat.into() });
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

/// The frames to the writer task; `None` once the exit frame is queued.
type Outbox = Arc<Mutex<Option<mpsc::UnboundedSender<Outgoing>>>>;

fn queue(out: &Outbox, outgoing: Outgoing) -> bool {
    let out = out.lock().unwrap_or_else(|e| e.into_inner());
    out.as_ref().is_some_and(|o| o.send(outgoing).is_ok())
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
    out: Outbox,
    room: Arc<Semaphore>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next: AtomicU64,
    lost: watch::Receiver<Option<String>>,
}

impl Remote {
    async fn call(&self, call: Call) -> Result<Reply, PortError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        if !self.send(ToCoordinator::Request { id, call }) {
            return Err(PortError::Lost(self.lost_reason()));
        }
        rx.await.map_err(|_| PortError::Lost(self.lost_reason()))
    }

    fn send(&self, frame: ToCoordinator) -> bool {
        self.queue(Outgoing { frame, room: None })
    }

    fn queue(&self, outgoing: Outgoing) -> bool {
        queue(&self.out, outgoing)
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
    pub async fn exit(&self, reason: ExitReason, writer: tokio::task::JoinHandle<()>) {
        self.notify(ToCoordinator::Exit { reason: reason.into() });
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
        out: Arc::new(Mutex::new(Some(out.clone()))),
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
