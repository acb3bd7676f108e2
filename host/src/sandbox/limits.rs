//! Per-teammate resource limits: their defaults, how the team file overrides
//! them, the `ResourceLimiter` that enforces the memory and table caps over a
//! whole component instance, the rate budgets (log lines, coordinator
//! events), the idle-compute clock, and the socket frame size the limits
//! need.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::LimitKind;

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
    /// Longest time compiling the plugin may take. Compilation cannot be
    /// interrupted, so the load fails at this deadline and the compiler
    /// thread is left to finish in the background (bounded by `plugin_mib`).
    #[serde(with = "humantime_serde")]
    pub compile_timeout: Duration,
    /// Log lines per second a teammate may write: a budget that refills at
    /// this rate and holds at most this many lines (the burst). Past it the
    /// teammate is stopped; each line is already capped at
    /// [`crate::sanitize::MAX_LINE_CHARS`] characters.
    pub log_lines_per_sec: u32,
    /// Coordinator events per second a teammate may cause beyond what its
    /// tasks bound (refused file operations, progress that is not a new
    /// percentage of the same total): a budget that refills at this rate and
    /// holds at most this many (the burst). Past it the teammate is stopped.
    pub events_per_sec: u32,
    /// Time a teammate may spend computing while it holds no task, summed
    /// from its start or its last successful claim (waiting in
    /// `mailbox.recv` does not count). Past it the teammate is stopped, so a
    /// guest that spins without claiming cannot keep a run alive.
    #[serde(with = "humantime_serde")]
    pub idle_cpu: Duration,
    /// Optional fuel: the number of wasm instructions' worth of work the
    /// teammate may do over its whole life, for deterministic CI budgets
    /// (the deadline is wall-clock, fuel is not). Unset by default: counting
    /// fuel slows guests down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
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
            compile_timeout: Duration::from_secs(60),
            log_lines_per_sec: 1000,
            events_per_sec: 1000,
            idle_cpu: Duration::from_secs(5),
            fuel: None,
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

    /// The largest socket frame a teammate with these limits can cause:
    /// a report (`report_kib`) or a message (`message_kib`) plus a task id,
    /// recipient or reason of at most `message_kib`, every byte of which may
    /// become 6 bytes of JSON (`\u0001`), plus [`FRAME_HEADROOM`] for the
    /// frame's own fields. The socket backends size their frame cap from
    /// this, so a report that fits `report_kib` in-process fits a frame.
    pub fn frame_bytes(&self) -> usize {
        self.report_bytes()
            .saturating_add(self.message_bytes())
            .saturating_mul(JSON_ESCAPE_FACTOR)
            .saturating_add(FRAME_HEADROOM)
    }
}

/// Bytes of JSON one byte of guest text may become at most (`\u0001`).
pub const JSON_ESCAPE_FACTOR: usize = 6;

/// Room in a frame for what is not guest text: tags, field names, ids the
/// host bounds itself (task ids, teammate ids, request ids).
pub const FRAME_HEADROOM: usize = 1 << 20;

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
    /// The component creates more core instances, tables or memories than
    /// `instances` allows (wasmtime's own message in `what`).
    #[error("instance limit hit: {what} (instances = {limit})")]
    Instances {
        /// The configured cap.
        limit: u32,
        /// What wasmtime refused.
        what: String,
    },
    /// The wasm stack overflowed.
    #[error("stack limit hit: wasm stack overflow (wasm_stack_kib = {0} KiB)")]
    Stack(u32),
    /// The teammate used up its fuel.
    #[error("fuel limit hit: the teammate ran out of fuel (fuel = {0})")]
    Fuel(u64),
    /// The teammate logged faster than `log_lines_per_sec`.
    #[error("log rate limit hit: more log lines than log_lines_per_sec = {0}")]
    LogRate(u32),
    /// The teammate caused coordinator events faster than `events_per_sec`.
    #[error("event rate limit hit: more refused file operations and progress changes than events_per_sec = {0}")]
    EventRate(u32),
    /// The teammate computed longer than `idle_cpu` while holding no task.
    #[error(
        "idle compute limit hit: computed for longer than idle_cpu = {} while holding no task",
        humantime::format_duration(*.0)
    )]
    IdleCpu(Duration),
}

impl LimitHit {
    /// Which limit this is.
    pub fn kind(&self) -> LimitKind {
        match self {
            Self::Memory { .. } => LimitKind::Memory,
            Self::Table { .. } => LimitKind::Table,
            Self::Deadline { .. } => LimitKind::Deadline,
            Self::Instances { .. } => LimitKind::Instances,
            Self::Stack(_) => LimitKind::Stack,
            Self::Fuel(_) => LimitKind::Fuel,
            Self::LogRate(_) => LimitKind::LogRate,
            Self::EventRate(_) => LimitKind::EventRate,
            Self::IdleCpu(_) => LimitKind::IdleCpu,
        }
    }
}

