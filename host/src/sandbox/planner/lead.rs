//! The `lead` world of `wit/planner.wit`: a component that plans a team's
//! tasks from its goal with a model, and writes the closing text from every
//! task's outcome. It is loaded and bounded like a planner (see the parent
//! module); this module holds its calls and its one extra import, `tree`:
//! read-only access to the files it was shown, within a byte budget.
//!
//! What a lead returns is bounded like a planner's (at most `max-tasks`
//! tasks, at most `report_kib` of text) and validated by the caller.

use std::collections::HashSet;
use std::path::Path;

use super::{PlannedTask, Planner, PlannerError, PlannerState, planning};
use crate::sandbox::workspace::{Holder, ReadScope, Workspace};

/// Generated bindings for the `lead` world of `wit/`.
#[allow(missing_docs)]
pub(super) mod bindings {
    wasmtime::component::bindgen!({
        world: "lead",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        // Shared with the planner world, so one host implementation serves both.
        with: {
            "swarm:teammate/llm": crate::sandbox::bindings::swarm::teammate::llm,
            "swarm:teammate/log": super::super::bindings::swarm::teammate::log,
            "swarm:teammate/planning": super::super::bindings::swarm::teammate::planning,
        },
    });
}

use bindings::swarm::teammate::{leading, tree};

/// One file the lead is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Relative, `/`-separated path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// A teammate group the lead may assign tasks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeammateInfo {
    /// Group name.
    pub name: String,
    /// Instances.
    pub instances: u32,
    /// The plugin's file name.
    pub plugin: String,
}

/// What a lead plans from: the input of [`Planner::plan_goal`].
#[derive(Debug, Clone, Default)]
pub struct GoalInput {
    /// The team's name.
    pub team: String,
    /// The team file's goal.
    pub goal: String,
    /// The files it may plan for, sorted.
    pub files: Vec<FileInfo>,
    /// The teammate groups.
    pub teammates: Vec<TeammateInfo>,
    /// The team file's own tasks.
    pub given: Vec<PlannedTask>,
    /// Most tasks the plan may have.
    pub max_tasks: u32,
    /// This attempt, from 1.
    pub attempt: u32,
    /// Attempts in all.
    pub attempts: u32,
    /// The rejected plan of the previous attempt.
    pub previous: Vec<PlannedTask>,
    /// Every problem found in it.
    pub problems: Vec<String>,
}

/// The outcome of one task, the input of [`Planner::synthesize_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Task id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// True if it completed, false if it failed for good.
    pub completed: bool,
    /// The report's summary, or why it failed.
    pub summary: String,
    /// Its findings, one line each (the first [`MAX_FINDINGS_SHOWN`]).
    pub findings: Vec<String>,
    /// How many findings it had.
    pub finding_count: u32,
    /// Files its diff changed.
    pub files_changed: u32,
    /// Lines added.
    pub lines_added: u32,
    /// Lines removed.
    pub lines_removed: u32,
}

/// Most finding lines handed to the lead per task.
pub const MAX_FINDINGS_SHOWN: usize = 50;

/// What a lead's `tree.read` may read during one `plan-goal` call: the
/// files it was shown, through a read-only workspace (no symlinks, the
/// built-in deny list), for at most `budget` bytes in all.
#[derive(Debug)]
pub struct TreeAccess {
    workspace: Option<Workspace>,
    listed: HashSet<String>,
    left: u64,
    budget: u64,
}

impl TreeAccess {
    /// Reads of the `files` under `root`, `budget` bytes in all; `can_read`
    /// false (the team's `read` is not `root`) refuses every read.
    pub fn new(root: &Path, files: &[FileInfo], can_read: bool, budget: u64) -> std::io::Result<Self> {
        let workspace =
            if can_read { Some(Workspace::new(Workspace::open_root(root)?, ReadScope::Root, budget)) } else { None };
        let listed = files.iter().map(|f| f.path.clone()).collect();
        Ok(Self { workspace, listed, left: budget, budget })
    }

