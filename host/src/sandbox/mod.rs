//! The wasmtime sandbox: engine configuration, plugin loading (compile once,
//! pre-instantiate once), and the per-teammate store with its limits.
//!
//! One [`Sandbox`] per run holds one shared `Engine` per distinct wasm-stack
//! size (the stack limit is an engine setting), each with an epoch ticker.
//! Every teammate gets its own `Store`: its own linear memory, its own
//! limiter, an empty WASI context (no env, no args, no preopened
//! directories, no network), and the swarm imports of [`host`].

pub mod epoch;
pub mod events;
pub mod host;
pub mod limits;
pub mod llm;
pub mod ownership;
pub mod planner;
mod precompiled;
pub use precompiled::loaded_digest;
pub mod workspace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use limits::{IdleClock, InstanceLimiter, LimitHit, Limits, LogBudget, RateBudget};
pub use workspace::{ReadScope, Workspace};

/// Generated bindings for the `teammate` world of `wit/`.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "teammate",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use bindings::{Teammate, TeammatePre};

use crate::model::LimitKind;

/// The `tracing` target of guests' own log lines. The team log files keep
/// them in the teammate's file only, so a guest that logs at its full
/// `log_lines_per_sec` for hours cannot fill the coordinator's log and push
/// out the coordinator's own later lines.
pub const GUEST_LOG_TARGET: &str = "swarm_host::guest";

/// Handles one `log` line from a guest: sanitises it, remembers a panic
/// report (the SDKs' panic hooks log one just before the guest traps) in
/// `$last_panic`, and emits it through `tracing` (target
/// [`GUEST_LOG_TARGET`]) with `$field = $who`.
macro_rules! guest_log {
    ($field:ident = $who:expr, $Level:ident, $level:expr, $message:expr, $last_panic:expr) => {{
        // `$Level` names the generated enum: each world's bindings have their own.
        let (level, message): ($Level, &str) = ($level, $message);
        let line = $crate::sanitize::line(message);
        if level == $Level::Error && message.contains("panicked") {
            *$last_panic = Some(message.chars().take(1000).collect());
        }
        let who = $who;
        match level {
            $Level::Trace => tracing::trace!(target: $crate::sandbox::GUEST_LOG_TARGET, $field = %who, "{line}"),
            $Level::Debug => tracing::debug!(target: $crate::sandbox::GUEST_LOG_TARGET, $field = %who, "{line}"),
            $Level::Info => tracing::info!(target: $crate::sandbox::GUEST_LOG_TARGET, $field = %who, "{line}"),
            $Level::Warn => tracing::warn!(target: $crate::sandbox::GUEST_LOG_TARGET, $field = %who, "{line}"),
            $Level::Error => tracing::error!(target: $crate::sandbox::GUEST_LOG_TARGET, $field = %who, "{line}"),
        }
    }};
}
pub(crate) use guest_log;

/// How often the epoch advances. A computing guest yields to the executor
/// (and has its deadline checked) once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of guest stderr kept per teammate (panic messages end up there).
const STDERR_BYTES: usize = 16 * 1024;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The plugin path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is over `plugin_mib`.
    #[error("plugin {path} is {size} bytes, over the plugin_mib limit of {limit_mib} MiB")]
    TooLarge {
        /// The plugin path.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit_mib: u64,
    },
    /// Not a WebAssembly component (a core module, truncated, or not wasm).
    #[error("plugin {path} is not a WebAssembly component: {why}")]
    NotAComponent {
        /// The plugin path.
        path: PathBuf,
        /// What was found.
        why: String,
    },
    /// Compilation took longer than `compile_timeout`.
    #[error("plugin {path} took longer than compile_timeout = {} to compile", humantime::format_duration(*.limit))]
    CompileTimeout {
        /// The plugin path.
        path: PathBuf,
        /// The limit.
        limit: Duration,
    },
    /// Compilation failed.
    #[error("plugin {path} failed to compile: {message}")]
    Compile {
        /// The plugin path.
        path: PathBuf,
        /// wasmtime's error chain.
        message: String,
    },
    /// The component imports something the host does not provide, or does
    /// not export the `teammate` world.
    #[error("plugin {path} does not fit the swarm:teammate@0.1.3 world: {message}")]
    Incompatible {
        /// The plugin path.
        path: PathBuf,
        /// wasmtime's error chain.
        message: String,
    },
}

