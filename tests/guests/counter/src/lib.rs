//! `counter`: a test guest that completes every task with the summary
//! `done <task id> by <teammate id>` and touches nothing else, so tests can
//! check that no task runs twice.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Counter;

impl Teammate for Counter {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        Ok(Report::new(format!("done {} by {}", task.id, ctx.id())))
    }
}

export_teammate!(Counter);
