//! Model calls (the WIT `llm` interface, since `swarm:teammate@0.1.2`): a
//! thin typed layer over the import, used through
//! [`Context::complete`](crate::Context::complete).
//!
//! The teammate names a model *alias* from the team file (or `None` for its
//! default); the host holds the keys, checks the alias and the budgets,
//! retries, and answers with the content, the usage and the budget left.
//! The teammate is suspended while the call runs.
//!
//! ```ignore
//! use swarm_guest_sdk::llm::{Request, Message};
//! let answer = ctx.complete(None, &Request::new(vec![Message::user("Say hi")]))
//!     .map_err(|e| e.describe())?;
//! ctx.info(&answer.text());
//! ```
//!
//! This is one call, not an agent loop: running the tools the model asks
//! for and calling again is the caller's.

pub use crate::bindings::swarm::teammate::llm::{
    BudgetLeft, ContentBlock, LlmError, Message, Request, Response, Role, StopReason, Tool, ToolCall, ToolChoice,
    ToolResult, Usage,
};

/// One model call under `alias` (the caller's default when `None`). A
/// teammate calls it through [`Context::complete`](crate::Context::complete);
/// a planner, which has no context, calls it directly.
pub fn complete(alias: Option<&str>, request: &Request) -> Result<Response, LlmError> {
    crate::bindings::swarm::teammate::llm::complete(alias, request)
}

impl Message {
    /// A user message of one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Message { role: Role::User, content: vec![ContentBlock::Text(text.into())] }
    }

    /// An assistant message of one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message { role: Role::Assistant, content: vec![ContentBlock::Text(text.into())] }
    }
}

impl Request {
    /// A request of `messages` with no system prompt, no tools and the
    /// alias's defaults.
    pub fn new(messages: Vec<Message>) -> Self {
        Request {
            system: None,
            messages,
            tools: Vec::new(),
            tool_choice: None,
            max_output_tokens: None,
            temperature: None,
            stop_sequences: Vec::new(),
        }
    }

    /// Sets the system prompt.
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Adds a tool; `input_schema` is JSON Schema text (a JSON object).
    pub fn tool(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: impl Into<String>,
    ) -> Self {
        self.tools.push(Tool { name: name.into(), description: description.into(), input_schema: input_schema.into() });
        self
    }

    /// Caps the answer's length.
    pub fn max_output_tokens(mut self, n: u32) -> Self {
        self.max_output_tokens = Some(n);
        self
    }
}

impl Response {
    /// The text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tool calls the model asks for, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|b| match b {
            ContentBlock::ToolCall(c) => Some(c),
            _ => None,
        })
    }
}

impl LlmError {
    /// A one-line description for people, e.g. `budget exhausted: ...`.
    pub fn describe(&self) -> String {
        match self {
            LlmError::ModelNotAllowed(why) => format!("model not allowed: {why}"),
            LlmError::InvalidRequest(rule) => format!("invalid request: {rule}"),
            LlmError::BudgetExhausted(why) => format!("budget exhausted: {why}"),
            LlmError::RateLimited(Some(ms)) => format!("rate limited: wait {ms} ms"),
            LlmError::RateLimited(None) => "rate limited".to_string(),
            LlmError::Overloaded => "the provider is overloaded".to_string(),
            LlmError::Timeout(ms) => format!("timed out after {ms} ms"),
            LlmError::ProviderError(why) => format!("provider error: {why}"),
            LlmError::ReplayMiss(field) => format!("replay miss: {field}"),
        }
    }
}
