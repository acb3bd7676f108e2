//! The rules a request must keep before it is sent, so a teammate gets an
//! `InvalidRequest` naming the rule instead of a provider's 400 (or, worse,
//! a paid call). The tool-result ordering rules are Anthropic's; they are
//! checked for every provider so a conversation stays portable.

use super::{Block, LlmError, ModelRequest, Role};
use std::collections::HashSet;

/// Most tools in one request.
pub const MAX_TOOLS: usize = 64;
/// Longest tool name.
pub const MAX_TOOL_NAME: usize = 64;

fn invalid(rule: String) -> LlmError {
    LlmError::InvalidRequest(rule)
}

fn tool_name_ok(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks `req`; the error names the first rule it breaks.
pub fn check(req: &ModelRequest) -> Result<(), LlmError> {
    if req.messages.is_empty() {
        return Err(invalid("messages: at least one message is required".into()));
    }
    if req.tools.len() > MAX_TOOLS {
        return Err(invalid(format!("tools: {} tools, at most {MAX_TOOLS} allowed", req.tools.len())));
    }
    let mut names = HashSet::new();
    for (i, tool) in req.tools.iter().enumerate() {
        if !tool_name_ok(&tool.name) {
            return Err(invalid(format!(
                "tools[{i}].name {:?} must match ^[a-zA-Z0-9_-]{{1,{MAX_TOOL_NAME}}}$",
                tool.name
            )));
        }
        if !names.insert(tool.name.as_str()) {
            return Err(invalid(format!("tools[{i}].name {:?} is defined twice", tool.name)));
        }
        if !tool.input_schema.is_object() {
            return Err(invalid(format!("tools[{i}].input_schema must be a JSON object (a JSON Schema)")));
        }
    }
    if let Some(super::ToolChoice::Named(name)) = &req.tool_choice
        && !names.contains(name.as_str())
    {
        return Err(invalid(format!("tool_choice names {name:?}, which is not in tools")));
    }
    if matches!(req.tool_choice, Some(super::ToolChoice::Any)) && req.tools.is_empty() {
        return Err(invalid("tool_choice any needs at least one tool".into()));
    }
    if let Some(t) = req.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(invalid(format!("temperature {t} must be between 0 and 2")));
    }
    if let Some(0) = req.max_output_tokens {
        return Err(invalid("max_output_tokens must be at least 1".into()));
    }
    if req.stop_sequences.iter().any(String::is_empty) {
        return Err(invalid("stop_sequences must not contain an empty string".into()));
    }

    // Tool calls of the previous assistant message, still to be answered.
    let mut open: Vec<&str> = Vec::new();
    for (m, msg) in req.messages.iter().enumerate() {
        if msg.content.is_empty() {
            return Err(invalid(format!("messages[{m}] has no content")));
        }
        let mut results_done = false;
        let mut answered = HashSet::new();
        for (b, block) in msg.content.iter().enumerate() {
            let at = format!("messages[{m}].content[{b}]");
            match block {
                Block::Text { text } => {
                    if text.is_empty() {
                        return Err(invalid(format!("{at}: a text block must not be empty")));
                    }
                    results_done = true;
                }
                Block::ToolCall { id, name, input } => {
                    if msg.role != Role::Assistant {
                        return Err(invalid(format!("{at}: a tool call may only be in an assistant message")));
                    }
                    if id.is_empty() || name.is_empty() {
                        return Err(invalid(format!("{at}: a tool call needs an id and a name")));
                    }
                    if !input.is_object() {
                        return Err(invalid(format!("{at}: tool call input must be a JSON object")));
                    }
                }
                Block::ToolResult { call_id, .. } => {
                    if msg.role != Role::User {
                        return Err(invalid(format!("{at}: a tool result may only be in a user message")));
                    }
                    if results_done {
                        return Err(invalid(format!(
                            "{at}: tool results must come first in their message, before any text"
                        )));
                    }
                    if !open.contains(&call_id.as_str()) {
                        return Err(invalid(format!(
                            "{at}: tool result for {call_id:?} does not answer a tool call of the \
                             assistant message just before it"
                        )));
                    }
                    if !answered.insert(call_id.as_str()) {
                        return Err(invalid(format!("{at}: tool call {call_id:?} is answered twice")));
                    }
                }
            }
        }
        if let Some(missing) = open.iter().find(|id| !answered.contains(**id)) {
            return Err(invalid(format!(
                "messages[{m}] must answer tool call {missing:?} of the assistant message just before it \
                 with a tool result"
            )));
        }
        open = match msg.role {
            Role::Assistant => msg
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolCall { id, .. } => Some(id.as_str()),
                    _ => None,
                })
                .collect(),
            Role::User => Vec::new(),
        };
        if msg.role == Role::Assistant && !open.is_empty() && m + 1 == req.messages.len() {
            return Err(invalid(format!(
                "messages[{m}]: the last message has tool calls; send their results in a user message"
            )));
        }
        let mut ids = HashSet::new();
        if let Some(dup) = open.iter().find(|id| !ids.insert(**id)) {
            return Err(invalid(format!("messages[{m}]: tool call id {dup:?} is used twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, Tool, ToolChoice};
    use serde_json::json;

    fn call(id: &str) -> Block {
        Block::ToolCall { id: id.into(), name: "read".into(), input: json!({"path": "a"}) }
    }
    fn result(id: &str) -> Block {
        Block::ToolResult { call_id: id.into(), content: "ok".into(), is_error: false }
    }
    fn req(messages: Vec<Message>) -> ModelRequest {
        ModelRequest {
            messages,
            tools: vec![Tool {
                name: "read".into(),
                description: "reads".into(),
                input_schema: json!({"type": "object"}),
            }],
            ..ModelRequest::default()
        }
    }
    fn assistant(content: Vec<Block>) -> Message {
        Message { role: Role::Assistant, content }
    }
    fn user(content: Vec<Block>) -> Message {
        Message { role: Role::User, content }
    }
    fn rule(r: ModelRequest) -> String {
        match check(&r) {
            Err(LlmError::InvalidRequest(rule)) => rule,
            other => panic!("expected invalid request, got {other:?}"),
        }
    }

    #[test]
    fn parallel_calls_answered_in_one_message_pass() {
        let r = req(vec![
            Message::user("go"),
            assistant(vec![Block::text("reading"), call("c1"), call("c2")]),
            user(vec![result("c2"), result("c1"), Block::text("go on")]),
        ]);
        check(&r).unwrap();
    }

    #[test]
    fn results_after_text_break_the_first_in_message_rule() {
        let r =
            req(vec![Message::user("go"), assistant(vec![call("c1")]), user(vec![Block::text("here"), result("c1")])]);
        assert!(rule(r).contains("messages[2].content[1]: tool results must come first"));
    }

    #[test]
    fn a_result_must_follow_its_call_immediately() {
        let r = req(vec![
            Message::user("go"),
            assistant(vec![call("c1")]),
            user(vec![result("c1")]),
            assistant(vec![Block::text("done")]),
            user(vec![result("c1")]),
        ]);
        assert!(rule(r).contains("messages[4].content[0]: tool result for \"c1\" does not answer"));
    }

    #[test]
    fn an_unanswered_call_is_named() {
        let r = req(vec![Message::user("go"), assistant(vec![call("c1"), call("c2")]), user(vec![result("c1")])]);
        assert!(rule(r).contains("messages[2] must answer tool call \"c2\""));
    }

    #[test]
    fn other_rules_name_the_field() {
        assert!(rule(ModelRequest::default()).contains("at least one message"));
        let mut r = req(vec![Message::user("go")]);
        r.tools[0].name = "has space".into();
        assert!(rule(r).contains("tools[0].name \"has space\" must match"));
        let mut r = req(vec![Message::user("go")]);
        r.tool_choice = Some(ToolChoice::Named("write".into()));
        assert!(rule(r).contains("tool_choice names \"write\""));
        let mut r = req(vec![Message::user("go")]);
        r.temperature = Some(3.0);
        assert!(rule(r).contains("temperature 3 must be between 0 and 2"));
        assert!(rule(req(vec![Message::user("")])).contains("messages[0].content[0]: a text block must not be empty"));
        assert!(rule(req(vec![user(vec![call("c")])])).contains("only be in an assistant message"));
        let bad_input = Block::ToolCall { id: "c".into(), name: "read".into(), input: json!("x") };
        assert!(rule(req(vec![Message::user("go"), assistant(vec![bad_input])])).contains("must be a JSON object"));
    }
}
