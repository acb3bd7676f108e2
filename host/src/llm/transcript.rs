//! Each task's model transcript, derived by the host from the `llm.complete`
//! calls it makes (a guest cannot misreport it): the model's text and tool
//! calls from each response; the tool results (with their error flag) and
//! any other text the agent added (messages it received mid-turn) from the
//! new messages of the next request. Bounded: at most
//! [`MAX_ENTRIES_PER_TASK`] entries per task, each at most
//! [`MAX_ENTRY_CHARS`] characters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Block, ModelRequest, ModelResponse, Role};

/// Most entries kept per task; later ones are counted.
pub const MAX_ENTRIES_PER_TASK: usize = 500;
/// Longest entry text kept, in characters.
pub const MAX_ENTRY_CHARS: usize = 500;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The model's text.
    Model,
    /// A tool call: `name` the tool, `text` its arguments.
    ToolCall,
    /// A tool result: `name` the tool, `text` the output.
    ToolResult,
    /// Text the agent added to the conversation after the first request
    /// (a message it received mid-turn).
    Message,
}

/// One transcript entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it records.
    pub kind: EntryKind,
    /// The tool, for calls and results.
    pub name: Option<String>,
    /// The text (shortened to [`MAX_ENTRY_CHARS`]).
    pub text: String,
    /// A tool result flagged as an error.
    pub error: bool,
}

#[derive(Debug, Default)]
struct Transcript {
    entries: Vec<Entry>,
    /// Messages of the last request already seen.
    seen: usize,
    /// Tool call id → tool name.
    calls: HashMap<String, String>,
    /// Entries left out past the cap.
    dropped: usize,
    /// Calls answered (model turns).
    turns: usize,
    /// The last tool the model called.
    last_tool: Option<String>,
}

impl Transcript {
    fn push(&mut self, kind: EntryKind, name: Option<String>, text: &str, error: bool) {
        if self.entries.len() >= MAX_ENTRIES_PER_TASK {
            self.dropped += 1;
            return;
        }
        self.entries.push(Entry { kind, name, text: shorten(text), error });
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ENTRY_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Transcripts by task, as calls are answered.
#[derive(Debug, Default)]
pub struct TranscriptBook {
    // A plain mutex: held for a few pushes per call, never across an await.
    inner: Mutex<BTreeMap<String, Transcript>>,
}

impl TranscriptBook {
    /// Adds one answered call of `task`.
    pub fn record(&self, task: &str, request: &ModelRequest, response: &ModelResponse) {
        let mut all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let t = all.entry(task.to_string()).or_default();
        // A request that does not extend the last one starts over.
        let first = t.seen == 0 || request.messages.len() < t.seen;
        let from = if first { request.messages.len().saturating_sub(1) } else { t.seen };
        for message in request.messages.iter().skip(from).filter(|m| m.role == Role::User) {
            for block in &message.content {
                match block {
                    Block::ToolResult { call_id, content, is_error } => {
                        let name = t.calls.get(call_id).cloned();
                        t.push(EntryKind::ToolResult, name, content, *is_error);
                    }
                    Block::Text { text } if !first => t.push(EntryKind::Message, None, text, false),
                    _ => {}
                }
            }
        }
        for block in &response.content {
            match block {
                Block::Text { text } => t.push(EntryKind::Model, None, text, false),
                Block::ToolCall { id, name, input } => {
                    t.calls.insert(id.clone(), name.clone());
                    t.last_tool = Some(name.clone());
                    t.push(EntryKind::ToolCall, Some(name.clone()), &input.to_string(), false);
                }
                Block::ToolResult { .. } => {}
            }
        }
        // The response becomes the next request's assistant message.
        t.seen = request.messages.len() + 1;
        t.turns += 1;
    }

    /// How many model turns `task` has had and the last tool its model
    /// called (cheap: for the live view).
    pub fn now(&self, task: &str) -> Option<(usize, Option<String>)> {
        let all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        all.get(task).map(|t| (t.turns, t.last_tool.clone()))
    }

    /// The transcript of `task` and how many entries were left out.
    pub fn of(&self, task: &str) -> (Vec<Entry>, usize) {
        let all = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        all.get(task).map_or((Vec::new(), 0), |t| (t.entries.clone(), t.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, StopReason, Usage};

    fn response(content: Vec<Block>) -> ModelResponse {
        ModelResponse {
            id: "r".into(),
            alias: "a".into(),
            model: "m".into(),
            content,
            stop_reason: StopReason::ToolUse,
            usage: Usage::default(),
            budget: Default::default(),
        }
    }

    #[test]
    fn turns_tool_calls_results_and_mid_turn_messages_are_derived_from_the_calls() {
        let book = TranscriptBook::default();
        let mut request = ModelRequest { messages: vec![Message::user("do the task")], ..ModelRequest::default() };
        let call =
            Block::ToolCall { id: "c1".into(), name: "write_file".into(), input: serde_json::json!({"path": "x"}) };
        let answer = response(vec![Block::text("I will write x"), call.clone()]);
        book.record("t", &request, &answer);
        request.messages.push(Message { role: Role::Assistant, content: answer.content.clone() });
        request.messages.push(Message {
            role: Role::User,
            content: vec![
                Block::ToolResult { call_id: "c1".into(), content: "denied: not owned".into(), is_error: true },
                Block::text("<teammate-message from=\"team-lead\">stop</teammate-message>"),
            ],
        });
        book.record("t", &request, &response(vec![Block::text("done")]));
        let (entries, dropped) = book.of("t");
        let got: Vec<(EntryKind, Option<&str>, &str, bool)> =
            entries.iter().map(|e| (e.kind, e.name.as_deref(), e.text.as_str(), e.error)).collect();
        assert_eq!(
            got,
            [
                (EntryKind::Model, None, "I will write x", false),
                (EntryKind::ToolCall, Some("write_file"), "{\"path\":\"x\"}", false),
                (EntryKind::ToolResult, Some("write_file"), "denied: not owned", true),
                (EntryKind::Message, None, "<teammate-message from=\"team-lead\">stop</teammate-message>", false),
                (EntryKind::Model, None, "done", false),
            ]
        );
        assert_eq!(dropped, 0);
        assert!(book.of("other").0.is_empty());
        assert_eq!(book.now("t"), Some((2, Some("write_file".into()))), "two turns, the last tool");
        assert_eq!(book.now("other"), None);
    }

    #[test]
    fn entries_are_bounded_in_number_and_length() {
        let book = TranscriptBook::default();
        let request = ModelRequest { messages: vec![Message::user("go")], ..ModelRequest::default() };
        let long = "x".repeat(MAX_ENTRY_CHARS + 10);
        for _ in 0..MAX_ENTRIES_PER_TASK + 3 {
            book.record("t", &request, &response(vec![Block::text(long.clone())]));
        }
        let (entries, dropped) = book.of("t");
        assert_eq!((entries.len(), dropped), (MAX_ENTRIES_PER_TASK, 3));
        assert_eq!(entries[0].text.chars().count(), MAX_ENTRY_CHARS + 1, "cut, with an ellipsis");
    }
}
