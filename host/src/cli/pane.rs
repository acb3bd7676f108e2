//! The live transcript a teammate process shows on its stderr (its tmux or
//! iTerm2 pane): one sanitised line per model turn's text, per tool call
//! (the tool and a short summary of its arguments) and per tool result (ok
//! or error), derived from the `llm.complete` calls that pass through the
//! process, never from what the guest says. Only teammate processes wrap
//! their model port in [`PaneTranscript`]; the in-process team view shows
//! the turn and the last tool instead.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::llm::transcript::{EntryKind, TranscriptBook};
use crate::llm::{BoxFuture, LlmError, ModelCall, ModelPort, ModelResponse, SharedModelPort};
use crate::sanitize;

/// Longest line shown, in characters.
const LINE_CHARS: usize = 160;

/// A model port that prints the transcript of each call it forwards.
#[derive(Debug)]
pub struct PaneTranscript {
    inner: SharedModelPort,
    book: TranscriptBook,
    /// Entries already printed, per task.
    printed: Mutex<HashMap<String, usize>>,
}

impl PaneTranscript {
    /// Wraps `inner`.
    pub fn new(inner: SharedModelPort) -> Self {
        Self { inner, book: TranscriptBook::default(), printed: Mutex::new(HashMap::new()) }
    }

    /// The lines of `task`'s entries not printed yet.
    fn new_lines(&self, task: &str) -> Vec<String> {
        let (entries, _) = self.book.of(task);
        let mut printed = self.printed.lock().unwrap_or_else(|e| e.into_inner());
        let done = printed.entry(task.to_string()).or_default();
        let lines = entries.iter().skip(*done).map(|e| {
            let name = e.name.as_deref().unwrap_or("?");
            match e.kind {
                EntryKind::Model => format!("model: {}", e.text),
                EntryKind::ToolCall => format!("tool {name} {}", e.text),
                EntryKind::ToolResult if e.error => format!("tool {name} error: {}", e.text),
                EntryKind::ToolResult => format!("tool {name} ok"),
                EntryKind::Message => format!("message: {}", e.text),
            }
        });
        let lines: Vec<String> = lines.map(|l| line(&l)).collect();
        *done = entries.len();
        lines
    }
}

/// `text` as one sanitised line of at most [`LINE_CHARS`] characters.
fn line(text: &str) -> String {
    let clean = sanitize::line(text);
    match clean.char_indices().nth(LINE_CHARS) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

impl ModelPort for PaneTranscript {
    fn complete(&self, call: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>> {
        Box::pin(async move {
            let (task, request) = (call.task.clone(), call.request.clone());
            // Headless teammate processes share the coordinator's stderr:
            // each line names its teammate.
            let who = sanitize::line(&call.teammate);
            let answer = self.inner.complete(call).await;
            match (&answer, task) {
                (Ok(response), Some(task)) => {
                    self.book.record(&task, &request, response);
                    for l in self.new_lines(&task) {
                        eprintln!("{who}: {l}");
                    }
                }
                (Err(e), _) => eprintln!("{who}: {}", line(&format!("model call failed: {e}"))),
                (Ok(_), None) => {}
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Block, Message, ModelRequest, Role};

    #[test]
    fn each_turn_and_tool_call_is_one_sanitised_line_printed_once() {
        let pane = PaneTranscript::new(std::sync::Arc::new(NoPort));
        let mut request = ModelRequest { messages: vec![Message::user("go")], ..ModelRequest::default() };
        let response = |content| ModelResponse {
            id: "r".into(),
            alias: "a".into(),
            model: "m".into(),
            content,
            stop_reason: crate::llm::StopReason::ToolUse,
            usage: Default::default(),
            budget: Default::default(),
        };
        let first = response(vec![
            Block::text("line one\nline two \u{1b}[31m"),
            Block::ToolCall { id: "c".into(), name: "edit_file".into(), input: serde_json::json!({"path": "a"}) },
        ]);
        pane.book.record("t", &request, &first);
        assert_eq!(
            pane.new_lines("t"),
            [sanitize::line("model: line one\nline two \u{1b}[31m"), "tool edit_file {\"path\":\"a\"}".to_string()]
        );
        assert!(pane.new_lines("t").is_empty(), "printed once");
        request.messages.push(Message { role: Role::Assistant, content: first.content.clone() });
        request.messages.push(Message {
            role: Role::User,
            content: vec![Block::ToolResult { call_id: "c".into(), content: "denied: x".into(), is_error: true }],
        });
        pane.book.record("t", &request, &response(vec![Block::text("y".repeat(300))]));
        let lines = pane.new_lines("t");
        assert_eq!(lines[0], "tool edit_file error: denied: x");
        assert_eq!(lines[1].chars().count(), LINE_CHARS + 1, "cut to one short line");
        assert!(lines.iter().all(|l| !l.contains('\n') && !l.contains('\u{1b}')));
    }

    #[derive(Debug)]
    struct NoPort;

    impl ModelPort for NoPort {
        fn complete(&self, _: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>> {
            Box::pin(async { Err(LlmError::Provider("none".into())) })
        }
    }
}
