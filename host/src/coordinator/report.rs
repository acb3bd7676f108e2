//! The synthesized report of a run: every task's outcome and findings, every
//! teammate's end, merged into one document, rendered as human text or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::Finding;
use crate::sanitize;
use crate::tasks::{Attempt, Status, TaskState};
use crate::team::Member;

/// Version of the JSON report format.
pub const REPORT_VERSION: u32 = 1;

/// One task's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// Task id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Final status.
    pub status: Status,
    /// Number of files it owned.
    pub owned_files: usize,
    /// Who completed it (or ran its last attempt).
    pub teammate: Option<String>,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
    /// Report summary, when completed.
    pub summary: Option<String>,
    /// Findings, when completed.
    pub findings: Vec<Finding>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A message a teammate sent to the team lead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadMessage {
    /// Sender.
    pub from: String,
    /// Text.
    pub body: String,
}

/// A file operation the sandbox refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Denial {
    /// Who tried.
    pub teammate: String,
    /// The task it held.
    pub task: Option<String>,
    /// `read`, `write` or `list`.
    pub operation: String,
    /// Why, including the path.
    pub reason: String,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Tasks in the plan.
    pub tasks: usize,
    /// Completed tasks.
    pub completed: usize,
    /// Failed tasks.
    pub failed: usize,
    /// Findings across all tasks.
    pub findings: usize,
    /// Retried attempts.
    pub retries: usize,
}

/// What a report is synthesized from.
#[derive(Debug)]
pub struct Parts {
    /// Team name.
    pub team: String,
    /// Backend name.
    pub backend: String,
    /// Wall-clock time of the run.
    pub duration: Duration,
    /// Final task list.
    pub tasks: Vec<TaskState>,
    /// Final roster.
    pub teammates: Vec<Member>,
    /// Messages to the team lead.
    pub messages: Vec<LeadMessage>,
    /// File operations the sandbox refused.
    pub denials: Vec<Denial>,
    /// Plan warnings.
    pub warnings: Vec<String>,
    /// Why the run ended early.
    pub interrupted: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Report format version.
    pub v: u32,
    /// Team name.
    pub team: String,
    /// Backend that ran it.
    pub backend: String,
    /// Wall-clock time of the run.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Why the run ended early, if it did.
    pub interrupted: Option<String>,
    /// Counts.
    pub totals: Totals,
    /// Every task, in plan order.
    pub tasks: Vec<TaskOutcome>,
    /// Every teammate, by id.
    pub teammates: Vec<Member>,
    /// Messages addressed to the team lead.
    pub messages: Vec<LeadMessage>,
    /// File operations the sandbox refused.
    #[serde(default)]
    pub denials: Vec<Denial>,
    /// The planner plugin's closing synthesis, when the team has one.
    #[serde(default)]
    pub synthesis: Option<String>,
    /// Plan warnings.
    pub warnings: Vec<String>,
}

impl RunReport {
    /// Merges the final task list and roster into a report.
    pub fn synthesize(parts: Parts) -> Self {
        let Parts { team, backend, duration, tasks, teammates, messages, denials, warnings, interrupted } = parts;
        let tasks: Vec<TaskOutcome> = tasks
            .into_iter()
            .map(|t| {
                let (summary, findings) = t.report.map(|r| (Some(r.summary), r.findings)).unwrap_or_default();
                let error = t
                    .failure
                    .or_else(|| t.attempts.last().and_then(|a| a.error.clone()))
                    .or_else(|| interrupted.as_ref().map(|why| format!("not run: {why}")));
                TaskOutcome {
                    id: t.spec.id,
                    subject: t.spec.subject,
                    status: t.status,
                    owned_files: t.spec.owned_files.len(),
                    teammate: t.attempts.last().map(|a| a.teammate.clone()),
                    error: if t.status == Status::Completed { None } else { error },
                    attempts: t.attempts,
                    summary,
                    findings,
                }
            })
            .collect();
        let totals = Totals {
            tasks: tasks.len(),
            completed: tasks.iter().filter(|t| t.status == Status::Completed).count(),
            failed: tasks.iter().filter(|t| t.status != Status::Completed).count(),
            findings: tasks.iter().map(|t| t.findings.len()).sum(),
            retries: tasks.iter().map(|t| t.attempts.len().saturating_sub(1)).sum(),
        };
        Self {
            v: REPORT_VERSION,
            team,
            backend,
            duration,
            interrupted,
            totals,
            tasks,
            teammates,
            messages,
            denials,
            warnings,
            synthesis: None,
        }
    }

    /// True if every task completed.
    pub fn success(&self) -> bool {
        self.totals.failed == 0 && self.interrupted.is_none()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }

    /// The report as human text. Everything a teammate wrote is sanitised.
    pub fn to_text(&self, max_findings_per_task: usize) -> String {
        let s = sanitize::line;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Team {} — {} task(s), {} teammate(s), {} backend, {:.2?}",
            s(&self.team),
            self.totals.tasks,
            self.teammates.len(),
            self.backend,
            self.duration
        );
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {}", s(w));
        }
        for t in &self.tasks {
            let mark = match t.status {
                Status::Completed => "ok  ",
                Status::Failed => "FAIL",
                Status::Pending | Status::InProgress => "----",
            };
            let who = t.teammate.as_deref().unwrap_or("-");
            let tries = if t.attempts.len() > 1 { format!(" ({} attempts)", t.attempts.len()) } else { String::new() };
            let _ =
                writeln!(out, "{mark} {} [{}] {} — {}{tries}", s(&t.id), s(who), s(&t.subject), t.owned_files_label());
            if let Some(summary) = &t.summary {
                let _ = writeln!(out, "     {}", s(summary));
            }
            if let Some(e) = &t.error {
                let _ = writeln!(out, "     error: {}", s(e));
            }
            for f in t.findings.iter().take(max_findings_per_task) {
                let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
                let _ = writeln!(out, "     {}{at}  {}  {}", s(&f.file), s(&f.rule), s(&f.message));
            }
            if t.findings.len() > max_findings_per_task {
                let _ = writeln!(
                    out,
                    "     … {} more finding(s) (use --json for all)",
                    t.findings.len() - max_findings_per_task
                );
            }
        }
        for d in &self.denials {
            let task = d.task.as_deref().map(|t| format!(" in task {}", s(t))).unwrap_or_default();
            let _ = writeln!(out, "denied: {} {}{task}: {}", s(&d.teammate), s(&d.operation), s(&d.reason));
        }
        for m in &self.messages {
            let _ = writeln!(out, "message from {}: {}", s(&m.from), s(&m.body));
        }
        for m in self.teammates.iter().filter(|m| m.state == crate::team::Liveness::Dead) {
            let _ = writeln!(out, "teammate {} died: {}", s(&m.id), s(m.exit.as_deref().unwrap_or("?")));
        }
        if let Some(text) = &self.synthesis {
            for line in text.lines() {
                let _ = writeln!(out, "planner: {}", s(line));
            }
        }
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "run interrupted: {}", s(why));
        }
        let _ = writeln!(
            out,
            "Summary: {} completed, {} failed, {} finding(s), {} retr{}",
            self.totals.completed,
            self.totals.failed,
            self.totals.findings,
            self.totals.retries,
            if self.totals.retries == 1 { "y" } else { "ies" }
        );
        out
    }
}

impl TaskOutcome {
    fn owned_files_label(&self) -> String {
        match self.owned_files {
            1 => "1 file".into(),
            n => format!("{n} files"),
        }
    }
}
