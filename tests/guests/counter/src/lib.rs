//! `counter`: a test guest that completes every task with the summary
//! `done <task id> by <teammate id>` and touches nothing else, so tests can
//! check that no task runs twice.
//!
//! Words in the task description change its behaviour:
//! - `wait:<ms>` first waits that long in `mailbox.recv` (suspended in the
//!   host, like a teammate waiting on a slow tool);
//! - `stubborn` makes the teammate reject every later shutdown request.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Counter {
    stubborn: bool,
}

impl Teammate for Counter {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        for word in task.description.split_whitespace() {
            if let Some(ms) = word.strip_prefix("wait:").and_then(|ms| ms.parse().ok()) {
                // Anything that arrives meanwhile is handled after the task.
                if let Some(msg) = ctx.recv(ms) {
                    ctx.defer(msg);
                }
            }
            if word == "stubborn" {
                self.stubborn = true;
            }
        }
        Ok(Report::new(format!("done {} by {}", task.id, ctx.id())))
    }

    fn on_shutdown(&mut self, _ctx: &mut Context, _reason: &str) -> Shutdown {
        if self.stubborn { Shutdown::Reject("stubborn: never stops by request".into()) } else { Shutdown::Approve }
    }
}

export_teammate!(Counter);
