//! Runs a planner component: the `planner` world of `wit/planner.wit`,
//! which plans a team's tasks before any teammate is spawned ("plan before
//! spawn") and merges their results afterwards.
//!
//! A planner is as untrusted as a teammate and runs under the same rules:
//! an engine configured like the teammates' (epoch interruption, the wasm stack
//! limit), an empty WASI context (no env, no args, no preopened directories,
//! no network), the [`InstanceLimiter`] over its memories and tables, and a
//! wall-clock deadline of `task_deadline` per call, enforced by the epoch
//! deadline callback. It imports `log` (every line is sanitised and
//! emitted through `tracing`) and, since `swarm:teammate@0.1.2`, `llm`: its
//! model calls are made as [`PLANNER_ID`] through the port given with
//! [`Planner::with_models`] (none: every call is `model-not-allowed`), cut
//! at the call's deadline. Each call ([`Planner::plan`],
//! [`Planner::synthesize`]) runs in a fresh store and instance, so nothing
//! survives from one call to the next.
//!
//! [`plan`] and [`synthesize`] load, compile and run in one go; load a
//! [`Planner`] once to compile once for both calls.
//!
//! What the planner returns is bounded here (at most `groups` tasks, at
//! most `report_kib` of text) and otherwise passed on as written: the caller
//! validates the plan (ownership, ids, owners, the plan limits) and
//! sanitises task subjects when it prints them. The synthesis is text for
//! people, so its control characters are escaped here, line by line.
//!
//! The same loader takes a *lead* (the `lead` world, see [`lead`]): a
//! component that plans from the team's goal with a model
//! ([`Planner::plan_goal`]) and writes the closing text from every task's
//! outcome ([`Planner::synthesize_run`]). Which world a component is of is
//! decided from its exports when it is loaded.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{InstanceLimiter, LimitHit, Limits, LoadError};
pub mod lead;
pub mod steer;
pub use lead::{FileInfo, GoalInput, TaskOutcome, TeammateInfo, TreeAccess};
pub use steer::{LeadAction, SteerInput, TaskView};

/// Generated bindings for the `planner` world of `wit/`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        // The `llm` types are the teammate world's, so one conversion serves both.
        with: { "swarm:teammate/llm": crate::sandbox::bindings::swarm::teammate::llm },
    });
}

use super::bindings::swarm::teammate::llm as wit_llm;
use bindings::swarm::teammate::{log, planning};

/// The id a planner's model calls are made under: the team file's
/// `[planner] models = [...]` and `budget` apply to it.
pub const PLANNER_ID: &str = "planner";

/// Bytes of guest stderr kept per call (panic messages may end up there).
const STDERR_BYTES: usize = 16 * 1024;

/// What to plan: the input of [`Planner::plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// The team's name.
    pub team: String,
    /// Every file under the team's root: relative, `/`-separated, sorted.
    pub files: Vec<String>,
    /// How many tasks are wanted (at most).
    pub groups: u32,
    /// The subject template (the default planner fills `{n}`, `{first}`, `{last}`).
    pub subject: String,
    /// The teammate group names tasks may be assigned to.
    pub teammates: Vec<String>,
}

/// One task of a plan, as the planner wrote it (not validated yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTask {
    /// Task id, e.g. `p1`.
    pub id: String,
    /// One line saying what to do.
    pub subject: String,
    /// Longer instructions; may be empty.
    pub description: String,
    /// Exact relative paths the task owns (not globs).
    pub owns: Vec<String>,
    /// A teammate group or instance, or `None` for anyone.
    pub owner: Option<String>,
    /// Ids of tasks that must complete first.
    pub blocked_by: Vec<String>,
}

/// The outcome of one task, the input of [`Planner::synthesize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    /// Task id.
    pub id: String,
    /// True if it completed, false if it failed for good.
    pub completed: bool,
    /// The report's summary, or why it failed.
    pub summary: String,
    /// How many findings its report had.
    pub findings: u32,
}

