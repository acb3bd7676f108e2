//! An agent: a tool-using model loop inside a teammate.
//!
//! [`Agent`] holds a system prompt, a set of [tools](Tool) (a name, a
//! description, a JSON Schema for the input and a handler), a model alias,
//! a turn limit and sampling settings. [`Agent::run`] sends the task's
//! instructions to the model through the host's `llm` import, runs the tool
//! calls the model asks for (in the order it asked), answers all the calls
//! of one turn in one message, and ends when the model stops asking for
//! tools, calls `finish`, or reaches the turn limit.
//!
//! [`Agent::new`] starts with the built-in tools over the workspace and the
//! mailbox (see [`builtin`]): `read_file`, `list_files`, `search`,
//! `write_file`, `edit_file`, `send_message`, `wait_for_message` and
//! `finish`. [`Agent::tool`] adds one of your own, [`Agent::without`] drops
//! a built-in.
//!
//! A call the sandbox refuses (a write to a file the task does not own, a
//! path outside the root, a file too large) comes back to the model as a
//! tool error with the reason and the list of files the task owns; the host
//! counts it as a denial in the report.
//!
//! Messages that reach the teammate while the agent works are shown to the
//! model at the next tool boundary (after the results of the turn's tool
//! calls, in the same message), as
//! `<teammate-message from=".." summary="..">..</teammate-message>` with
//! every value escaped. A shutdown request is shown the same way, so the
//! model can wrap up; the SDK answers it once the task is over, and the
//! host's grace period and kill bound a model that ignores it.
//!
//! # Example: an agent in about 30 lines
//!
//! ```no_run
//! use swarm_guest_sdk::agent::{Agent, Tool};
//! use swarm_guest_sdk::prelude::*;
//!
//! /// Adds doc comments to the files its task owns.
//! #[derive(Default)]
//! struct DocWriter;
//!
//! impl Teammate for DocWriter {
//!     fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
//!         let system = format!(
//!             "You are {}, a careful Rust engineer. You may change only: {}. \
//!              Add a doc comment to every public item, then call finish.",
//!             ctx.id(),
//!             task.owned_files.join(", ")
//!         );
//!         let words = Tool::new(
//!             "count_words",
//!             "Counts the words of a text.",
//!             r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#,
//!             |_, input| Ok(input["text"].as_str().unwrap_or("").split_whitespace().count().to_string()),
//!         );
//!         let mut agent = Agent::new(system).tool(words).without("send_message").max_turns(30);
//!         let outcome = agent.run(ctx, task, &format!("{}\n\n{}", task.subject, task.description))?;
//!         outcome.into_report()
//!     }
//! }
//!
//! export_teammate!(DocWriter);
//! ```

pub mod builtin;
pub mod xml;

use crate::llm::{ContentBlock, Message, Request, Role, StopReason, ToolCall, ToolResult};
use crate::{Context, Incoming, Report, Task};
pub use serde_json::Value;

/// The turn limit of an agent that sets none.
pub const DEFAULT_MAX_TURNS: u32 = 40;

/// What a tool handler gets: the teammate's context, the task, and a way to
/// end the loop with a report.
pub struct ToolCtx<'a> {
    /// The teammate's context: workspace, mailbox, log.
    pub ctx: &'a mut Context,
    /// The task the agent works on.
    pub task: &'a Task,
    finished: &'a mut Option<Report>,
    /// Mailbox deliveries a tool took (e.g. `wait_for_message`), shown to
    /// the model at the end of the turn.
    delivered: &'a mut Vec<Incoming>,
}

impl ToolCtx<'_> {
    /// Ends the loop after this turn's calls, completing the task with
    /// `report` (what the built-in `finish` does).
    pub fn finish(&mut self, report: Report) {
        *self.finished = Some(report);
    }

    /// Hands a delivery taken from the mailbox to the agent, which shows it
    /// to the model at the end of the turn.
    pub fn deliver(&mut self, incoming: Incoming) {
        self.delivered.push(incoming);
    }

    /// The text of a refused workspace call for the model: the reason and
    /// the files the task owns, so it can adapt.
    pub fn refusal(&self, err: &crate::FsError) -> String {
        builtin::refusal(self.task, err)
    }
}

