//! A saved plan: the tasks of a validated plan as JSON, for people to
//! review (and edit) before anything runs. `swarm-host plan` writes one;
//! `swarm-host run --plan` reads it back and validates it again with the
//! team file's teammates, limits and tree, exactly like a team file's own
//! tasks ([`Plan::build`]): an edited plan gets no more trust than the
//! team file.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Plan, PlanError};
use crate::coordinator::config::{Loaded, MAX_TEAM_FILE_BYTES, TaskEntry};

/// The version of the saved plan format.
pub const PLAN_FILE_VERSION: u32 = 1;

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// [`PLAN_FILE_VERSION`].
    pub version: u32,
    /// The team it is for (must be the team file's name).
    pub team: String,
    /// The goal it was planned from, if any (for people; not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Every task, in order: they replace the team file's tasks and its
    /// planner.
    pub tasks: Vec<PlanFileTask>,
}

/// One task of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFileTask {
    /// Task id.
    pub id: String,
    /// One line.
    pub subject: String,
    /// Instructions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Owned paths and globs, as in a team file.
    #[serde(default)]
    pub owns: Vec<String>,
    /// Teammate group or instance, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tasks that must complete first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
    /// Deadline of one attempt, e.g. `"5m"`.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Attempts before failing for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// Why a saved plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// Unreadable or too large.
    #[error("cannot read the plan {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not a plan of this format.
    #[error("the plan {path} is not a saved plan (version {PLAN_FILE_VERSION}): {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, with the line and column.
        reason: String,
    },
    /// A plan for another team.
    #[error("the plan {path} is for team `{found}`, not `{expected}`")]
    OtherTeam {
        /// The file.
        path: String,
        /// The team file's name.
        expected: String,
        /// The plan's team.
        found: String,
    },
}

impl PlanFile {
    /// The tasks of `plan`, with their owns patterns as written.
    pub fn of(plan: &Plan, goal: Option<&str>) -> Self {
        let tasks = plan
            .tasks
            .iter()
            .map(|t| PlanFileTask {
                id: t.id.clone(),
                subject: t.subject.clone(),
                description: t.description.clone(),
                owns: t.creates.clone(),
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
                deadline: t.deadline,
                max_attempts: Some(t.max_attempts),
            })
            .collect();
        Self { version: PLAN_FILE_VERSION, team: plan.team.clone(), goal: goal.map(str::to_string), tasks }
    }

    /// Reads a saved plan (at most the size of a team file).
    pub fn read(path: &Path) -> Result<Self, PlanFileError> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let read = |reason: String| PlanFileError::Read { path: shown.clone(), reason };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(|e| read(e.to_string()))?
            .take(MAX_TEAM_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| read(e.to_string()))?;
        if text.len() as u64 > MAX_TEAM_FILE_BYTES {
            return Err(read(format!("larger than {MAX_TEAM_FILE_BYTES} bytes")));
        }
        let file: PlanFile = serde_json::from_str(&text)
            .map_err(|e| PlanFileError::Format { path: shown.clone(), reason: e.to_string() })?;
        if file.version != PLAN_FILE_VERSION {
            return Err(PlanFileError::Format {
                path: shown,
                reason: format!("version {} is not {PLAN_FILE_VERSION}", file.version),
            });
        }
        Ok(file)
    }

    /// The plan of the team file `loaded` with this plan's tasks instead
    /// of its own tasks and planner, validated like a team file.
    pub fn build(&self, loaded: &Loaded, path: &Path) -> Result<Plan, PlanError> {
        if self.team != loaded.team.name {
            let e = PlanFileError::OtherTeam {
                path: path.display().to_string(),
                expected: loaded.team.name.clone(),
                found: crate::sanitize::line(&self.team),
            };
            return Err(PlanError(vec![loaded.error_at(None, e.to_string())]));
        }
        let mut with_tasks = loaded.clone();
        with_tasks.team.planner = None;
        with_tasks.team.goal = None;
        with_tasks.team.tasks = self
            .tasks
            .iter()
            .map(|t| {
                toml::Spanned::new(
                    0..0,
                    TaskEntry {
                        id: Some(t.id.clone()),
                        subject: t.subject.clone(),
                        description: t.description.clone(),
                        owns: t.owns.clone(),
                        owner: t.owner.clone(),
                        blocked_by: t.blocked_by.clone(),
                        deadline: t.deadline,
                        max_attempts: t.max_attempts,
                    },
                )
            })
            .collect();
        // Problems name the plan's tasks; team-file lines would point
        // nowhere useful.
        Plan::build(&with_tasks).map_err(|PlanError(found)| {
            PlanError(
                found
                    .into_iter()
                    .map(|e| crate::coordinator::config::ConfigError { file: path.to_path_buf(), line: None, ..e })
                    .collect(),
            )
        })
    }
}
