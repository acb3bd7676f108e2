//! The control socket: how `swarm-host send`, `stop`, `answer` and
//! `attach` reach a running coordinator from another terminal.
//!
//! Permissions are the teammate socket's ([`SocketDir`]): a fresh private
//! directory (mode 0700, a pre-existing path refused) under
//! `$XDG_RUNTIME_DIR` (else the temp dir) holding the socket and a token
//! file (mode 0600); a request is served only if it carries the token, so
//! only the user who can read the token file can steer the run. The team's
//! state directory gets a pointer file ([`POINTER_FILE`]) naming that
//! directory; the directory and the pointer are removed when the run ends.
//!
//! What a request asks that the run loop must do (stop the team or a
//! teammate, a message for the lead) goes to it as a [`ControlEvent`];
//! the rest (a message to a teammate, an answer to a pending request, the
//! feed) is served here.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::Steering;
use super::lead::PERSON;
use crate::backend::server::{SocketDir, SocketError, token_eq};
use crate::mailbox::{Incoming, TEAM_LEAD};
use crate::protocol::control::{
    CONTROL_VERSION, ControlOp, ControlPointer, ControlReply, ControlRequest, MAX_REQUEST_BYTES, POINTER_FILE,
};

/// What the run loop does for a control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEvent {
    /// Stop the team gracefully (like a first Ctrl-C).
    StopTeam,
    /// Stop one teammate gracefully; its task is released.
    StopTeammate(String),
    /// A person's message for the lead.
    ToLead(String),
}

/// A listening control socket; closed (directory and pointer removed) on drop.
#[derive(Debug)]
pub struct ControlServer {
    _dir: SocketDir,
    pointer: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.pointer);
    }
}

impl ControlServer {
    /// Listens for the team of `steering`; writes the pointer into
    /// `state_dir`. `has_lead` says whether `team-lead` is a lead component.
    pub fn start(
        state_dir: &Path,
        steering: Steering,
        has_lead: bool,
        events: mpsc::Sender<ControlEvent>,
    ) -> Result<Self, SocketError> {
        let dir = SocketDir::create(&format!("{}-ctl", steering.team().name))?;
        let io = |source| SocketError::Io { path: dir.path().to_path_buf(), source };
        let listener = UnixListener::bind(dir.socket()).map_err(io)?;
        let pointer = state_dir.join(POINTER_FILE);
        let text = serde_json::to_string(&ControlPointer {
            v: CONTROL_VERSION,
            dir: dir.path().to_string_lossy().into_owned(),
            pid: std::process::id(),
        })
        .unwrap_or_default();
        // Written to a temp file and renamed: a reader never sees half of it.
        let tmp = state_dir.join(format!("{POINTER_FILE}.tmp"));
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &pointer)).map_err(io)?;
        let token = dir.token().to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (steering, token, events) = (steering.clone(), token.clone(), events.clone());
                tokio::spawn(async move { serve(stream, &steering, &token, has_lead, &events).await });
            }
        });
        Ok(Self { _dir: dir, pointer, task })
    }
}

async fn serve(
    stream: UnixStream,
    steering: &Steering,
    token: &str,
    has_lead: bool,
    events: &mpsc::Sender<ControlEvent>,
) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST_BYTES as u64 + 1);
    let got = reader.read_until(b'\n', &mut line).await;
    let request = match got {
        Ok(_) if line.len() > MAX_REQUEST_BYTES && !line.ends_with(b"\n") => {
            Err(format!("the request is over {MAX_REQUEST_BYTES} bytes"))
        }
        Ok(_) => serde_json::from_slice::<ControlRequest>(&line).map_err(|e| format!("not a control request: {e}")),
        Err(e) => Err(format!("cannot read the request: {e}")),
    };
    let reply = match request {
        Err(message) => ControlReply::Error { message },
        Ok(r) if r.v != CONTROL_VERSION => ControlReply::Error {
            message: format!("control version {} is not {CONTROL_VERSION}: use the swarm-host that runs the team", r.v),
        },
        Ok(r) if !token_eq(&r.token, token) => {
            tracing::warn!("a control request with a wrong token was refused");
            ControlReply::Error { message: "wrong token: the request was refused".to_string() }
        }
        Ok(ControlRequest { op: ControlOp::Attach, .. }) => {
            attach(&mut write, steering).await;
            return;
        }
        Ok(r) => match handle(r.op, steering, has_lead, events).await {
            Ok(text) => ControlReply::Ok { text },
            Err(message) => ControlReply::Error { message },
        },
    };
    let _ = write_reply(&mut write, &reply).await;
}

