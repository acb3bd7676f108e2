//! The coordinator's end of the Unix socket: a private socket directory, a
//! per-run token, and one served connection per native teammate process.
//!
//! Security: the directory is created fresh with mode 0700 (a pre-existing
//! path, symlink or not, is refused), the token file in it is 0600, and a
//! connection is served only after its hello carries the run's token and
//! names a teammate that is expected and not yet connected.
//!
//! Liveness: the teammate process sends heartbeats; a connection that ends
//! without an exit frame (the process was killed, crashed, or its pane was
//! closed) or stays silent past the heartbeat timeout ends the teammate as
//! killed, and the backend reports it like any other death. Silence is
//! counted only while this end waits to read: time spent handing an event to
//! a busy coordinator is this side's delay, not the teammate's silence, so a
//! teammate's own traffic never starves its heartbeat.
//!
//! Frames: after the welcome both ends use the connection's
//! [`LaunchConfig::frame_bytes`], sized from the team's limits.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, watch};

use super::link::serve_call;
use crate::model::TeammateMessage;
use crate::protocol::frame::{
    Call, FrameError, FrameReader, LaunchConfig, ToCoordinator, ToTeammate, encode_frame, write_frame,
};
use crate::team::{Beat, Event, ExitReason, Team};

/// How often a teammate process sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);
/// Silence after which a connected teammate counts as dead. A process that
/// dies closes its socket at once, so this only catches a hung one.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a new connection has to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest hello accepted (before the peer is authenticated).
const MAX_HELLO_BYTES: usize = 4096;

/// Why the socket directory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Something (maybe a symlink planted by another user) already exists
    /// where the directory goes.
    #[error("refusing socket directory {path}: {what} already exists there")]
    Exists {
        /// The path.
        path: PathBuf,
        /// `a symlink`, `a directory`, ...
        what: &'static str,
    },
    /// The directory was created but is not private.
    #[error("socket directory {path} has mode {mode:o}, expected 700")]
    NotPrivate {
        /// The path.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// An I/O error.
    #[error("socket directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A private directory holding the run's socket and token; removed on drop.
#[derive(Debug)]
pub struct SocketDir {
    path: PathBuf,
    token: String,
}

/// `n` random bytes from the kernel, hex-encoded.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl SocketDir {
    /// Creates a fresh directory with a random name under `$XDG_RUNTIME_DIR`
    /// (else the temp dir), named after (at most 16 characters of) the team.
    pub fn create(team: &str) -> Result<Self, SocketError> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let clean: String =
            team.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(16).collect();
        let suffix = random_hex(6).map_err(|source| SocketError::Io { path: base.clone(), source })?;
        Self::create_at(&base.join(format!("swarm-{clean}-{suffix}")))
    }

    /// Creates the directory at exactly `path` (mode 0700; refused if
    /// anything exists there) and a fresh token file in it (mode 0600).
    pub fn create_at(path: &Path) -> Result<Self, SocketError> {
        let io = |source| SocketError::Io { path: path.to_path_buf(), source };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let what = if meta.file_type().is_symlink() {
                "a symlink"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "a file"
            };
            return Err(SocketError::Exists { path: path.to_path_buf(), what });
        }
        // `create` fails if anything appeared meanwhile: no race with a
        // symlink planted between the check and here.
        std::fs::DirBuilder::new().mode(0o700).create(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => SocketError::Exists { path: path.to_path_buf(), what: "something" },
            _ => io(e),
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if !meta.is_dir() || mode != 0o700 {
            return Err(SocketError::NotPrivate { path: path.to_path_buf(), mode });
        }
        let token = random_hex(32).map_err(io)?;
        let dir = Self { path: path.to_path_buf(), token };
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dir.token_file()).map_err(io)?;
        file.write_all(dir.token.as_bytes()).map_err(io)?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        // Short: a socket path must fit in `sun_path` (104 bytes on macOS,
        // whose temp dir is long).
        self.path.join("sock")
    }

    /// The token file's path (teammates read it from beside the socket).
    pub fn token_file(&self) -> PathBuf {
        self.path.join("token")
    }

    /// The run's token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn token_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the backend learns about one expected teammate process.
