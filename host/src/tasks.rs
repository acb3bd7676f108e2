//! The shared task list: atomic claims, `blocked_by` dependencies, statuses,
//! and retries under a max-attempts policy.
//!
//! One mutex guards the whole list: a claim must see every task's status at
//! once (dependencies) and flip one task to in-progress atomically, so that
//! no task is ever held by two teammates. Operations are short and never
//! await while holding the lock.
//!
//! They stay short for the largest plan (10,000 tasks, long `blocked_by`
//! chains, wide fan-ins): beside the tasks the list keeps, per task, how
//! many of its dependencies are not completed yet and which tasks depend on
//! it, the *ready* tasks (pending, nothing to wait for) in plan order per
//! owner, which task each teammate holds, and how many tasks are still
//! open. A claim is then a few ordered-set lookups (O(log n)),
//! [`TaskList::has_claimable_for`] and [`TaskList::all_done`] are O(1),
//! [`TaskList::who_can_claim`] is O(1) per member, a completion touches
//! only its dependents, and a failure cascades along its dependents once.
//!
//! Persistence is not this module's business: after every change the list
//! hands the changed tasks ([`TaskChange`], one per task touched, never the
//! whole list) to the journal installed with [`TaskList::with_journal`],
//! under the lock so that changes arrive in order. That callback must not
//! block (the coordinator's sends them to its writer thread); a caller that
//! must know a change is durable awaits [`TaskList::flushed`] after the
//! lock is released.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::{Finding, LimitKind};

mod compact;
mod steer;

/// A planned task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Stable id.
    pub id: String,
    /// One line.
    pub subject: String,
    /// Longer instructions.
    pub description: String,
    /// Files the task owns, relative to the root, `/`-separated, sorted.
    pub owned_files: BTreeSet<String>,
    /// Teammate group name or instance id allowed to run it; `None` = anyone.
    pub owner: Option<String>,
    /// Tasks that must complete first.
    pub blocked_by: Vec<String>,
    /// Wall-clock deadline of one attempt; `None` = the claiming
    /// teammate's `task_deadline` limit.
    #[serde(with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// Attempts allowed before the task fails for good.
    pub max_attempts: u32,
    /// The task's `owns` patterns (globs or literal paths, relative to the
    /// root): a file that does not exist yet may be created by this task if
    /// its path matches one of them and no other task's (see
    /// `sandbox::workspace`).
    #[serde(default)]
    pub creates: Vec<String>,
}

#[cfg(test)]
impl TaskSpec {
    /// A task `id` owning `owned`, creating what `creates` matches (tests).
    pub(crate) fn owning(id: &str, owned: &[&str], creates: &[&str]) -> Self {
        Self {
            id: id.into(),
            subject: id.into(),
            description: String::new(),
            owned_files: owned.iter().map(|s| s.to_string()).collect(),
            owner: None,
            blocked_by: Vec::new(),
            deadline: None,
            max_attempts: 1,
            creates: creates.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be claimed (possibly blocked).
    Pending,
    /// Held by a teammate.
    InProgress,
    /// Done, with a report.
    Completed,
    /// Failed for good.
    Failed,
}

/// The report of a completed task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    /// One-line summary.
    pub summary: String,
    /// Structured findings.
    pub findings: Vec<Finding>,
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Who ran it.
    pub teammate: String,
    /// How it ended; `None` while running or completed.
    pub error: Option<String>,
    /// Position of the claim among all claims and endings of the run.
    pub claimed_seq: u64,
    /// Position of the ending among all claims and endings of the run.
    pub ended_seq: Option<u64>,
    /// How long it ran, once it ended.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// True if the coordinator stopped while this attempt ran (it does not
    /// count against `max_attempts`).
    #[serde(default)]
    pub interrupted: bool,
    /// The sandbox limit that ended this attempt, when one did: set by the
    /// host from the limit it raised, never from the error's text.
    #[serde(default)]
    pub limit: Option<LimitKind>,
    /// When it was claimed, in milliseconds since the Unix epoch (wall
    /// clock, so that it survives a resume): the report's timeline.
    #[serde(default)]
    pub claimed_unix_ms: Option<u64>,
}

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A task and everything that happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskState {
    /// The plan.
    pub spec: TaskSpec,
    /// Current status.
    pub status: Status,
    /// Who holds it, while in progress.
    pub holder: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// The report, once completed: shared with the journal's record of the
    /// completion, so recording it clones no finding under the list's lock.
    pub report: Option<Arc<TaskReport>>,
    /// Why it failed for good.
    pub failure: Option<String>,
    /// The sandbox limit that failed it for good, when one did: its last
    /// attempt's, or the one that stopped the last teammate able to run it.
    #[serde(default)]
    pub failure_limit: Option<LimitKind>,
    #[serde(skip)]
    started: Option<Instant>,
}

/// A task handed to a teammate by [`TaskList::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The task.
    pub spec: TaskSpec,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// What the tasks it was `blocked_by` produced, in its `blocked_by`
    /// order (at most [`DEPENDENCY_RESULT_BYTES`] of text in all).
    pub dependencies: Vec<DependencyResult>,
}

/// Most bytes of summaries, files and messages the dependency results of
/// one claim carry; findings past it are counted, not carried (a claim
/// must fit its teammate's frame).
pub const DEPENDENCY_RESULT_BYTES: usize = 64 * 1024;

