//! Model calls made by the host for its teammates (issue 14).
//!
//! Only the host holds API keys. A teammate names a model *alias*; the host
//! checks the alias against the teammate's allow-list, its budget and the
//! team's, waits for a slot under the provider's concurrency limit, sends
//! the call, retries what is worth retrying, charges the usage the provider
//! reports, and answers with the content and the budget left. A guest
//! reaches it through the WIT `llm` interface, whose import calls a
//! [`ModelPort`]: [`Models`] itself in the coordinator's process, or a port
//! that forwards the call to the coordinator (a teammate process).
//!
//! # API
//!
//! - Request: [`ModelRequest`] `{ system, messages, tools, tool_choice,
//!   max_output_tokens, temperature, stop_sequences }`; a [`Message`] is a
//!   [`Role`] and a list of [`Block`]s: `Text`, `ToolCall { id, name, input }`
//!   (input is a JSON object), `ToolResult { call_id, content, is_error }`.
//!   [`Tool`] `{ name, description, input_schema }` (JSON Schema);
//!   [`ToolChoice`] `Auto | None | Any | Named(name)`.
//! - Answer: [`ModelResponse`] `{ id, alias, model, content, stop_reason,
//!   usage, budget }` with [`StopReason`], [`Usage`] and [`BudgetLeft`].
//! - Errors: [`LlmError`]: `ModelNotAllowed`, `InvalidRequest` (names the
//!   rule), `BudgetExhausted` (names the budget and what was left),
//!   `RateLimited` (with the wait), `Overloaded`, `Timeout`, `Provider`,
//!   `ReplayMiss` (names the first differing field). None of them carries a
//!   key, a provider URL or a header.
//! - Service: [`Models::new`]`(`[`LlmConfig`]`)` then
//!   [`Models::complete`]`(teammate, alias_or_default, request)` (or
//!   [`Models::complete_for`] naming the task, for the per-task usage),
//!   [`Models::budget_left`]`(teammate)` and [`Models::usage`]. The config holds the aliases
//!   ([`AliasConfig`]: provider, model, base URL, [`Secret`] key, output
//!   cap, price, pinned Anthropic version), each teammate's allow-list,
//!   default alias and [`Budget`], a team-wide budget, the [`CallLimits`]
//!   and the [`Mode`] (live, record, replay).
//!
//! # Providers
//!
//! - `anthropic` ([`anthropic`]): Messages API, `POST {base}/v1/messages`.
//!   The `anthropic-version` header is pinned per alias
//!   ([`AnthropicVersion`]); `2023-06-01` sends `x-api-key`, `2026-10-21`
//!   sends `Authorization: Bearer` and rejects `temperature`, so a request
//!   with a temperature to such an alias is refused before it is sent.
//! - `openai` ([`openai`]): Chat Completions, `POST {base}/chat/completions`
//!   with `base` including the version (`http://localhost:11434/v1` for
//!   Ollama); covers vLLM, llama.cpp's server, LM Studio and gateways. Tool
//!   arguments sent as an object instead of a string and missing call ids
//!   are accepted. There is no error flag on a tool result in this format:
//!   an error result's content is sent prefixed with `[tool error] `.
//! - `scripted` ([`scripted`]): answers from a file of listed responses, for
//!   tests and offline examples; its answers say `scripted` in the model name.
//!
//! # Policy
//!
//! - Budgets ([`budget`]) are hard: tokens, calls and US dollars per teammate
//!   and for the team. Before a call is sent its worst case is reserved: the
//!   output cap plus an estimate of the input (a quarter of the request's
//!   bytes); a call whose worst case does not fit is refused. The answer's
//!   usage is then charged, and the reservation released. Every call sent
//!   counts against `calls`, answered or not.
//! - Retries ([`retry`]) happen here only: a 429 (honouring `retry-after`),
//!   529/overloaded, 408/409/5xx, a dropped connection or a body cut short,
//!   with jittered exponential backoff, at most [`CallLimits::max_retries`]
//!   times. Spend-cap and quota 429s, 400, 401, 403 and 404 are never
//!   retried. The whole call, retries included, is bounded by
//!   [`CallLimits::timeout`]; dropping the future cancels it.
//! - Record and replay ([`cassette`]): one JSON-lines cassette per teammate
//!   with the request fingerprint, the canonical request and the answer (no
//!   headers, no keys); replay answers with no network and a request that
//!   matches nothing is a `ReplayMiss` naming the first field that differs.

