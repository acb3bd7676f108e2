//! Per-teammate resource limits: their defaults, how the team file overrides
//! them, and the `ResourceLimiter` that enforces the memory and table caps
//! over a whole component instance.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to one teammate. Every field has a safe default; a team
/// file overrides any subset, team-wide or per teammate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory across all memories of the instance, in MiB.
    pub memory_mib: u64,
    /// Table elements across all tables of the instance.
    pub table_elements: u64,
    /// Core instances, tables and memories a component may create, each.
    pub instances: u32,
    /// Wasm stack, in KiB.
    pub wasm_stack_kib: u32,
    /// Wall-clock time one task may take, enforced by epoch interruption
    /// while the guest computes and by timeouts while it waits in the host.
    #[serde(with = "humantime_serde")]
    pub task_deadline: Duration,
    /// Largest message body, task report or log line a teammate may send, in KiB.
    pub message_kib: u32,
    /// Largest task report (summary plus findings), in KiB.
    pub report_kib: u32,
    /// Messages waiting in one inbox before senders get `inbox-full`.
    pub inbox_len: u32,
    /// Largest file the teammate may read or write, in MiB.
    pub file_mib: u64,
    /// Largest plugin file accepted, in MiB.
    pub plugin_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 128,
            table_elements: 20_000,
            instances: 64,
            wasm_stack_kib: 512,
            task_deadline: Duration::from_secs(60),
            message_kib: 64,
            report_kib: 4096,
            inbox_len: 256,
            file_mib: 16,
            plugin_mib: 64,
        }
    }
}

impl Limits {
    /// Memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
    /// Message cap in bytes.
    pub fn message_bytes(&self) -> usize {
        self.message_kib as usize * 1024
    }
    /// Report cap in bytes.
    pub fn report_bytes(&self) -> usize {
        self.report_kib as usize * 1024
    }
    /// File read/write cap in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.file_mib.saturating_mul(1 << 20)
    }
    /// Plugin file cap in bytes.
    pub fn plugin_bytes(&self) -> u64 {
        self.plugin_mib.saturating_mul(1 << 20)
    }
    /// Wasm stack in bytes.
    pub fn wasm_stack_bytes(&self) -> usize {
        self.wasm_stack_kib as usize * 1024
    }
}

/// A limit a teammate ran into. Its `Display` names the limit and its value,
/// and it travels inside the trap error so the report can say which limit
/// stopped the teammate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// Total linear memory would exceed `memory_mib`.
    #[error("memory limit hit: the instance asked for {requested} bytes, over memory_mib = {limit_mib} MiB")]
    Memory {
        /// The configured cap, MiB.
        limit_mib: u64,
        /// Total bytes the growth would have reached.
        requested: u64,
    },
    /// Total table elements would exceed `table_elements`.
    #[error("table limit hit: the instance asked for {requested} elements, over table_elements = {limit}")]
    Table {
        /// The configured cap.
        limit: u64,
        /// Total elements the growth would have reached.
        requested: u64,
    },
    /// The task ran past its deadline.
    #[error("deadline hit: task {task} ran past task_deadline = {}", humantime::format_duration(*.deadline))]
    Deadline {
        /// The task's id.
        task: String,
        /// The deadline in force.
        deadline: Duration,
    },
    /// The wasm stack overflowed.
    #[error("stack limit hit: wasm stack overflow (wasm_stack_kib = {0} KiB)")]
    Stack(u32),
}

/// Enforces [`Limits`] over a whole instance: the caps are totals across all
/// memories and tables, not per memory like wasmtime's `StoreLimits`.
#[derive(Debug)]
pub struct InstanceLimiter {
    memory_cap: usize,
    memory_mib: u64,
    table_cap: u64,
    instances: usize,
    memory_used: usize,
    table_used: u64,
}

impl InstanceLimiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            memory_cap: limits.memory_bytes(),
            memory_mib: limits.memory_mib,
            table_cap: limits.table_elements,
            instances: limits.instances as usize,
            memory_used: 0,
            table_used: 0,
        }
    }

    /// Bytes of linear memory currently in use across the instance.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }
}

impl wasmtime::ResourceLimiter for InstanceLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_used.saturating_sub(current).saturating_add(desired);
        if total > self.memory_cap {
            return Err(wasmtime::Error::new(LimitHit::Memory { limit_mib: self.memory_mib, requested: total as u64 }));
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.table_used.saturating_sub(current as u64)).saturating_add(desired as u64);
        if total > self.table_cap {
            return Err(wasmtime::Error::new(LimitHit::Table { limit: self.table_cap, requested: total }));
        }
        self.table_used = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.instances
    }
    fn memories(&self) -> usize {
        self.instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_is_capped_across_all_memories() {
        let mut l = InstanceLimiter::new(&Limits { memory_mib: 1, ..Limits::default() });
        // Two memories of 512 KiB each fit, a third byte more does not.
        assert!(l.memory_growing(0, 512 * 1024, None).unwrap());
        assert!(l.memory_growing(0, 512 * 1024, None).unwrap());
        let err = l.memory_growing(0, 64 * 1024, None).unwrap_err();
        let hit = err.downcast_ref::<LimitHit>().expect("a LimitHit");
        assert!(matches!(hit, LimitHit::Memory { limit_mib: 1, .. }));
        assert!(hit.to_string().contains("memory_mib = 1 MiB"), "{hit}");
    }

    #[test]
    fn table_growth_is_capped() {
        let mut l = InstanceLimiter::new(&Limits { table_elements: 10, ..Limits::default() });
        assert!(l.table_growing(0, 10, None).unwrap());
        let err = l.table_growing(10, 11, None).unwrap_err();
        assert!(err.to_string().contains("table_elements = 10"), "{err}");
    }

    #[test]
    fn team_file_overrides_a_subset() {
        let l: Limits = toml::from_str("memory_mib = 8\ntask_deadline = \"1500ms\"").unwrap();
        assert_eq!(l.memory_mib, 8);
        assert_eq!(l.task_deadline, Duration::from_millis(1500));
        assert_eq!(l.inbox_len, Limits::default().inbox_len);
        assert!(toml::from_str::<Limits>("memroy_mib = 8").is_err());
    }
}