/// What a task a claimed task was `blocked_by` produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyResult {
    /// Its id.
    pub task_id: String,
    /// Its subject.
    pub subject: String,
    /// Its report's summary.
    pub summary: String,
    /// Its report's findings (the first ones, within the byte budget).
    pub findings: Vec<Finding>,
    /// Findings left out for the byte budget.
    #[serde(default)]
    pub omitted_findings: u32,
}

/// The results of `spec`'s completed dependencies in `tasks`.
fn dependency_results(inner: &Inner, spec: &TaskSpec) -> Vec<DependencyResult> {
    let mut budget = DEPENDENCY_RESULT_BYTES;
    let mut take = |text: &str| {
        let fits = text.len() <= budget;
        if fits {
            budget -= text.len();
        }
        fits
    };
    let mut out = Vec::new();
    for dep in &spec.blocked_by {
        let Some(t) = inner.deps.by_id.get(dep).map(|&i| &inner.tasks[i]) else { continue };
        let Some(report) = &t.report else { continue };
        let summary = if take(&report.summary) { report.summary.clone() } else { String::new() };
        let mut result = DependencyResult {
            task_id: t.spec.id.clone(),
            subject: t.spec.subject.clone(),
            summary,
            findings: Vec::new(),
            omitted_findings: 0,
        };
        for f in &report.findings {
            if take(&f.file) && take(&f.rule) && take(&f.message) {
                result.findings.push(f.clone());
            } else {
                result.omitted_findings += 1;
            }
        }
        out.push(result);
    }
    out
}

/// Why a task operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The caller does not hold that task.
    #[error("task `{task}` is not held by `{teammate}`")]
    NotHeld {
        /// The task id given.
        task: String,
        /// The caller.
        teammate: String,
    },
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Back to pending for another attempt.
    Requeued,
    /// Failed for good (max attempts reached).
    Failed,
}

/// What one change did to one task, with its position in the list: its
/// state, and its spec when the change was to the spec (a task added while
/// the team runs, a new owner, a granted file; see `steer`). A journal
/// keeps these and replays them onto the last full snapshot with
/// [`TaskChange::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    /// Position of the task in the list (plan order).
    pub index: usize,
    /// Its id, checked on replay.
    pub id: String,
    /// New status.
    pub status: Status,
    /// New holder.
    pub holder: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// The report, once completed (its findings written as arrays, see
    /// `tasks/compact.rs`).
    #[serde(with = "compact")]
    pub report: Option<Arc<TaskReport>>,
    /// Why it failed for good.
    pub failure: Option<String>,
    /// The limit that failed it for good.
    #[serde(default)]
    pub failure_limit: Option<LimitKind>,
    /// The task's spec, when the change was to it; a change one past the
    /// end of the list with a spec adds the task. Boxed: most changes have
    /// none, and a journal record stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Box<TaskSpec>>,
}

impl TaskChange {
    fn of(index: usize, t: &TaskState) -> Self {
        Self {
            spec: None,
            index,
            id: t.spec.id.clone(),
            status: t.status,
            holder: t.holder.clone(),
            attempts: t.attempts.clone(),
            report: t.report.clone(),
            failure: t.failure.clone(),
            failure_limit: t.failure_limit,
        }
    }

    /// Replays the change onto `tasks`. An error (a position past the end,
    /// another task's id there) says what does not match.
    pub fn apply(self, tasks: &mut Vec<TaskState>) -> Result<(), String> {
        let len = tasks.len();
        if let (true, Some(spec)) = (self.index == len, &self.spec) {
            tasks.push(TaskState::pending(TaskSpec::clone(spec)));
        }
        let t = tasks
            .get_mut(self.index)
            .ok_or_else(|| format!("task #{} `{}` is past the end of a list of {len}", self.index, self.id))?;
        if t.spec.id != self.id {
            return Err(format!("task #{} is `{}`, the record names `{}`", self.index, t.spec.id, self.id));
        }
        t.status = self.status;
        t.holder = self.holder;
        t.attempts = self.attempts;
        t.report = self.report;
        t.failure = self.failure;
        t.failure_limit = self.failure_limit;
        if let Some(spec) = self.spec {
            t.spec = *spec;
        }
        Ok(())
    }
}

/// Receives the changed tasks after every change, under the list's lock so
/// that changes arrive in order. It must not block or do I/O: hand the
/// changes to a writer (a channel send) and return.
pub type SaveFn = Box<dyn Fn(Vec<TaskChange>) + Send + Sync>;

/// Resolves once every change handed to the [`SaveFn`] so far is durable.
pub type FlushFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The list itself.
pub struct TaskList {
    inner: Mutex<Inner>,
    save: Option<SaveFn>,
    flush: Option<FlushFn>,
    /// Teammate group → `options:` words its claims carry
    /// ([`TaskList::with_options`]).
    options: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for TaskList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskList").field("tasks", &self.lock().tasks.len()).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    tasks: Vec<TaskState>,
    /// Orders claims and endings (a logical clock for the report).
    seq: u64,
    /// The dependency graph of `tasks`, by position.
    deps: Deps,
    /// Pending tasks with no dependency left to wait for, by position.
    ready: Ready,
    /// Teammate id → position of the task it holds.
    holders: HashMap<String, usize>,
    /// Tasks neither completed nor failed.
    open: usize,
}