/// A compiled, pre-instantiated plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    pre: TeammatePre<TeammateState>,
    models: Option<crate::llm::SharedModelPort>,
    engine: Engine,
    gate: Arc<epoch::EpochGate>,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Time spent compiling and linking it.
    pub load_time: Duration,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("path", &self.path).field("load_time", &self.load_time).finish()
    }
}

struct EngineEntry {
    engine: Engine,
    gate: Arc<epoch::EpochGate>,
    linker: Arc<Linker<TeammateState>>,
}

/// What makes two engines differ: the wasm stack size and whether fuel is
/// counted (both are engine settings).
type EngineKey = (usize, bool);

/// Engines, linkers and compiled plugins for one run.
#[derive(Default)]
pub struct Sandbox {
    engines: Mutex<HashMap<EngineKey, Arc<EngineEntry>>>,
    plugins: Mutex<HashMap<(PathBuf, EngineKey), Plugin>>,
    cache_dir: Option<PathBuf>,
    /// Teammate slots of wasmtime's pooling allocator; `None` allocates on
    /// demand.
    pooling: Option<u32>,
    /// Where the `llm` import of every teammate of this sandbox goes;
    /// `None` answers every model call `model-not-allowed`.
    models: Option<crate::llm::SharedModelPort>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

/// An engine with swarm-host's settings; `cache_dir` enables wasmtime's
/// compiled-code cache there (keyed by the wasm bytes and the engine
/// settings, so a changed plugin or setting is recompiled). Planners use
/// it; teammates' code is cached by [`precompiled`] instead.
pub(crate) fn new_engine(stack: usize, cache_dir: Option<&Path>) -> wasmtime::Result<Engine> {
    new_engine_with(stack, cache_dir, false, None, None)
}

/// [`new_engine`], counting fuel if `fuel` (for teammates with a `fuel`
/// limit; counting costs every guest of the engine some speed), and
/// optionally on wasmtime's pooling allocator sized for `pooling`
/// concurrent teammates (see [`Sandbox::with_pooling`]).
fn new_engine_with(
    stack: usize,
    cache_dir: Option<&Path>,
    fuel: bool,
    pooling: Option<u32>,
    gate: Option<Arc<epoch::EpochGate>>,
) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.consume_fuel(fuel);
    if let Some(slots) = pooling {
        config.allocation_strategy(pooling_config(slots));
        // Every slot of the memory pool is one reservation; at the default
        // 4 GiB, 10,000 teammates would need 80 TiB of contiguous address
        // space, more than a 47-bit address space has free.
        config.memory_reservation(POOLED_MEMORY_BYTES as u64);
    }
    if let Some(dir) = cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(std::path::absolute(dir).map_err(wasmtime::Error::new)?);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(stack);
    // The host stack a guest runs on must hold the wasm stack plus host frames.
    config.async_stack_size(stack + (1 << 20));
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    // Ends once the engine is dropped. Without a gate (planners, which run
    // briefly) it always ticks.
    let tick = move || weak.upgrade().map(|engine| engine.increment_epoch()).is_some();
    let gate = gate.unwrap_or_else(epoch::EpochGate::always_busy);
    epoch::spawn_ticker(gate, EPOCH_TICK, epoch::IDLE_CHECK, tick).map_err(wasmtime::Error::new)?;
    Ok(engine)
}

/// Largest linear memory of a teammate on the pooling allocator, and the
/// address space each memory slot reserves (not RAM).
const POOLED_MEMORY_BYTES: usize = 1 << 30;

