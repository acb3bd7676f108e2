//! `cruncher`: a bench-only guest for the sandbox-overhead benchmark. A task
//! whose description is `rounds:<n>` runs [`crunch_kernel::crunch`]`(n)` and
//! completes with the summary `checksum <hash>`; the bench runs the same
//! kernel natively and compares both the time and the checksum.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Cruncher;

impl Teammate for Cruncher {
    fn on_task(&mut self, _ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let rounds: u32 = task
            .description
            .trim()
            .strip_prefix("rounds:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("expected `rounds:<n>`, got {:?}", task.description))?;
        Ok(Report::new(format!("checksum {}", crunch_kernel::crunch(rounds))))
    }
}

export_teammate!(Cruncher);
