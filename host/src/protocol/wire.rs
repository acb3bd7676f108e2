//! The data of protocol v1, as it crosses the socket: structs and enums of
//! the protocol's own, so that renaming a field of a host type (a task, a
//! limit, a finding) cannot silently change what a teammate process of
//! another build reads. The conversions to and from the host's types live
//! above both, in `backend::wire`; a change to either side that the other
//! does not follow fails to compile there.
//!
//! Durations are whole milliseconds (`*_ms`); optional fields are omitted
//! when absent; unknown fields are refused (`deny_unknown_fields`), so a
//! peer that sends more than v1 says is told so instead of being half-read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireSeverity {
    /// Worth knowing.
    Note,
    /// Should be looked at (also when a finding names none).
    #[default]
    Warning,
    /// Must be fixed.
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireFinding {
    /// Path relative to the workspace root.
    pub file: String,
    /// 1-based line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Rule name.
    pub rule: String,
    /// Message.
    pub message: String,
    /// Severity; `warning` when absent.
    #[serde(default)]
    pub severity: WireSeverity,
}

/// The report of a completed task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTaskReport {
    /// One line.
    pub summary: String,
    /// Findings.
    #[serde(default)]
    pub findings: Vec<WireFinding>,
}

/// What a dependency of a claimed task produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDependency {
    /// Its id.
    pub task_id: String,
    /// Its subject.
    pub subject: String,
    /// Its report's summary.
    pub summary: String,
    /// Its report's findings (the first ones).
    #[serde(default)]
    pub findings: Vec<WireFinding>,
    /// Findings left out.
    #[serde(default)]
    pub omitted_findings: u32,
}

/// A task as a teammate receives it when it claims one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTaskSpec {
    /// Task id.
    pub id: String,
    /// One line.
    pub subject: String,
    /// Instructions.
    pub description: String,
    /// Owned files, relative, `/`-separated, sorted.
    pub owned_files: Vec<String>,
    /// Who may run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tasks that complete first.
    #[serde(default)]
    pub blocked_by: Vec<String>,
    /// Deadline of one attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// `owns` patterns: where it may create files.
    #[serde(default)]
    pub creates: Vec<String>,
}

/// A teammate's sandbox limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each field is the team file's limit of the same name
pub struct WireLimits {
    pub memory_mib: u64,
    pub table_elements: u64,
    pub instances: u32,
    pub wasm_stack_kib: u32,
    pub task_deadline_ms: u64,
    pub message_kib: u32,
    pub report_kib: u32,
    pub inbox_len: u32,
    pub file_mib: u64,
    pub plugin_mib: u64,
    pub compile_timeout_ms: u64,
    pub log_lines_per_sec: u32,
    pub events_per_sec: u32,
    pub idle_cpu_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// What a teammate may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireReadScope {
    /// The held task's files.
    Owned,
    /// Anything under the root but the deny list.
    Root,
}

/// The workspace rules of a run, as a teammate process receives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRules {
    /// Globs of deny-listed paths that may be read all the same.
    #[serde(default)]
    pub read_allow: Vec<String>,
    /// Globs never read, written or created.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Every task's `owns` patterns, by task id: who may create new files.
    #[serde(default)]
    pub creates: BTreeMap<String, Vec<String>>,
    /// The coordinator's own directories (state, logs, compiled-plugin
    /// cache), absolute: out of every teammate's reach.
    #[serde(default)]
    pub protected: Vec<std::path::PathBuf>,
    /// `--dry-run`: the private directory (absolute) where writes land
    /// instead of the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<std::path::PathBuf>,
    /// The private directory (absolute) where files are kept as they were
    /// before their first write, for the report's diffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<std::path::PathBuf>,
}

/// Which limit stopped a teammate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the limit of the same name
pub enum WireLimitKind {
    Memory,
    Table,
    Deadline,
    Instances,
    Stack,
    Fuel,
    LogRate,
    EventRate,
    IdleCpu,
}

/// How a teammate ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireExitReason {
    /// `run` returned `ok`.
    Finished,
    /// `run` returned `err`.
    Failed {
        /// The guest's message.
        message: String,
    },
    /// The guest trapped.
    Trapped {
        /// Why.
        message: String,
        /// The limit raised, if one was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<WireLimitKind>,
    },
    /// The host killed it.
    Killed {
        /// Why.
        message: String,
        /// The limit, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<WireLimitKind>,
    },
    /// It could not be instantiated.
    SpawnFailed {
        /// Why.
        message: String,
        /// The limit, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<WireLimitKind>,
    },
}

/// A teammate's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the roster's states of the same name
pub enum WireLiveness {
    Spawning,
    Working,
    Idle,
    Stopping,
    Exited,
    Dead,
}