/// Why a planner call failed. Its `Display` is one line for people; text
/// that came from the planner is sanitised.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    /// The planner could not be loaded: unreadable, over `plugin_mib`, not a
    /// component, not compilable, or not of the `planner` world.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The planner trapped: it hit a limit, panicked, or executed a trap.
    #[error("planner {path} stopped in {call}: {reason}")]
    Trap {
        /// The planner path.
        path: PathBuf,
        /// What was running: `instantiate`, `plan` or `synthesize`.
        call: &'static str,
        /// The limit hit, the panic message, or the trap.
        reason: String,
        /// The limit hit, if a limit stopped it.
        limit: Option<LimitHit>,
    },
    /// The planner returned `err` from `plan`.
    #[error("planner {path} refused to plan: {reason}")]
    Refused {
        /// The planner path.
        path: PathBuf,
        /// Its reason, sanitised.
        reason: String,
    },
    /// The planner returned more tasks than the `groups` it was asked for.
    #[error("planner {path} returned {returned} tasks, more than the {groups} it was asked for (groups = {groups})")]
    TooManyTasks {
        /// The planner path.
        path: PathBuf,
        /// How many tasks it was asked for at most.
        groups: u32,
        /// How many it returned.
        returned: usize,
    },
    /// The component is of the other world: a `planner` asked to plan from
    /// a goal, or a lead asked for a `planner` call.
    #[error("{path} is {is}, so it cannot {call}: {hint}")]
    WrongWorld {
        /// The component path.
        path: PathBuf,
        /// What was asked.
        call: &'static str,
        /// What it is, e.g. `a planner (world planner)`.
        is: &'static str,
        /// What to change.
        hint: &'static str,
    },
    /// What the planner returned is over the `report_kib` limit.
    #[error("planner {path} returned {size} bytes from {call}, over report_kib = {limit_kib} KiB")]
    TooLarge {
        /// The planner path.
        path: PathBuf,
        /// `plan` or `synthesize`.
        call: &'static str,
        /// Bytes of text returned (all strings of the plan).
        size: usize,
        /// The limit.
        limit_kib: u32,
    },
}

impl PlannerError {
    /// The limit that stopped the planner, if one did.
    pub fn limit(&self) -> Option<&LimitHit> {
        match self {
            PlannerError::Trap { limit, .. } => limit.as_ref(),
            _ => None,
        }
    }
}

/// Plans with the planner at `path`: loads it (compiling it on a blocking
/// thread), then runs `plan` in a fresh sandbox.
pub async fn plan(path: &Path, limits: &Limits, input: PlanInput) -> Result<Vec<PlannedTask>, PlannerError> {
    Planner::load_blocking(path, limits).await?.plan(input).await
}

/// Synthesizes the results of a run with the planner at `path`: loads it
/// (compiling it on a blocking thread), then runs `synthesize` in a fresh
/// sandbox.
pub async fn synthesize(
    path: &Path,
    limits: &Limits,
    team: &str,
    results: Vec<TaskResult>,
) -> Result<String, PlannerError> {
    Planner::load_blocking(path, limits).await?.synthesize(team, results).await
}

/// A compiled, pre-instantiated planner component with its own engine.
pub struct Planner {
    /// Holds the component, and with it its engine (and the engine's epoch
    /// ticker thread, which ends once the engine is dropped).
    pre: Pre,
    path: PathBuf,
    name: String,
    limits: Limits,
    models: Option<crate::llm::SharedModelPort>,
}

/// The world a loaded component is of.
enum Pre {
    /// `planner`: `plan` and `synthesize`.
    Planner(bindings::PlannerPre<PlannerState>),
    /// `lead`: `plan-goal` and `synthesize-run`; with the second, the
    /// component is of world `steering-lead` (since 0.1.3) and exports
    /// `steer` too.
    Lead(lead::bindings::LeadPre<PlannerState>, Option<steer::bindings::SteeringLeadPre<PlannerState>>),
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner").field("path", &self.path).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Planner {
    /// Loads, checks, compiles and pre-instantiates the planner at `path`.
    /// Compiling blocks the thread (use [`plan`] / [`synthesize`], or
    /// `spawn_blocking`, from async code).
    pub fn load(path: &Path, limits: &Limits) -> Result<Self, LoadError> {
        Self::load_with_cache(path, limits, None)
    }