/// In-process teams of at least this many teammates run on the pooling
/// allocator (see [`pooling_slots`]).
///
/// The on-demand allocator maps about 7 regions per teammate, so near
/// 9,300 teammates a process reaches the kernel's default
/// `vm.max_map_count` (65,530) and the next instantiation fails; the pool
/// maps memories, tables and stacks once each (about 6 mappings per
/// teammate, 10,000 fit). Below this count the on-demand allocator is kept:
/// it uses less than half of the default map budget, and it has none of the
/// pool's fixed shapes (a 1 GiB memory cap, a few memories and tables per
/// component), which a plugin might not fit.
pub const POOLING_FROM_TEAMMATES: usize = 4_096;

/// Pool slots beyond the team's size.
const POOL_SPARE_SLOTS: u32 = 16;

/// The rule `swarm-host run` applies to an in-process team whose teammates
/// have `teammates` limits (one entry per teammate): the pooling allocator
/// with one slot per teammate (and [`POOL_SPARE_SLOTS`] spare) once the
/// team has [`POOLING_FROM_TEAMMATES`] teammates, unless a teammate may grow
/// its memory beyond what a pooled memory holds (1 GiB); `None` (allocate
/// on demand) otherwise.
pub fn pooling_slots<'a>(teammates: impl IntoIterator<Item = &'a Limits>) -> Option<u32> {
    let mut n = 0usize;
    for limits in teammates {
        if limits.memory_bytes() > POOLED_MEMORY_BYTES {
            return None;
        }
        n += 1;
    }
    if n < POOLING_FROM_TEAMMATES {
        return None;
    }
    u32::try_from(n).ok()?.checked_add(POOL_SPARE_SLOTS)
}

/// Pool sizes for `slots` teammates. A Rust teammate component holds a few
/// core instances (the program plus adapter shims), one memory and a few
/// tables; the pool leaves room for twice that. Each memory slot reserves
/// [`POOLED_MEMORY_BYTES`] of address space, not of RAM. The pool maps its
/// memories, tables and stacks once each, so a teammate adds few memory
/// mappings (the on-demand allocator maps several per teammate and hits
/// `vm.max_map_count` near 10,000 teammates).
fn pooling_config(slots: u32) -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.max_memory_size(POOLED_MEMORY_BYTES)
        .total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(8))
        .total_stacks(slots);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

