//! The plan as the lead proposed it and as validated, for a run planned
//! from a goal: every proposal in order (a rejected one with the problems
//! the host found, which went back to the lead) and the tasks of the plan
//! that ran, with the files each owns after validation.

use serde::{Deserialize, Serialize};

use crate::coordinator::Plan;
use crate::coordinator::plan::lead::Proposal;

/// Most owned files listed per validated task; the rest are counted.
pub const MAX_FILES_LISTED: usize = 50;

/// The lead's plan, proposed and validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadPlan {
    /// What the lead proposed, in order; the last is the one that validated.
    pub proposed: Vec<Proposal>,
    /// The validated plan's tasks, in plan order (the team file's own tasks
    /// included).
    pub validated: Vec<ValidatedTask>,
}

/// One task of the validated plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedTask {
    /// Its id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// The teammate group or instance allowed to run it, if one is named.
    #[serde(default)]
    pub owner: Option<String>,
    /// Tasks it waits for.
    #[serde(default)]
    pub blocked_by: Vec<String>,
    /// The files it owns (the first [`MAX_FILES_LISTED`]).
    pub files: Vec<String>,
    /// How many files it owns in all.
    pub file_count: usize,
}

impl LeadPlan {
    /// The lead's plan of `plan`; `None` when no lead planned it.
    pub fn of(plan: &Plan) -> Option<Self> {
        if plan.proposals.is_empty() {
            return None;
        }
        let validated = plan
            .tasks
            .iter()
            .map(|t| ValidatedTask {
                id: t.id.clone(),
                subject: t.subject.clone(),
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
                files: t.owned_files.iter().take(MAX_FILES_LISTED).cloned().collect(),
                file_count: t.owned_files.len(),
            })
            .collect();
        Some(Self { proposed: plan.proposals.clone(), validated })
    }
}
