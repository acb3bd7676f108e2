//! What a teammate tells the coordinator: one [`TeammateMessage`] per
//! event (a task done, idle, a shutdown request or answer, progress, an
//! error, a refused file operation, a text message). Plain data; the socket
//! carries its own v1 copy (`protocol::wire::WireEvent`).

use serde::{Deserialize, Serialize};

use super::Finding;

/// Every message a teammate sends to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum TeammateMessage {
    /// A held task is done.
    TaskCompleted {
        /// Sender id.
        from: String,
        /// The task's id.
        task_id: String,
        /// One-line summary.
        summary: String,
        /// Structured findings.
        #[serde(default)]
        findings: Vec<Finding>,
    },
    /// The teammate holds no task and waits.
    IdleNotification {
        /// Sender id.
        from: String,
        /// Why it is idle, when it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The teammate asks to be shut down.
    ShutdownRequest {
        /// Correlates the response.
        request_id: String,
        /// Sender id.
        from: String,
        /// Why.
        reason: String,
    },
    /// The answer to a shutdown request from the team lead.
    ShutdownResponse {
        /// The request being answered.
        request_id: String,
        /// Sender id.
        from: String,
        /// True to approve (the teammate then exits).
        approve: bool,
        /// Why it rejects, when it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Progress on the held task.
    Progress {
        /// Sender id.
        from: String,
        /// The held task, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// Units done.
        done: u32,
        /// Units in all.
        total: u32,
    },
    /// Something went wrong; with a `task_id`, that task failed.
    Error {
        /// Sender id.
        from: String,
        /// The task that failed, if the error is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The sandbox refused a file operation (reported by the host side of
    /// the teammate, not by the guest, so a guest cannot hide it).
    AccessDenied {
        /// Sender id.
        from: String,
        /// The held task, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// `read`, `write` or `list`.
        operation: String,
        /// Why, including the path.
        reason: String,
    },
    /// A text message for another teammate or the team lead.
    Message {
        /// Sender id.
        from: String,
        /// Recipient id, `team-lead`, or `*` for broadcast.
        to: String,
        /// The text.
        body: String,
        /// A short summary for the team view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
}

impl TeammateMessage {
    /// The sender's id.
    pub fn from(&self) -> &str {
        match self {
            Self::TaskCompleted { from, .. }
            | Self::IdleNotification { from, .. }
            | Self::ShutdownRequest { from, .. }
            | Self::ShutdownResponse { from, .. }
            | Self::Progress { from, .. }
            | Self::Error { from, .. }
            | Self::AccessDenied { from, .. }
            | Self::Message { from, .. } => from,
        }
    }
}
