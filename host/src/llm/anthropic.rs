//! The Anthropic Messages API (`POST {base}/v1/messages`): turns a
//! [`ModelRequest`](super::ModelRequest) into its JSON body and headers,
//! and its answer (or error body) back into ours. The `anthropic-version`
//! header is pinned per alias ([`AnthropicVersion`]), and no field the
//! pinned version rejects is ever sent.

use super::http::{self, ErrorBody};
use super::models::{BoxFuture, Provider, ProviderAnswer, ProviderCall};
use super::retry::AttemptError;
use super::{Block, LlmError, Role, Secret, StopReason, ToolChoice, Usage};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where the API is when an alias names no base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` an alias is pinned to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnthropicVersion {
    /// `2023-06-01`: key in `x-api-key`; accepts `temperature`.
    #[default]
    #[serde(rename = "2023-06-01")]
    V2023_06_01,
    /// `2026-10-21` (the newest official SDK's): key as
    /// `Authorization: Bearer`; `temperature`, `top_p` and `top_k` are
    /// rejected with a 400.
    #[serde(rename = "2026-10-21")]
    V2026_10_21,
}

impl AnthropicVersion {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AnthropicVersion::V2023_06_01 => "2023-06-01",
            AnthropicVersion::V2026_10_21 => "2026-10-21",
        }
    }

    fn accepts_temperature(self) -> bool {
        self == AnthropicVersion::V2023_06_01
    }
}

/// An Anthropic endpoint with its key.
pub(crate) struct Anthropic {
    pub client: reqwest::Client,
    pub base_url: String,
    pub key: Option<Secret>,
    pub version: AnthropicVersion,
    pub max_response_bytes: usize,
}

/// The request body for `call` under `version`.
pub(crate) fn body(call: &ProviderCall<'_>, version: AnthropicVersion) -> Result<Value, LlmError> {
    let req = call.request;
    let mut b = Map::new();
    b.insert("model".into(), json!(call.model));
    b.insert("max_tokens".into(), json!(call.max_output_tokens));
    if let Some(system) = &req.system {
        b.insert("system".into(), json!(system));
    }
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let content: Vec<Value> = m
                .content
                .iter()
                .map(|block| match block {
                    Block::Text { text } => json!({"type": "text", "text": text}),
                    Block::ToolCall { id, name, input } => {
                        json!({"type": "tool_use", "id": id, "name": name, "input": input})
                    }
                    Block::ToolResult { call_id, content, is_error } => {
                        let mut r = json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                        if *is_error {
                            r["is_error"] = json!(true);
                        }
                        r
                    }
                })
                .collect();
            json!({"role": role, "content": content})
        })
        .collect();
    b.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        b.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let c = match choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Any => json!({"type": "any"}),
            ToolChoice::Named(name) => json!({"type": "tool", "name": name}),
        };
        b.insert("tool_choice".into(), c);
    }
    if let Some(t) = req.temperature {
        if !version.accepts_temperature() {
            return Err(LlmError::InvalidRequest(format!(
                "temperature: alias '{}' is pinned to anthropic-version {}, which rejects it; leave it unset",
                call.alias,
                version.as_str()
            )));
        }
        b.insert("temperature".into(), json!(t));
    }
    if !req.stop_sequences.is_empty() {
        b.insert("stop_sequences".into(), json!(req.stop_sequences));
    }
    Ok(Value::Object(b))
}

/// The headers for `version`, carrying `key` the way that version wants it.
pub(crate) fn headers(key: Option<&Secret>, version: AnthropicVersion) -> Result<HeaderMap, LlmError> {
    let mut h = HeaderMap::new();
    h.insert("anthropic-version", HeaderValue::from_static(version.as_str()));
    if let Some(key) = key {
        let bad = || LlmError::Provider("the host's anthropic key is not a valid header value".into());
        let (name, value) = match version {
            AnthropicVersion::V2023_06_01 => ("x-api-key", HeaderValue::from_str(key.expose()).map_err(|_| bad())?),
            AnthropicVersion::V2026_10_21 => {
                (AUTHORIZATION.as_str(), HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| bad())?)
            }
        };
        let mut value = value;
        value.set_sensitive(true);
        h.insert(name, value);
    }
    Ok(h)
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// Our answer from a 200 body.
pub(crate) fn parse(bytes: &[u8]) -> Result<ProviderAnswer, AttemptError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| http::malformed("anthropic", e))?;
    let mut content = Vec::new();
    for (i, block) in wire.content.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    content.push(Block::text(text));
                }
            }
            Some("tool_use") => {
                let field = |f: &str| block.get(f).and_then(Value::as_str).map(str::to_string);
                let name = field("name")
                    .ok_or_else(|| http::malformed("anthropic", format!("content[{i}] tool_use has no name")))?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                if !input.is_object() {
                    return Err(http::malformed("anthropic", format!("content[{i}] tool_use input is not an object")));
                }
                content.push(Block::ToolCall { id: field("id").unwrap_or_else(|| format!("call_{i}")), name, input });
            }
            // Thinking, server-tool and future block types carry nothing a
            // teammate can use in this version of the interface.
            _ => {}
        }
    }
    let stop_reason = match wire.stop_reason.as_deref() {
        Some("end_turn") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("refusal") => StopReason::Refusal,
        _ => StopReason::Other,
    };
    let u = wire.usage;
    Ok(ProviderAnswer {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        usage: Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: u.cache_creation_input_tokens.unwrap_or(0),
        },
    })
}

/// What an error body said: `{"type":"error","error":{"type","message","details"?}}`.
pub(crate) fn error_body(bytes: &[u8]) -> ErrorBody {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let e = &v["error"];
    let kind = e["type"].as_str().unwrap_or_default().to_string();
    let message =
        e["message"].as_str().map(str::to_string).unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    let spend_cap =
        e["details"]["error_code"].as_str() == Some("enforced_spend_limit_reached") || kind == "billing_error";
    ErrorBody { kind, message, spend_cap }
}

/// How Anthropic's answers are read.
const FORMAT: http::Format = http::Format { provider: "anthropic", parse, error_body };

impl Provider for Anthropic {
    fn attempt<'a>(&'a self, call: &'a ProviderCall<'a>) -> BoxFuture<'a, Result<ProviderAnswer, AttemptError>> {
        Box::pin(async move {
            let body = body(call, self.version).map_err(AttemptError::fatal)?;
            let headers = headers(self.key.as_ref(), self.version).map_err(AttemptError::fatal)?;
            let url = format!("{}/v1/messages", self.base_url.trim_end_matches('/'));
            http::exchange(&self.client, &url, headers, &body, self.max_response_bytes, &FORMAT, self.key.as_ref())
                .await
        })
    }

    fn check(&self, call: &ProviderCall<'_>) -> Result<(), LlmError> {
        body(call, self.version).map(drop)
    }

    fn endpoint(&self) -> String {
        format!("anthropic {}", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ModelRequest, Tool};

    fn call(req: &ModelRequest) -> ProviderCall<'_> {
        ProviderCall { teammate: "a", alias: "smart", model: "claude-x", request: req, max_output_tokens: 512 }
    }

    #[test]
    fn body_has_the_wire_shape() {
        let req = ModelRequest {
            system: Some("be brief".into()),
            messages: vec![
                Message::user("go"),
                Message {
                    role: Role::Assistant,
                    content: vec![Block::ToolCall { id: "t1".into(), name: "read".into(), input: json!({"p": 1}) }],
                },
                Message {
                    role: Role::User,
                    content: vec![Block::ToolResult { call_id: "t1".into(), content: "no".into(), is_error: true }],
                },
            ],
            tools: vec![Tool { name: "read".into(), description: "d".into(), input_schema: json!({"type": "object"}) }],
            tool_choice: Some(ToolChoice::Named("read".into())),
            temperature: Some(0.5),
            stop_sequences: vec!["END".into()],
            ..ModelRequest::default()
        };
        let b = body(&call(&req), AnthropicVersion::V2023_06_01).unwrap();
        assert_eq!(
            b,
            json!({
                "model": "claude-x", "max_tokens": 512, "system": "be brief",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "go"}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"p": 1}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "no", "is_error": true}]}
                ],
                "tools": [{"name": "read", "description": "d", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "read"},
                "temperature": 0.5,
                "stop_sequences": ["END"]
            })
        );
    }

    #[test]
    fn the_2026_version_never_gets_a_temperature_and_takes_a_bearer_key() {
        let mut req = ModelRequest { messages: vec![Message::user("go")], ..ModelRequest::default() };
        req.temperature = Some(0.2);
        let err = body(&call(&req), AnthropicVersion::V2026_10_21).unwrap_err();
        assert!(err.to_string().contains("alias 'smart' is pinned to anthropic-version 2026-10-21"), "{err}");
        req.temperature = None;
        let b = body(&call(&req), AnthropicVersion::V2026_10_21).unwrap();
        assert!(b.get("temperature").is_none() && b.get("top_p").is_none() && b.get("top_k").is_none());
        let key = Secret::new("k");
        let h = headers(Some(&key), AnthropicVersion::V2026_10_21).unwrap();
        assert_eq!(h["authorization"], "Bearer k");
        assert!(h.get("x-api-key").is_none());
        let h = headers(Some(&key), AnthropicVersion::V2023_06_01).unwrap();
        assert_eq!((h["x-api-key"].to_str().unwrap(), h["anthropic-version"].to_str().unwrap()), ("k", "2023-06-01"));
    }

    #[test]
    fn parses_parallel_tool_use_and_usage() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"text","text":"two reads"},
              {"type":"tool_use","id":"toolu_1","name":"read","input":{"path":"a"}},
              {"type":"tool_use","id":"toolu_2","name":"read","input":{"path":"b"}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"output_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":0}}"#;
        let a = parse(body).unwrap();
        assert_eq!(a.stop_reason, StopReason::ToolUse);
        assert_eq!(a.content.len(), 3);
        assert_eq!(
            a.content[2],
            Block::ToolCall { id: "toolu_2".into(), name: "read".into(), input: json!({"path": "b"}) }
        );
        assert_eq!(a.usage, Usage { input_tokens: 10, output_tokens: 20, cache_read_tokens: 5, cache_write_tokens: 0 });
    }

    #[test]
    fn error_bodies() {
        let e = error_body(br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down","details":{"error_code":"enforced_spend_limit_reached"}}}"#);
        assert!(e.spend_cap);
        assert_eq!((e.kind.as_str(), e.message.as_str()), ("rate_limit_error", "slow down"));
        let e = error_body(b"<html>bad gateway</html>");
        assert_eq!(e.message, "<html>bad gateway</html>");
        assert!(!e.spend_cap);
    }
}
