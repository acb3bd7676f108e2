//! Planning from a goal: the team file's `goal` goes to its lead (a
//! `[planner]` of world `lead`), and what the lead answers is validated
//! with the same rules as a team file's tasks ([`Plan::build`]). A rejected
//! plan goes back to the lead with every problem listed, for up to
//! `replan_rounds` more attempts; then planning fails with the last
//! attempt's problems. Nothing is spawned before a plan validates: this
//! runs before the run starts.

use std::path::Path;

use globset::GlobSet;
use serde::{Deserialize, Serialize};

use super::{MAX_PROBLEMS, MAX_TASKS, Plan, PlanError, capped, shown};
use crate::coordinator::config::{ConfigError, Loaded, PlannerEntry, TaskEntry};
use crate::sandbox::ReadScope;
use crate::sandbox::planner::{FileInfo, GoalInput, PlannedTask, Planner, TeammateInfo, TreeAccess};

/// Rejected plans sent back to the lead when `[planner] replan_rounds` is not set.
pub const DEFAULT_REPLAN_ROUNDS: u32 = 3;
/// Most `replan_rounds`: each round is at least one more model call.
pub const MAX_REPLAN_ROUNDS: u32 = 10;
/// Most tasks asked of a lead when `[planner] groups` is not set.
pub const DEFAULT_LEAD_TASKS: u32 = 50;
/// KiB a lead may read per attempt when `[planner] read_kib` is not set.
pub const DEFAULT_READ_KIB: u32 = 256;

/// One plan as the lead proposed it, for the report: its tasks as the lead
/// wrote them and, if it was rejected, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The tasks, as proposed.
    pub tasks: Vec<ProposedTask>,
    /// Why it was rejected (at most [`MAX_PROBLEMS`]); empty for the plan
    /// that validated.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// One task of a [`Proposal`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedTask {
    /// Its id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// The paths or patterns it owns, as written.
    #[serde(default)]
    pub owns: Vec<String>,
    /// The teammate group or instance named, if any.
    #[serde(default)]
    pub owner: Option<String>,
    /// Tasks it waits for.
    #[serde(default)]
    pub blocked_by: Vec<String>,
}

impl Proposal {
    fn of(planned: &[PlannedTask], problems: &[String]) -> Self {
        let tasks = planned
            .iter()
            .map(|t| ProposedTask {
                id: t.id.clone(),
                subject: t.subject.clone(),
                description: t.description.clone(),
                owns: t.owns.clone(),
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
            })
            .collect();
        Self { tasks, problems: problems.iter().take(MAX_PROBLEMS).cloned().collect() }
    }
}

/// What the lead may plan for.
pub(super) struct Scope<'a> {
    /// The team file's `[planner]` table.
    pub entry: &'a toml::Spanned<PlannerEntry>,
    /// The team's root, resolved.
    pub root: &'a Path,
    /// The files it is shown: under the root, not excluded, covered by the
    /// `[planner] owns` patterns.
    pub files: &'a [String],
    /// The `[planner] owns` patterns.
    pub wanted: &'a GlobSet,
    /// The team's exclusions.
    pub exclude: &'a GlobSet,
}