/// The ready tasks, in plan order, by who may claim them.
#[derive(Debug, Default)]
struct Ready {
    /// Tasks without an owner.
    anyone: BTreeSet<usize>,
    /// Tasks with an owner (a group or an instance id), by owner; every
    /// owner of the list has an entry, possibly empty.
    owned: HashMap<String, BTreeSet<usize>>,
}

impl Ready {
    fn set(&mut self, owner: &Option<String>) -> &mut BTreeSet<usize> {
        match owner {
            None => &mut self.anyone,
            Some(o) => {
                // No allocation once the owner has an entry.
                if !self.owned.contains_key(o) {
                    self.owned.insert(o.clone(), BTreeSet::new());
                }
                self.owned.get_mut(o).expect("inserted above")
            }
        }
    }

    /// The first ready task `id` of `group` may claim.
    fn first_for(&self, id: &str, group: &str) -> Option<usize> {
        let first = |name: &str| self.owned.get(name).and_then(|s| s.first().copied());
        [self.anyone.first().copied(), first(id), first(group)].into_iter().flatten().min()
    }
}

/// The `blocked_by` graph of a task list, by position in the list.
#[derive(Debug, Default)]
struct Deps {
    /// Task id → position (the last task of a repeated id, as lookups by
    /// id always found).
    by_id: HashMap<String, usize>,
    /// Per task: its `blocked_by` entries not completed yet (an unknown id
    /// never completes).
    waiting: Vec<usize>,
    /// Per task: the positions of the tasks it blocks, once per entry.
    dependents: Vec<Vec<usize>>,
}

impl Deps {
    fn of(tasks: &[TaskState]) -> Self {
        let by_id: HashMap<String, usize> = tasks.iter().enumerate().map(|(i, t)| (t.spec.id.clone(), i)).collect();
        let mut waiting = vec![0; tasks.len()];
        let mut dependents = vec![Vec::new(); tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            for dep in &t.spec.blocked_by {
                match by_id.get(dep) {
                    Some(&d) if tasks[d].status == Status::Completed => {}
                    Some(&d) => {
                        waiting[i] += 1;
                        dependents[d].push(i);
                    }
                    None => waiting[i] += 1,
                }
            }
        }
        Self { by_id, waiting, dependents }
    }
}

impl std::ops::Deref for Inner {
    type Target = Vec<TaskState>;
    fn deref(&self) -> &Vec<TaskState> {
        &self.tasks
    }
}

impl Inner {
    /// Builds the indices of `tasks`.
    fn of(tasks: Vec<TaskState>, seq: u64) -> Self {
        let deps = Deps::of(&tasks);
        let mut inner = Self { tasks, seq, deps, ready: Ready::default(), holders: HashMap::new(), open: 0 };
        for i in 0..inner.tasks.len() {
            let t = &inner.tasks[i];
            if matches!(t.status, Status::Pending | Status::InProgress) {
                inner.open += 1;
            }
            if let (Status::InProgress, Some(h)) = (t.status, &t.holder) {
                inner.holders.insert(h.clone(), i);
            }
            if inner.is_ready(i) {
                inner.ready.set(&inner.tasks[i].spec.owner).insert(i);
            }
        }
        inner
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn is_ready(&self, i: usize) -> bool {
        self.tasks[i].status == Status::Pending && self.deps.waiting[i] == 0
    }

    /// Moves the task at `i` to `status`, keeping the indices (ready tasks,
    /// holders, open count) in step.
    fn set_status(&mut self, i: usize, status: Status) {
        let was_open = matches!(self.tasks[i].status, Status::Pending | Status::InProgress);
        if self.is_ready(i) {
            self.ready.set(&self.tasks[i].spec.owner).remove(&i);
        }
        if let Some(h) = self.tasks[i].holder.take() {
            self.holders.remove(&h);
        }
        self.tasks[i].status = status;
        let open = matches!(status, Status::Pending | Status::InProgress);
        match (was_open, open) {
            (true, false) => self.open -= 1,
            (false, true) => self.open += 1,
            _ => {}
        }
        if self.is_ready(i) {
            self.ready.set(&self.tasks[i].spec.owner).insert(i);
        }
    }

    /// Hands the task at `i` to `teammate`.
    fn hold(&mut self, i: usize, teammate: &str) {
        self.set_status(i, Status::InProgress);
        self.tasks[i].holder = Some(teammate.to_string());
        self.holders.insert(teammate.to_string(), i);
    }

    /// Records that the task at `i` completed: its dependents wait for one
    /// entry less, and those left waiting for nothing are ready.
    fn completed(&mut self, i: usize) {
        for k in 0..self.deps.dependents[i].len() {
            let j = self.deps.dependents[i][k];
            self.deps.waiting[j] -= 1;
            if self.is_ready(j) {
                self.ready.set(&self.tasks[j].spec.owner).insert(j);
            }
        }
    }

    /// The position of `task` if `teammate` holds it.
    fn held_at(&self, teammate: &str, task: &str) -> Result<usize, TaskError> {
        self.holders
            .get(teammate)
            .copied()
            .filter(|&i| self.tasks[i].spec.id == task)
            .ok_or_else(|| TaskError::NotHeld { task: task.to_string(), teammate: teammate.to_string() })
    }
}

impl TaskList {
    /// A list of pending tasks, in plan order.
    pub fn new(specs: Vec<TaskSpec>) -> Self {
        let tasks = specs.into_iter().map(TaskState::pending).collect::<Vec<_>>();
        Self { inner: Mutex::new(Inner::of(tasks, 0)), save: None, flush: None, options: HashMap::new() }
    }

