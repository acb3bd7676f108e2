//! The `llm` import (since `swarm:teammate@0.1.2`): a guest's model call,
//! converted from WIT to the host's [`crate::llm`] types, handed to the
//! [`ModelPort`] the store was given, and the answer converted back.
//!
//! The guest names an alias, never a provider, URL or key; the port (the
//! coordinator's [`crate::llm::Models`], directly or across the socket)
//! checks the allow-list and the budgets. Here the sandbox adds what only
//! it knows: who calls (the store's id, not the guest's word), the task it
//! holds (for per-task usage), the task's deadline (the wait is cut at it
//! and the guest traps as for any deadline), and a cap on what crosses the
//! boundary ([`MAX_REQUEST_BYTES`], [`MAX_RESPONSE_BYTES`]). While the call
//! runs the guest is suspended: its store waits on the future (no CPU, no
//! polling) and its epoch ticker may sleep. Dropping the store's future (a
//! stopped teammate) drops the call, which cancels it.
//!
//! A store given no port answers every call `model-not-allowed`, naming the
//! team file setting to change.

use std::time::Instant;

use super::LimitHit;
use super::bindings::swarm::teammate::llm as wit;
use crate::llm::{
    Block, BudgetLeft, LlmError, Message, ModelCall, ModelRequest, ModelResponse, Role, SharedModelPort, StopReason,
    Tool, ToolChoice,
};

/// Largest request a guest may pass (bytes of its strings): larger is an
/// `invalid-request` naming this cap, refused before any JSON is parsed.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Largest answer handed back to a guest (bytes of its strings): larger is a
/// `provider-error` naming this cap (the providers' own response cap is
/// usually hit first).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Why a request cannot be converted: the guest sees `invalid-request`.
fn invalid(text: String) -> wit::LlmError {
    wit::LlmError::InvalidRequest(text)
}

fn block_size(b: &wit::ContentBlock) -> usize {
    match b {
        wit::ContentBlock::Text(t) => t.len(),
        wit::ContentBlock::ToolCall(c) => c.id.len() + c.name.len() + c.arguments.len(),
        wit::ContentBlock::ToolResult(r) => r.call_id.len() + r.content.len(),
    }
}

/// Bytes of the strings in `req` (what crosses the boundary, roughly).
pub fn request_size(req: &wit::Request) -> usize {
    let messages: usize = req.messages.iter().flat_map(|m| &m.content).map(block_size).sum();
    let tools: usize = req.tools.iter().map(|t| t.name.len() + t.description.len() + t.input_schema.len()).sum();
    let stops: usize = req.stop_sequences.iter().map(String::len).sum();
    let choice = match &req.tool_choice {
        Some(wit::ToolChoice::Named(n)) => n.len(),
        _ => 0,
    };
    req.system.as_ref().map_or(0, String::len) + messages + tools + stops + choice
}

fn json_object(text: &str, what: &str) -> Result<serde_json::Value, wit::LlmError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(invalid(format!("{what} is not a JSON object"))),
        Err(e) => Err(invalid(format!("{what} is not valid JSON: {e}"))),
    }
}

/// The guest's request as the host's type. Checks the size cap and that
/// every JSON text is a JSON object; the other rules are checked by the
/// model service.
pub fn request_from_wit(req: wit::Request) -> Result<ModelRequest, wit::LlmError> {
    let size = request_size(&req);
    if size > MAX_REQUEST_BYTES {
        return Err(invalid(format!(
            "the request is {size} bytes, more than the sandbox's cap of {MAX_REQUEST_BYTES} bytes \
             (llm request cap)"
        )));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        let mut content = Vec::with_capacity(m.content.len());
        for (j, b) in m.content.into_iter().enumerate() {
            content.push(match b {
                wit::ContentBlock::Text(text) => Block::Text { text },
                wit::ContentBlock::ToolCall(c) => Block::ToolCall {
                    input: json_object(&c.arguments, &format!("messages[{i}].content[{j}].arguments"))?,
                    id: c.id,
                    name: c.name,
                },
                wit::ContentBlock::ToolResult(r) => {
                    Block::ToolResult { call_id: r.call_id, content: r.content, is_error: r.is_error }
                }
            });
        }
        let role = match m.role {
            wit::Role::User => Role::User,
            wit::Role::Assistant => Role::Assistant,
        };
        messages.push(Message { role, content });
    }
    let mut tools = Vec::with_capacity(req.tools.len());
    for (i, t) in req.tools.into_iter().enumerate() {
        let input_schema = json_object(&t.input_schema, &format!("tools[{i}].input-schema"))?;
        tools.push(Tool { name: t.name, description: t.description, input_schema });
    }
    let tool_choice = req.tool_choice.map(|c| match c {
        wit::ToolChoice::Auto => ToolChoice::Auto,
        wit::ToolChoice::None => ToolChoice::None,
        wit::ToolChoice::Any => ToolChoice::Any,
        wit::ToolChoice::Named(n) => ToolChoice::Named(n),
    });
    Ok(ModelRequest {
        system: req.system,
        messages,
        tools,
        tool_choice,
        max_output_tokens: req.max_output_tokens,
        temperature: req.temperature,
        stop_sequences: req.stop_sequences,
    })
}