/// Asks `lead` for a plan of `goal` until one validates, at most
/// 1 + `replan_rounds` times.
pub(super) async fn plan(
    loaded: &Loaded,
    lead: Planner,
    goal: &str,
    scope: Scope<'_>,
) -> Result<(Plan, Option<Planner>), PlanError> {
    let entry = scope.entry;
    let p = entry.get_ref();
    let at = Some(entry.span().start);
    let fail = |message: String| PlanError(vec![loaded.error_at(at, message)]);
    let rounds = p.replan_rounds.unwrap_or(DEFAULT_REPLAN_ROUNDS);
    if rounds > MAX_REPLAN_ROUNDS {
        return Err(fail(format!("[planner] replan_rounds = {rounds} is over the most, {MAX_REPLAN_ROUNDS}")));
    }
    let max_tasks = p.groups.unwrap_or(DEFAULT_LEAD_TASKS).min(MAX_TASKS as u32);
    let read_bytes = u64::from(p.read_kib.unwrap_or(DEFAULT_READ_KIB)) * 1024;
    let files: Vec<FileInfo> = scope
        .files
        .iter()
        .map(|f| FileInfo {
            path: f.clone(),
            size: std::fs::symlink_metadata(scope.root.join(f)).map_or(0, |m| m.len()),
        })
        .collect();
    let teammates: Vec<TeammateInfo> = loaded
        .team
        .teammates
        .iter()
        .map(|t| {
            let t = t.get_ref();
            let plugin = t.plugin.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            TeammateInfo { name: t.name.clone(), instances: t.instances, plugin }
        })
        .collect();
    let given: Vec<PlannedTask> = loaded
        .team
        .tasks
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let t = t.get_ref();
            PlannedTask {
                id: t.id.clone().unwrap_or_else(|| format!("t{}", n + 1)),
                subject: t.subject.clone(),
                description: t.description.clone(),
                owns: t.owns.clone(),
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
            }
        })
        .collect();
    let attempts = rounds + 1;
    let (mut previous, mut problems) = (Vec::new(), Vec::new());
    let mut proposals = Vec::new();
    for attempt in 1..=attempts {
        let input = GoalInput {
            team: loaded.team.name.clone(),
            goal: goal.to_string(),
            files: files.clone(),
            teammates: teammates.clone(),
            given: given.clone(),
            max_tasks,
            attempt,
            attempts,
            previous: std::mem::take(&mut previous),
            problems: std::mem::take(&mut problems),
        };
        let tree = TreeAccess::new(scope.root, &files, loaded.team.read == ReadScope::Root, read_bytes)
            .map_err(|e| fail(format!("cannot open the root for the lead: {e}")))?;
        let planned = lead.plan_goal(input, tree).await.map_err(|e| {
            let limit = e.limit().map(crate::sandbox::LimitHit::kind);
            PlanError(vec![ConfigError { limit, ..loaded.error_at(at, e.to_string()) }])
        })?;
        tracing::info!(attempt, attempts, tasks = planned.len(), "the lead {} proposed a plan", lead.path().display());
        match check(loaded, &scope, &planned) {
            Ok(mut plan) => {
                proposals.push(Proposal::of(&planned, &[]));
                plan.proposals = proposals;
                return Ok((plan, Some(lead)));
            }
            Err(found) => {
                proposals.push(Proposal::of(&planned, &found));
                tracing::warn!(
                    "the lead's plan (attempt {attempt} of {attempts}) was rejected: {}",
                    found.iter().map(String::as_str).collect::<Vec<_>>().join("; ")
                );
                problems = found;
                previous = planned;
            }
        }
    }
    let mut errors = vec![loaded.error_at(
        at,
        format!(
            "the lead's plan was rejected {attempts} time(s) ([planner] replan_rounds = {rounds}); nothing was started. \
             The last plan's problems:"
        ),
    )];
    errors.extend(problems.into_iter().map(|m| loaded.error_at(at, m)));
    Err(PlanError(capped(errors, MAX_PROBLEMS, |n| loaded.error_at(at, format!("and {n} more problems")))))
}

/// The plan of the team file's tasks and `planned` together, or every
/// problem found, as lines for the lead (without team-file locations).
fn check(loaded: &Loaded, scope: &Scope<'_>, planned: &[PlannedTask]) -> Result<Plan, Vec<String>> {
    let entry = scope.entry;
    let span = entry.span();
    let mut problems = Vec::new();
    let mut with_tasks = loaded.clone();
    for t in planned {
        // A pattern is checked as text: `src/**` is covered by `src/**` or
        // `**`, and a literal path by any pattern matching it.
        for f in t.owns.iter().filter(|f| !scope.wanted.is_match(f.as_str()) || scope.exclude.is_match(f.as_str())) {
            problems.push(format!(
                "task {} owns {}, which the [planner] owns patterns do not cover or an exclusion removes",
                shown(&t.id),
                shown(f)
            ));
        }
        let task = TaskEntry {
            id: Some(t.id.clone()),
            subject: t.subject.clone(),
            description: t.description.clone(),
            // A lead's `owns` are patterns, as in a team file: globs name
            // the files a task may create.
            owns: t.owns.clone(),
            owner: t.owner.clone().or_else(|| entry.get_ref().owner.clone()),
            blocked_by: t.blocked_by.clone(),
            deadline: None,
            max_attempts: None,
        };
        with_tasks.team.tasks.push(toml::Spanned::new(span.clone(), task));
    }
    match Plan::build(&with_tasks) {
        Ok(plan) if problems.is_empty() => Ok(plan),
        Ok(_) => Err(problems),
        Err(PlanError(found)) => {
            problems.extend(found.into_iter().map(|e| e.message));
            Err(problems)
        }
    }
}