/// A roster update the teammate's host side asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "beat", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireBeat {
    /// Only "it is alive".
    Alive,
    /// Instantiated.
    Started,
    /// Sets the life-cycle state.
    State {
        /// The new state.
        state: WireLiveness,
    },
    /// Idle, unless already stopping.
    Idle,
    /// Holding `task`.
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

/// A mailbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireIncoming {
    /// A text message.
    Message {
        /// Sender id.
        sender: String,
        /// The text.
        body: String,
        /// Optional summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    /// A shutdown request.
    Shutdown {
        /// Echoed in the response.
        request_id: String,
        /// Why.
        reason: String,
    },
    /// Claimable tasks exist again.
    TasksAvailable,
}

/// Why a send was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireSendError {
    /// No such teammate.
    UnknownRecipient {
        /// The name used.
        recipient: String,
    },
    /// The recipient's inbox is full.
    InboxFull {
        /// The recipient.
        recipient: String,
        /// Its bound.
        limit: usize,
    },
}

/// A teammate → coordinator event (v1), e.g.
/// `{"type":"shutdown_request","requestId":"r1","from":"lint-1","reason":"done"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum WireEvent {
    /// A held task is done.
    TaskCompleted {
        /// Sender id.
        from: String,
        /// The task.
        task_id: String,
        /// One line.
        summary: String,
        /// Findings.
        #[serde(default)]
        findings: Vec<WireFinding>,
    },
    /// The teammate holds no task and waits.
    IdleNotification {
        /// Sender id.
        from: String,
        /// Why, when it says.
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
    /// The answer to a shutdown request.
    ShutdownResponse {
        /// The request answered.
        request_id: String,
        /// Sender id.
        from: String,
        /// True to approve.
        approve: bool,
        /// Why it rejects.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Progress on the held task.
    Progress {
        /// Sender id.
        from: String,
        /// The held task.
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
        /// The task, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The sandbox refused a file operation.
    AccessDenied {
        /// Sender id.
        from: String,
        /// The held task.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// `read`, `write`, `list`, ...
        operation: String,
        /// Why, including the path.
        reason: String,
    },
    /// A text message for a teammate or the team lead.
    Message {
        /// Sender id.
        from: String,
        /// Recipient, `team-lead`, or `*`.
        to: String,
        /// The text.
        body: String,
        /// Summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
}

impl WireEvent {
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

/// Who wrote a model message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the roles of the same name
pub enum WireRole {
    User,
    Assistant,
}

/// One piece of a model message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolCall {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (a JSON object).
        input: serde_json::Value,
    },
    /// A tool result.
    ToolResult {
        /// The call answered.
        call_id: String,
        /// Output or error text.
        content: String,
        /// The tool failed.
        #[serde(default)]
        is_error: bool,
    },
}

/// One model message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireModelMessage {
    /// Who wrote it.
    pub role: WireRole,
    /// Its blocks.
    pub content: Vec<WireBlock>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireTool {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: serde_json::Value,
}

/// Tool choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // the choices of the same name
pub enum WireToolChoice {
    Auto,
    None,
    Any,
    Named { name: String },
}

/// A guest's model call, as the teammate process forwards it (the caller's
/// id is the connection's, never part of the call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireModelCall {
    /// The task the caller holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The alias named; its default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Messages.
    pub messages: Vec<WireModelMessage>,
    /// Tools.
    #[serde(default)]
    pub tools: Vec<WireTool>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice>,
    /// Output cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Stop sequences.
    #[serde(default)]
    pub stop_sequences: Vec<String>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the stop reasons of the same name
pub enum WireStopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    Refusal,
    Other,
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the usage counts of the same name
pub struct WireUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

/// What is left of a budget; absent is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the budget's resources of the same name
pub struct WireBudgetLeft {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireModelResponse {
    /// Message id.
    pub id: String,
    /// Alias used.
    pub alias: String,
    /// Model that answered.
    pub model: String,
    /// Content.
    pub content: Vec<WireBlock>,
    /// Why it stopped.
    pub stop_reason: WireStopReason,
    /// Usage.
    pub usage: WireUsage,
    /// Budget left.
    pub budget: WireBudgetLeft,
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // the errors of the same name; `detail` says more
pub enum WireModelError {
    ModelNotAllowed { detail: String },
    InvalidRequest { detail: String },
    BudgetExhausted { detail: String, left: WireBudgetLeft },
    RateLimited { retry_after_ms: Option<u64> },
    Overloaded,
    Timeout { ms: u64 },
    ProviderError { detail: String },
    ReplayMiss { detail: String },
}