fn block_to_wit(b: Block) -> wit::ContentBlock {
    match b {
        Block::Text { text } => wit::ContentBlock::Text(text),
        Block::ToolCall { id, name, input } => {
            wit::ContentBlock::ToolCall(wit::ToolCall { id, name, arguments: input.to_string() })
        }
        Block::ToolResult { call_id, content, is_error } => {
            wit::ContentBlock::ToolResult(wit::ToolResult { call_id, content, is_error })
        }
    }
}

fn budget_to_wit(b: BudgetLeft) -> wit::BudgetLeft {
    wit::BudgetLeft { tokens: b.tokens, calls: b.calls, usd: b.usd }
}

/// The host's answer as the guest's type, checked against
/// [`MAX_RESPONSE_BYTES`].
pub fn response_to_wit(r: ModelResponse) -> Result<wit::Response, wit::LlmError> {
    let content: Vec<wit::ContentBlock> = r.content.into_iter().map(block_to_wit).collect();
    let size = content.iter().map(block_size).sum::<usize>() + r.id.len() + r.alias.len() + r.model.len();
    if size > MAX_RESPONSE_BYTES {
        return Err(wit::LlmError::ProviderError(format!(
            "the answer is {size} bytes, more than the sandbox's cap of {MAX_RESPONSE_BYTES} bytes (llm response cap)"
        )));
    }
    let stop_reason = match r.stop_reason {
        StopReason::EndTurn => wit::StopReason::EndTurn,
        StopReason::ToolUse => wit::StopReason::ToolUse,
        StopReason::MaxTokens => wit::StopReason::MaxTokens,
        StopReason::StopSequence => wit::StopReason::StopSequence,
        StopReason::Refusal => wit::StopReason::Refusal,
        StopReason::Other => wit::StopReason::Other,
    };
    let u = r.usage;
    Ok(wit::Response {
        id: r.id,
        alias: r.alias,
        model: r.model,
        content,
        stop_reason,
        usage: wit::Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
        },
        budget: budget_to_wit(r.budget),
    })
}

/// The host's error as the guest's variant.
pub fn error_to_wit(e: LlmError) -> wit::LlmError {
    match e {
        LlmError::ModelNotAllowed(m) => wit::LlmError::ModelNotAllowed(m),
        LlmError::InvalidRequest(m) => wit::LlmError::InvalidRequest(m),
        LlmError::BudgetExhausted { reason, .. } => wit::LlmError::BudgetExhausted(reason),
        LlmError::RateLimited { retry_after_ms } => wit::LlmError::RateLimited(retry_after_ms),
        LlmError::Overloaded => wit::LlmError::Overloaded,
        LlmError::Timeout(ms) => wit::LlmError::Timeout(ms),
        LlmError::Provider(m) => wit::LlmError::ProviderError(m),
        LlmError::ReplayMiss(m) => wit::LlmError::ReplayMiss(m),
    }
}

/// What a call from a store without a port gets.
fn no_port(who: &str) -> wit::LlmError {
    wit::LlmError::ModelNotAllowed(format!(
        "`{who}` may use no model: the team file gives it no `models = [...]` (and the run has no [models] table)"
    ))
}

/// A task deadline a model call must end by: the task, when, and how long.
pub struct CallDeadline {
    /// Task id.
    pub task: String,
    /// When the attempt must end.
    pub at: Instant,
    /// The deadline's length, for messages.
    pub len: std::time::Duration,
}

/// Runs one guest call through `port` for `who` (holding `task`, whose
/// usage it counts toward), cut at `deadline`. The outer error traps the
/// guest (the deadline passed while it waited); the inner one is the guest's.
pub async fn complete(
    port: Option<&SharedModelPort>,
    who: &str,
    task: Option<String>,
    deadline: Option<CallDeadline>,
    alias: Option<String>,
    req: wit::Request,
) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
    let Some(port) = port else {
        return Ok(Err(no_port(who)));
    };
    let request = match request_from_wit(req) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let call = ModelCall { teammate: who.to_string(), task, alias, request };
    let answer = match &deadline {
        Some(d) => match tokio::time::timeout_at(d.at.into(), port.complete(call)).await {
            Ok(a) => a,
            Err(_) => return Err(wasmtime::Error::new(LimitHit::Deadline { task: d.task.clone(), deadline: d.len })),
        },
        None => port.complete(call).await,
    };
    Ok(answer.map_err(error_to_wit).and_then(response_to_wit))
}