/// A token bucket: holds at most `per_sec` tokens and refills at that rate,
/// so a burst up to the rate passes and a flood is stopped within a second.
/// `hit` is the limit named when it runs dry.
#[derive(Debug, Clone)]
pub struct RateBudget {
    per_sec: u32,
    tokens: f64,
    last: Instant,
    hit: fn(u32) -> LimitHit,
}

/// The budget of log lines (`log_lines_per_sec`).
pub type LogBudget = RateBudget;

impl RateBudget {
    /// A full budget of `per_sec` log lines.
    pub fn new(per_sec: u32) -> Self {
        Self::log_lines(per_sec)
    }

    /// A full budget of `per_sec` log lines (`log_lines_per_sec`).
    pub fn log_lines(per_sec: u32) -> Self {
        Self::with_hit(per_sec, LimitHit::LogRate)
    }

    /// A full budget of `per_sec` coordinator events (`events_per_sec`).
    pub fn events(per_sec: u32) -> Self {
        Self::with_hit(per_sec, LimitHit::EventRate)
    }

    fn with_hit(per_sec: u32, hit: fn(u32) -> LimitHit) -> Self {
        Self { per_sec, tokens: f64::from(per_sec), last: Instant::now(), hit }
    }

    /// Takes one token from the budget, or says the limit was hit.
    pub fn take(&mut self) -> Result<(), LimitHit> {
        self.take_at(Instant::now())
    }

    /// [`RateBudget::take`] at a given instant (for tests).
    pub fn take_at(&mut self, now: Instant) -> Result<(), LimitHit> {
        let rate = f64::from(self.per_sec);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.last = now.max(self.last);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((self.hit)(self.per_sec))
        }
    }
}

/// Time a teammate spends computing while it holds no task, against
/// `idle_cpu`. The epoch callback calls [`IdleClock::tick`] about once per
/// [`EPOCH_TICK`](super::EPOCH_TICK) while the guest runs; a wait in
/// `mailbox.recv` ends with [`IdleClock::resume`] (the wait is not
/// charged), and a successful claim with [`IdleClock::claimed`] (which
/// starts the sum over). Time in other host calls is charged: the guest
/// asked for it.
#[derive(Debug, Clone)]
pub struct IdleClock {
    limit: Duration,
    used: Duration,
    /// From when the next tick charges.
    mark: Instant,
    /// The last tick saw a held task: the next one without a task starts
    /// charging from itself (the release happened somewhere in between).
    holding: bool,
}

impl IdleClock {
    /// A clock that starts charging at `now` (instantiation runs guest code).
    pub fn new(limit: Duration, now: Instant) -> Self {
        Self { limit, used: Duration::ZERO, mark: now, holding: false }
    }

    /// Charges the guest's run since the last tick unless it holds a task,
    /// and says whether it has now computed past `idle_cpu`.
    pub fn tick(&mut self, now: Instant, holding: bool) -> Result<(), LimitHit> {
        let since = now.saturating_duration_since(self.mark);
        self.mark = now;
        let was_holding = std::mem::replace(&mut self.holding, holding);
        if holding || was_holding {
            return Ok(());
        }
        self.used = self.used.saturating_add(since);
        if self.used > self.limit { Err(LimitHit::IdleCpu(self.limit)) } else { Ok(()) }
    }

    /// The guest runs again at `now` after a wait that is not charged.
    pub fn resume(&mut self, now: Instant) {
        self.mark = now;
    }

    /// A claim succeeded at `now`: the idle sum starts over.
    pub fn claimed(&mut self, now: Instant) {
        self.used = Duration::ZERO;
        self.mark = now;
    }

    /// Idle computing charged so far.
    pub fn used(&self) -> Duration {
        self.used
    }
}

