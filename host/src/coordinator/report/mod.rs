//! The synthesized report of a run: every task's outcome and findings, every
//! teammate's end, merged into one document (this module: the model and its
//! synthesis; [`timeline`]: who ran what when), rendered as human text
//! ([`text`]), JSON ([`json`]), SARIF 2.1.0 for code-scanning UIs
//! ([`sarif`], its rule descriptions from the plugins in [`rules`]), JUnit XML for CI test
//! tabs ([`junit`]), one self-contained HTML page ([`html`]), or GitHub
//! Actions annotations and a job summary ([`github`]).

mod github;
mod html;
mod json;
mod junit;
mod lead_plan;
mod rules;
mod sarif;
mod text;
mod timeline;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verdict::Verdict;
use crate::model::LimitKind;
use crate::model::{Finding, Severity};
use crate::tasks::{Attempt, Status, TaskState};
use crate::team::Member;

pub use lead_plan::{LeadPlan, ValidatedTask};
pub use rules::{MAX_RULES, MAX_SECTION_BYTES, MAX_TEXT_CHARS, RULES_SECTION, RuleHelp, RulesError, describe_rules};
pub use sarif::{INFORMATION_URI, SARIF_SCHEMA, SARIF_VERSION};
pub use timeline::{Bar, BarOutcome, Lane, TimedMessage, TimedSend, Timeline};
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
    /// The sandbox limit that failed it for good, when one did (each
    /// attempt also names the limit that ended it, if any).
    #[serde(default)]
    pub limit: Option<LimitKind>,
    /// The diff of every file the task changed, computed by the
    /// coordinator from the tree before and after the run
    /// ([`super::changes`]); empty when it changed nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FileDiff>,
    /// An agent task's transcript: each model turn, each tool call with its
    /// arguments and outcome, each message received (empty for checkers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<TranscriptEntry>,
}

/// One changed file of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Root-relative path.
    pub path: String,
    /// The change as `git diff` writes it (`diff --git`, `---`/`+++`
    /// header, `@@` hunks); empty when `note` says why it is not diffed.
    pub diff: String,
    /// Why the change is not shown as a diff (a binary file, a file over
    /// the diff size limit); such a file is left out of `--patch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FileDiff {
    /// A changed file shown with a note instead of a diff.
    pub fn noted(path: &str, note: String) -> Self {
        Self { path: path.to_string(), diff: String::new(), note: Some(note) }
    }

    /// Lines added and removed.
    pub fn counts(&self) -> (usize, usize) {
        let body = self.diff.lines().skip_while(|l| !l.starts_with("@@"));
        body.fold((0, 0), |(a, r), l| match l.as_bytes().first() {
            Some(b'+') => (a + 1, r),
            Some(b'-') => (a, r + 1),
            _ => (a, r),
        })
    }
}

/// What a transcript entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptKind {
    /// A model turn's text.
    Model,
    /// A tool call the model made: `name` the tool, `text` its arguments.
    ToolCall,
    /// A tool call's outcome: `name` the tool, `text` the result or error.
    ToolResult,
    /// A message that reached the agent mid-turn: `name` the sender.
    Message,
}

/// One entry of an agent task's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// What it records.
    pub kind: TranscriptKind,
    /// The tool (calls and results) or the sender (messages).
    #[serde(default)]
    pub name: Option<String>,
    /// The text, arguments or outcome.
    pub text: String,
    /// True if the host refused the tool call (ownership, allow-list,
    /// budget): highlighted in the HTML report.
    #[serde(default)]
    pub denied: bool,
}

/// Why a run stopped before every task had ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM (what CI runners and `timeout(1)` send).
    Terminate,
    /// The run's `timeout` (`--timeout` or the team file) passed.
    Timeout,
    /// A teammate could not be started after others were: they were
    /// stopped again.
    StartFailed,
}

