//! The control socket's messages (version [`CONTROL_VERSION`]): what
//! `swarm-host send`, `stop`, `answer` and `attach` ask a running
//! coordinator, and what it answers. One JSON object per line; a request
//! is one line of at most [`MAX_REQUEST_BYTES`], carrying the run's token;
//! the coordinator answers with one line, or, for `attach`, a line per
//! event until the run ends. Also the pointer file in the team's state
//! directory that says where the socket is.

use serde::{Deserialize, Serialize};

/// The version of these messages.
pub const CONTROL_VERSION: u32 = 1;

/// Longest request line (bytes), the newline excluded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The pointer file's name in the team's state directory.
pub const POINTER_FILE: &str = "control.json";

/// Where a running coordinator's control socket is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlPointer {
    /// [`CONTROL_VERSION`].
    pub v: u32,
    /// The private directory holding `sock` and `token`.
    pub dir: String,
    /// The coordinator's process id.
    pub pid: u32,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// [`CONTROL_VERSION`].
    pub v: u32,
    /// The run's token (from the token file beside the socket).
    pub token: String,
    /// What to do.
    #[serde(flatten)]
    pub op: ControlOp,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlOp {
    /// Send `text` to a teammate, or to `team-lead` (the lead component).
    Send {
        /// A teammate id or `team-lead`.
        to: String,
        /// The message.
        text: String,
    },
    /// Stop one teammate, or the whole team.
    Stop {
        /// The teammate; `None` stops the team.
        teammate: Option<String>,
    },
    /// Decide a pending ownership request.
    Answer {
        /// Its id, e.g. `r1`.
        request: String,
        /// True grants, false denies.
        grant: bool,
    },
    /// The requests waiting for a person.
    Pending,
    /// Follow the run's events (and pending requests) until it ends.
    Attach,
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ControlReply {
    /// Done; `text` says what happened.
    Ok {
        /// For people.
        text: String,
    },
    /// Refused; `message` says why.
    Error {
        /// For people.
        message: String,
    },
    /// One event of an `attach`.
    Event {
        /// For people.
        text: String,
    },
}
