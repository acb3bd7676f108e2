//! `writer`: a test guest for the workspace sandbox.
//!
//! - description `write:<path>`: writes `written by <me>` to `<path>` and
//!   completes with `wrote <path>`;
//! - description `read:<path>`: reads `<path>` and completes with
//!   `read <n> bytes from <path>`;
//! - description `deps`: completes with one line per result of the tasks it
//!   was blocked by, `<id>: <summary> (<n> findings, first <rule>:
//!   <message>)`, joined by ` | `.
//!
//! A refused or failed call fails the task with the error text (e.g.
//! `denied: ...`), so tests can see what the sandbox said.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Writer;

impl Teammate for Writer {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let desc = task.description.trim();
        if let Some(path) = desc.strip_prefix("write:") {
            let contents = format!("written by {}", ctx.id());
            ctx.write(path, contents).map_err(|e| format!("write {path}: {}", e.describe()))?;
            return Ok(Report::new(format!("wrote {path}")));
        }
        if let Some(path) = desc.strip_prefix("read:") {
            let bytes = ctx.read(path).map_err(|e| format!("read {path}: {}", e.describe()))?;
            return Ok(Report::new(format!("read {} bytes from {path}", bytes.len())));
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
        Err(format!("unknown instruction {desc:?}: expected `write:<path>` or `read:<path>`"))
    }
}

export_teammate!(Writer);