/// A tool handler: gets the call's input (a JSON value) and returns the
/// text for the model, or an error text (sent with `is-error`).
pub type Handler = Box<dyn FnMut(&mut ToolCtx<'_>, &Value) -> Result<String, String>>;

/// A tool the model may call.
pub struct Tool {
    name: String,
    description: String,
    schema: String,
    handler: Handler,
}

impl Tool {
    /// A tool named `name` (`^[a-zA-Z0-9_-]{1,64}$`) whose input follows the
    /// JSON Schema `schema` (a JSON object, as text).
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        schema: impl Into<String>,
        handler: impl FnMut(&mut ToolCtx<'_>, &Value) -> Result<String, String> + 'static,
    ) -> Self {
        Self { name: name.into(), description: description.into(), schema: schema.into(), handler: Box::new(handler) }
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a run of the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The model called `finish` (or a tool that calls [`ToolCtx::finish`]).
    Finished(Report),
    /// The model answered without asking for a tool; its last text.
    EndTurn(String),
    /// The turn limit was reached while the model still asked for tools.
    TurnLimit(u32),
}

/// What a run of the loop did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// Model calls made.
    pub turns: u32,
    /// Tool calls run.
    pub tool_calls: u32,
    /// Tool calls that returned an error (refusals included).
    pub tool_errors: u32,
    /// Input tokens used (cache reads and writes included).
    pub input_tokens: u64,
    /// Output tokens used.
    pub output_tokens: u64,
}

impl Outcome {
    /// The task's result: `finish`'s report, or the model's last text as the
    /// summary; reaching the turn limit fails the task, naming the limit.
    pub fn into_report(self) -> Result<Report, String> {
        match self.ending {
            Ending::Finished(report) => Ok(report),
            Ending::EndTurn(text) => {
                let text = text.trim();
                Ok(Report::new(if text.is_empty() { "done (the model gave no summary)" } else { text }))
            }
            Ending::TurnLimit(n) => Err(format!(
                "the agent reached its turn limit of {n} turns without finishing ({} tool calls)",
                self.tool_calls
            )),
        }
    }
}

/// A tool-using model loop: see the [module docs](self).
pub struct Agent {
    system: String,
    tools: Vec<Tool>,
    alias: Option<String>,
    max_turns: u32,
    temperature: Option<f32>,
    max_output_tokens: Option<u32>,
}

impl Agent {
    /// An agent with system prompt `system` and the built-in tools.
    pub fn new(system: impl Into<String>) -> Self {
        Self { tools: builtin::all(), ..Self::bare(system) }
    }

    /// An agent with system prompt `system` and no tools.
    pub fn bare(system: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            tools: Vec::new(),
            alias: None,
            max_turns: DEFAULT_MAX_TURNS,
            temperature: None,
            max_output_tokens: None,
        }
    }

    /// Adds `tool`; a tool of the same name is replaced.
    pub fn tool(mut self, tool: Tool) -> Self {
        match self.tools.iter_mut().find(|t| t.name == tool.name) {
            Some(slot) => *slot = tool,
            None => self.tools.push(tool),
        }
        self
    }

    /// Drops the tool named `name` (built-in or not); no such tool is fine.
    pub fn without(mut self, name: &str) -> Self {
        self.tools.retain(|t| t.name != name);
        self
    }

    /// The model alias to call (the teammate's default when never set).
    pub fn model(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }

    /// At most `n` model calls per run (at least 1).
    pub fn max_turns(mut self, n: u32) -> Self {
        self.max_turns = n.max(1);
        self
    }

    /// Sampling temperature, 0 to 2 (the host refuses others).
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }

    /// Caps each answer's length.
    pub fn max_output_tokens(mut self, n: u32) -> Self {
        self.max_output_tokens = Some(n);
        self
    }

    /// The names of the tools offered, in order.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }

    /// Runs the loop on `task`, starting from one user message
    /// `instructions`. A model call that fails (budget, provider, ...) is an
    /// `Err` naming the turn and the error, which fails the task.
    pub fn run(&mut self, ctx: &mut Context, task: &Task, instructions: &str) -> Result<Outcome, String> {
        let mut request = Request {
            system: Some(self.system.clone()),
            messages: vec![Message::user(instructions)],
            tools: self
                .tools
                .iter()
                .map(|t| crate::llm::Tool {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    input_schema: t.schema.clone(),
                })
                .collect(),
            tool_choice: None,
            max_output_tokens: self.max_output_tokens,
            temperature: self.temperature,
            stop_sequences: Vec::new(),
        };
        let mut outcome = Outcome {
            ending: Ending::TurnLimit(self.max_turns),
            turns: 0,
            tool_calls: 0,
            tool_errors: 0,
            input_tokens: 0,
            output_tokens: 0,
        };
        let mut finished = None;
        while outcome.turns < self.max_turns {
            outcome.turns += 1;
            let turn = outcome.turns;
            ctx.progress(turn, self.max_turns);
            let answer = ctx
                .complete(self.alias.as_deref(), &request)
                .map_err(|e| format!("model call on turn {turn} failed: {}", e.describe()))?;
            let u = &answer.usage;
            outcome.input_tokens += u.input_tokens + u.cache_read_tokens + u.cache_write_tokens;
            outcome.output_tokens += u.output_tokens;
            let calls: Vec<ToolCall> = answer.tool_calls().cloned().collect();
            if calls.is_empty() {
                let text = answer.text();
                if answer.stop_reason == StopReason::MaxTokens {
                    ctx.warn(&format!("agent: turn {turn} hit the output cap"));
                }
                outcome.ending = Ending::EndTurn(text);
                return Ok(outcome);
            }
            // The model's turn, as it was (empty text blocks are invalid).
            let content: Vec<ContentBlock> =
                answer.content.into_iter().filter(|b| !matches!(b, ContentBlock::Text(t) if t.is_empty())).collect();
            request.messages.push(Message { role: Role::Assistant, content });

            // Every call of the turn, in order, answered in one message.
            let mut delivered = Vec::new();
            let mut reply = Vec::with_capacity(calls.len() + 1);
            for call in &calls {
                let result = self.call(ctx, task, call, &mut finished, &mut delivered);
                outcome.tool_calls += 1;
                outcome.tool_errors += u32::from(result.is_error);
                reply.push(ContentBlock::ToolResult(result));
            }
            // The tool boundary: what reached the mailbox meanwhile.
            delivered.extend(std::iter::from_fn(|| crate::bindings::swarm::teammate::mailbox::recv(0)));
            for incoming in delivered {
                if let Some(text) = shown(ctx, incoming) {
                    reply.push(ContentBlock::Text(text));
                }
            }
            request.messages.push(Message { role: Role::User, content: reply });
            if let Some(report) = finished.take() {
                outcome.ending = Ending::Finished(report);
                return Ok(outcome);
            }
        }
        ctx.warn(&format!("agent: turn limit of {} reached", self.max_turns));
        Ok(outcome)
    }

    fn call(
        &mut self,
        ctx: &mut Context,
        task: &Task,
        call: &ToolCall,
        finished: &mut Option<Report>,
        delivered: &mut Vec<Incoming>,
    ) -> ToolResult {
        let answer = |content: String, is_error: bool| ToolResult { call_id: call.id.clone(), content, is_error };
        let input: Value = match serde_json::from_str(&call.arguments) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return answer(format!("the input of `{}` must be a JSON object", call.name), true),
            Err(e) => return answer(format!("the input of `{}` is not valid JSON: {e}", call.name), true),
        };
        let Some(tool) = self.tools.iter_mut().find(|t| t.name == call.name) else {
            let known: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
            return answer(format!("there is no tool `{}` (tools: {})", call.name, known.join(", ")), true);
        };
        let mut tcx = ToolCtx { ctx, task, finished, delivered };
        let result = (tool.handler)(&mut tcx, &input);
        let line = match &result {
            Ok(_) => format!("tool {}: ok", call.name),
            Err(e) => format!("tool {}: error: {}", call.name, crate::truncate(e, 200)),
        };
        ctx.info(&line);
        match result {
            Ok(text) => answer(text, false),
            Err(text) => answer(text, true),
        }
    }
}

/// The text the model sees for a delivery, if any. A shutdown request is
/// also kept for the SDK's loop, which answers it after the task.
fn shown(ctx: &mut Context, incoming: Incoming) -> Option<String> {
    match incoming {
        Incoming::Message(m) => Some(xml::teammate_message(&m.sender, m.summary.as_deref(), &m.body)),
        Incoming::Shutdown(req) => {
            let text = xml::shutdown_message(&req.reason);
            ctx.pending.push_back(Incoming::Shutdown(req));
            Some(text)
        }
        Incoming::TasksAvailable => None,
    }
}