fn new_linker(engine: &Engine) -> wasmtime::Result<Linker<TeammateState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Teammate::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl Sandbox {
    /// An empty sandbox without a compiled-code cache; engines are made on
    /// first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sandbox that keeps compiled plugins in `dir/components`
    /// ([`precompiled`]), so a second run maps an unchanged plugin's code
    /// instead of compiling it again.
    pub fn with_cache(dir: PathBuf) -> Self {
        Self { cache_dir: Some(dir), ..Self::default() }
    }

    /// Uses wasmtime's pooling allocator with room for `slots` teammates at
    /// once: instantiation reuses pre-reserved memories, tables and stacks
    /// instead of mapping new ones (one more teammate than `slots` fails to
    /// instantiate, naming the pool limit). A pooled teammate's linear
    /// memory is capped at 1 GiB whatever its `memory_mib`.
    pub fn with_pooling(mut self, slots: u32) -> Self {
        self.pooling = Some(slots);
        self
    }

    /// The allocator `swarm-host run` uses for an in-process team whose
    /// teammates have `teammates` limits (one entry per teammate): pooling
    /// sized to the team when [`pooling_slots`] says so, else on demand.
    pub fn for_in_process_team<'a>(self, teammates: impl IntoIterator<Item = &'a Limits>) -> Self {
        match pooling_slots(teammates) {
            Some(slots) => self.with_pooling(slots),
            None => self,
        }
    }

    /// Sends the model calls of every teammate loaded from now on to
    /// `models` (the coordinator's model service, or a port to it).
    pub fn with_models(mut self, models: crate::llm::SharedModelPort) -> Self {
        self.models = Some(models);
        self
    }

    /// Where model calls of this sandbox's teammates go, if anywhere.
    pub fn models(&self) -> Option<&crate::llm::SharedModelPort> {
        self.models.as_ref()
    }

    /// Teammate slots of the pooling allocator, or `None` on demand.
    pub fn pooling(&self) -> Option<u32> {
        self.pooling
    }

    /// The compiled-plugin cache directory, if any (kept out of every
    /// teammate's reach).
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// The default cache directory: `$XDG_CACHE_HOME/swarm-host`, else
    /// `$HOME/.cache/swarm-host`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache"));
        xdg.or(home).map(|d| d.join("swarm-host"))
    }

    fn engine(&self, key: EngineKey) -> wasmtime::Result<Arc<EngineEntry>> {
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = engines.get(&key) {
            return Ok(e.clone());
        }
        let (stack, fuel) = key;
        let gate = epoch::EpochGate::new();
        // Teammates' compiled code is cached by `precompiled`, not by wasmtime.
        let engine = new_engine_with(stack, None, fuel, self.pooling, Some(gate.clone()))?;
        let linker = Arc::new(new_linker(&engine)?);
        let entry = Arc::new(EngineEntry { engine, gate, linker });
        engines.insert(key, entry.clone());
        Ok(entry)
    }

    /// Loads, checks, compiles and pre-instantiates a plugin, once per path
    /// and engine (stack size, fuel or not).
    pub fn load(&self, path: &Path, limits: &Limits) -> Result<Plugin, LoadError> {
        let engine_key = (limits.wasm_stack_bytes(), limits.fuel.is_some());
        let key = (path.to_path_buf(), engine_key);
        if let Some(p) = self.plugins.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let started = Instant::now();
        let entry = self
            .engine(engine_key)
            .map_err(|e| LoadError::Compile { path: path.to_path_buf(), message: format!("{e:#}") })?;
        let (component, how) = match self.cache_dir.as_deref().and_then(precompiled::Precompiled::open) {
            Some(cache) => cache.load(&entry.engine, path, limits)?,
            None => (
                compile_component(&entry.engine, read_component(path, limits)?, path, limits.compile_timeout)?,
                precompiled::Loaded::Compiled,
            ),
        };
        let incompatible =
            |e: wasmtime::Error| LoadError::Incompatible { path: path.to_path_buf(), message: format!("{e:#}") };
        let pre = entry.linker.instantiate_pre(&component).map_err(incompatible)?;
        let pre = TeammatePre::new(pre).map_err(incompatible)?;
        let plugin = Plugin {
            pre,
            models: self.models.clone(),
            engine: entry.engine.clone(),
            gate: entry.gate.clone(),
            path: path.to_path_buf(),
            load_time: started.elapsed(),
        };
        tracing::debug!(plugin = %path.display(), "loaded in {:.1?} ({how:?})", plugin.load_time);
        self.plugins.lock().unwrap_or_else(|e| e.into_inner()).insert(key, plugin.clone());
        Ok(plugin)
    }
}

/// Reads a plugin file after checking it against `plugin_mib`, and checks
/// that it is a component.
pub(crate) fn read_component(path: &Path, limits: &Limits) -> Result<Vec<u8>, LoadError> {
    checked_metadata(path, limits)?;
    read_checked(path)
}

/// A plugin file's metadata, after checking its size against `plugin_mib`.
pub(crate) fn checked_metadata(path: &Path, limits: &Limits) -> Result<std::fs::Metadata, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let size = meta.len();
    if size > limits.plugin_bytes() {
        return Err(LoadError::TooLarge { path: path.to_path_buf(), size, limit_mib: limits.plugin_mib });
    }
    Ok(meta)
}

