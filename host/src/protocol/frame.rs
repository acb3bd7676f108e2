//! The Unix-socket transport between the coordinator and a native teammate
//! process (`swarm-host teammate`): length-prefixed, versioned frames.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of
//! JSON, an object with `"v":1` and a `"type"` tag. Reading checks the
//! length against a hard cap *before* allocating, then the version, then the
//! type and fields; each failure is a [`FrameError`] naming what was wrong.
//!
//! The conversation: the teammate sends [`ToCoordinator::Hello`] with the
//! per-run token; the coordinator answers [`ToTeammate::Welcome`] (with the
//! launch configuration) or [`ToTeammate::Refused`]. Then the teammate sends
//! requests (each with an id, answered by one [`ToTeammate::Response`] with
//! the same id), one-way notices (roster beats, v1 [`WireEvent`]s),
//! heartbeats, and finally [`ToCoordinator::Exit`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::VERSION;
use super::wire::{
    WireBeat, WireDependency, WireEvent, WireExitReason, WireIncoming, WireLimits, WireModelCall, WireModelError,
    WireModelResponse, WireReadScope, WireSendError, WireTaskReport, WireTaskSpec, WorkspaceRules,
};

/// Cap of one frame's payload, in bytes, during the hello and welcome, and
/// the default of [`LaunchConfig::frame_bytes`]. After the welcome both ends
/// of a connection use the cap the coordinator sized from the team's limits
/// (the sandbox's `Limits::frame_bytes`: a report or message of the largest allowed size,
/// every byte escaped to six in JSON, fits).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

fn default_frame_bytes() -> usize {
    MAX_FRAME_BYTES
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the cap.
    #[error("frame of {actual} bytes is over the {limit}-byte frame limit")]
    TooLarge {
        /// The cap.
        limit: usize,
        /// The announced length.
        actual: usize,
    },
    /// The `v` field is missing or names another version.
    #[error("unsupported frame version {found} (this build speaks v{VERSION})")]
    UnsupportedVersion {
        /// What was found (`none` when missing).
        found: String,
    },
    /// Not JSON, not an object, an unknown `type`, or a bad field.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything the teammate process needs to run its teammate, sent by the
/// coordinator once the hello is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchConfig {
    /// Team name.
    pub team: String,
    /// Teammate id (echoed; must match the hello).
    pub id: String,
    /// Group (team file teammate name).
    pub group: String,
    /// Team view colour.
    pub color: String,
    /// The plugin to run, an absolute path.
    pub plugin: PathBuf,
    /// The teammate's limits.
    pub limits: WireLimits,
    /// Workspace root, an absolute path; the teammate process opens it
    /// itself as a capability directory.
    pub root: PathBuf,
    /// What the teammate may read.
    pub read: WireReadScope,
    /// Compiled-plugin cache, if any.
    pub cache_dir: Option<PathBuf>,
    /// How often the teammate must send a heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// The rest of the workspace policy (the read scope is `read`).
    #[serde(default)]
    pub workspace: WorkspaceRules,
    /// The frame cap of this connection after the welcome, both ways: sized
    /// by the coordinator so that the largest report, message, task or
    /// roster the team's limits allow fits once escaped.
    #[serde(default = "default_frame_bytes")]
    pub frame_bytes: usize,
}

/// A request from the teammate's host side to the team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Wait up to `timeout_ms` for the next inbox entry.
    Recv {
        /// Longest wait.
        timeout_ms: u64,
    },
    /// Send a text message to a teammate.
    Send {
        /// Recipient.
        to: String,
        /// Text.
        body: String,
        /// Summary.
        summary: Option<String>,
    },
    /// Send a text message to every other teammate.
    Broadcast {
        /// Text.
        body: String,
        /// Summary.
        summary: Option<String>,
    },
    /// The roster's ids.
    Roster,
    /// Claim the next task.
    Claim,
    /// Complete a held task.
    Complete {
        /// The task.
        task_id: String,
        /// Its report.
        report: WireTaskReport,
    },
    /// Fail a held task.
    Fail {
        /// The task.
        task_id: String,
        /// Why.
        reason: String,
    },
    /// Ask for a file for the held task (since the teammate WIT 0.1.3);
    /// answered with `done`.
    RequestFile {
        /// The file, clean and relative.
        path: String,
        /// Why.
        reason: String,
    },
    /// A guest's model call, made by the coordinator (which holds the keys).
    Model {
        /// The call.
        request: Box<WireModelCall>,
    },
}