    /// Rebuilds a list from saved state after the coordinator stopped:
    /// completed and failed tasks stay as they are; tasks that were in
    /// progress go back to pending, their attempt marked interrupted. The
    /// result depends on `tasks` only, so restoring the same saved state
    /// twice gives the same list.
    pub fn restore(mut tasks: Vec<TaskState>) -> Self {
        let mut seq = tasks
            .iter()
            .flat_map(|t| t.attempts.iter())
            .flat_map(|a| [a.claimed_seq, a.ended_seq.unwrap_or(0)])
            .max()
            .unwrap_or(0);
        for t in tasks.iter_mut().filter(|t| t.status == Status::InProgress) {
            t.status = Status::Pending;
            t.holder = None;
            if let Some(a) = t.attempts.last_mut() {
                seq += 1;
                a.error = Some("interrupted: the coordinator stopped while it ran".into());
                a.ended_seq = Some(seq);
                a.interrupted = true;
            }
        }
        Self { inner: Mutex::new(Inner::of(tasks, seq)), save: None, flush: None, options: HashMap::new() }
    }

    /// Hands every task a teammate of a group in `options` claims with
    /// those words merged into its description's `options:` line (the
    /// task's own options win; [`crate::options_line::merge`]). The task
    /// list keeps the description as planned.
    pub fn with_options(mut self, options: HashMap<String, Vec<String>>) -> Self {
        self.options = options;
        self
    }

    /// `claimed` as teammate group `group` gets it.
    fn for_group(&self, group: &str, mut claimed: Claimed) -> Claimed {
        if let Some(words) = self.options.get(group) {
            claimed.spec.description = crate::options_line::merge(&claimed.spec.description, words);
        }
        claimed
    }

    /// Hands every change from now on to `save` (the changed tasks only),
    /// and lets [`TaskList::flushed`] wait on `flush`.
    pub fn with_journal(mut self, save: SaveFn, flush: FlushFn) -> Self {
        self.save = Some(save);
        self.flush = Some(flush);
        self
    }

    /// Resolves once every change made so far is durable (at once without
    /// a journal). Await it after the call that made the change: the list
    /// is not locked meanwhile.
    pub async fn flushed(&self) {
        if let Some(flush) = &self.flush {
            flush().await;
        }
    }

