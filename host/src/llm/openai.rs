//! OpenAI-compatible Chat Completions (`POST {base}/chat/completions`,
//! `base` including the API version, e.g. `https://api.openai.com/v1` or
//! Ollama's `http://localhost:11434/v1`). Covers vLLM, llama.cpp's server,
//! LM Studio and gateways. Compatible servers' known deviations are
//! accepted: tool arguments as a JSON object instead of a string, and a
//! tool call with no id (one is made up from its position).

use super::http::{self, ErrorBody};
use super::models::{BoxFuture, Provider, ProviderAnswer, ProviderCall};
use super::retry::AttemptError;
use super::{Block, LlmError, Role, Secret, StopReason, ToolChoice, Usage};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

/// Where the API is when an alias names no base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// What an error tool result's content starts with: this format has no
/// error flag.
pub const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// An OpenAI-compatible endpoint with its key (none for a local server).
pub(crate) struct OpenAi {
    pub client: reqwest::Client,
    pub base_url: String,
    pub key: Option<Secret>,
    pub max_response_bytes: usize,
}

/// The request body for `call`.
pub(crate) fn body(call: &ProviderCall<'_>) -> Value {
    let req = call.request;
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        let text: Vec<&str> = m
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        match m.role {
            Role::User => {
                // Tool results become `tool` messages, in order, before the
                // user's text (which the ordering rules put after them).
                for b in &m.content {
                    if let Block::ToolResult { call_id, content, is_error } = b {
                        let content = if *is_error { format!("{TOOL_ERROR_PREFIX}{content}") } else { content.clone() };
                        messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
                    }
                }
                if !text.is_empty() {
                    messages.push(json!({"role": "user", "content": text.join("\n\n")}));
                }
            }
            Role::Assistant => {
                let calls: Vec<Value> = m
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolCall { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": input.to_string()}
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text.join("\n\n")) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut b = Map::new();
    b.insert("model".into(), json!(call.model));
    b.insert("messages".into(), Value::Array(messages));
    b.insert("max_tokens".into(), json!(call.max_output_tokens));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
            .collect();
        b.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &req.tool_choice {
        let c = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        };
        b.insert("tool_choice".into(), c);
    }
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), json!(t));
    }
    if !req.stop_sequences.is_empty() {
        b.insert("stop".into(), json!(req.stop_sequences));
    }
    Value::Object(b)
}

/// Our answer from a 200 body.
pub(crate) fn parse(bytes: &[u8]) -> Result<ProviderAnswer, AttemptError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| http::malformed("openai", e))?;
    let choice = v["choices"].get(0).ok_or_else(|| http::malformed("openai", "no choices[0]"))?;
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(text) = msg["content"].as_str()
        && !text.is_empty()
    {
        content.push(Block::text(text));
    }
    if let Some(calls) = msg["tool_calls"].as_array() {
        for (i, c) in calls.iter().enumerate() {
            let f = &c["function"];
            let name = f["name"]
                .as_str()
                .ok_or_else(|| http::malformed("openai", format!("tool_calls[{i}] has no function name")))?;
            let input = match &f["arguments"] {
                Value::String(s) if s.trim().is_empty() => json!({}),
                Value::String(s) => serde_json::from_str::<Value>(s).map_err(|e| {
                    http::malformed("openai", format!("tool_calls[{i}] ({name}) arguments are not valid JSON: {e}"))
                })?,
                // The deviation: arguments sent as an object (Ollama, some vLLM parsers).
                Value::Null => json!({}),
                other => other.clone(),
            };
            if !input.is_object() {
                return Err(http::malformed(
                    "openai",
                    format!("tool_calls[{i}] ({name}) arguments are not a JSON object"),
                ));
            }
            let id = c["id"].as_str().filter(|s| !s.is_empty()).map_or_else(|| format!("call_{i}"), str::to_string);
            content.push(Block::ToolCall { id, name: name.to_string(), input });
        }
    }
    let has_calls = content.iter().any(|b| matches!(b, Block::ToolCall { .. }));
    let stop_reason = match choice["finish_reason"].as_str() {
        Some("stop") if has_calls => StopReason::ToolUse,
        Some("stop") => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::Refusal,
        _ if has_calls => StopReason::ToolUse,
        _ => StopReason::Other,
    };
    let u = &v["usage"];
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0).min(prompt);
    Ok(ProviderAnswer {
        id: v["id"].as_str().unwrap_or_default().to_string(),
        model: v["model"].as_str().unwrap_or_default().to_string(),
        content,
        stop_reason,
        usage: Usage {
            input_tokens: prompt - cached,
            output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        },
    })
}