/// The answer to a [`Call`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `recv`.
    Incoming {
        /// The entry, or none on timeout.
        entry: Option<WireIncoming>,
    },
    /// Answer to `send` and `broadcast`.
    Sent {
        /// Why it was refused, if it was.
        error: Option<WireSendError>,
    },
    /// Answer to `roster`.
    Roster {
        /// Ids.
        ids: Vec<String>,
    },
    /// Answer to `claim`.
    Claimed {
        /// The task and attempt number, or none (boxed: the other replies
        /// are small).
        task: Option<(Box<WireTaskSpec>, u32)>,
        /// What the tasks it was blocked by produced.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dependencies: Vec<WireDependency>,
    },
    /// Answer to `complete` and `fail`.
    Done {
        /// Why it was refused, if it was.
        error: Option<String>,
    },
    /// Answer to `model`: the response or the error.
    Model {
        /// The answer, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<Box<WireModelResponse>>,
        /// Why there is none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<WireModelError>,
    },
}

/// Frames a teammate process sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCoordinator {
    /// First frame: who it is, proven by the run's token.
    Hello {
        /// The teammate id it was started as.
        agent_id: String,
        /// The per-run token.
        token: String,
        /// Its process id.
        pid: u32,
    },
    /// A request, answered by a response with the same id.
    Request {
        /// Request id, unique per connection.
        id: u64,
        /// What it asks.
        call: Call,
    },
    /// A roster update (no answer).
    Beat {
        /// Which.
        beat: WireBeat,
    },
    /// A v1 teammate → coordinator message (no answer).
    Event {
        /// The message; its `from` must be the connection's teammate.
        message: WireEvent,
    },
    /// "Still here".
    Heartbeat,
    /// Last frame: how the teammate ended.
    Exit {
        /// How.
        reason: WireExitReason,
    },
}

/// Frames the coordinator sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToTeammate {
    /// The hello was accepted.
    Welcome {
        /// What to run.
        config: Box<LaunchConfig>,
    },
    /// The hello was refused; the connection closes.
    Refused {
        /// Why.
        reason: String,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: Reply,
    },
}

/// Encodes one frame's payload: the message's JSON object with `"v"` first.
/// Serialised once, straight to bytes (no intermediate JSON tree).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    // Every frame type is a tagged enum: an object holding at least its tag.
    let fields = body
        .strip_prefix(b"{")
        .filter(|rest| *rest != b"}")
        .ok_or_else(|| FrameError::Malformed("a frame must be a JSON object with fields".into()))?;
    let version = format!("{{\"v\":{VERSION},");
    let mut payload = Vec::with_capacity(version.len() + fields.len());
    payload.extend_from_slice(version.as_bytes());
    payload.extend_from_slice(fields);
    Ok(payload)
}

/// Only the version of a payload (every other field is skipped unparsed).
#[derive(Deserialize)]
struct Versioned {
    v: Option<serde_json::Value>,
}