    fn read(&mut self, path: &str) -> Result<String, String> {
        let Some(workspace) = &self.workspace else {
            return Err(
                "denied: the team's read scope is `owned`; set read = \"root\" to let the lead read files".to_string()
            );
        };
        if !self.listed.contains(path) {
            return Err(format!("denied: {} is not one of the files listed in the request", shown(path)));
        }
        let bytes = workspace.read(path, &Holder::none()).map_err(|e| e.to_string())?;
        let size = bytes.len() as u64;
        if size > self.left {
            return Err(format!(
                "over budget: {} is {size} bytes and {} of the lead's {} bytes are left ([planner] read_kib)",
                shown(path),
                self.left,
                self.budget
            ));
        }
        self.left -= size;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// `path` for an error the guest sees: in backticks, control characters
/// escaped, cut after 200 characters.
fn shown(path: &str) -> String {
    let cut: String = path.chars().take(200).collect();
    format!("`{}`", crate::sanitize::line(&cut))
}

impl tree::Host for PlannerState {
    async fn read(&mut self, path: String) -> wasmtime::Result<Result<String, String>> {
        Ok(match &mut self.tree {
            Some(tree) => tree.read(&path),
            None => Err("denied: no file may be read in this call".to_string()),
        })
    }
}

impl leading::Host for PlannerState {}

impl Planner {
    pub(super) fn lead_pre(&self, call: &'static str) -> Result<&bindings::LeadPre<PlannerState>, PlannerError> {
        match &self.pre {
            super::Pre::Lead(pre, _) => Ok(pre),
            super::Pre::Planner(_) => Err(PlannerError::WrongWorld {
                path: self.path.clone(),
                call,
                is: "a planner (world planner)",
                hint: "planning from the team file's `goal` needs a lead (world lead), e.g. plugins/lead",
            }),
        }
    }

    /// Runs the lead's `plan-goal` in a fresh sandbox, its reads going
    /// through `tree`. `Err` if it traps, refuses, returns more than
    /// `input.max_tasks` tasks or more than `report_kib` of text, or is not
    /// a lead.
    pub async fn plan_goal(&self, input: GoalInput, tree: TreeAccess) -> Result<Vec<PlannedTask>, PlannerError> {
        let call = "plan-goal";
        let pre = self.lead_pre(call)?;
        let max = input.max_tasks;
        let can_read = tree.workspace.is_some();
        let req = leading::GoalRequest {
            team: input.team,
            goal: input.goal,
            files: input.files.into_iter().map(|f| leading::FileInfo { path: f.path, size: f.size }).collect(),
            teammates: input
                .teammates
                .into_iter()
                .map(|t| leading::TeammateInfo { name: t.name, instances: t.instances, plugin: t.plugin })
                .collect(),
            given: input.given.iter().map(planning::PlannedTask::from).collect(),
            max_tasks: max,
            attempt: input.attempt,
            attempts: input.attempts,
            previous: input.previous.iter().map(planning::PlannedTask::from).collect(),
            problems: input.problems,
            can_read,
        };
        let mut store = self.store(call, Some(tree));
        let lead = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let planned = match lead.call_plan_goal(&mut store, &req).await {
            Ok(Ok(tasks)) => tasks,
            Ok(Err(reason)) => {
                return Err(PlannerError::Refused { path: self.path.clone(), reason: crate::sanitize::line(&reason) });
            }
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        if planned.len() > max as usize {
            return Err(PlannerError::TooManyTasks { path: self.path.clone(), groups: max, returned: planned.len() });
        }
        self.check_size(call, super::plan_size(&planned))?;
        Ok(planned.into_iter().map(PlannedTask::from).collect())
    }

    /// Runs the lead's `on-message` for a teammate's message to `team-lead`
    /// in a fresh sandbox: its answer to `sender`, if any, cut to
    /// `message_kib`.
    pub async fn on_message(
        &self,
        team: &str,
        goal: &str,
        sender: &str,
        body: &str,
    ) -> Result<Option<String>, PlannerError> {
        let call = "on-message";
        let pre = self.lead_pre(call)?;
        let mut store = self.store(call, None);
        let lead = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let answer = match lead.call_on_message(&mut store, team, goal, sender, body).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        Ok(answer.map(|text| self.cut_message(text)))
    }

    /// `text` cut to `message_kib` (at a character boundary).
    pub(super) fn cut_message(&self, mut text: String) -> String {
        let max = self.limits.message_bytes();
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }

    /// Runs the lead's `synthesize-run` in a fresh sandbox and returns its
    /// text, control characters escaped line by line.
    pub async fn synthesize_run(
        &self,
        team: &str,
        goal: &str,
        outcomes: Vec<TaskOutcome>,
    ) -> Result<String, PlannerError> {
        let call = "synthesize-run";
        let pre = self.lead_pre(call)?;
        let outcomes: Vec<leading::TaskOutcome> = outcomes
            .into_iter()
            .map(|o| leading::TaskOutcome {
                id: o.id,
                subject: o.subject,
                status: if o.completed { planning::TaskStatus::Completed } else { planning::TaskStatus::Failed },
                summary: o.summary,
                findings: o.findings.into_iter().take(MAX_FINDINGS_SHOWN).collect(),
                finding_count: o.finding_count,
                files_changed: o.files_changed,
                lines_added: o.lines_added,
                lines_removed: o.lines_removed,
            })
            .collect();
        let mut store = self.store(call, None);
        let lead = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let text = match lead.call_synthesize_run(&mut store, team, goal, &outcomes).await {
            Ok(text) => text,
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        self.check_size(call, text.len())?;
        Ok(text.lines().map(crate::sanitize::line).collect::<Vec<_>>().join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Vec<FileInfo>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/a.rs"), "0123456789").unwrap();
        std::fs::write(dir.path().join("src/b.rs"), "0123456789").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "hidden").unwrap();
        let files = ["src/a.rs", "src/b.rs"].map(|p| FileInfo { path: p.into(), size: 10 }).to_vec();
        (dir, files)
    }

    #[test]
    fn the_lead_reads_listed_files_within_its_budget_and_nothing_else() {
        let (dir, files) = tree();
        let mut access = TreeAccess::new(dir.path(), &files, true, 15).unwrap();
        assert_eq!(access.read("src/a.rs").unwrap(), "0123456789");
        // Five bytes are left: the second file is refused, naming the setting.
        let e = access.read("src/b.rs").unwrap_err();
        assert!(e.contains("over budget") && e.contains("5 of the lead's 15 bytes") && e.contains("read_kib"), "{e}");
        // Files it was not shown, and escapes, are refused whatever the budget.
        for path in ["secret.txt", "../secret.txt", "/etc/passwd", "src/../secret.txt"] {
            let e = access.read(path).unwrap_err();
            assert!(e.contains("is not one of the files listed"), "{path}: {e}");
        }
    }

    #[test]
    fn without_read_rights_every_read_is_refused() {
        let (dir, files) = tree();
        let mut access = TreeAccess::new(dir.path(), &files, false, 1 << 20).unwrap();
        let e = access.read("src/a.rs").unwrap_err();
        assert!(e.contains("read = \"root\""), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_listed_path_swapped_for_a_symlink_out_of_the_root_is_not_followed() {
        let (dir, files) = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("key"), "SECRET").unwrap();
        // The attack: the file the lead was shown becomes a symlink after the walk.
        std::fs::remove_file(dir.path().join("src/a.rs")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("key"), dir.path().join("src/a.rs")).unwrap();
        let mut access = TreeAccess::new(dir.path(), &files, true, 1 << 20).unwrap();
        let got = access.read("src/a.rs");
        assert!(got.as_ref().is_err_and(|e| !e.contains("SECRET")), "{got:?}");
    }
}
