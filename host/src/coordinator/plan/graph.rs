//! The `blocked_by` graph of a plan: one dependency cycle, if there is one,
//! and the longest dependency chain.
//!
//! Both come from one pass of Kahn's algorithm with explicit work lists, so
//! a chain as long as the plan allows costs time in proportion to the tasks
//! and edges, and no stack: nothing here recurses.

use std::collections::HashMap;

use crate::tasks::TaskSpec;

/// What the dependency graph of a plan looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A dependency cycle, as the ids along it (the first repeated at the
    /// end): `a` blocked by `b` blocked by `a` is `[a, b, a]`.
    Cycle(Vec<String>),
    /// No cycle. `depth` is the longest chain in tasks (a task blocked by
    /// nothing has depth 1; an empty plan has depth 0), ending at `deepest`.
    Acyclic {
        /// Tasks in the longest chain.
        depth: usize,
        /// Index of the task that ends it.
        deepest: Option<usize>,
    },
}

/// The shape of the graph of `tasks`. Unknown `blocked_by` ids are left out
/// (the plan reports them); a repeated task id refers to its first task.
pub fn shape(tasks: &[TaskSpec]) -> Shape {
    let n = tasks.len();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, t) in tasks.iter().enumerate() {
        index.entry(t.id.as_str()).or_insert(i);
    }
    let deps: Vec<Vec<usize>> =
        tasks.iter().map(|t| t.blocked_by.iter().filter_map(|d| index.get(d.as_str()).copied()).collect()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    // `waiting[i]`: dependencies of `i` not yet ordered; `depth[i]` is final
    // once it reaches 0, since every dependency has been ordered by then.
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut depth = vec![1usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut best: Option<usize> = None;
    while let Some(i) = ready.pop() {
        if best.is_none_or(|b| depth[i] > depth[b] || (depth[i] == depth[b] && i < b)) {
            best = Some(i);
        }
        for &j in &dependents[i] {
            depth[j] = depth[j].max(depth[i] + 1);
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(j);
            }
        }
    }
    match (0..n).find(|&i| waiting[i] > 0) {
        Some(start) => Shape::Cycle(cycle_from(start, tasks, &deps, &waiting)),
        None => Shape::Acyclic { depth: best.map_or(0, |b| depth[b]), deepest: best },
    }
}

/// Walks from `start` (a task left unordered) along unordered dependencies
/// until a task repeats: every unordered task has one, so the walk ends in
/// a cycle within `n` steps.
fn cycle_from(start: usize, tasks: &[TaskSpec], deps: &[Vec<usize>], waiting: &[usize]) -> Vec<String> {
    let mut at: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut i = start;
    loop {
        if let Some(&from) = at.get(&i) {
            let mut cycle: Vec<String> = path[from..].iter().map(|&k: &usize| tasks[k].id.clone()).collect();
            cycle.push(tasks[i].id.clone());
            return cycle;
        }
        at.insert(i, path.len());
        path.push(i);
        i = deps[i].iter().copied().find(|&d| waiting[d] > 0).expect("an unordered task has an unordered dependency");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, blocked_by: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            subject: String::new(),
            description: String::new(),
            owned_files: Default::default(),
            owner: None,
            blocked_by: blocked_by.iter().map(|s| s.to_string()).collect(),
            deadline: None,
            max_attempts: 1,
            creates: Vec::new(),
        }
    }

    #[test]
    fn finds_the_cycle_from_the_first_task_in_plan_order() {
        let tasks = [task("a", &["b"]), task("b", &["a"]), task("c", &[])];
        assert_eq!(shape(&tasks), Shape::Cycle(vec!["a".into(), "b".into(), "a".into()]));
        let own = [task("x", &[]), task("self", &["self"])];
        assert_eq!(shape(&own), Shape::Cycle(vec!["self".into(), "self".into()]));
        // A task downstream of a cycle leads to it; the cycle is what is named.
        let downstream = [task("d", &["a"]), task("a", &["b"]), task("b", &["a"])];
        assert_eq!(shape(&downstream), Shape::Cycle(vec!["a".into(), "b".into(), "a".into()]));
    }

    #[test]
    fn measures_the_longest_chain_and_ignores_unknown_ids() {
        let tasks = [task("a", &[]), task("b", &["a", "ghost"]), task("c", &["b", "a"]), task("d", &["a"])];
        assert_eq!(shape(&tasks), Shape::Acyclic { depth: 3, deepest: Some(2) });
        assert_eq!(shape(&[]), Shape::Acyclic { depth: 0, deepest: None });
    }
}