    /// [`Planner::load`], with wasmtime's compiled-code cache in `cache_dir`
    /// (see [`super::Sandbox::with_cache`]).
    pub fn load_with_cache(path: &Path, limits: &Limits, cache_dir: Option<&Path>) -> Result<Self, LoadError> {
        let bytes = super::read_component(path, limits)?;
        let compile = |e: wasmtime::Error| LoadError::Compile { path: path.to_path_buf(), message: format!("{e:#}") };
        let engine = super::new_engine(limits.wasm_stack_bytes(), cache_dir).map_err(compile)?;
        let component = Component::new(&engine, &bytes).map_err(compile)?;
        let incompatible =
            |e: wasmtime::Error| LoadError::Incompatible { path: path.to_path_buf(), message: format!("{e:#}") };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(compile)?;
        bindings::Planner::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(compile)?;
        // A lead imports `tree` too; `log` and `llm` are linked above.
        lead::bindings::swarm::teammate::tree::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(compile)?;
        let pre = linker.instantiate_pre(&component).map_err(incompatible)?;
        let pre = match lead::bindings::LeadPre::new(pre.clone()) {
            // A steering lead is a lead too: both views share the instance pre.
            Ok(lead) => Pre::Lead(lead, steer::bindings::SteeringLeadPre::new(pre).ok()),
            Err(_) => Pre::Planner(bindings::PlannerPre::new(pre).map_err(incompatible)?),
        };
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self { pre, path: path.to_path_buf(), name, limits: limits.clone(), models: None })
    }

    /// Sends this planner's model calls to `models`.
    pub fn with_models(mut self, models: crate::llm::SharedModelPort) -> Self {
        self.models = Some(models);
        self
    }

    /// [`Planner::load`] on a blocking thread.
    async fn load_blocking(path: &Path, limits: &Limits) -> Result<Self, PlannerError> {
        let (owned, limits) = (path.to_path_buf(), limits.clone());
        match tokio::task::spawn_blocking(move || Self::load(&owned, &limits)).await {
            Ok(loaded) => Ok(loaded?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                Err(LoadError::Compile { path: path.to_path_buf(), message: format!("compilation stopped: {e}") }
                    .into())
            }
        }
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for a lead (world `lead`), false for a planner (world `planner`).
    pub fn is_lead(&self) -> bool {
        matches!(self.pre, Pre::Lead(..))
    }

    /// The world of the component: `planner`, `lead` or `steering-lead`.
    pub fn world(&self) -> &'static str {
        match &self.pre {
            Pre::Planner(_) => "planner",
            Pre::Lead(_, None) => "lead",
            Pre::Lead(_, Some(_)) => "steering-lead",
        }
    }

    fn planner_pre(&self, call: &'static str) -> Result<&bindings::PlannerPre<PlannerState>, PlannerError> {
        match &self.pre {
            Pre::Planner(pre) => Ok(pre),
            Pre::Lead(..) => Err(PlannerError::WrongWorld {
                path: self.path.clone(),
                call,
                is: "a lead (world lead)",
                hint: "a lead plans from the team file's `goal`; give the team a goal, or use a planner plugin",
            }),
        }
    }

    /// Runs the planner's `plan` in a fresh sandbox. `Err` if it traps (a
    /// limit, a panic), refuses, returns more tasks than `input.groups`, or
    /// returns more than `report_kib`.
    pub async fn plan(&self, input: PlanInput) -> Result<Vec<PlannedTask>, PlannerError> {
        let call = "plan";
        let groups = input.groups;
        let req = planning::PlanRequest {
            team: input.team,
            files: input.files,
            groups: input.groups,
            subject: input.subject,
            teammates: input.teammates,
        };
        let pre = self.planner_pre(call)?;
        let mut store = self.store(call, None);
        let planner = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let planned = match planner.call_plan(&mut store, &req).await {
            Ok(Ok(tasks)) => tasks,
            Ok(Err(reason)) => {
                return Err(PlannerError::Refused { path: self.path.clone(), reason: crate::sanitize::line(&reason) });
            }
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        if planned.len() > groups as usize {
            return Err(PlannerError::TooManyTasks { path: self.path.clone(), groups, returned: planned.len() });
        }
        self.check_size(call, plan_size(&planned))?;
        Ok(planned.into_iter().map(PlannedTask::from).collect())
    }

    /// Runs the planner's `synthesize` in a fresh sandbox and returns its
    /// text, with control characters escaped line by line.
    pub async fn synthesize(&self, team: &str, results: Vec<TaskResult>) -> Result<String, PlannerError> {
        let call = "synthesize";
        let results: Vec<planning::TaskResult> = results
            .into_iter()
            .map(|r| planning::TaskResult {
                id: r.id,
                status: if r.completed { planning::TaskStatus::Completed } else { planning::TaskStatus::Failed },
                summary: r.summary,
                findings: r.findings,
            })
            .collect();
        let pre = self.planner_pre(call)?;
        let mut store = self.store(call, None);
        let planner = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let text = match planner.call_synthesize(&mut store, team, &results).await {
            Ok(text) => text,
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        self.check_size(call, text.len())?;
        Ok(text.lines().map(crate::sanitize::line).collect::<Vec<_>>().join("\n"))
    }

    /// A fresh store with its limits and deadline (from now, so that it
    /// covers instantiation too), and `tree` for a lead's reads.
    fn store(&self, call: &'static str, tree: Option<TreeAccess>) -> Store<PlannerState> {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let state = PlannerState {
            wasi: super::sandboxed_wasi(&stderr),
            table: ResourceTable::new(),
            limiter: InstanceLimiter::new(&self.limits),
            stderr,
            name: self.name.clone(),
            last_panic: None,
            models: self.models.clone(),
            deadline: None,
            tree,
        };
        let engine = match &self.pre {
            Pre::Planner(pre) => pre.engine(),
            Pre::Lead(pre, _) => pre.engine(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        let (deadline_len, deadline) = (self.limits.task_deadline, Instant::now() + self.limits.task_deadline);
        store.data_mut().deadline = Some((call, deadline, deadline_len));
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Err(wasmtime::Error::new(LimitHit::Deadline {
                    task: call.to_string(),
                    deadline: deadline_len,
                }));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// The instance, or the trap that stopped its instantiation.
    fn instantiated<T>(&self, got: wasmtime::Result<T>, store: &Store<PlannerState>) -> Result<T, PlannerError> {
        got.map_err(|e| self.trap("instantiate", &e, store.data()))
    }

    fn check_size(&self, call: &'static str, size: usize) -> Result<(), PlannerError> {
        if size > self.limits.report_bytes() {
            return Err(PlannerError::TooLarge {
                path: self.path.clone(),
                call,
                size,
                limit_kib: self.limits.report_kib,
            });
        }
        Ok(())
    }

    /// Names the limit hit, else the planner's panic message, else the trap.
    fn trap(&self, call: &'static str, e: &wasmtime::Error, state: &PlannerState) -> PlannerError {
        let limit = e.downcast_ref::<LimitHit>().cloned().or_else(|| match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::StackOverflow) => Some(LimitHit::Stack(self.limits.wasm_stack_kib)),
            _ => None,
        });
        let reason = match &limit {
            Some(hit) => hit.to_string(),
            None => {
                let out = state.stderr.contents();
                let stderr = String::from_utf8_lossy(&out);
                let panic = state
                    .last_panic
                    .clone()
                    .or_else(|| stderr.lines().find(|l| l.contains("panicked")).map(Into::into));
                match (panic, e.downcast_ref::<wasmtime::Trap>()) {
                    (Some(p), _) => crate::sanitize::line(&p),
                    (None, Some(trap)) => format!("wasm trap: {trap}"),
                    (None, None) => crate::sanitize::line(&format!("{e:#}")),
                }
            }
        };
        PlannerError::Trap { path: self.path.clone(), call, reason, limit }
    }
}

/// Everything one planner call's store holds.
struct PlannerState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: InstanceLimiter,
    stderr: MemoryOutputPipe,
    /// The planner's file name, for log lines.
    name: String,
    /// The last error-level log line that reports a panic (the SDK's panic
    /// hook logs one just before the guest traps).
    last_panic: Option<String>,
    /// Where its model calls go.
    models: Option<crate::llm::SharedModelPort>,
    /// The call running (`plan` or `synthesize`), when it must end and the
    /// deadline's length.
    deadline: Option<(&'static str, Instant, std::time::Duration)>,
    /// What a lead's `tree.read` may read (`None`: every read is refused).
    tree: Option<TreeAccess>,
}

impl WasiView for PlannerState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl planning::Host for PlannerState {}

impl From<planning::PlannedTask> for PlannedTask {
    fn from(t: planning::PlannedTask) -> Self {
        PlannedTask {
            id: t.id,
            subject: t.subject,
            description: t.description,
            owns: t.owns,
            owner: t.owner,
            blocked_by: t.blocked_by,
        }
    }
}

impl From<&PlannedTask> for planning::PlannedTask {
    fn from(t: &PlannedTask) -> Self {
        planning::PlannedTask {
            id: t.id.clone(),
            subject: t.subject.clone(),
            description: t.description.clone(),
            owns: t.owns.clone(),
            owner: t.owner.clone(),
            blocked_by: t.blocked_by.clone(),
        }
    }
}

/// The total bytes of text in `tasks`, for the `report_kib` check.
fn plan_size(tasks: &[planning::PlannedTask]) -> usize {
    tasks
        .iter()
        .map(|t| {
            let strings = t.owns.iter().chain(&t.blocked_by).chain(&t.owner).map(String::len).sum::<usize>();
            t.id.len() + t.subject.len() + t.description.len() + strings
        })
        .sum()
}

impl wit_llm::Host for PlannerState {
    async fn complete(
        &mut self,
        alias: Option<String>,
        req: wit_llm::Request,
    ) -> wasmtime::Result<Result<wit_llm::Response, wit_llm::LlmError>> {
        // The planner holds no task; the call's deadline cuts the wait.
        let deadline =
            self.deadline.map(|(call, at, len)| super::llm::CallDeadline { task: call.to_string(), at, len });
        super::llm::complete(self.models.as_ref(), PLANNER_ID, None, deadline, alias, req).await
    }
}

impl log::Host for PlannerState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        use log::Level;
        super::guest_log!(planner = &self.name, Level, level, &message, &mut self.last_panic);
        Ok(())
    }

    async fn progress(&mut self, done: u32, total: u32) -> wasmtime::Result<()> {
        tracing::debug!(planner = %self.name, done = done.min(total), total, "progress");
        Ok(())
    }
}
