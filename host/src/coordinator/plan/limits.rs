//! The fixed limits of a plan, from a team file or a planner plugin alike.
//!
//! They keep validation, claiming and saving fast and keep every error
//! short: a plan over one of them is refused with exit 2 and an error that
//! names the limit, never run slowly or half. Each check here is a plain
//! length or count comparison; the dependency depth is measured in
//! [`super::graph`].

use super::shown;

/// Most tasks in one plan (team-file tasks and planned tasks together).
pub const MAX_TASKS: usize = 10_000;
/// Longest `blocked_by` chain, counted in tasks (a task blocked by nothing
/// has depth 1).
pub const MAX_DEPENDENCY_DEPTH: usize = 1_000;
/// Most `blocked_by` entries of one task.
pub const MAX_BLOCKED_BY: usize = 1_000;
/// Longest task id, teammate name or team name, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest task subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 1_024;
/// Longest task description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 64 * 1024;
/// Longest `owns` or `exclude` pattern (or planned path), in bytes.
pub const MAX_PATTERN_LEN: usize = 4_096;
/// Most `owns` patterns (or planned paths) of one task.
pub const MAX_OWNS: usize = 100_000;
/// Most `owns` patterns with a wildcard in one plan, all tasks together.
/// Literal paths do not count (they are looked up, not matched): this keeps
/// matching every file of the tree against the plan's globs fast.
pub const MAX_GLOBS: usize = 1_000;
/// Most warnings kept in a plan; the rest are counted in one last line.
pub const MAX_WARNINGS: usize = 100;

/// The size problems of one task's fields: one message per field over its
/// limit, each naming the limit. The id is checked with the other names,
/// and each pattern's length where it is parsed.
pub fn task_problems(
    id: &str,
    subject: &str,
    description: &str,
    owns: &[String],
    blocked_by: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    let task = shown(id);
    if subject.len() > MAX_SUBJECT_LEN {
        out.push(format!("task {task}: subject is {} bytes, over max_subject_len = {MAX_SUBJECT_LEN}", subject.len()));
    }
    if description.len() > MAX_DESCRIPTION_LEN {
        out.push(format!(
            "task {task}: description is {} bytes, over max_description_len = {MAX_DESCRIPTION_LEN}",
            description.len()
        ));
    }
    if owns.len() > MAX_OWNS {
        out.push(format!("task {task}: owns {} patterns, over max_owns = {MAX_OWNS}", owns.len()));
    }
    if blocked_by.len() > MAX_BLOCKED_BY {
        out.push(format!(
            "task {task}: blocked_by has {} entries, over max_blocked_by = {MAX_BLOCKED_BY}",
            blocked_by.len()
        ));
    }
    out
}

/// The problem of a plan with `n` tasks, if that is too many.
pub fn task_count_problem(n: usize) -> Option<String> {
    (n > MAX_TASKS).then(|| format!("the plan has {n} tasks, over max_tasks = {MAX_TASKS}"))
}