/// A message a teammate sent to the team lead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadMessage {
    /// Sender.
    pub from: String,
    /// Text.
    pub body: String,
    /// When it arrived, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub at_unix_ms: Option<u64>,
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
    /// Findings per rule id, across all tasks (sorted by rule id).
    #[serde(default)]
    pub by_rule: BTreeMap<String, usize>,
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
    /// File operations the sandbox refused (the first few per teammate).
    pub denials: Vec<Denial>,
    /// How many file operations the sandbox refused, per teammate.
    pub denial_counts: BTreeMap<String, u64>,
    /// Plan warnings.
    pub warnings: Vec<String>,
    /// Why the run ended early.
    pub interrupted: Option<String>,
    /// What ended it early, when something did.
    pub stopped_by: Option<StopCause>,
    /// State that could not be saved during the run (each one line).
    pub state_errors: Vec<String>,
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
    /// When the run started, in milliseconds since the Unix epoch: the
    /// origin of the [`Timeline`] (attempts and messages carry their own).
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    /// Why the run ended early, if it did.
    pub interrupted: Option<String>,
    /// What ended it early, when something did (typed: the exit code is
    /// decided from this, the text above is for people).
    #[serde(default)]
    pub stopped_by: Option<StopCause>,
    /// State (task list, roster, report, ...) that could not be saved
    /// during the run: swarm-host failed at its job (exit 3).
    #[serde(default)]
    pub state_errors: Vec<String>,
    /// The failure policy's verdict, once the CLI applied one.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Counts.
    pub totals: Totals,
    /// Every task, in plan order.
    pub tasks: Vec<TaskOutcome>,
    /// Every teammate, by id.
    pub teammates: Vec<Member>,
    /// Messages addressed to the team lead.
    pub messages: Vec<LeadMessage>,
    /// Messages delivered to teammates' inboxes (from a teammate or the
    /// lead): who to whom and when, in the order they were sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<crate::mailbox::Sent>,
    /// Messages to teammates the report does not list: over
    /// [`MAX_TRAFFIC`](crate::mailbox::MAX_TRAFFIC).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub traffic_dropped: u64,
    /// The plan as the lead proposed it and as validated, when a lead
    /// planned the run from a goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_plan: Option<LeadPlan>,
    /// File operations the sandbox refused: the first
    /// [`DENIAL_SAMPLES`](super::events::DENIAL_SAMPLES) per teammate.
    #[serde(default)]
    pub denials: Vec<Denial>,
    /// How many file operations the sandbox refused, per teammate (a flood
    /// is counted here, not listed in `denials`).
    #[serde(default)]
    pub denial_counts: BTreeMap<String, u64>,
    /// The planner plugin's closing synthesis, when the team has one.
    #[serde(default)]
    pub synthesis: Option<String>,
    /// Plan warnings (and plugins whose rule descriptions were not used).
    pub warnings: Vec<String>,
    /// What each rule of the findings means, as the plugin that reported it
    /// describes it (the component's `swarm-rules` section, see
    /// [`rules`]): rule id → short and full description and help. SARIF's
    /// rule table takes its text from here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleHelp>,
    /// Model calls: tokens in and out, calls and estimated cost, in total,
    /// per teammate and per task (when the team file has `[models]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<crate::llm::UsageReport>,
    /// What the lead's model calls (planning, messages, synthesis) used, on
    /// its own: what coordinating the team cost. Also counted in
    /// `llm_usage` (as teammate `planner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_usage: Option<crate::llm::UsageTotals>,
    /// Teammates' requests for files their task did not own, and what was
    /// decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_requests: Vec<crate::coordinator::steer::FileDecision>,
    /// The lead's changes to the running team, applied or refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lead_changes: Vec<String>,
    /// Messages to `team-lead` the lead did not handle before the run ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lead_unanswered: Vec<LeadMessage>,
    /// What the NATS workers did (`run --nats`): executions, duplicates,
    /// results fenced off, dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<crate::model::ScaleOut>,
}

impl RunReport {
    /// Merges the final task list and roster into a report.
    pub fn synthesize(parts: Parts) -> Self {
        let Parts {
            team,
            backend,
            duration,
            tasks,
            teammates,
            messages,
            denials,
            warnings,
            interrupted,
            stopped_by,
            state_errors,
            denial_counts,
        } = parts;
        let tasks: Vec<TaskOutcome> = tasks
            .into_iter()
            .map(|t| {
                // The journal's records are gone by now: the report is not copied.
                let (summary, findings) = t
                    .report
                    .map(std::sync::Arc::unwrap_or_clone)
                    .map(|r| (Some(r.summary), r.findings))
                    .unwrap_or_default();
                // A task the stopped run left unfinished did not run (again):
                // its last attempt, if any, says it was interrupted.
                let not_run = interrupted.as_ref().filter(|_| t.status != Status::Failed);
                let error = match not_run {
                    Some(why) => Some(format!("not run: {why}")),
                    None => t.failure.or_else(|| t.attempts.last().and_then(|a| a.error.clone())),
                };
                TaskOutcome {
                    id: t.spec.id,
                    subject: t.spec.subject,
                    status: t.status,
                    owned_files: t.spec.owned_files.len(),
                    teammate: t.attempts.last().map(|a| a.teammate.clone()),
                    error: if t.status == Status::Completed { None } else { error },
                    limit: if t.status == Status::Completed { None } else { t.failure_limit },
                    attempts: t.attempts,
                    summary,
                    findings,
                    diffs: Vec::new(),
                    transcript: Vec::new(),
                }
            })
            .collect();
        let totals = Totals {
            tasks: tasks.len(),
            completed: tasks.iter().filter(|t| t.status == Status::Completed).count(),
            failed: tasks.iter().filter(|t| t.status != Status::Completed).count(),
            findings: tasks.iter().map(|t| t.findings.len()).sum(),
            retries: tasks.iter().map(|t| t.attempts.len().saturating_sub(1)).sum(),
            by_rule: count_by_rule(&tasks),
        };
        Self {
            v: REPORT_VERSION,
            team,
            backend,
            duration,
            started_unix_ms: None,
            interrupted,
            stopped_by,
            state_errors,
            verdict: None,
            totals,
            tasks,
            teammates,
            messages,
            traffic: Vec::new(),
            traffic_dropped: 0,
            lead_plan: None,
            denials,
            denial_counts,
            warnings,
            rules: BTreeMap::new(),
            synthesis: None,
            llm_usage: None,
            lead_usage: None,
            file_requests: Vec::new(),
            lead_changes: Vec::new(),
            lead_unanswered: Vec::new(),
            scale_out: None,
        }
    }

