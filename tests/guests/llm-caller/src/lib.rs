//! `llm-caller`: a test guest that calls the model as its task subject says
//! and completes the task with what came back.
//!
//! Subject `ask[@<alias>] [xN] <prompt>`: makes N calls (default 1) of one
//! user message `<prompt>` under `<alias>` (its default alias without `@`).
//! The report's summary is `answer: <text of the last answer> | model=<model>
//! in=<input tokens> out=<output tokens> stop=<stop reason> tokens_left=<..>
//! calls_left=<..>`, summed over the calls. Any error fails the task with
//! `llm error: <description>`. The description may name tools (`tool:<name>`
//! words): each is offered with an empty object schema. Any other subject
//! completes with `no model call`.

use swarm_guest_sdk::llm::{Message, Request};
use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct LlmCaller;

fn left(n: Option<u64>) -> String {
    n.map_or_else(|| "unlimited".to_string(), |n| n.to_string())
}

impl Teammate for LlmCaller {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let Some(rest) = task.subject.strip_prefix("ask") else {
            return Ok(Report::new("no model call"));
        };
        let (alias, rest) = match rest.strip_prefix('@') {
            Some(r) => {
                let (a, r) = r.split_once(' ').unwrap_or((r, ""));
                (Some(a.to_string()), r)
            }
            None => (None, rest.trim_start()),
        };
        let (times, prompt) = match rest.strip_prefix('x').and_then(|r| r.split_once(' ')) {
            Some((n, p)) if n.parse::<u32>().is_ok() => (n.parse::<u32>().unwrap_or(1), p),
            _ => (1, rest),
        };
        let mut request = Request::new(vec![Message::user(prompt)]);
        for tool in task.description.split_whitespace().filter_map(|w| w.strip_prefix("tool:")) {
            request = request.tool(tool, format!("the {tool} tool"), r#"{"type":"object"}"#);
        }
        let (mut input, mut output) = (0, 0);
        let mut last = None;
        for _ in 0..times {
            let answer =
                ctx.complete(alias.as_deref(), &request).map_err(|e| format!("llm error: {}", e.describe()))?;
            input += answer.usage.input_tokens;
            output += answer.usage.output_tokens;
            last = Some(answer);
        }
        let Some(answer) = last else {
            return Ok(Report::new("no model call"));
        };
        Ok(Report::new(format!(
            "answer: {} | model={} in={input} out={output} stop={:?} tokens_left={} calls_left={}",
            answer.text(),
            answer.model,
            answer.stop_reason,
            left(answer.budget.tokens),
            left(answer.budget.calls),
        )))
    }
}

export_teammate!(LlmCaller);