async fn write_reply(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &ControlReply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).unwrap_or_default();
    line.push(b'\n');
    write.write_all(&line).await
}

async fn handle(
    op: ControlOp,
    steering: &Steering,
    has_lead: bool,
    events: &mpsc::Sender<ControlEvent>,
) -> Result<String, String> {
    let team = steering.team();
    let gone = |_| "the run is ending: nothing more is taken".to_string();
    match op {
        ControlOp::Send { to, text } if to == TEAM_LEAD => {
            if !has_lead {
                return Err(format!(
                    "team `{}` has no lead component (a [planner] of world lead): nobody reads messages to team-lead",
                    team.name
                ));
            }
            events.send(ControlEvent::ToLead(text)).await.map_err(gone)?;
            Ok("queued for team-lead; its answer shows in `swarm-host attach` and the report".to_string())
        }
        ControlOp::Send { to, text } => {
            known(steering, &to)?;
            let msg = Incoming::Message { sender: TEAM_LEAD.to_string(), body: text, summary: Some(PERSON.into()) };
            team.mailbox.send(&to, msg).map_err(|e| format!("not sent to {to}: {e}"))?;
            team.mailbox.flushed().await;
            steering.say(format!("a person sent a message to {to}"));
            Ok(format!("sent to {to}"))
        }
        ControlOp::Stop { teammate: None } => {
            events.send(ControlEvent::StopTeam).await.map_err(gone)?;
            Ok(format!("stopping team `{}` gracefully", team.name))
        }
        ControlOp::Stop { teammate: Some(id) } => {
            known(steering, &id)?;
            events.send(ControlEvent::StopTeammate(id.clone())).await.map_err(gone)?;
            Ok(format!("stopping {id} gracefully"))
        }
        ControlOp::Answer { request, grant } => {
            steering.answer(&request, grant)?;
            Ok(format!("{} {request}", if grant { "granted" } else { "denied" }))
        }
        ControlOp::Pending => Ok(steering.pending().join("\n")),
        ControlOp::Attach => Err("attach is served apart".to_string()),
    }
}

/// `Ok` if `id` is on the roster, else an error listing who is.
fn known(steering: &Steering, id: &str) -> Result<(), String> {
    let roster = steering.team().mailbox.roster();
    if roster.iter().any(|r| r == id) {
        return Ok(());
    }
    Err(format!(
        "no teammate `{}` on team `{}` (teammates: {}; or team-lead)",
        crate::sanitize::line(id),
        steering.team().name,
        roster.join(", ")
    ))
}

/// Streams the last events, the pending requests, then every new event,
/// until the run ends or the follower goes away.
async fn attach(write: &mut tokio::net::unix::OwnedWriteHalf, steering: &Steering) {
    let (said, mut feed) = steering.follow();
    let mut lines = vec![format!("attached to team `{}`", steering.team().name)];
    lines.extend(said);
    lines.extend(steering.pending().into_iter().map(|p| format!("waiting: {p}")));
    for text in lines {
        if write_reply(write, &ControlReply::Event { text }).await.is_err() {
            return;
        }
    }
    loop {
        let text = match feed.recv().await {
            Ok(text) => text,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => format!("({n} events skipped: too slow)"),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if write_reply(write, &ControlReply::Event { text }).await.is_err() {
            return;
        }
    }
}
