//! The `scripted` provider: answers listed in a JSON file, for tests and
//! offline examples. It is never a real model, and says so: every answer's
//! model is `scripted:<model>` and its id `scripted-<step>`.
//!
//! ```json
//! {"steps": [
//!   {"teammate": "writer",
//!    "expect": {"last_text_contains": "start", "tools": ["read_file"]},
//!    "reply": {"content": [{"type": "tool_call", "id": "c1", "name": "read_file",
//!                           "input": {"path": "a.txt"}}],
//!              "stop_reason": "tool_use",
//!              "usage": {"input_tokens": 10, "output_tokens": 5}}},
//!   {"error": {"kind": "overloaded"}}
//! ]}
//! ```
//!
//! A call takes the first unused step for its teammate (a step with no
//! `teammate` serves anyone). `expect` is checked against the request; a
//! broken expectation, or no step left, is a provider error naming the step.
//! Besides `last_text_contains`, `tools` and `tool_results`, `expect` may
//! hold `last_result_contains`: one of the last message's tool results
//! contains this text (e.g. the reason of a refused write).
//!
//! A step's `delay_ms` makes the answer (or the error) come that many
//! milliseconds after the call, as a model's latency would (benches); the
//! waiting call holds no thread.

use super::models::{BoxFuture, Provider, ProviderAnswer, ProviderCall};
use super::retry::AttemptError;
use super::{Block, LlmError, Role, StopReason, Usage};
use serde::Deserialize;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    teammate: Option<String>,
    #[serde(default)]
    expect: Expect,
    #[serde(default)]
    reply: Option<Reply>,
    #[serde(default)]
    error: Option<LlmError>,
    /// Milliseconds before the answer comes.
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The last message's text blocks contain this.
    #[serde(default)]
    last_text_contains: Option<String>,
    /// The request's tool names, in order.
    #[serde(default)]
    tools: Option<Vec<String>>,
    /// The last message answers these tool call ids.
    #[serde(default)]
    tool_results: Option<Vec<String>>,
    /// One of the last message's tool results contains this.
    #[serde(default)]
    last_result_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    content: Vec<Block>,
    #[serde(default = "end_turn")]
    stop_reason: StopReason,
    #[serde(default)]
    usage: Usage,
}

fn end_turn() -> StopReason {
    StopReason::EndTurn
}

/// A loaded script and which steps were used.
pub(crate) struct Scripted {
    name: String,
    steps: Vec<Step>,
    // A std mutex: taken to pick a step, never across an await.
    used: Mutex<Vec<bool>>,
}