    fn saved(&self, inner: &Inner, changed: impl IntoIterator<Item = usize>) {
        if let Some(save) = &self.save {
            let changes: Vec<TaskChange> = changed.into_iter().map(|i| TaskChange::of(i, &inner.tasks[i])).collect();
            if !changes.is_empty() {
                save(changes);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the next unblocked pending task `id` may run, the first in
    /// plan order. A teammate holds at most one task: if it already holds
    /// one, that one is returned again.
    pub fn claim(&self, id: &str, group: &str) -> Option<Claimed> {
        let mut tasks = self.lock();
        if let Some(&held) = tasks.holders.get(id) {
            let held = &tasks.tasks[held];
            let dependencies = dependency_results(&tasks, &held.spec);
            let claimed = Claimed { spec: held.spec.clone(), attempt: held.attempts.len() as u32, dependencies };
            return Some(self.for_group(group, claimed));
        }
        let idx = tasks.ready.first_for(id, group)?;
        let claimed_seq = tasks.tick();
        tasks.hold(idx, id);
        let t = &mut tasks.tasks[idx];
        t.started = Some(Instant::now());
        t.attempts.push(Attempt {
            teammate: id.to_string(),
            error: None,
            duration: None,
            claimed_seq,
            ended_seq: None,
            interrupted: false,
            limit: None,
            claimed_unix_ms: Some(unix_ms()),
        });
        let (spec, attempt) = (t.spec.clone(), t.attempts.len() as u32);
        let dependencies = dependency_results(&tasks, &spec);
        let claimed = Claimed { spec, attempt, dependencies };
        self.saved(&tasks, [idx]);
        Some(self.for_group(group, claimed))
    }

    /// True if some pending task is claimable right now by `id` of `group`.
    pub fn has_claimable_for(&self, id: &str, group: &str) -> bool {
        self.lock().ready.first_for(id, group).is_some()
    }

    /// Those of `members` (pairs of id and group) that could claim a task
    /// right now, in their order: a constant-time lookup per member,
    /// however many tasks there are.
    pub fn who_can_claim<'a>(&self, members: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<&'a str> {
        let tasks = self.lock();
        members.into_iter().filter(|(id, group)| tasks.ready.first_for(id, group).is_some()).map(|(id, _)| id).collect()
    }

    /// The task `id` holds, if any.
    pub fn held_by(&self, id: &str) -> Option<TaskSpec> {
        let tasks = self.lock();
        tasks.holders.get(id).map(|&i| tasks.tasks[i].spec.clone())
    }

    /// Completes a held task.
    pub fn complete(&self, teammate: &str, task: &str, report: TaskReport) -> Result<(), TaskError> {
        let mut tasks = self.lock();
        let i = tasks.held_at(teammate, task)?;
        let seq = tasks.tick();
        tasks.set_status(i, Status::Completed);
        tasks.completed(i);
        let t = &mut tasks.tasks[i];
        t.report = Some(Arc::new(report));
        let elapsed = t.started.take().map(|s| s.elapsed());
        if let Some(a) = t.attempts.last_mut() {
            a.duration = elapsed;
            a.ended_seq = Some(seq);
        }
        self.saved(&tasks, [i]);
        Ok(())
    }

    /// Fails the current attempt of a held task: requeued while attempts
    /// remain, failed for good otherwise (and so are the tasks blocked by it).
    pub fn fail(&self, teammate: &str, task: &str, reason: &str) -> Result<AfterFailure, TaskError> {
        self.fail_attempt(teammate, task, reason, None)
    }

    /// [`TaskList::fail`], recording on the attempt the sandbox `limit` that
    /// ended it, if one did.
    pub fn fail_attempt(
        &self,
        teammate: &str,
        task: &str,
        reason: &str,
        limit: Option<LimitKind>,
    ) -> Result<AfterFailure, TaskError> {
        let mut tasks = self.lock();
        let i = tasks.held_at(teammate, task)?;
        let seq = tasks.tick();
        let t = &mut tasks.tasks[i];
        Self::end_attempt(t, seq, reason, false);
        if let Some(a) = t.attempts.last_mut() {
            a.limit = limit;
        }
        let counted = t.attempts.iter().filter(|a| !a.interrupted).count();
        if (counted as u32) < t.spec.max_attempts {
            tasks.set_status(i, Status::Pending);
            self.saved(&tasks, [i]);
            return Ok(AfterFailure::Requeued);
        }
        tasks.set_status(i, Status::Failed);
        let t = &mut tasks.tasks[i];
        t.failure = Some(reason.to_string());
        t.failure_limit = limit;
        let failed = Self::cascade(&mut tasks, vec![i]);
        self.saved(&tasks, std::iter::once(i).chain(failed));
        Ok(AfterFailure::Failed)
    }

    /// Ends the running attempt of `t` without success: the attempt's
    /// error, duration and position recorded.
    fn end_attempt(t: &mut TaskState, seq: u64, reason: &str, interrupted: bool) {
        let elapsed = t.started.take().map(|s| s.elapsed());
        if let Some(a) = t.attempts.last_mut() {
            a.error = Some(reason.to_string());
            a.duration = elapsed;
            a.ended_seq = Some(seq);
            a.interrupted = interrupted;
        }
    }

    /// Releases whatever `teammate` holds after it died or was stopped, as a
    /// failed attempt ended by `limit` if a sandbox limit stopped the
    /// teammate. Returns the task id and what became of it.
    pub fn release(&self, teammate: &str, reason: &str, limit: Option<LimitKind>) -> Option<(String, AfterFailure)> {
        let task = self.held_by(teammate)?.id;
        let after = self.fail_attempt(teammate, &task, reason, limit).ok()?;
        Some((task, after))
    }

    /// Puts whatever `teammate` holds back to pending because the run is
    /// being interrupted: the attempt is marked interrupted and does not
    /// count against `max_attempts`. Returns the task id.
    pub fn interrupt(&self, teammate: &str, reason: &str) -> Option<String> {
        let mut tasks = self.lock();
        let i = *tasks.holders.get(teammate)?;
        let seq = tasks.tick();
        Self::end_attempt(&mut tasks.tasks[i], seq, reason, true);
        tasks.set_status(i, Status::Pending);
        let id = tasks.tasks[i].spec.id.clone();
        self.saved(&tasks, [i]);
        Some(id)
    }

    /// Fails pending tasks that can never run: blocked by a failed task, or
    /// owned by no teammate in `live` (pairs of id and group). `last_gone`
    /// says which teammate's end left them orphaned and how it ended, so the
    /// failure names the cause (a limit hit at spawn, a trap, ...); `limit`
    /// is the sandbox limit that ended it, if one did. One pass over the
    /// tasks: it runs when a teammate is gone, not per claim.
    pub fn fail_unrunnable(&self, live: &[(String, String)], last_gone: &str, limit: Option<LimitKind>) -> Vec<String> {
        let mut tasks = self.lock();
        let roots: Vec<usize> = (0..tasks.len()).filter(|&i| tasks.tasks[i].status == Status::Failed).collect();
        let mut failed = Self::cascade(&mut tasks, roots);
        // Ids and groups of the live teammates: one lookup per task.
        let names: HashSet<&str> = live.iter().flat_map(|(id, group)| [id.as_str(), group.as_str()]).collect();
        let orphans: Vec<usize> = (0..tasks.len())
            .filter(|&i| {
                let t = &tasks.tasks[i];
                t.status == Status::Pending
                    && match &t.spec.owner {
                        None => live.is_empty(),
                        Some(o) => !names.contains(o.as_str()),
                    }
            })
            .collect();
        drop(names);
        for &i in &orphans {
            tasks.set_status(i, Status::Failed);
            let t = &mut tasks.tasks[i];
            t.failure = Some(match &t.spec.owner {
                Some(o) => format!("no live teammate can run it (owner `{o}`; last gone: {last_gone})"),
                None => format!("no live teammate left to run it (last gone: {last_gone})"),
            });
            t.failure_limit = limit;
        }
        failed.extend(orphans.iter().copied());
        failed.extend(Self::cascade(&mut tasks, orphans));
        self.saved(&tasks, failed.iter().copied());
        failed.into_iter().map(|i| tasks.tasks[i].spec.id.clone()).collect()
    }

    /// Marks pending tasks whose dependencies failed as failed, transitively
    /// from the failed tasks `roots`, each naming its first failed
    /// dependency; returns their positions in plan order. Walks along
    /// dependents once.
    fn cascade(inner: &mut Inner, roots: Vec<usize>) -> Vec<usize> {
        let mut work = roots;
        let mut failed = Vec::new();
        while let Some(i) = work.pop() {
            for k in 0..inner.deps.dependents[i].len() {
                let j = inner.deps.dependents[i][k];
                if inner.tasks[j].status != Status::Pending {
                    continue;
                }
                let (tasks, deps) = (&inner.tasks, &inner.deps);
                let dead = |d: &&String| deps.by_id.get(d.as_str()).is_some_and(|&k| tasks[k].status == Status::Failed);
                let first = tasks[j].spec.blocked_by.iter().find(dead).cloned().unwrap_or_default();
                inner.set_status(j, Status::Failed);
                inner.tasks[j].failure = Some(format!("blocked by failed task `{first}`"));
                failed.push(j);
                work.push(j);
            }
        }
        failed.sort_unstable();
        failed
    }

    /// True when every task is completed or failed.
    pub fn all_done(&self) -> bool {
        self.lock().open == 0
    }

    /// A copy of every task's state, in plan order.
    pub fn snapshot(&self) -> Vec<TaskState> {
        self.lock().tasks.clone()
    }

    /// Hands over every task once the run is over (for its report), without
    /// copying their findings; the list is left empty.
    pub fn finish(&self) -> Vec<TaskState> {
        let mut inner = self.lock();
        let tasks = std::mem::take(&mut inner.tasks);
        *inner = Inner::of(Vec::new(), inner.seq);
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, blocked_by: &[&str], owner: Option<&str>) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            subject: format!("do {id}"),
            description: String::new(),
            owned_files: BTreeSet::new(),
            owner: owner.map(Into::into),
            blocked_by: blocked_by.iter().map(|s| s.to_string()).collect(),
            deadline: Some(Duration::from_secs(5)),
            max_attempts: 2,
            creates: Vec::new(),
        }
    }

    fn report() -> TaskReport {
        TaskReport { summary: "ok".into(), findings: vec![] }
    }

    #[test]
    fn respects_dependencies_and_holds_one_task() {
        let list = TaskList::new(vec![spec("b", &["a"], None), spec("a", &[], None)]);
        let first = list.claim("w1", "w").unwrap();
        assert_eq!(first.spec.id, "a", "b is blocked by a");
        assert_eq!(list.claim("w1", "w").unwrap().spec.id, "a", "claiming again returns the held task");
        assert!(list.claim("w2", "w").is_none(), "b still blocked");
        list.complete("w1", "a", report()).unwrap();
        assert_eq!(list.claim("w2", "w").unwrap().spec.id, "b");
    }

    #[test]
    fn only_the_holder_completes() {
        let list = TaskList::new(vec![spec("a", &[], None)]);
        list.claim("w1", "w").unwrap();
        assert!(matches!(list.complete("w2", "a", report()), Err(TaskError::NotHeld { .. })));
    }

    #[test]
    fn retries_then_fails_and_cascades() {
        let list = TaskList::new(vec![spec("a", &[], None), spec("b", &["a"], None)]);
        list.claim("w1", "w").unwrap();
        assert_eq!(list.fail("w1", "a", "boom").unwrap(), AfterFailure::Requeued);
        assert_eq!(list.claim("w2", "w").unwrap().attempt, 2);
        assert_eq!(list.fail("w2", "a", "boom again").unwrap(), AfterFailure::Failed);
        let snap = list.snapshot();
        assert_eq!(snap[1].status, Status::Failed);
        assert_eq!(snap[1].failure.as_deref(), Some("blocked by failed task `a`"));
        assert!(list.all_done());
    }

    #[test]
    fn interrupted_attempts_do_not_count_and_restore_requeues_in_flight_work() {
        let list = TaskList::new(vec![spec("a", &[], None), spec("b", &[], None)]);
        list.claim("w1", "w").unwrap();
        assert_eq!(list.interrupt("w1", "stopping").as_deref(), Some("a"));
        list.claim("w1", "w").unwrap();
        assert_eq!(list.fail("w1", "a", "boom").unwrap(), AfterFailure::Requeued, "the interrupted attempt is free");
        list.claim("w2", "w").unwrap();
        let claimed_b = list.claim("w3", "w").unwrap();
        assert_eq!(claimed_b.spec.id, "b");
        list.complete("w3", "b", report()).unwrap();

        let restored = TaskList::restore(list.snapshot());
        let snap = restored.snapshot();
        assert_eq!((snap[0].status, snap[1].status), (Status::Pending, Status::Completed));
        assert!(snap[0].attempts.last().unwrap().interrupted);
        let again = restored.claim("w9", "w").unwrap();
        assert_eq!(again.spec.id, "a", "in-flight work is rerun, completed work is not");
        assert!(restored.claim("w8", "w").is_none());
    }

    /// Shared with a test's journal callback.
    type Shared<T> = Arc<Mutex<T>>;

    /// A list whose changes are replayed onto a copy of its first state,
    /// with that copy and the number of calls of its journal.
    fn journaled(specs: Vec<TaskSpec>) -> (TaskList, Shared<Vec<TaskState>>, Shared<usize>) {
        let list = TaskList::new(specs);
        let replica = Arc::new(Mutex::new(list.snapshot()));
        let calls = Arc::new(Mutex::new(0));
        let (r, c) = (replica.clone(), calls.clone());
        let save: SaveFn = Box::new(move |changes| {
            *c.lock().unwrap() += 1;
            for change in changes {
                change.apply(&mut r.lock().unwrap()).unwrap();
            }
        });
        let flush: FlushFn = Arc::new(|| Box::pin(async {}));
        (list.with_journal(save, flush), replica, calls)
    }

    fn same(a: &[TaskState], b: &[TaskState]) {
        let json = |t: &[TaskState]| serde_json::to_value(t).unwrap();
        assert_eq!(json(a), json(b));
    }

    #[test]
    fn every_change_is_handed_on_and_replaying_the_changes_gives_the_list() {
        let (list, replica, calls) = journaled(vec![
            spec("a", &[], None),
            spec("b", &["a"], None),
            spec("c", &["b"], None),
            TaskSpec { max_attempts: 1, ..spec("d", &[], None) },
            spec("e", &["d"], None),
            spec("f", &[], Some("gone")),
        ]);
        list.claim("w1", "w").unwrap();
        list.complete("w1", "a", report()).unwrap();
        list.claim("w1", "w").unwrap();
        list.fail("w1", "b", "boom").unwrap();
        list.claim("w2", "w").unwrap();
        list.interrupt("w2", "stop").unwrap();
        list.claim("w3", "w").unwrap();
        assert_eq!(list.claim("w4", "w").unwrap().spec.id, "d");
        list.fail("w4", "d", "boom").unwrap();
        list.fail_unrunnable(&[("w3".into(), "w".into())], "gone-1 exited", None);
        assert_eq!(*calls.lock().unwrap(), 10, "one call per change");
        same(&list.snapshot(), &replica.lock().unwrap());
        let failed: Vec<_> =
            list.snapshot().into_iter().filter(|t| t.status == Status::Failed).map(|t| t.spec.id).collect();
        assert_eq!(failed, ["d", "e", "f"]);
    }

    #[test]
    fn a_change_for_another_list_is_refused() {
        let mut tasks = TaskList::new(vec![spec("a", &[], None)]).snapshot();
        let list = TaskList::new(vec![spec("b", &[], None)]);
        let (journal, _, _) = journaled(vec![spec("b", &[], None)]);
        journal.claim("w", "w").unwrap();
        let change = TaskChange::of(0, &journal.snapshot()[0]);
        let e = change.clone().apply(&mut tasks).unwrap_err();
        assert_eq!(e, "task #0 is `a`, the record names `b`");
        let e = TaskChange { index: 3, ..change }.apply(&mut list.snapshot()).unwrap_err();
        assert_eq!(e, "task #3 `b` is past the end of a list of 1");
    }

    #[test]
    fn a_groups_options_are_merged_into_the_description_it_claims_and_the_list_keeps_the_plan() {
        let mut t = spec("t", &[], None);
        t.description = "Do it.\noptions: max-turns=2".into();
        let list = TaskList::new(vec![t]).with_options(HashMap::from([(
            "agent".to_string(),
            vec!["max-turns=9".to_string(), "temperature=0.5".to_string()],
        )]));
        let claimed = list.claim("agent-1", "agent").unwrap();
        assert_eq!(claimed.spec.description, "Do it.\noptions: max-turns=2 temperature=0.5");
        assert_eq!(list.claim("agent-1", "agent").unwrap().spec.description, claimed.spec.description, "claimed again");
        assert_eq!(list.snapshot()[0].spec.description, "Do it.\noptions: max-turns=2");
    }

    #[test]
    fn claims_follow_plan_order_across_owners() {
        let list = TaskList::new(vec![
            spec("a", &[], Some("w-1")),
            spec("b", &[], None),
            spec("c", &[], Some("w")),
            spec("d", &[], Some("x")),
        ]);
        assert!(list.has_claimable_for("y-1", "y"), "b is open to anyone");
        assert!(list.has_claimable_for("x-1", "x"));
        let order: Vec<String> = std::iter::from_fn(|| {
            let c = list.claim("w-1", "w")?;
            list.complete("w-1", &c.spec.id, report()).unwrap();
            Some(c.spec.id)
        })
        .collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!(!list.all_done(), "d is left for x");
        assert!(!list.has_claimable_for("y-1", "y"), "d is for x only");
        assert_eq!(list.who_can_claim([("y-1", "y"), ("x-1", "x"), ("w-1", "w")]), ["x-1"]);
        assert_eq!(list.held_by("w-1"), None);
        let d = list.claim("x-1", "x").unwrap();
        assert_eq!(list.held_by("x-1"), Some(d.spec.clone()));
        list.complete("x-1", "d", report()).unwrap();
        assert!(list.all_done());
    }

    #[test]
    fn a_limit_is_kept_on_its_attempt_and_on_a_task_failed_for_good() {
        let list = TaskList::new(vec![spec("a", &[], None), spec("b", &[], Some("gone"))]);
        list.claim("w1", "w").unwrap();
        let released = list.release("w1", "trapped: deadline hit: ...", Some(LimitKind::Deadline));
        assert_eq!(released, Some(("a".to_string(), AfterFailure::Requeued)));
        list.claim("w2", "w").unwrap();
        assert_eq!(list.fail("w2", "a", "deadline hit: words of the guest").unwrap(), AfterFailure::Failed);
        let orphaned =
            list.fail_unrunnable(&[], "gone-1 could not start: instance limit hit", Some(LimitKind::Instances));
        assert_eq!(orphaned, ["b"]);
        let snap = list.snapshot();
        assert_eq!(snap[0].attempts[0].limit, Some(LimitKind::Deadline));
        assert_eq!(snap[0].attempts[1].limit, None, "a guest's own failure never names a limit");
        assert_eq!(snap[0].failure_limit, None, "its last attempt, which no limit ended, failed it");
        assert_eq!(snap[1].failure_limit, Some(LimitKind::Instances));
        // Saved state from before the field reads back without a limit.
        let mut old = serde_json::to_value(&snap[0]).unwrap();
        old.as_object_mut().unwrap().remove("failure_limit");
        old["attempts"][0].as_object_mut().unwrap().remove("limit");
        let old: TaskState = serde_json::from_value(old).unwrap();
        assert_eq!((old.failure_limit, old.attempts[0].limit), (None, None));
    }

    #[test]
    fn owner_restricts_claims_and_orphans_fail() {
        let list = TaskList::new(vec![spec("a", &[], Some("ping")), spec("b", &[], Some("ping-2"))]);
        assert!(list.claim("scan-1", "scan").is_none());
        assert_eq!(list.claim("ping-2", "ping").unwrap().spec.id, "a");
        let failed = list.fail_unrunnable(&[("scan-1".into(), "scan".into())], "ping-2 trapped: boom", None);
        assert_eq!(failed, ["b"]);
        let b = list.snapshot().into_iter().find(|t| t.spec.id == "b").unwrap();
        assert_eq!(
            b.failure.as_deref(),
            Some("no live teammate can run it (owner `ping-2`; last gone: ping-2 trapped: boom)")
        );
    }

    /// Runs `f` on its own thread and waits at most a generous minute for
    /// it (a quadratic claim over 10,000 tasks would take hours).
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("finished within the timeout")
    }

