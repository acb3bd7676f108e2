//! Changes to the task list while the team runs: a task added by the lead,
//! a new owner for a task that has not started, and a file granted to a
//! held task. Each is one short critical section under the list's lock (so
//! a grant and a claim never interleave), keeps the indices in step, and is
//! journaled with the changed spec ([`TaskChange::spec`]) so that a resume
//! sees it. Whether a change is allowed by the plan's rules is the
//! coordinator's to check first; what is checked here is what only the
//! lock can decide (a task still not started, a file no unfinished task
//! owns at this instant).

use globset::GlobBuilder;

use super::{Status, TaskChange, TaskList, TaskSpec, TaskState};

impl TaskState {
    /// A task that has not run yet.
    pub(super) fn pending(spec: TaskSpec) -> Self {
        Self {
            spec,
            status: Status::Pending,
            holder: None,
            attempts: Vec::new(),
            report: None,
            failure: None,
            failure_limit: None,
            started: None,
        }
    }
}

impl TaskList {
    /// Adds `spec` as a pending task at the end of the list. Refused if its
    /// id is taken.
    pub fn add(&self, spec: TaskSpec) -> Result<(), String> {
        let mut inner = self.lock();
        if inner.deps.by_id.contains_key(&spec.id) {
            return Err(format!("task id `{}` is already used", spec.id));
        }
        let i = inner.tasks.len();
        let mut waiting = 0;
        for dep in &spec.blocked_by {
            match inner.deps.by_id.get(dep).copied() {
                Some(d) if inner.tasks[d].status == Status::Completed => {}
                Some(d) => {
                    waiting += 1;
                    inner.deps.dependents[d].push(i);
                }
                None => waiting += 1,
            }
        }
        inner.deps.by_id.insert(spec.id.clone(), i);
        inner.deps.waiting.push(waiting);
        inner.deps.dependents.push(Vec::new());
        inner.tasks.push(TaskState::pending(spec));
        inner.open += 1;
        if inner.is_ready(i) {
            let owner = inner.tasks[i].spec.owner.clone();
            inner.ready.set(&owner).insert(i);
        }
        self.saved_spec(&inner, i);
        Ok(())
    }

    /// Gives the task `id`, which must be pending and never claimed, to
    /// `owner` (`None`: anyone).
    pub fn reassign(&self, id: &str, owner: Option<String>) -> Result<(), String> {
        let mut inner = self.lock();
        let Some(&i) = inner.deps.by_id.get(id) else {
            return Err(format!("there is no task `{id}`"));
        };
        let t = &inner.tasks[i];
        if t.status != Status::Pending || !t.attempts.is_empty() {
            return Err(format!("task `{id}` has started; only a task that has not started may change owner"));
        }
        let ready = inner.is_ready(i);
        if ready {
            let old = inner.tasks[i].spec.owner.clone();
            inner.ready.set(&old).remove(&i);
        }
        inner.tasks[i].spec.owner = owner.clone();
        if ready {
            inner.ready.set(&owner).insert(i);
        }
        self.saved_spec(&inner, i);
        Ok(())
    }

    /// Moves the existing file `path` to the task `teammate` holds, if no
    /// other unfinished task owns it (among its files, or by an `owns`
    /// pattern that matches it); a finished task that owned it gives it
    /// up. Returns the held task's id, or why not.
    pub fn grant(&self, teammate: &str, path: &str) -> Result<String, String> {
        let mut inner = self.lock();
        let Some(&held) = inner.holders.get(teammate) else {
            return Err(format!("{teammate} holds no task"));
        };
        if inner.tasks[held].spec.owned_files.contains(path) {
            return Ok(inner.tasks[held].spec.id.clone());
        }
        let open = |t: &TaskState| matches!(t.status, Status::Pending | Status::InProgress);
        for t in inner.tasks.iter().enumerate().filter(|(j, t)| *j != held && open(t)).map(|(_, t)| t) {
            let by_pattern = t.spec.creates.iter().any(|p| matches(p, path));
            if t.spec.owned_files.contains(path) || by_pattern {
                let how = if t.status == Status::InProgress { "a running task" } else { "a task that has not run yet" };
                return Err(format!("`{path}` is owned by task `{}`, {how}", t.spec.id));
            }
        }
        let finished: Vec<usize> = (0..inner.tasks.len())
            .filter(|&j| j != held && !open(&inner.tasks[j]) && inner.tasks[j].spec.owned_files.contains(path))
            .collect();
        for &j in &finished {
            inner.tasks[j].spec.owned_files.remove(path);
            self.saved_spec(&inner, j);
        }
        inner.tasks[held].spec.owned_files.insert(path.to_string());
        self.saved_spec(&inner, held);
        Ok(inner.tasks[held].spec.id.clone())
    }

