//! `writer`: a test guest for the workspace sandbox.
//!
//! - description `write:<path>`: writes `written by <me>` to `<path>` and
//!   completes with `wrote <path>`;
//! - description `read:<path>`: reads `<path>` and completes with
//!   `read <n> bytes from <path>`;
//! - description `deps`: completes with one line per result of the tasks it
//!   was blocked by, `<id>: <summary> (<n> findings, first <rule>:
//!   <message>)`, joined by ` | `;
//! - description `request:<path>`: asks for `<path>` (`request_file`), and
//!   once granted writes it like `write:` and completes with
//!   `granted and wrote <path>`; a denial fails the task with its text;
//! - description `ask:<text>`: sends `<text>` to the team lead, waits up to
//!   [`ANSWER_WAIT_MS`] for a message from it and completes with
//!   `team-lead: <its body>`;
//! - description `wait:<instruction>`: waits up to [`ANSWER_WAIT_MS`] for
//!   any message, then does `<instruction>`.
//!
//! A refused or failed call fails the task with the error text (e.g.
//! `denied: ...`), so tests can see what the sandbox said.

use swarm_guest_sdk::prelude::*;

/// How long an `ask:` task waits for the lead's answer.
pub const ANSWER_WAIT_MS: u32 = 60_000;

/// The teammate.
#[derive(Default)]
pub struct Writer;

impl Teammate for Writer {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        self.instruction(ctx, task, task.description.trim())
    }
}

impl Writer {
    fn instruction(&mut self, ctx: &mut Context, task: &Task, desc: &str) -> Result<Report, String> {
        if let Some(rest) = desc.strip_prefix("wait:") {
            if ctx.recv(ANSWER_WAIT_MS).is_none() {
                return Err(format!("no message within {ANSWER_WAIT_MS} ms"));
            }
            return self.instruction(ctx, task, rest);
        }
        if let Some(path) = desc.strip_prefix("write:") {
            let contents = format!("written by {}", ctx.id());
            ctx.write(path, contents).map_err(|e| format!("write {path}: {}", e.describe()))?;
            return Ok(Report::new(format!("wrote {path}")));
        }
        if let Some(path) = desc.strip_prefix("read:") {
            let bytes = ctx.read(path).map_err(|e| format!("read {path}: {}", e.describe()))?;
            return Ok(Report::new(format!("read {} bytes from {path}", bytes.len())));
        }
        if let Some(path) = desc.strip_prefix("request:") {
            ctx.request_file(path, "the test asks for it").map_err(|e| format!("request {path}: {e}"))?;
            let contents = format!("written by {}", ctx.id());
            ctx.write(path, contents).map_err(|e| format!("write {path}: {}", e.describe()))?;
            return Ok(Report::new(format!("granted and wrote {path}")));
        }
        if let Some(text) = desc.strip_prefix("ask:") {
            ctx.send(TEAM_LEAD, text).map_err(|e| format!("ask the lead: {}", e.describe()))?;
            loop {
                let Some(msg) = ctx.recv(ANSWER_WAIT_MS) else {
                    return Err(format!("no answer from the lead within {ANSWER_WAIT_MS} ms"));
                };
                if msg.sender == TEAM_LEAD {
                    return Ok(Report::new(format!("team-lead: {}", msg.body)));
                }
            }
        }
        if desc == "deps" {
            let deps = ctx.dependency_results(task).map_err(|e| format!("dependency-results: {e:?}"))?;
            let lines: Vec<String> = deps
                .iter()
                .map(|d| {
                    let first = d.findings.first().map(|f| format!("{}: {}", f.rule, f.message)).unwrap_or_default();
                    format!("{}: {} ({} findings, first {first})", d.task_id, d.summary, d.findings.len())
                })
                .collect();
            return Ok(Report::new(lines.join(" | ")));
        }
        Err(format!(
            "unknown instruction {desc:?}: expected `write:<path>`, `read:<path>`, `request:<path>`, `ask:<text>`, `wait:<instruction>` or `deps`"
        ))
    }
}

export_teammate!(Writer);
