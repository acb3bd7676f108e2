//! Changes to a running team's plan, checked with the plan's own rules: a
//! task the lead adds, or a new owner for a task that has not started. The
//! check is [`Plan::build`] over the team file with the running team's
//! tasks in place of its own, so every rule of a team file holds (disjoint
//! ownership including files to be created, known owners, known
//! dependencies and no cycle, paths inside the root, the plan limits).
//!
//! The running tasks enter the check as what they can still touch: an
//! unfinished task its `owns` patterns and the files granted to it; a
//! finished task no file (it never writes again; its id stays, so a new
//! task may depend on it). A task added at run time owns existing files
//! only: the workspaces' creation rules are fixed when the run starts.

use globset::{GlobSet, GlobSetBuilder};

use super::owns::{check_glob, escape};
use super::{Plan, PlanError};
use crate::coordinator::config::{Loaded, TaskEntry};
use crate::sandbox::planner::PlannedTask;
use crate::tasks::{Status, TaskSpec, TaskState};

/// The rules a running team's changes are checked against: its team file.
#[derive(Debug, Clone)]
pub struct ChangeRules {
    loaded: Loaded,
}

impl ChangeRules {
    /// The rules of the team file `loaded`.
    pub fn new(loaded: &Loaded) -> Self {
        let mut loaded = loaded.clone();
        loaded.team.planner = None;
        loaded.team.goal = None;
        Self { loaded }
    }

    /// The spec of `task` added to the running `tasks`, or every problem.
    pub fn add(&self, tasks: &[TaskState], task: &PlannedTask) -> Result<TaskSpec, Vec<String>> {
        let entry = TaskEntry {
            id: Some(task.id.clone()),
            subject: task.subject.clone(),
            description: task.description.clone(),
            owns: task.owns.clone(),
            owner: task.owner.clone(),
            blocked_by: task.blocked_by.clone(),
            deadline: None,
            max_attempts: None,
        };
        let plan = self.check(tasks, Some(entry), None)?;
        let Some(mut spec) = plan.tasks.into_iter().find(|t| t.id == task.id) else {
            return Err(vec![format!("task `{}` is not in the checked plan", task.id)]);
        };
        let mut problems = Vec::new();
        for pattern in &task.owns {
            let matched = check_glob(pattern)
                .map(|g| g.compile_matcher())
                .is_ok_and(|m| spec.owned_files.iter().any(|f| m.is_match(f)));
            if !matched {
                problems.push(format!(
                    "task `{}` owns `{}`, which matches no existing file: a task added while the team runs cannot \
                     create files",
                    task.id,
                    crate::sanitize::line(pattern)
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        spec.creates = Vec::new();
        Ok(spec)
    }

    /// Checks that `task` of the running `tasks` may go to `owner`.
    pub fn reassign(&self, tasks: &[TaskState], task: &str, owner: Option<&str>) -> Result<(), Vec<String>> {
        match tasks.iter().find(|t| t.spec.id == task) {
            None => return Err(vec![format!("there is no task `{}`", crate::sanitize::line(task))]),
            Some(t) if t.status != Status::Pending || !t.attempts.is_empty() => {
                return Err(vec![format!(
                    "task `{task}` has started; only a task that has not started may change owner"
                )]);
            }
            Some(_) => {}
        }
        self.check(tasks, None, Some((task, owner))).map(drop)
    }

    /// [`Plan::build`] of the team file with the running `tasks` (one
    /// owner changed), then `added`.
    fn check(
        &self,
        tasks: &[TaskState],
        added: Option<TaskEntry>,
        owner: Option<(&str, Option<&str>)>,
    ) -> Result<Plan, Vec<String>> {
        let mut loaded = self.loaded.clone();
        loaded.team.tasks = tasks
            .iter()
            .map(|t| {
                let mut entry = running(t);
                if let Some((id, new)) = owner
                    && id == t.spec.id
                {
                    entry.owner = new.map(str::to_string);
                }
                toml::Spanned::new(0..0, entry)
            })
            .chain(added.map(|e| toml::Spanned::new(0..0, e)))
            .collect();
        Plan::build(&loaded).map_err(|PlanError(found)| found.into_iter().map(|e| e.message).collect())
    }
}

/// A running task as a team-file task: its patterns and granted files
/// while it may still write, nothing once it ended.
fn running(t: &TaskState) -> TaskEntry {
    let s = &t.spec;
    let owns = if matches!(t.status, Status::Pending | Status::InProgress) {
        let patterns = patterns(&s.creates);
        let granted = s.owned_files.iter().filter(|f| !patterns.is_match(f.as_str())).map(|f| escape(f));
        s.creates.iter().cloned().chain(granted).collect()
    } else {
        Vec::new()
    };
    TaskEntry {
        id: Some(s.id.clone()),
        subject: s.subject.clone(),
        description: s.description.clone(),
        owns,
        owner: s.owner.clone(),
        blocked_by: s.blocked_by.clone(),
        deadline: s.deadline,
        max_attempts: Some(s.max_attempts.max(1)),
    }
}

/// The valid ones of `patterns` in one set.
fn patterns(patterns: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for g in patterns.iter().filter_map(|p| check_glob(p).ok()) {
        builder.add(g);
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}
