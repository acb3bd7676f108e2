//! `planner`: the default swarm-host planner.
//!
//! [`Planner::plan`] splits the request's files into at most `groups`
//! disjoint tasks `p1..pN`, balanced by file count (sizes differ by at most
//! one) and contiguous in sorted order, so each task stays a directory-ish
//! chunk of the tree. No task is empty: with fewer files than groups there
//! are fewer tasks, and no files means no tasks. Subjects come from the
//! request's template with `{n}` (task number), `{first}` and `{last}` (its
//! first and last file) filled in. No task has an owner or dependencies.
//!
//! [`Planner::synthesize`] writes `N tasks: X completed, Y failed, Z
//! findings`, then one line per failed task with its reason.
//!
//! All of it lives in the pure module [`split`], which `cargo test -p
//! planner` tests natively.

pub mod split;

use swarm_guest_sdk::planner::*;

/// The default planner: stateless.
#[derive(Default)]
pub struct DefaultPlanner;

impl Planner for DefaultPlanner {
    fn plan(&mut self, req: &PlanRequest) -> Result<Vec<PlannedTask>, String> {
        let tasks = split::plan(req)?;
        debug(&format!("{} files of team {} in {} tasks", req.files.len(), req.team, tasks.len()));
        Ok(tasks)
    }

    fn synthesize(&mut self, _team: &str, results: &[TaskResult]) -> String {
        split::synthesize(results)
    }
}

export_planner!(DefaultPlanner);