#[derive(Debug)]
pub struct Expectation {
    /// Resolves with the process id once it connected and was welcomed.
    pub connected: oneshot::Receiver<u32>,
    /// Resolves with how it ended, once its connection ended.
    pub exit: oneshot::Receiver<ExitReason>,
}

struct Slot {
    config: LaunchConfig,
    connected: oneshot::Sender<u32>,
    exit: oneshot::Sender<ExitReason>,
    kill: watch::Receiver<Option<String>>,
}

struct Admitted {
    config: LaunchConfig,
    connected: oneshot::Sender<u32>,
    exit: oneshot::Sender<ExitReason>,
    kill: watch::Receiver<Option<String>>,
    pid: u32,
}

/// Accepts and serves teammate connections for one team.
pub struct LinkServer {
    dir: SocketDir,
    team: Arc<Team>,
    expected: Mutex<HashMap<String, Slot>>,
    heartbeat_timeout: Duration,
    accept: tokio::task::AbortHandle,
    /// Where teammates' model calls go; unset: the team has no `[models]`.
    models: std::sync::OnceLock<crate::llm::SharedModelPort>,
}

impl std::fmt::Debug for LinkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkServer").field("dir", &self.dir.path).finish_non_exhaustive()
    }
}

impl Drop for LinkServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl LinkServer {
    /// Binds the socket in `dir` and starts accepting connections.
    pub fn start(team: Arc<Team>, dir: SocketDir, heartbeat_timeout: Duration) -> std::io::Result<Arc<Self>> {
        let listener = UnixListener::bind(dir.socket())?;
        std::fs::set_permissions(dir.socket(), std::fs::Permissions::from_mode(0o600))?;
        Ok(Arc::new_cyclic(|weak: &std::sync::Weak<Self>| {
            let weak = weak.clone();
            let accept = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let Some(server) = weak.upgrade() else { break };
                    tokio::spawn(async move { server.handle(stream).await });
                }
            });
            Self {
                dir,
                team,
                expected: Mutex::new(HashMap::new()),
                heartbeat_timeout,
                accept: accept.abort_handle(),
                models: std::sync::OnceLock::new(),
            }
        }))
    }

    /// Answers teammates' model calls with `models` (the coordinator's model
    /// service). Set once, before teammates start; a second call is ignored.
    pub fn set_models(&self, models: crate::llm::SharedModelPort) {
        let _ = self.models.set(models);
    }

    /// The socket teammates connect to.
    pub fn socket(&self) -> PathBuf {
        self.dir.socket()
    }

    /// Registers a teammate process about to start; `kill` ends its
    /// connection (with the reason sent) whenever it is set.
    pub fn expect(&self, config: LaunchConfig, kill: watch::Receiver<Option<String>>) -> Expectation {
        let (connected_tx, connected) = oneshot::channel();
        let (exit_tx, exit) = oneshot::channel();
        let id = config.id.clone();
        let slot = Slot { config, connected: connected_tx, exit: exit_tx, kill };
        self.expected.lock().unwrap_or_else(|e| e.into_inner()).insert(id, slot);
        Expectation { connected, exit }
    }

    /// Forgets a teammate that never connected (so a late connection is refused).
    pub fn forget(&self, id: &str) {
        self.expected.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    async fn handle(self: Arc<Self>, stream: UnixStream) {
        let (rd, mut wr) = stream.into_split();
        let mut reader = FrameReader::new(rd, MAX_HELLO_BYTES);
        let hello = tokio::time::timeout(HELLO_TIMEOUT, reader.next::<ToCoordinator>()).await;
        let slot = match self.admit(hello) {
            Ok(slot) => slot,
            Err(None) => return,
            Err(Some(reason)) => {
                tracing::warn!("refused a teammate connection: {reason}");
                let _ = write_frame(&mut wr, &ToTeammate::Refused { reason }).await;
                return;
            }
        };
        let agent_id = slot.config.id.clone();
        let pid = slot.pid;
        let Admitted { config, connected, exit, kill, .. } = slot;
        let group = config.group.clone();
        let frame_bytes = config.frame_bytes;
        if let Err(e) = write_frame(&mut wr, &ToTeammate::Welcome { config: Box::new(config) }).await {
            let _ = exit.send(ExitReason::spawn_failed(format!("connection broke during the hello: {e}")));
            return;
        }
        let _ = connected.send(pid);
        reader.set_limit(frame_bytes);
        let reason = self.serve(&agent_id, &group, frame_bytes, reader, wr, kill).await;
        let _ = exit.send(reason);
    }

    /// Checks a hello: the token, then that its teammate is expected. The
    /// error is the reason to send back (`None`: the peer already left).
    #[allow(clippy::type_complexity)]
    fn admit(
        &self,
        hello: Result<Result<Option<ToCoordinator>, FrameError>, tokio::time::error::Elapsed>,
    ) -> Result<Admitted, Option<String>> {
        let (agent_id, token, pid) = match hello {
            Ok(Ok(Some(ToCoordinator::Hello { agent_id, token, pid }))) => (agent_id, token, pid),
            Ok(Ok(Some(_))) => return Err(Some("the first frame must be a hello".into())),
            Ok(Ok(None)) => return Err(None),
            Ok(Err(e)) => return Err(Some(format!("bad hello: {e}"))),
            Err(_) => return Err(Some(format!("no hello within {}", humantime::format_duration(HELLO_TIMEOUT)))),
        };
        let agent = crate::sanitize::line(&agent_id);
        if !token_eq(&token, self.dir.token()) {
            return Err(Some(format!("wrong run token from a process claiming to be `{agent}`")));
        }
        let slot = self.expected.lock().unwrap_or_else(|e| e.into_inner()).remove(&agent_id);
        let slot = slot.ok_or_else(|| {
            Some(format!("no teammate `{agent}` is waiting to connect (unknown, or already connected)"))
        })?;
        Ok(Admitted { config: slot.config, connected: slot.connected, exit: slot.exit, kill: slot.kill, pid })
    }

    /// Serves one admitted connection until its teammate ends. Everything
    /// happens on this one task: frames are read here, calls are answered
    /// here (a `recv` that has to wait is polled beside the reads), and
    /// replies are written here, so a round trip costs no hand-off between
    /// threads on the coordinator's side.
    async fn serve(
        &self,
        id: &str,
        group: &str,
        frame_bytes: usize,
        mut reader: FrameReader<OwnedReadHalf>,
        mut wr: OwnedWriteHalf,
        mut kill: watch::Receiver<Option<String>>,
    ) -> ExitReason {
        let mut calls = FuturesUnordered::new();
        let mut out = Vec::new();
        let silence = tokio::time::sleep(self.heartbeat_timeout);
        tokio::pin!(silence);
        let killed = |why: String| ExitReason::killed(why);
        loop {
            tokio::select! {
                got = reader.next::<ToCoordinator>() => {
                    silence.as_mut().reset(tokio::time::Instant::now() + self.heartbeat_timeout);
                    let frame = match got {
                        Ok(Some(frame)) => frame,
                        Ok(None) => return killed(
                            "its process ended without reporting an exit (killed, crashed, or its pane was closed)".into()),
                        Err(e) => return killed(format!("protocol error on its connection: {e}")),
                    };
                    // Every frame shows the process is alive; a request also
                    // shows its guest called into the host.
                    match frame {
                        ToCoordinator::Request { id: request, call } => {
                            if calls.len() >= MAX_CALLS_IN_FLIGHT {
                                return killed(format!(
                                    "protocol error: more than {MAX_CALLS_IN_FLIGHT} calls in flight on its connection"));
                            }
                            self.team.roster.beat(id, &Beat::Alive);
                            calls.push(answer(&self.team, self.models.get(), id, group, request, call));
                        }
                        ToCoordinator::Beat { beat } => self.team.roster.beat(id, &beat.into()),
                        ToCoordinator::Heartbeat => self.team.roster.beat(id, &Beat::Alive),
                        ToCoordinator::Event { message } => {
                            if message.from() != id {
                                return killed(format!(
                                    "protocol error: a message from `{}` on the connection of `{id}`",
                                    crate::sanitize::line(message.from())));
                            }
                            let message: TeammateMessage = message.into();
                            let _ = self.team.events.send(Event::Message(message)).await;
                        }
                        ToCoordinator::Exit { reason } => return reason.into(),
                        ToCoordinator::Hello { .. } => return killed("protocol error: a second hello".into()),
                    }
                    // Handing the event over may have waited on a busy
                    // coordinator: the silence starts now.
                    silence.as_mut().reset(tokio::time::Instant::now() + self.heartbeat_timeout);
                }
                Some(response) = calls.next(), if !calls.is_empty() => {
                    out.clear();
                    if let Err(e) = encode_frame(&response, &mut out, frame_bytes) {
                        return killed(format!("cannot encode a reply: {e}"));
                    }
                    // A peer that stops reading cannot stall this loop for
                    // longer than it may stay silent.
                    match tokio::time::timeout(self.heartbeat_timeout, wr.write_all(&out)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return killed(format!("cannot write to its connection: {e}")),
                        Err(_) => return killed(format!(
                            "it read nothing from its connection for {}", humantime::format_duration(self.heartbeat_timeout))),
                    }
                }
                () = &mut silence => return killed(format!(
                    "no heartbeat for {}", humantime::format_duration(self.heartbeat_timeout))),
                Ok(()) = kill.changed() => {
                    if let Some(why) = kill.borrow().clone() {
                        // Dropping the write half closes the socket, which
                        // tells the teammate process to end.
                        return killed(why);
                    }
                }
            }
        }
    }
}