/// Enforces [`Limits`] over a whole instance: the caps are totals across all
/// memories and tables, not per memory like wasmtime's `StoreLimits`; it
/// also keeps the instance's [`LogBudget`].
#[derive(Debug)]
pub struct InstanceLimiter {
    memory_cap: usize,
    memory_mib: u64,
    table_cap: u64,
    instances: usize,
    memory_used: usize,
    table_used: u64,
    log: RateBudget,
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
            log: RateBudget::log_lines(limits.log_lines_per_sec),
        }
    }

    /// Bytes of linear memory currently in use across the instance.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }

    /// Takes one log line from the instance's budget: `Err` (a trap for the
    /// guest) once it logs faster than `log_lines_per_sec`.
    pub fn log_line(&mut self) -> Result<(), LimitHit> {
        self.log.take()
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
    fn log_budget_allows_a_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut b = RateBudget { per_sec: 10, tokens: 10.0, last: start, hit: LimitHit::LogRate };
        for _ in 0..10 {
            b.take_at(start).unwrap();
        }
        let hit = b.take_at(start).unwrap_err();
        assert_eq!(hit, LimitHit::LogRate(10));
        assert!(hit.to_string().contains("log_lines_per_sec = 10"), "{hit}");
        // 100 ms refills one line, and no more than one.
        let later = start + Duration::from_millis(100);
        b.take_at(later).unwrap();
        assert!(b.take_at(later).is_err());
        // A long pause refills the burst, not more.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..10 {
            b.take_at(much_later).unwrap();
        }
        assert!(b.take_at(much_later).is_err());
    }

    #[test]
    fn every_limit_hit_names_its_limit_and_value() {
        let cases = [
            (LimitHit::Memory { limit_mib: 3, requested: 9 }, "memory_mib = 3"),
            (LimitHit::Table { limit: 7, requested: 9 }, "table_elements = 7"),
            (LimitHit::Deadline { task: "t".into(), deadline: Duration::from_millis(250) }, "task_deadline = 250ms"),
            (LimitHit::Stack(64), "wasm_stack_kib = 64"),
            (LimitHit::Fuel(1000), "fuel = 1000"),
            (LimitHit::LogRate(5), "log_lines_per_sec = 5"),
            (LimitHit::EventRate(7), "events_per_sec = 7"),
            (LimitHit::IdleCpu(Duration::from_millis(1500)), "idle_cpu = 1s 500ms"),
        ];
        for (hit, want) in cases {
            assert!(hit.to_string().contains(want), "{hit} does not name {want}");
        }
    }

    #[test]
    fn new_limits_have_safe_defaults_and_parse() {
        let d = Limits::default();
        assert_eq!((d.compile_timeout, d.log_lines_per_sec, d.fuel), (Duration::from_secs(60), 1000, None));
        assert_eq!((d.events_per_sec, d.idle_cpu), (1000, Duration::from_secs(5)));
        let l: Limits = toml::from_str("fuel = 5000\ncompile_timeout = \"2s\"\nlog_lines_per_sec = 10").unwrap();
        assert_eq!((l.fuel, l.compile_timeout, l.log_lines_per_sec), (Some(5000), Duration::from_secs(2), 10));
        let l: Limits = toml::from_str("events_per_sec = 20\nidle_cpu = \"1500ms\"").unwrap();
        assert_eq!((l.events_per_sec, l.idle_cpu), (20, Duration::from_millis(1500)));
        // Unset fuel survives the table round trip the team file's merge does.
        let table = toml::Table::try_from(&d).unwrap();
        assert!(!table.contains_key("fuel"));
        assert_eq!(Limits::deserialize(table).unwrap(), d);
    }

    #[test]
    fn the_idle_clock_charges_computing_without_a_task_only() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut c = IdleClock::new(Duration::from_millis(100), t0);
        // 60 ms of computing without a task is charged, tick by tick.
        for n in (10..=60).step_by(10) {
            c.tick(ms(n), false).unwrap();
        }
        assert_eq!(c.used(), Duration::from_millis(60));
        // A wait in recv (60 ms -> 500 ms) is not charged.
        c.resume(ms(500));
        c.tick(ms(510), false).unwrap();
        assert_eq!(c.used(), Duration::from_millis(70));
        // Computing while holding a task is not charged, nor the stretch in
        // which the task was released.
        c.tick(ms(600), true).unwrap();
        c.tick(ms(5000), true).unwrap();
        c.tick(ms(5010), false).unwrap();
        assert_eq!(c.used(), Duration::from_millis(70));
        // Past the limit, the tick names it.
        c.tick(ms(5040), false).unwrap();
        let hit = c.tick(ms(5050), false).unwrap_err();
        assert_eq!(hit, LimitHit::IdleCpu(Duration::from_millis(100)));
        assert_eq!(hit.kind(), LimitKind::IdleCpu);
        assert!(hit.to_string().contains("idle_cpu = 100ms"), "{hit}");
        // A claim starts the sum over.
        c.claimed(ms(6000));
        c.tick(ms(6050), false).unwrap();
        assert_eq!(c.used(), Duration::from_millis(50));
    }

    #[test]
    fn the_event_budget_names_events_per_sec() {
        let start = Instant::now();
        let mut b = RateBudget::events(3);
        b.last = start;
        for _ in 0..3 {
            b.take_at(start).unwrap();
        }
        let hit = b.take_at(start).unwrap_err();
        assert_eq!((hit.clone(), hit.kind()), (LimitHit::EventRate(3), LimitKind::EventRate));
        assert!(hit.to_string().contains("events_per_sec = 3"), "{hit}");
        b.take_at(start + Duration::from_millis(400)).unwrap();
    }

    #[test]
    fn the_frame_size_covers_a_fully_escaped_report_and_message() {
        let d = Limits::default();
        // 4 MiB of report and 64 KiB of id or reason, each byte 6 in JSON.
        assert_eq!(d.frame_bytes(), (4096 + 64) * 1024 * 6 + FRAME_HEADROOM);
        let escaped = serde_json::to_vec(&"\u{1}".repeat(d.report_bytes())).unwrap();
        assert!(escaped.len() > 16 << 20, "the old fixed 16 MiB cap was too small");
        assert!(escaped.len() < d.frame_bytes());
        let huge = Limits { report_kib: u32::MAX, message_kib: u32::MAX, ..d };
        assert!(huge.frame_bytes() > 0, "no overflow");
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