/// Reads a plugin file whose size was checked, and checks that it is a
/// component.
pub(crate) fn read_checked(path: &Path) -> Result<Vec<u8>, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    check_component_header(&bytes).map_err(|why| LoadError::NotAComponent { path: path.to_path_buf(), why })?;
    Ok(bytes)
}

/// Compiles `bytes` on a thread of its own and waits at most `timeout` for
/// it. Cranelift cannot be interrupted, so at the timeout the load fails and
/// the thread finishes in the background (the plugin size cap bounds it).
pub(crate) fn compile_component(
    engine: &Engine,
    bytes: Vec<u8>,
    path: &Path,
    timeout: Duration,
) -> Result<Component, LoadError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("swarm-compile".into())
        .spawn(move || {
            // The receiver is gone if the load already timed out.
            let _ = tx.send(Component::new(&engine, &bytes));
        })
        .map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("cannot start compiling: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(compiled) => {
            compiled.map_err(|e| LoadError::Compile { path: path.to_path_buf(), message: format!("{e:#}") })
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            Err(LoadError::CompileTimeout { path: path.to_path_buf(), limit: timeout })
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(LoadError::Compile { path: path.to_path_buf(), message: "the compiler thread panicked".into() })
        }
    }
}

/// The WASI context every guest gets: deny by default. No environment, no
/// arguments, no preopened directories, no sockets or name lookups; stderr
/// goes to a bounded in-memory pipe (panic messages end up there).
pub(crate) fn sandboxed_wasi(stderr: &MemoryOutputPipe) -> WasiCtx {
    let mut wasi = WasiCtx::builder();
    wasi.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    wasi.build()
}

/// Checks the 8-byte header: wasm magic and the component layer.
fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    // Bytes 4-5 are the encoding version, 6-7 the layer: 0 = core module, 1 = component.
    match bytes {
        [0x00, b'a', b's', b'm', _, _, 0x00, 0x00, ..] => {
            Err("it is a core wasm module; build it for wasm32-wasip2 (a component)".into())
        }
        [0x00, b'a', b's', b'm', _, _, 0x01, 0x00, ..] => Ok(()),
        [0x00, b'a', b's', b'm', _, _, _, _, ..] => Err("unknown wasm encoding layer".into()),
        b if b.len() < 8 => Err(format!("only {} bytes long (truncated?)", b.len())),
        _ => Err("no \\0asm magic at the start".into()),
    }
}

/// A task the teammate holds, as its store sees it.
#[derive(Debug, Clone)]
pub struct Held {
    /// Task id.
    pub id: String,
    /// Files it may write.
    pub owned: std::collections::BTreeSet<String>,
    /// When the attempt must end.
    pub deadline: Instant,
    /// The deadline's length, for messages.
    pub deadline_len: Duration,
    /// What the tasks it was blocked by produced (`dependency-results`).
    pub dependencies: Vec<crate::tasks::DependencyResult>,
}

/// Everything one teammate's store holds.
pub struct TeammateState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: InstanceLimiter,
    stderr: MemoryOutputPipe,
    /// Teammate id.
    pub id: String,
    /// Its group (team file teammate name).
    pub group: String,
    /// How its imports reach the team (in this process or over the socket).
    pub link: crate::port::SharedPort,
    /// Where its model calls go (`None`: it may use no model).
    pub models: Option<crate::llm::SharedModelPort>,
    /// Its file access.
    pub workspace: Arc<Workspace>,
    /// Its limits.
    pub limits: Limits,
    /// The task it holds.
    pub held: Option<Held>,
    /// The last error-level log line that reports a panic (the SDK's panic
    /// hook logs one just before the guest traps).
    pub last_panic: Option<String>,
    /// Messages this teammate has sent to the team lead. The lead keeps
    /// every one for the report, so they count against `inbox_len` for the
    /// whole run: a flood gets `inbox-full`, never unbounded memory.
    pub lead_sent: u32,
    /// Counts this store on its engine's epoch ticker except while it waits
    /// in `recv`, so a team of idle teammates lets the ticker sleep.
    pub(crate) epoch: epoch::EpochUse,
    /// When the roster last heard that it called into the host.
    pub(crate) last_alive: Option<Instant>,
    /// Computing without a held task, against `idle_cpu`.
    pub(crate) idle: limits::IdleClock,
    /// Which repeatable guest calls become coordinator events, against
    /// `events_per_sec`.
    pub(crate) events: events::EventGate,
    /// A limit a host call hit that does not trap by itself (a refused file
    /// operation over `events_per_sec`): the epoch callback traps with it
    /// within one tick of guest code.
    pub(crate) pending_hit: Option<LimitHit>,
}

