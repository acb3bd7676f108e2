//! Which sandbox limit stopped a teammate, as data.

/// Which limit a sandbox `LimitHit` names, without its values: carried as
/// data on attempts, exits and reports, so the exit code is decided from
/// what the host itself raised and never from text a guest could write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// `memory_mib`.
    Memory,
    /// `table_elements`.
    Table,
    /// `task_deadline` (or a task's own `deadline`).
    Deadline,
    /// `instances`.
    Instances,
    /// `wasm_stack_kib`.
    Stack,
    /// `fuel`.
    Fuel,
    /// `log_lines_per_sec`.
    LogRate,
    /// `events_per_sec`.
    EventRate,
    /// `idle_cpu`.
    IdleCpu,
}
