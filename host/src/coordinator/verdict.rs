//! The failure policy of a run (`--fail-on`) and the verdict it gives on a
//! report: whether the run failed, and what in the report failed it.
//!
//! | policy | fails the run when |
//! | --- | --- |
//! | `never` | nothing in the report (tasks and findings are reported only) |
//! | `error` (default) | a task failed or did not run |
//! | `warning` | a task failed, or a finding of severity `warning` or `error` exists |
//! | `note` | a task failed, or any finding exists |
//!
//! Findings never fail a run under the default `error`: that keeps the
//! behaviour from before findings had a severity (only failed tasks fail a
//! run); `--fail-on warning` is the gate for findings. How a run *ended*
//! (stopped by a signal, a timeout, or swarm-host's own error) is not a
//! matter of policy: see `cli::exit`.

use serde::{Deserialize, Serialize};

use super::report::RunReport;
use crate::model::Severity;
use crate::tasks::Status;

/// What in a report fails the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailOn {
    /// Nothing in the report fails the run.
    Never,
    /// Failed tasks (and tasks that did not run) fail the run.
    #[default]
    Error,
    /// Failed tasks, and findings of severity `warning` or `error`.
    Warning,
    /// Failed tasks, and any finding.
    Note,
}

impl FailOn {
    /// The policy's name as `--fail-on` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        }
    }

    /// The least severity of a finding that fails the run, if findings
    /// fail it at all.
    pub fn finding_threshold(self) -> Option<Severity> {
        match self {
            Self::Never | Self::Error => None,
            Self::Warning => Some(Severity::Warning),
            Self::Note => Some(Severity::Note),
        }
    }

    /// True if failed tasks fail the run.
    pub fn fails_on_tasks(self) -> bool {
        self != Self::Never
    }
}

impl std::fmt::Display for FailOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's verdict on a report, kept in the report so that it says
/// which policy failed the run and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The policy applied.
    pub fail_on: FailOn,
    /// True if the policy fails the run.
    pub failed: bool,
    /// Tasks that failed or did not run, counted if the policy fails on them.
    pub failed_tasks: usize,
    /// Findings at or above the policy's threshold.
    pub gating_findings: usize,
}

impl Verdict {
    /// Judges `report` under `fail_on`.
    pub fn of(report: &RunReport, fail_on: FailOn) -> Self {
        let failed_tasks = if fail_on.fails_on_tasks() {
            report.tasks.iter().filter(|t| t.status != Status::Completed).count()
        } else {
            0
        };
        let gating_findings = fail_on
            .finding_threshold()
            .map_or(0, |least| report.tasks.iter().flat_map(|t| &t.findings).filter(|f| f.severity >= least).count());
        Self { fail_on, failed: failed_tasks > 0 || gating_findings > 0, failed_tasks, gating_findings }
    }

    /// One line for people: `failed by --fail-on warning: 3 finding(s) of
    /// severity warning or above`, or `passed (--fail-on error)`.
    pub fn line(&self) -> String {
        if !self.failed {
            return format!("passed (--fail-on {})", self.fail_on);
        }
        let mut why = Vec::new();
        if self.failed_tasks > 0 {
            why.push(format!("{} task(s) failed or did not run", self.failed_tasks));
        }
        if let Some(least) = self.fail_on.finding_threshold().filter(|_| self.gating_findings > 0) {
            let which = if least == Severity::Note {
                "of any severity".to_string()
            } else {
                format!("of severity {least} or above")
            };
            why.push(format!("{} finding(s) {which}", self.gating_findings));
        }
        format!("failed by --fail-on {}: {}", self.fail_on, why.join(", "))
    }
}