    /// Task `c<i>` of a chain: blocked by `c<i-1>`.
    fn link(i: usize) -> TaskSpec {
        let mut s = spec(&format!("c{i}"), &[], None);
        if i > 0 {
            s.blocked_by = vec![format!("c{}", i - 1)];
        }
        s
    }

    #[test]
    fn a_ten_thousand_task_chain_is_claimed_and_completed_without_a_quadratic_crawl() {
        let n = 10_000;
        let claimed = within_a_minute(move || {
            let chain: Vec<TaskSpec> = (0..n).map(link).collect();
            // A wide fan-in at the end: blocked by every task of the chain.
            let all: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let list = TaskList::new(chain.into_iter().chain([spec("last", &all, None)]).collect());
            let mut order = Vec::new();
            while let Some(c) = list.claim("w1", "w") {
                if order.len() % 100 == 0 {
                    assert!(!list.has_claimable_for("w2", "w"), "a chain has one claimable task at a time");
                }
                list.complete("w1", &c.spec.id, report()).unwrap();
                order.push(c.spec.id);
            }
            assert!(list.all_done());
            order
        });
        assert_eq!(claimed.len(), n + 1);
        assert_eq!((claimed[0].as_str(), claimed[n - 1].as_str(), claimed[n].as_str()), ("c0", "c9999", "last"));
    }