impl Scripted {
    /// Reads and checks the script at `path`; the error names the file and
    /// what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let name = path.file_name().map_or_else(|| "script".into(), |n| n.to_string_lossy().into_owned());
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read scripted provider file {name}: {e}"))?;
        Self::parse(&name, &text)
    }

    fn parse(name: &str, text: &str) -> Result<Self, String> {
        let script: Script = serde_json::from_str(text)
            .map_err(|e| format!("scripted provider file {name} is not a valid script: {e}"))?;
        for (i, s) in script.steps.iter().enumerate() {
            if s.reply.is_some() == s.error.is_some() {
                return Err(format!("scripted provider file {name}: steps[{i}] needs exactly one of reply and error"));
            }
        }
        let used = Mutex::new(vec![false; script.steps.len()]);
        Ok(Scripted { name: name.to_string(), steps: script.steps, used })
    }

    /// The answer `call` gets (its step's delay aside).
    #[cfg(test)]
    fn answer(&self, call: &ProviderCall<'_>) -> Result<ProviderAnswer, LlmError> {
        self.take(call).1
    }

    /// The step `call` takes: its delay (milliseconds) and its answer.
    fn take(&self, call: &ProviderCall<'_>) -> (u64, Result<ProviderAnswer, LlmError>) {
        let fail = |text: String| LlmError::Provider(format!("scripted provider ({}): {text}", self.name));
        let i = {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            let found = (0..self.steps.len())
                .find(|&i| !used[i] && self.steps[i].teammate.as_deref().is_none_or(|t| t == call.teammate));
            let Some(i) = found else {
                return (0, Err(fail(format!("no step left for teammate '{}'", call.teammate))));
            };
            used[i] = true;
            i
        };
        let step = &self.steps[i];
        (step.delay_ms, self.check(i, step, call))
    }

    fn check(&self, i: usize, step: &Step, call: &ProviderCall<'_>) -> Result<ProviderAnswer, LlmError> {
        let fail = |text: String| LlmError::Provider(format!("scripted provider ({}): {text}", self.name));
        let last = call.request.messages.last();
        if let Some(want) = &step.expect.last_text_contains {
            let text: String = last
                .filter(|m| m.role == Role::User)
                .map(|m| {
                    m.content
                        .iter()
                        .filter_map(|b| if let Block::Text { text } = b { Some(text.as_str()) } else { None })
                        .collect()
                })
                .unwrap_or_default();
            if !text.contains(want.as_str()) {
                return Err(fail(format!("steps[{i}] expected the last message to contain {want:?}, got {text:?}")));
            }
        }
        if let Some(want) = &step.expect.tools {
            let got: Vec<&str> = call.request.tools.iter().map(|t| t.name.as_str()).collect();
            if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(fail(format!("steps[{i}] expected tools {want:?}, got {got:?}")));
            }
        }
        if let Some(want) = &step.expect.tool_results {
            let got: Vec<&str> = last
                .map(|m| {
                    m.content
                        .iter()
                        .filter_map(|b| {
                            if let Block::ToolResult { call_id, .. } = b { Some(call_id.as_str()) } else { None }
                        })
                        .collect()
                })
                .unwrap_or_default();
            if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(fail(format!("steps[{i}] expected results for {want:?}, got {got:?}")));
            }
        }
        if let Some(want) = &step.expect.last_result_contains {
            let results: Vec<&str> = last
                .map(|m| {
                    m.content
                        .iter()
                        .filter_map(|b| {
                            if let Block::ToolResult { content, .. } = b { Some(content.as_str()) } else { None }
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !results.iter().any(|r| r.contains(want.as_str())) {
                return Err(fail(format!("steps[{i}] expected a tool result containing {want:?}, got {results:?}")));
            }
        }
        if let Some(e) = &step.error {
            return Err(e.clone());
        }
        let reply = step.reply.as_ref().expect("checked at load");
        Ok(ProviderAnswer {
            id: format!("scripted-{i}"),
            model: format!("scripted:{}", call.model),
            content: reply.content.clone(),
            stop_reason: reply.stop_reason,
            usage: reply.usage,
        })
    }
}

impl Provider for Scripted {
    fn attempt<'a>(&'a self, call: &'a ProviderCall<'a>) -> BoxFuture<'a, Result<ProviderAnswer, AttemptError>> {
        // Scripted errors are answered as they are: retrying would consume
        // the next step.
        Box::pin(async move {
            let (delay_ms, answer) = self.take(call);
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            answer.map_err(AttemptError::fatal)
        })
    }

    fn endpoint(&self) -> String {
        format!("scripted {}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ModelRequest};

    const SCRIPT: &str = r#"{"steps": [
        {"teammate": "b", "reply": {"content": [{"type": "text", "text": "for b"}]}},
        {"expect": {"last_text_contains": "start"},
         "reply": {"content": [{"type": "tool_call", "id": "c1", "name": "read", "input": {"path": "a"}}],
                   "stop_reason": "tool_use", "usage": {"input_tokens": 7, "output_tokens": 3}}},
        {"error": {"kind": "overloaded"}}
    ]}"#;

    fn call<'a>(teammate: &'a str, req: &'a ModelRequest) -> ProviderCall<'a> {
        ProviderCall { teammate, alias: "s", model: "m", request: req, max_output_tokens: 10 }
    }

    #[test]
    fn steps_are_served_in_order_per_teammate_and_labelled() {
        let s = Scripted::parse("t.json", SCRIPT).unwrap();
        let req = ModelRequest { messages: vec![Message::user("please start")], ..ModelRequest::default() };
        let a = s.answer(&call("a", &req)).unwrap();
        assert_eq!((a.id.as_str(), a.model.as_str(), a.stop_reason), ("scripted-1", "scripted:m", StopReason::ToolUse));
        assert_eq!(a.usage.total(), 10);
        assert_eq!(s.answer(&call("a", &req)).unwrap_err(), LlmError::Overloaded);
        let err = s.answer(&call("a", &req)).unwrap_err().to_string();
        assert!(err.contains("scripted provider (t.json): no step left for teammate 'a'"), "{err}");
        assert_eq!(s.answer(&call("b", &req)).unwrap().content, vec![Block::text("for b")]);
    }

    #[test]
    fn a_broken_expectation_names_the_step() {
        let s = Scripted::parse("t.json", SCRIPT).unwrap();
        let req = ModelRequest { messages: vec![Message::user("hello")], ..ModelRequest::default() };
        let err = s.answer(&call("a", &req)).unwrap_err().to_string();
        assert!(err.contains("steps[1] expected the last message to contain \"start\", got \"hello\""), "{err}");
    }

    #[test]
    fn a_step_can_expect_a_tool_result_and_old_scripts_still_load() {
        let s = Scripted::parse(
            "t.json",
            r#"{"steps": [{"expect": {"last_result_contains": "refused: denied"}, "delay_ms": 5,
                           "reply": {"content": [{"type": "text", "text": "ok"}]}}]}"#,
        )
        .unwrap();
        let result = |content: &str| ModelRequest {
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::ToolResult { call_id: "c1".into(), content: content.into(), is_error: true }],
            }],
            ..ModelRequest::default()
        };
        let (delay, answer) = s.take(&call("a", &result("refused: denied: b.rs is not owned")));
        assert_eq!((delay, answer.unwrap().content), (5, vec![Block::text("ok")]));
        let s = Scripted::parse(
            "t.json",
            r#"{"steps": [{"expect": {"last_result_contains": "refused"},
            "reply": {"content": []}}]}"#,
        )
        .unwrap();
        let err = s.answer(&call("a", &result("wrote a.rs"))).unwrap_err().to_string();
        assert!(err.contains("steps[0] expected a tool result containing \"refused\", got [\"wrote a.rs\"]"), "{err}");
        assert!(Scripted::parse("t.json", SCRIPT).is_ok(), "a script without the new fields loads");
    }

    #[test]
    fn a_bad_script_is_refused_at_load() {
        let err = Scripted::parse("t.json", r#"{"steps": [{"expect": {}}]}"#).err().unwrap();
        assert!(err.contains("steps[0] needs exactly one of reply and error"), "{err}");
        let err = Scripted::parse("t.json", r#"{"steps": [{"reply": {"content": []}, "typo": 1}]}"#).err().unwrap();
        assert!(err.contains("t.json is not a valid script") && err.contains("typo"), "{err}");
    }
}