impl wit::Host for super::TeammateState {
    async fn complete(
        &mut self,
        alias: Option<String>,
        req: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        if let Some(hit) = self.deadline_hit() {
            return Err(wasmtime::Error::new(hit));
        }
        self.alive();
        let deadline =
            self.held.as_ref().map(|h| CallDeadline { task: h.id.clone(), at: h.deadline, len: h.deadline_len });
        // No guest code runs while the call waits: the epoch ticker may sleep.
        self.epoch.pause();
        let task = deadline.as_ref().map(|d| d.task.clone());
        let answer = complete(self.models.as_ref(), &self.id, task, deadline, alias, req).await;
        self.epoch.resume();
        // The wait is not idle computing.
        self.idle.resume(Instant::now());
        self.alive();
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(blocks: Vec<wit::ContentBlock>) -> wit::Request {
        wit::Request {
            system: None,
            messages: vec![wit::Message { role: wit::Role::User, content: blocks }],
            tools: vec![],
            tool_choice: None,
            max_output_tokens: None,
            temperature: None,
            stop_sequences: vec![],
        }
    }

    #[test]
    fn tool_arguments_must_be_a_json_object_and_the_error_names_the_block() {
        let call = |args: &str| {
            wit::ContentBlock::ToolCall(wit::ToolCall { id: "c1".into(), name: "t".into(), arguments: args.into() })
        };
        let e = request_from_wit(request(vec![call("[1]")])).unwrap_err();
        assert!(matches!(&e, wit::LlmError::InvalidRequest(m) if m.contains("messages[0].content[0].arguments")));
        let e = request_from_wit(request(vec![call("{")])).unwrap_err();
        assert!(matches!(&e, wit::LlmError::InvalidRequest(m) if m.contains("not valid JSON")));
        let ok = request_from_wit(request(vec![call("{\"a\":1}")])).unwrap();
        assert_eq!(
            ok.messages[0].content[0],
            Block::ToolCall { id: "c1".into(), name: "t".into(), input: serde_json::json!({"a": 1}) }
        );
    }

    #[test]
    fn a_request_over_the_cap_is_refused_naming_the_cap() {
        let big = "x".repeat(MAX_REQUEST_BYTES + 1);
        let e = request_from_wit(request(vec![wit::ContentBlock::Text(big)])).unwrap_err();
        assert!(matches!(&e, wit::LlmError::InvalidRequest(m) if m.contains("llm request cap")), "{e:?}");
    }

    #[test]
    fn an_answer_over_the_cap_is_a_provider_error_naming_the_cap() {
        let r = ModelResponse {
            id: "m".into(),
            alias: "a".into(),
            model: "x".into(),
            content: vec![Block::text("y".repeat(MAX_RESPONSE_BYTES + 1))],
            stop_reason: StopReason::EndTurn,
            usage: Default::default(),
            budget: Default::default(),
        };
        let e = response_to_wit(r).unwrap_err();
        assert!(matches!(&e, wit::LlmError::ProviderError(m) if m.contains("llm response cap")), "{e:?}");
    }

    #[test]
    fn every_host_error_maps_to_its_guest_variant() {
        let left = BudgetLeft { tokens: Some(0), calls: None, usd: None };
        let cases = [
            (LlmError::ModelNotAllowed("a".into()), wit::LlmError::ModelNotAllowed("a".into())),
            (LlmError::InvalidRequest("r".into()), wit::LlmError::InvalidRequest("r".into())),
            (LlmError::BudgetExhausted { reason: "b".into(), left }, wit::LlmError::BudgetExhausted("b".into())),
            (LlmError::RateLimited { retry_after_ms: Some(7) }, wit::LlmError::RateLimited(Some(7))),
            (LlmError::Overloaded, wit::LlmError::Overloaded),
            (LlmError::Timeout(9), wit::LlmError::Timeout(9)),
            (LlmError::Provider("p".into()), wit::LlmError::ProviderError("p".into())),
            (LlmError::ReplayMiss("f".into()), wit::LlmError::ReplayMiss("f".into())),
        ];
        for (host, guest) in cases {
            assert_eq!(format!("{:?}", error_to_wit(host)), format!("{guest:?}"));
        }
    }
}