    #[test]
    fn a_failure_cascades_down_a_long_chain_naming_each_first_failed_dependency() {
        let n = 10_000;
        let failed = within_a_minute(move || {
            // Listed last to first, so each task's dependency comes after it.
            let chain: Vec<TaskSpec> = (0..n).rev().map(|i| TaskSpec { max_attempts: 1, ..link(i) }).collect();
            let list = TaskList::new(chain);
            let head = list.claim("w1", "w").unwrap();
            assert_eq!(head.spec.id, "c0");
            assert_eq!(list.fail("w1", "c0", "boom").unwrap(), AfterFailure::Failed);
            list.snapshot()
        });
        assert!(failed.iter().all(|t| t.status == Status::Failed));
        assert_eq!(failed[0].failure.as_deref(), Some("blocked by failed task `c9998`"));
        assert_eq!(failed[n - 2].failure.as_deref(), Some("blocked by failed task `c0`"));
    }

    #[test]
    fn who_can_claim_names_the_members_an_unblocked_task_admits() {
        let list = TaskList::new(vec![
            spec("a", &[], Some("scan")),
            spec("b", &[], Some("ping-2")),
            spec("c", &["a"], None),
            spec("d", &["ghost"], None),
        ]);
        let members = [("scan-1", "scan"), ("ping-1", "ping"), ("ping-2", "ping"), ("other-1", "other")];
        assert_eq!(list.who_can_claim(members), ["scan-1", "ping-2"], "c and d are blocked");
        list.claim("scan-1", "scan").unwrap();
        list.complete("scan-1", "a", report()).unwrap();
        assert_eq!(list.who_can_claim(members), members.map(|(id, _)| id), "c is open to anyone");
        for (id, group) in members {
            assert!(list.has_claimable_for(id, group), "{id}");
        }
    }

    #[test]
    fn concurrent_claims_never_hand_out_a_task_twice() {
        let list = std::sync::Arc::new(TaskList::new((0..200).map(|i| spec(&format!("t{i}"), &[], None)).collect()));
        let handles: Vec<_> = (0..8)
            .map(|w| {
                let list = list.clone();
                std::thread::spawn(move || {
                    let me = format!("w{w}");
                    let mut got = Vec::new();
                    while let Some(c) = list.claim(&me, "w") {
                        got.push(c.spec.id.clone());
                        list.complete(&me, &c.spec.id, report()).unwrap();
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<String> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!((before, all.len()), (200, 200));
    }
}