pub mod anthropic;
pub mod budget;
pub mod cassette;
mod http;
mod models;
pub mod openai;
mod port;
pub mod retry;
pub mod scripted;
mod secret;
pub mod transcript;
mod validate;

pub use budget::{Budget, BudgetLeft, Price};
pub use models::{
    AliasConfig, AnthropicVersion, BoxFuture, CallLimits, LlmConfig, Mode, Models, ProviderKind, TeammateModels,
};
pub use port::{ModelCall, ModelPort, SharedModelPort, UsageBook, UsageReport, UsageTotals};
pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who wrote a message. The system prompt is [`ModelRequest::system`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The teammate (and the results of the tools it ran).
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text; must not be empty.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to run (assistant messages only).
    ToolCall {
        /// Call id, answered by a [`Block::ToolResult`] with the same id.
        id: String,
        /// Tool name, one of the request's [`Tool`]s.
        name: String,
        /// Arguments: a JSON object.
        input: serde_json::Value,
    },
    /// What a tool returned (user messages only, first in the message).
    ToolResult {
        /// The [`Block::ToolCall`] id it answers.
        call_id: String,
        /// The tool's output (or error text).
        content: String,
        /// The tool failed; `content` says why.
        #[serde(default)]
        is_error: bool,
    },
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Block::Text { text: text.into() }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its blocks, in order.
    pub content: Vec<Block>,
}

impl Message {
    /// A user message of one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Message { role: Role::User, content: vec![Block::text(text)] }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `^[a-zA-Z0-9_-]{1,64}$`, unique in the request.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its input: a JSON object.
    pub input_schema: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool call.
    None,
    /// At least one tool call, any tool.
    Any,
    /// A call to this tool.
    Named(String),
}

/// One model call, as a teammate asks for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation so far; at least one message.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Tool choice; `None` leaves it to the provider's default (auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Output cap; `None` takes the alias's cap. More than the alias's cap
    /// is an invalid request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants the tool calls in the content run.
    ToolUse,
    /// It hit the output cap.
    MaxTokens,
    /// It produced a stop sequence.
    StopSequence,
    /// It declined (or a content filter stopped it).
    Refusal,
    /// Anything else the provider reported.
    Other,
}

/// Tokens a call used, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from a cache.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Every token counted against a budget.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The provider's message id (synthesised when it sent none).
    pub id: String,
    /// The alias the call was made under.
    pub alias: String,
    /// The model that answered, as the provider named it (`scripted:...`
    /// for the scripted provider).
    pub model: String,
    /// Text and tool-call blocks.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// What it used.
    pub usage: Usage,
    /// What the teammate has left after this call.
    pub budget: BudgetLeft,
}

/// Why a model call failed: each variant is something a teammate can act on.
/// No variant carries a key, a provider URL or a header.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum LlmError {
    /// The alias is unknown or not on the teammate's allow-list.
    #[error("model not allowed: {0}")]
    ModelNotAllowed(String),
    /// The request breaks a rule (named in the text); fix it, do not retry as is.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A budget cannot cover the call; no call will leave the host for it.
    #[error("budget exhausted: {reason}")]
    BudgetExhausted {
        /// Which budget (teammate or team), which resource, needed and left.
        reason: String,
        /// What the teammate has left.
        left: BudgetLeft,
    },
    /// The provider is rate limiting us and the host's retries ran out.
    #[error("rate limited by the provider{}", wait_text(.retry_after_ms))]
    RateLimited {
        /// How long the provider asked to wait, in milliseconds, if it said.
        retry_after_ms: Option<u64>,
    },
    /// The provider is overloaded and the host's retries ran out.
    #[error("the provider is overloaded; try again later")]
    Overloaded,
    /// The call took longer than the host allows.
    #[error("model call timed out after {0} ms")]
    Timeout(u64),
    /// Anything else the provider (or the connection to it) got wrong.
    #[error("provider error: {0}")]
    Provider(String),
    /// Replay mode and the cassette has no answer for this request.
    #[error("replay miss: {0}")]
    ReplayMiss(String),
}

fn wait_text(ms: &Option<u64>) -> String {
    match ms {
        Some(ms) => format!(" (it asked to wait {ms} ms)"),
        None => String::new(),
    }
}

impl LlmError {
    pub(crate) fn rate_limited(wait: Option<Duration>) -> Self {
        LlmError::RateLimited { retry_after_ms: wait.map(|d| d.as_millis() as u64) }
    }
}