    /// True if every task completed.
    pub fn success(&self) -> bool {
        self.totals.failed == 0 && self.interrupted.is_none()
    }

    /// True if some task that did not complete was stopped by a sandbox
    /// limit: the task itself or one of its attempts names the limit (typed,
    /// as the host raised it; never read from error text).
    pub fn failed_on_limit(&self) -> bool {
        self.tasks
            .iter()
            .filter(|t| t.status != Status::Completed)
            .any(|t| t.limit.is_some() || t.attempts.iter().any(|a| a.limit.is_some()))
    }

    /// Findings per severity, most severe first (only severities that occur).
    pub fn findings_by_severity(&self) -> Vec<(Severity, usize)> {
        [Severity::Error, Severity::Warning, Severity::Note]
            .into_iter()
            .map(|sev| (sev, self.tasks.iter().flat_map(|t| &t.findings).filter(|f| f.severity == sev).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn count_by_rule(tasks: &[TaskOutcome]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for f in tasks.iter().flat_map(|t| &t.findings) {
        // A rule seen before is counted without cloning its name.
        match counts.get_mut(f.rule.as_str()) {
            Some(n) => *n += 1,
            None => {
                counts.insert(f.rule.clone(), 1);
            }
        }
    }
    counts
}

#[cfg(test)]
pub(super) mod fixtures {
    //! Synthetic reports the renderers' tests share.

    use super::*;

    pub(crate) fn finding(file: &str, line: Option<u32>, rule: &str, message: &str) -> Finding {
        Finding { file: file.into(), line, rule: rule.into(), message: message.into(), severity: Severity::Warning }
    }

    pub(crate) fn outcome(id: &str, status: Status, findings: Vec<Finding>, error: Option<&str>) -> TaskOutcome {
        TaskOutcome {
            id: id.into(),
            subject: format!("subject of {id}"),
            status,
            owned_files: 2,
            teammate: Some(format!("{id}-runner")),
            attempts: Vec::new(),
            summary: None,
            findings,
            error: error.map(Into::into),
            limit: None,
            diffs: Vec::new(),
            transcript: Vec::new(),
        }
    }

    pub(crate) fn report() -> RunReport {
        let tasks = vec![
            outcome(
                "ws",
                Status::Completed,
                vec![
                    finding("src/a b.rs", Some(3), "whitespace/trailing", "trailing whitespace (1 chars)"),
                    finding("src/a b.rs", None, "whitespace/crlf", "2 line(s) end with CRLF"),
                    finding("docs/x.md", Some(9), "whitespace/trailing", "trailing whitespace (2 chars)"),
                ],
                None,
            ),
            outcome("todo", Status::Completed, vec![finding("lib.rs", Some(1), "todo", "// TODO: x")], None),
            outcome("links", Status::Failed, Vec::new(), Some("deadline hit")),
        ];
        RunReport {
            v: REPORT_VERSION,
            team: "ci".into(),
            backend: "in-process".into(),
            duration: Duration::from_millis(1500),
            started_unix_ms: None,
            interrupted: None,
            stopped_by: None,
            state_errors: Vec::new(),
            verdict: None,
            totals: Totals {
                tasks: 3,
                completed: 2,
                failed: 1,
                findings: 4,
                retries: 0,
                by_rule: count_by_rule(&tasks),
            },
            tasks,
            teammates: Vec::new(),
            messages: Vec::new(),
            traffic: Vec::new(),
            traffic_dropped: 0,
            lead_plan: None,
            denials: vec![Denial {
                teammate: "ws-runner".into(),
                task: Some("ws".into()),
                operation: "write".into(),
                reason: "x.rs: not owned by the held task".into(),
            }],
            denial_counts: BTreeMap::from([("ws-runner".into(), 1)]),
            synthesis: None,
            llm_usage: None,
            lead_usage: None,
            file_requests: Vec::new(),
            lead_changes: Vec::new(),
            lead_unanswered: Vec::new(),
            scale_out: None,
            warnings: Vec::new(),
            rules: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::report;
    use super::*;
    use serde_json::Value;

    #[test]
    fn findings_are_counted_per_rule_in_json_and_text() {
        let r = report();
        let want: BTreeMap<String, usize> =
            [("todo", 1), ("whitespace/crlf", 1), ("whitespace/trailing", 2)].map(|(k, v)| (k.to_string(), v)).into();
        assert_eq!(r.totals.by_rule, want);
        let json: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["totals"]["by_rule"]["whitespace/trailing"], 2);
        assert!(
            r.to_text(10).contains("Findings by rule: todo 1, whitespace/crlf 1, whitespace/trailing 2\n"),
            "{}",
            r.to_text(10)
        );
    }
}