/// Most calls one connection may have waiting at once. A teammate's guest
/// makes one call at a time; more is a broken or hostile peer.
const MAX_CALLS_IN_FLIGHT: usize = 64;

/// Answers request `request` of teammate `id`. Dropping the future (the
/// connection ended: the teammate stopped) cancels a model call in flight.
async fn answer(
    team: &Team,
    models: Option<&crate::llm::SharedModelPort>,
    id: &str,
    group: &str,
    request: u64,
    call: Call,
) -> ToTeammate {
    ToTeammate::Response { id: request, reply: serve_call(team, models.map(|m| &**m), id, group, call).await }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_dir_is_private_and_a_planted_symlink_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = SocketDir::create_at(&base.path().join("run")).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let token_mode = std::fs::metadata(dir.token_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(token_mode, 0o600);
        assert_eq!(std::fs::read_to_string(dir.token_file()).unwrap(), dir.token());
        assert_eq!(dir.token().len(), 64);

        let target = base.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let planted = base.path().join("planted");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        let err = SocketDir::create_at(&planted).unwrap_err();
        assert!(matches!(err, SocketError::Exists { what: "a symlink", .. }), "{err}");
        assert!(err.to_string().contains("a symlink already exists"), "{err}");
        assert!(std::fs::read_dir(&target).unwrap().next().is_none(), "nothing written through the symlink");
    }

    #[test]
    fn the_socket_dir_is_removed_on_drop_and_tokens_differ() {
        let base = tempfile::tempdir().unwrap();
        let (a, b) = (base.path().join("a"), base.path().join("b"));
        let (da, db) = (SocketDir::create_at(&a).unwrap(), SocketDir::create_at(&b).unwrap());
        assert_ne!(da.token(), db.token());
        drop(da);
        assert!(!a.exists());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_eq("abc", "abc"));
        assert!(!token_eq("abc", "abd"));
        assert!(!token_eq("abc", "abcd"));
    }
}