impl WasiView for TeammateState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What a teammate is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Teammate id.
    pub id: String,
    /// Group name.
    pub group: String,
    /// Team view colour.
    pub color: String,
    /// Limits.
    pub limits: Limits,
}

/// A teammate ready to run: an instantiated component in its own store.
pub struct Instance {
    store: Store<TeammateState>,
    bindings: Teammate,
    identity: bindings::swarm::teammate::types::Identity,
}

impl Plugin {
    /// Creates a store for one teammate of the in-process `team` and
    /// instantiates the plugin in it.
    pub async fn instantiate(
        &self,
        launch: &Launch,
        team: Arc<crate::team::Team>,
        workspace: Arc<Workspace>,
    ) -> wasmtime::Result<Instance> {
        let name = team.name.clone();
        self.instantiate_linked(launch, team, &name, workspace).await
    }

    /// Creates a store for one teammate of team `team_name`, reached through
    /// `link`, and instantiates the plugin in it.
    pub async fn instantiate_linked(
        &self,
        launch: &Launch,
        link: crate::port::SharedPort,
        team_name: &str,
        workspace: Arc<Workspace>,
    ) -> wasmtime::Result<Instance> {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let state = TeammateState {
            wasi: sandboxed_wasi(&stderr),
            table: ResourceTable::new(),
            limiter: InstanceLimiter::new(&launch.limits),
            stderr,
            id: launch.id.clone(),
            group: launch.group.clone(),
            link,
            models: self.models.clone(),
            workspace,
            limits: launch.limits.clone(),
            held: None,
            last_panic: None,
            lead_sent: 0,
            epoch: epoch::EpochUse::new(self.gate.clone()),
            last_alive: None,
            idle: limits::IdleClock::new(launch.limits.idle_cpu, Instant::now()),
            events: events::EventGate::new(launch.limits.events_per_sec),
            pending_hit: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = launch.limits.fuel {
            store.set_fuel(fuel)?;
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            let now = Instant::now();
            if let Some(hit) = state.pending_hit.take() {
                return Err(wasmtime::Error::new(hit));
            }
            if let Some(h) = &state.held
                && now >= h.deadline
            {
                return Err(wasmtime::Error::new(LimitHit::Deadline { task: h.id.clone(), deadline: h.deadline_len }));
            }
            // Every guest execution is bounded: with a task by its deadline,
            // without one by idle_cpu.
            let holding = state.held.is_some();
            state.idle.tick(now, holding).map_err(wasmtime::Error::new)?;
            Ok(UpdateDeadline::Yield(1))
        });
        let bindings =
            self.pre.instantiate_async(&mut store).await.map_err(|e| name_count_limit(e, launch.limits.instances))?;
        let identity = bindings::swarm::teammate::types::Identity {
            id: launch.id.clone(),
            team: team_name.to_string(),
            color: launch.color.clone(),
        };
        Ok(Instance { store, bindings, identity })
    }
}