/// What an error body said: `{"error":{"message","type","code"}}`.
pub(crate) fn error_body(bytes: &[u8]) -> ErrorBody {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let e = &v["error"];
    let code = e["code"].as_str().unwrap_or_default();
    let kind = e["type"].as_str().filter(|s| !s.is_empty()).unwrap_or(code).to_string();
    let message = e["message"]
        .as_str()
        .or_else(|| e.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    let spend_cap = code == "insufficient_quota" || kind == "insufficient_quota";
    ErrorBody { kind, message, spend_cap }
}

/// How OpenAI-compatible answers are read.
const FORMAT: http::Format = http::Format { provider: "openai", parse, error_body };

impl Provider for OpenAi {
    fn attempt<'a>(&'a self, call: &'a ProviderCall<'a>) -> BoxFuture<'a, Result<ProviderAnswer, AttemptError>> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            if let Some(key) = &self.key {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    AttemptError::fatal(LlmError::Provider("the host's openai key is not a valid header value".into()))
                })?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
            let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
            let body = body(call);
            http::exchange(&self.client, &url, headers, &body, self.max_response_bytes, &FORMAT, self.key.as_ref())
                .await
        })
    }

    fn endpoint(&self) -> String {
        format!("openai {}", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ModelRequest, Tool};

    #[test]
    fn body_has_the_wire_shape() {
        let req = ModelRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("go"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Block::text("reading"),
                        Block::ToolCall { id: "c1".into(), name: "read".into(), input: json!({"p": "a"}) },
                        Block::ToolCall { id: "c2".into(), name: "read".into(), input: json!({"p": "b"}) },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        Block::ToolResult { call_id: "c1".into(), content: "A".into(), is_error: false },
                        Block::ToolResult { call_id: "c2".into(), content: "gone".into(), is_error: true },
                        Block::text("and?"),
                    ],
                },
            ],
            tools: vec![Tool { name: "read".into(), description: "d".into(), input_schema: json!({"type": "object"}) }],
            tool_choice: Some(ToolChoice::Any),
            stop_sequences: vec!["X".into()],
            ..ModelRequest::default()
        };
        let call = ProviderCall { teammate: "a", alias: "local", model: "qwen", request: &req, max_output_tokens: 100 };
        assert_eq!(
            body(&call),
            json!({
                "model": "qwen", "max_tokens": 100,
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": "reading", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"p\":\"a\"}"}},
                        {"id": "c2", "type": "function", "function": {"name": "read", "arguments": "{\"p\":\"b\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "A"},
                    {"role": "tool", "tool_call_id": "c2", "content": "[tool error] gone"},
                    {"role": "user", "content": "and?"}
                ],
                "tools": [{"type": "function", "function": {"name": "read", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": "required",
                "stop": ["X"]
            })
        );
    }

    #[test]
    fn accepts_object_arguments_and_missing_ids() {
        let body = br#"{"id":"x","model":"llama3","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"",
            "tool_calls":[{"function":{"name":"read","arguments":{"path":"a"}}},
                          {"id":"","type":"function","function":{"name":"read","arguments":"{\"path\":\"b\"}"}}]}}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2}}}"#;
        let a = parse(body).unwrap();
        assert_eq!(
            a.content,
            vec![
                Block::ToolCall { id: "call_0".into(), name: "read".into(), input: json!({"path": "a"}) },
                Block::ToolCall { id: "call_1".into(), name: "read".into(), input: json!({"path": "b"}) },
            ]
        );
        assert_eq!(a.stop_reason, StopReason::ToolUse);
        assert_eq!(a.usage, Usage { input_tokens: 10, output_tokens: 3, cache_read_tokens: 2, cache_write_tokens: 0 });
    }

    #[test]
    fn bad_arguments_are_a_named_error() {
        let body = br#"{"choices":[{"finish_reason":"tool_calls","message":{"tool_calls":[{"id":"a","function":{"name":"read","arguments":"{oops"}}]}}]}"#;
        let e = parse(body).unwrap_err().error.to_string();
        assert!(e.contains("tool_calls[0] (read) arguments are not valid JSON"), "{e}");
    }

    #[test]
    fn quota_429_is_a_spend_cap() {
        let e = error_body(br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#);
        assert!(e.spend_cap);
        let e =
            error_body(br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
        assert!(!e.spend_cap);
        assert_eq!(e.kind, "requests");
    }
}
