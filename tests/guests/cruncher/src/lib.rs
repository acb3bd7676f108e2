//! `cruncher`: a bench-only guest for the sandbox-overhead benchmark. A task
//! described `<kernel>:<n>` runs one kernel of `crunch_kernel` and completes
//! with the summary `checksum <hash>`; the bench runs the same kernel
//! natively and compares both the time and the checksum:
//!
//! - `rounds:<n>`: [`crunch_kernel::crunch`]`(n)`, the multiply chain;
//! - `scan:<mib>`: [`crunch_kernel::scan`]`(mib)`, the `todo-scan` marker
//!   scan over a generated text of `mib` MiB in memory;
//! - `map:<n>`: [`crunch_kernel::map`]`(n)`, a hash map of `n` keys.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Cruncher;

impl Teammate for Cruncher {
    fn on_task(&mut self, _ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let parsed = task.description.trim().split_once(':').and_then(|(k, n)| Some((k, n.parse::<u32>().ok()?)));
        let checksum = match parsed {
            Some(("rounds", n)) => crunch_kernel::crunch(n),
            Some(("scan", mib)) => crunch_kernel::scan(mib),
            Some(("map", n)) => crunch_kernel::map(n),
            _ => return Err(format!("expected `rounds:<n>`, `scan:<mib>` or `map:<n>`, got {:?}", task.description)),
        };
        Ok(Report::new(format!("checksum {checksum}")))
    }
}

export_teammate!(Cruncher);
