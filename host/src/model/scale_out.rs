//! What a scale-out run (`run --nats`) counted: executions on workers,
//! results fenced off, dead letters. Plain data for the report.

use serde::{Deserialize, Serialize};

/// The counts of a run whose tasks ran on NATS workers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleOut {
    /// Workers that ran at least one task of this run (their ids).
    pub workers: Vec<String>,
    /// Executions started on workers, duplicates included.
    pub executions: u64,
    /// Results committed while this coordinator listened (one per task
    /// attempt); those committed before it started are `picked_up`.
    pub committed: u64,
    /// Executions whose result was not committed: a redelivery ran the
    /// task again (its worker was presumed dead), or a worker died mid-task.
    pub duplicates: u64,
    /// Results discarded because the claim had been taken over.
    pub fenced: u64,
    /// Task attempts that ran out of deliveries (dead letters).
    pub dead_letters: u64,
    /// Results picked up from the bucket that a worker committed while no
    /// coordinator listened (a resumed run).
    pub picked_up: u64,
}