/// Decodes one frame's payload: version first, then type and fields. Parsed
/// straight from the bytes (no intermediate JSON tree); the `v` field is
/// ignored by the message types.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, FrameError> {
    // A derived struct would take a JSON array too; only an object carries
    // a version.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(FrameError::Malformed("expected a JSON object".into()));
    }
    let head: Versioned = serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))?;
    match head.v {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => return Err(FrameError::UnsupportedVersion { found: v.to_string() }),
        None => return Err(FrameError::UnsupportedVersion { found: "none".into() }),
    }
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Appends one frame (length prefix and payload) of `msg` to `out`, so that
/// several frames can go out in one write; a payload over `limit` bytes is
/// refused (the peer would refuse it).
pub fn encode_frame<T: Serialize>(msg: &T, out: &mut Vec<u8>, limit: usize) -> Result<(), FrameError> {
    let payload = encode(msg)?;
    if payload.len() > limit || payload.len() > u32::MAX as usize {
        return Err(FrameError::TooLarge { limit, actual: payload.len() });
    }
    out.reserve(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Writes one frame of at most [`MAX_FRAME_BYTES`] (the hello, the welcome).
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    // Length and payload in one write: the peer's reader wakes once per
    // frame, not once for the length and again for the payload.
    let mut frame = Vec::new();
    encode_frame(msg, &mut frame, MAX_FRAME_BYTES)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Bytes asked of the socket per read when no frame is partly read: enough
/// for dozens of small frames, so a burst costs one read.
const READ_CHUNK: usize = 16 * 1024;

/// A buffered frame reader. [`FrameReader::next`] is cancel-safe (its only
/// await is one read into the buffer), so a connection's loop can select
/// over it beside timers and other work without losing half a frame, and
/// every frame that arrived in one read is parsed without another syscall.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Where the unparsed bytes of `buf` start.
    start: usize,
    limit: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames of at most `limit` bytes from `inner`.
    pub fn new(inner: R, limit: usize) -> Self {
        Self { inner, buf: Vec::new(), start: 0, limit }
    }

    /// Changes the frame limit (e.g. once the peer is authenticated).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The next frame; `Ok(None)` when the peer closed the stream between
    /// frames. The length is checked against the limit before its payload
    /// is buffered.
    pub async fn next<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, FrameError> {
        loop {
            let pending = &self.buf[self.start..];
            let mut want = READ_CHUNK;
            if let Some(len) = pending.first_chunk::<4>() {
                let len = u32::from_be_bytes(*len) as usize;
                if len > self.limit {
                    return Err(FrameError::TooLarge { limit: self.limit, actual: len });
                }
                if pending.len() >= 4 + len {
                    let payload = &pending[4..4 + len];
                    self.start += 4 + len;
                    return decode(payload).map(Some);
                }
                // Grow towards the announced length no faster than the bytes
                // that really arrived (at most doubling the buffer per read):
                // a peer that announces a frame at the limit and sends a few
                // bytes holds a few bytes of ours, not the limit.
                let missing = 4 + len - pending.len();
                want = want.max(missing.min(pending.len()));
            }
            // Keep only the unparsed tail (and not the capacity a huge frame
            // left behind), then read more after it.
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
                self.buf = Vec::new();
            }
            self.buf.reserve(want);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::WireLimitKind;
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_with_its_version() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let hello = ToCoordinator::Hello { agent_id: "w-1".into(), token: "t".into(), pid: 7 };
        write_frame(&mut a, &hello).await.unwrap();
        let got: ToCoordinator = FrameReader::new(&mut b, MAX_FRAME_BYTES).next().await.unwrap().unwrap();
        assert_eq!(got, hello);
        let text = String::from_utf8(encode(&hello).unwrap()).unwrap();
        assert!(text.contains(r#""v":1"#) && text.contains(r#""type":"hello""#), "{text}");
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_payload() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(1_000_000u32).to_be_bytes()).await.unwrap();
        let err = FrameReader::new(&mut b, 1000).next::<ToCoordinator>().await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { limit: 1000, actual: 1_000_000 }), "{err}");
        assert!(err.to_string().contains("1000-byte frame limit"));
    }

    #[test]
    fn a_frame_over_the_connection_cap_is_refused_when_encoded() {
        let big = ToCoordinator::Hello { agent_id: "\u{1}".repeat(1000), token: "t".into(), pid: 1 };
        let mut out = Vec::new();
        let err = encode_frame(&big, &mut out, 5000).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { limit: 5000, actual } if actual > 6000), "{err}");
        assert!(out.is_empty(), "nothing half-written");
        encode_frame(&big, &mut out, 7000).unwrap();
    }

    #[test]
    fn a_launch_config_without_a_frame_cap_gets_the_default() {
        let mut v = serde_json::to_value(LaunchConfig {
            team: "t".into(),
            id: "w-1".into(),
            group: "w".into(),
            color: "blue".into(),
            plugin: "/p.wasm".into(),
            limits: WireLimits {
                memory_mib: 1,
                table_elements: 2,
                instances: 3,
                wasm_stack_kib: 4,
                task_deadline_ms: 5,
                message_kib: 6,
                report_kib: 7,
                inbox_len: 8,
                file_mib: 9,
                plugin_mib: 10,
                compile_timeout_ms: 11,
                log_lines_per_sec: 12,
                events_per_sec: 13,
                idle_cpu_ms: 14,
                fuel: None,
            },
            root: "/r".into(),
            read: WireReadScope::Owned,
            cache_dir: None,
            heartbeat_ms: 250,
            frame_bytes: 99,
            workspace: Default::default(),
        })
        .unwrap();
        v.as_object_mut().unwrap().remove("frame_bytes");
        let c: LaunchConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.frame_bytes, MAX_FRAME_BYTES);
    }

    #[tokio::test]
    async fn an_announced_length_is_not_reserved_before_its_bytes_arrive() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let limit = 8 << 20;
        a.write_all(&(limit as u32).to_be_bytes()).await.unwrap();
        a.write_all(&[b'x'; 100]).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(&mut b, limit);
        let err = reader.next::<ToCoordinator>().await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
        assert!(
            reader.buf.capacity() <= 4 * READ_CHUNK,
            "104 bytes arrived of an announced {limit}: the buffer holds {} bytes",
            reader.buf.capacity()
        );
    }

    #[test]
    fn another_version_or_type_is_a_clear_error() {
        let err = decode::<ToCoordinator>(br#"{"v":2,"type":"heartbeat"}"#).unwrap_err();
        assert!(matches!(err, FrameError::UnsupportedVersion { ref found } if found == "2"), "{err}");
        let err = decode::<ToCoordinator>(br#"{"type":"heartbeat"}"#).unwrap_err();
        assert!(matches!(err, FrameError::UnsupportedVersion { .. }), "{err}");
        let err = decode::<ToCoordinator>(br#"{"v":1,"type":"teleport"}"#).unwrap_err();
        assert!(err.to_string().contains("teleport"), "{err}");
        let err = decode::<ToCoordinator>(b"[1,2]").unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }

    #[tokio::test]
    async fn eof_between_frames_is_none_and_inside_a_frame_is_truncated() {
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(FrameReader::new(&mut b, 100).next::<ToCoordinator>().await.unwrap().is_none());
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 10, b'{']).await.unwrap();
        drop(a);
        let err = FrameReader::new(&mut b, 100).next::<ToCoordinator>().await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    #[test]
    fn an_exit_frame_carries_its_limit_and_one_without_has_none() {
        let with = ToCoordinator::Exit {
            reason: WireExitReason::Killed { message: "x".into(), limit: Some(WireLimitKind::LogRate) },
        };
        let text = String::from_utf8(encode(&with).unwrap()).unwrap();
        assert!(text.contains(r#""limit":"log_rate""#), "{text}");
        let without = br#"{"v":1,"type":"exit","reason":{"kind":"trapped","message":"boom"}}"#;
        let ToCoordinator::Exit { reason } = decode::<ToCoordinator>(without).unwrap() else { panic!("not an exit") };
        assert_eq!(reason, WireExitReason::Trapped { message: "boom".into(), limit: None });
    }

    #[test]
    fn a_field_v1_does_not_know_is_refused_naming_it() {
        let extra = br#"{"v":1,"type":"beat","beat":{"beat":"progress","done":1,"total":2,"eta":3}}"#;
        let err = decode::<ToCoordinator>(extra).unwrap_err();
        assert!(err.to_string().contains("eta"), "{err}");
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let frames = [
            ToCoordinator::Request { id: 3, call: Call::Recv { timeout_ms: 50 } },
            ToCoordinator::Beat { beat: WireBeat::Working { task: "t1".into() } },
            ToCoordinator::Exit { reason: WireExitReason::Trapped { message: "out of fuel".into(), limit: None } },
            ToCoordinator::Exit {
                reason: WireExitReason::Trapped {
                    message: "deadline hit: task t ran past task_deadline = 1s".into(),
                    limit: Some(WireLimitKind::Deadline),
                },
            },
        ];
        for f in frames {
            assert_eq!(decode::<ToCoordinator>(&encode(&f).unwrap()).unwrap(), f);
        }
        let r = ToTeammate::Response {
            id: 3,
            reply: Reply::Incoming {
                entry: Some(WireIncoming::Shutdown { request_id: "r".into(), reason: "x".into() }),
            },
        };
        assert_eq!(decode::<ToTeammate>(&encode(&r).unwrap()).unwrap(), r);
    }

    fn frames(msgs: &[ToCoordinator]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            encode_frame(m, &mut out, MAX_FRAME_BYTES).unwrap();
        }
        out
    }

    #[tokio::test]
    async fn a_frame_reader_parses_a_burst_and_frames_split_anywhere() {
        let msgs = [
            ToCoordinator::Heartbeat,
            ToCoordinator::Request { id: 1, call: Call::Claim },
            ToCoordinator::Beat { beat: WireBeat::Progress { done: 3, total: 9 } },
        ];
        let bytes = frames(&msgs);
        // Every split point of the stream into two writes reads the same frames.
        for cut in 0..=bytes.len() {
            let (mut a, b) = tokio::io::duplex(4096);
            a.write_all(&bytes[..cut]).await.unwrap();
            let mut reader = FrameReader::new(b, MAX_FRAME_BYTES);
            let mut got = Vec::new();
            let rest = bytes[cut..].to_vec();
            let writer = tokio::spawn(async move {
                a.write_all(&rest).await.unwrap();
            });
            while got.len() < msgs.len() {
                got.push(reader.next::<ToCoordinator>().await.unwrap().unwrap());
            }
            writer.await.unwrap();
            assert_eq!(got, msgs, "cut at {cut}");
            assert!(reader.next::<ToCoordinator>().await.unwrap().is_none(), "cut at {cut}: end of stream");
        }
    }

    #[tokio::test]
    async fn a_frame_reader_keeps_a_half_read_frame_when_its_read_is_cancelled() {
        let bytes = frames(&[ToCoordinator::Request { id: 7, call: Call::Roster }]);
        let (mut a, b) = tokio::io::duplex(4096);
        let mut reader = FrameReader::new(b, MAX_FRAME_BYTES);
        a.write_all(&bytes[..6]).await.unwrap();
        // The read is dropped while the frame is incomplete ...
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(20), reader.next::<ToCoordinator>());
        assert!(cancelled.await.is_err(), "half a frame is not a frame");
        // ... and the next read still yields the whole frame.
        a.write_all(&bytes[6..]).await.unwrap();
        let got = reader.next::<ToCoordinator>().await.unwrap().unwrap();
        assert_eq!(got, ToCoordinator::Request { id: 7, call: Call::Roster });
    }
}