impl Instance {
    /// Runs the teammate to its end and says how it ended.
    pub async fn run(mut self) -> crate::team::ExitReason {
        use crate::team::ExitReason;
        let result = self.bindings.call_run(&mut self.store, &self.identity).await;
        match result {
            Ok(Ok(())) => ExitReason::Finished,
            Ok(Err(msg)) => ExitReason::Failed(msg),
            Err(e) => {
                let (message, limit) = describe_trap(&e, self.store.data());
                ExitReason::Trapped { message, limit }
            }
        }
    }
}

/// wasmtime refuses a component that creates more core instances, tables or
/// memories than the limiter allows with a plain error ("resource limit
/// exceeded: instance count too high at 65"); this names the team-file limit.
fn name_count_limit(e: wasmtime::Error, limit: u32) -> wasmtime::Error {
    let text = format!("{e:#}");
    if text.contains("count too high") { wasmtime::Error::new(LimitHit::Instances { limit, what: text }) } else { e }
}

/// The sandbox limit a wasmtime error carries, if the host raised one (a
/// [`LimitHit`] inside the error, e.g. from the limiter or the epoch
/// callback). Never derived from the error's text.
pub fn limit_kind_of(e: &wasmtime::Error) -> Option<LimitKind> {
    e.downcast_ref::<LimitHit>().map(LimitHit::kind)
}

/// Turns a trap into one line that names the limit hit, or the guest's own
/// panic message when there is one, and the kind of the limit when a limit
/// stopped the guest ([`LimitHit::kind`] is the one mapping).
fn describe_trap(e: &wasmtime::Error, state: &TeammateState) -> (String, Option<LimitKind>) {
    let hit = e.downcast_ref::<LimitHit>().cloned().or_else(|| match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => Some(LimitHit::Stack(state.limits.wasm_stack_kib)),
        Some(wasmtime::Trap::OutOfFuel) => Some(LimitHit::Fuel(state.limits.fuel.unwrap_or(0))),
        _ => None,
    });
    if let Some(hit) = hit {
        return (hit.to_string(), Some(hit.kind()));
    }
    let out = state.stderr.contents();
    let stderr = String::from_utf8_lossy(&out);
    let panic = state
        .last_panic
        .clone()
        .or_else(|| stderr.lines().find(|l| l.contains("panicked")).map(str::to_string))
        .map(|p| crate::sanitize::line(&p));
    let message = match (e.downcast_ref::<wasmtime::Trap>(), panic) {
        (_, Some(p)) => p,
        (Some(trap), None) => trap.to_string(),
        (None, None) => crate::sanitize::line(&format!("{e:#}")),
    };
    (message, None)
}

#[cfg(test)]
mod pooling_tests {
    use super::*;

    fn team(n: usize, memory_mib: u64) -> Vec<Limits> {
        vec![Limits { memory_mib, ..Limits::default() }; n]
    }

    #[test]
    fn small_teams_allocate_on_demand() {
        assert_eq!(pooling_slots(&team(0, 128)), None);
        assert_eq!(pooling_slots(&team(POOLING_FROM_TEAMMATES - 1, 128)), None);
    }

    #[test]
    fn large_teams_pool_one_slot_per_teammate_and_a_few_spare() {
        let n = POOLING_FROM_TEAMMATES;
        assert_eq!(pooling_slots(&team(n, 128)), Some(n as u32 + POOL_SPARE_SLOTS));
        assert_eq!(pooling_slots(&team(10_000, 1024)), Some(10_000 + POOL_SPARE_SLOTS));
        let sandbox = Sandbox::new().for_in_process_team(&team(10_000, 128));
        assert_eq!(sandbox.pooling(), Some(10_000 + POOL_SPARE_SLOTS));
        assert_eq!(Sandbox::new().for_in_process_team(&team(10, 128)).pooling(), None);
    }

    #[test]
    fn a_teammate_whose_memory_a_pool_slot_cannot_hold_keeps_the_team_on_demand() {
        let mut limits = team(10_000, 128);
        limits[42].memory_mib = 1025;
        assert_eq!(pooling_slots(&limits), None);
    }
}