    /// Journals the task at `i` with its spec.
    fn saved_spec(&self, inner: &super::Inner, i: usize) {
        if let Some(save) = &self.save {
            let mut change = TaskChange::of(i, &inner.tasks[i]);
            change.spec = Some(Box::new(inner.tasks[i].spec.clone()));
            save(vec![change]);
        }
    }
}

/// Whether the `owns` pattern `pattern` matches `path` (as the plan
/// matches: `*` stops at `/`); an invalid pattern matches nothing.
fn matches(pattern: &str, path: &str) -> bool {
    GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .is_ok_and(|g| g.compile_matcher().is_match(path))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn spec(id: &str, owns: &[&str], creates: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            subject: format!("do {id}"),
            description: String::new(),
            owned_files: owns.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            owner: None,
            blocked_by: Vec::new(),
            deadline: None,
            max_attempts: 1,
            creates: creates.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_added_task_is_claimable_and_journaled_with_its_spec() {
        let saved = Arc::new(Mutex::new(Vec::<TaskChange>::new()));
        let sink = saved.clone();
        let list = TaskList::new(vec![spec("a", &["a.rs"], &[])])
            .with_journal(Box::new(move |c| sink.lock().unwrap().extend(c)), Arc::new(|| Box::pin(async {})));
        assert!(list.add(spec("a", &[], &[])).unwrap_err().contains("already used"));
        let mut b = spec("b", &["b.rs"], &[]);
        b.blocked_by = vec!["a".into()];
        list.add(b).unwrap();
        assert_eq!(list.claim("x-1", "x").unwrap().spec.id, "a");
        assert!(list.claim("y-1", "y").is_none(), "b waits for a");
        list.complete("x-1", "a", super::super::TaskReport { summary: "ok".into(), findings: vec![] }).unwrap();
        assert_eq!(list.claim("y-1", "y").unwrap().spec.id, "b");
        // Replaying the journal onto the first snapshot rebuilds the list.
        let mut replayed = vec![TaskState::pending(spec("a", &["a.rs"], &[]))];
        for c in saved.lock().unwrap().clone() {
            c.apply(&mut replayed).unwrap();
        }
        let now = list.snapshot();
        let key = |t: &TaskState| (t.spec.clone(), t.status, t.holder.clone(), t.attempts.clone());
        assert_eq!(replayed.iter().map(key).collect::<Vec<_>>(), now.iter().map(key).collect::<Vec<_>>());
    }

    #[test]
    fn only_a_task_that_never_started_changes_owner() {
        let list = TaskList::new(vec![spec("a", &[], &[]), spec("b", &[], &[])]);
        list.reassign("b", Some("checker".into())).unwrap();
        assert_eq!(list.claim("x-1", "x").unwrap().spec.id, "a");
        assert!(list.claim("x-2", "x").is_none(), "b is the checker's now");
        assert!(list.reassign("a", None).unwrap_err().contains("has started"));
        assert!(list.reassign("zz", None).unwrap_err().contains("no task `zz`"));
        assert_eq!(list.claim("checker-1", "checker").unwrap().spec.id, "b");
    }

    #[test]
    fn a_file_is_granted_only_when_no_unfinished_task_owns_it() {
        let list = TaskList::new(vec![
            spec("a", &["a.rs"], &["a.rs"]),
            spec("b", &["b.rs"], &["b.rs"]),
            spec("c", &[], &["gen/**"]),
        ]);
        assert!(list.grant("x-1", "free.rs").unwrap_err().contains("holds no task"));
        assert_eq!(list.claim("x-1", "x").unwrap().spec.id, "a");
        assert_eq!(list.claim("x-2", "x").unwrap().spec.id, "b");
        let e = list.grant("x-1", "b.rs").unwrap_err();
        assert!(e.contains("task `b`, a running task"), "{e}");
        let e = list.grant("x-1", "gen/new.rs").unwrap_err();
        assert!(e.contains("task `c`, a task that has not run yet"), "{e}");
        assert_eq!(list.grant("x-1", "free.rs").unwrap(), "a");
        assert!(list.snapshot()[0].spec.owned_files.contains("free.rs"));
        // A finished task's file moves.
        list.complete("x-2", "b", super::super::TaskReport { summary: "ok".into(), findings: vec![] }).unwrap();
        assert_eq!(list.grant("x-1", "b.rs").unwrap(), "a");
        let tasks = list.snapshot();
        assert!(tasks[0].spec.owned_files.contains("b.rs") && !tasks[1].spec.owned_files.contains("b.rs"));
    }
}
