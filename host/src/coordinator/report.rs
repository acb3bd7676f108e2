//! The synthesized report of a run: every task's outcome and findings, every
//! teammate's end, merged into one document, rendered as human text, JSON,
//! or SARIF 2.1.0 for code-scanning UIs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verdict::Verdict;
use crate::model::LimitKind;
use crate::model::{Finding, Severity};
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
    /// The sandbox limit that failed it for good, when one did (each
    /// attempt also names the limit that ended it, if any).
    #[serde(default)]
    pub limit: Option<LimitKind>,
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
    /// Plan warnings.
    pub warnings: Vec<String>,
    /// Model calls: tokens in and out, calls and estimated cost, in total,
    /// per teammate and per task (when the team file has `[models]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<crate::llm::UsageReport>,
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
                let (summary, findings) = t.report.map(|r| (Some(r.summary), r.findings)).unwrap_or_default();
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
            interrupted,
            stopped_by,
            state_errors,
            verdict: None,
            totals,
            tasks,
            teammates,
            messages,
            denials,
            denial_counts,
            warnings,
            synthesis: None,
            llm_usage: None,
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
        for (teammate, n) in &self.denial_counts {
            let listed = self.denials.iter().filter(|d| d.teammate == *teammate).count() as u64;
            if *n > listed {
                let _ = writeln!(out, "denied: {} {} more time(s) (counted, not listed)", s(teammate), n - listed);
            }
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
        if let Some(u) = self.llm_usage.as_ref().filter(|u| !u.is_empty()) {
            let line = |t: &crate::llm::UsageTotals| {
                format!("{} calls, {} tokens in, {} out, ~${:.4}", t.calls, t.input_tokens, t.output_tokens, t.usd)
            };
            let _ = writeln!(out, "model usage: {}", line(&u.total));
            for (who, t) in &u.teammates {
                let _ = writeln!(out, "model usage by {}: {}", s(who), line(t));
            }
            for (task, t) in &u.tasks {
                let _ = writeln!(out, "model usage for task {}: {}", s(task), line(t));
            }
        }
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "run interrupted: {}", s(why));
        }
        for e in &self.state_errors {
            let _ = writeln!(out, "state not saved: {}", s(e));
        }
        if !self.totals.by_rule.is_empty() {
            let counts: Vec<String> = self.totals.by_rule.iter().map(|(rule, n)| format!("{} {n}", s(rule))).collect();
            let _ = writeln!(out, "Findings by rule: {}", counts.join(", "));
            let counts: Vec<String> = self.findings_by_severity().iter().map(|(sev, n)| format!("{sev} {n}")).collect();
            let _ = writeln!(out, "Findings by severity: {}", counts.join(", "));
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
        if let Some(verdict) = &self.verdict {
            let _ = writeln!(out, "Result: {}", verdict.line());
        }
        out
    }
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

/// The SARIF version [`RunReport::to_sarif`] writes.
pub const SARIF_VERSION: &str = "2.1.0";

/// The schema [`RunReport::to_sarif`] names.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

impl RunReport {
    /// The report as SARIF 2.1.0 (pretty JSON), for code-scanning UIs: one
    /// run whose tool is `swarm-host`, one rule per distinct rule id (its
    /// default level the most severe of its findings), one result per
    /// finding (its `level` the finding's severity: `note`, `warning` or
    /// `error`, with the file as a `%SRCROOT%`-relative artifact URI and,
    /// when the finding has a line, its `region.startLine`), and every task
    /// that did not complete as an error-level tool execution notification
    /// (refused file operations as warnings). A finding whose file is not a
    /// plain relative path (absolute, with a `..` or `.` segment, a
    /// backslash, or empty) gets no result: it is dropped with a warning
    /// notification, so no artifact URI ever leaves the root.
    /// `executionSuccessful` is [`RunReport::success`].
    pub fn to_sarif(&self) -> String {
        use serde_json::{Value, json};

        // Counted from the tasks, not `totals`: a report read back from an
        // older JSON file has no per-rule counts.
        let counts = count_by_rule(&self.tasks);
        let rule_ids: Vec<&String> = counts.keys().collect();
        let mut worst: BTreeMap<&str, Severity> = BTreeMap::new();
        for f in self.tasks.iter().flat_map(|t| &t.findings) {
            let level = worst.entry(f.rule.as_str()).or_insert(f.severity);
            *level = (*level).max(f.severity);
        }
        let rules: Vec<Value> = rule_ids
            .iter()
            .map(|id| {
                let level = worst.get(id.as_str()).copied().unwrap_or_default();
                json!({
                    "id": id,
                    "shortDescription": { "text": format!("swarm-host teammate rule `{id}`") },
                    "defaultConfiguration": { "level": level.as_str() },
                })
            })
            .collect();
        let mut results = Vec::new();
        let mut dropped = Vec::new();
        for t in &self.tasks {
            for f in &t.findings {
                if !is_plain_relative(&f.file) {
                    dropped.push(json!({
                        "level": "warning",
                        "message": { "text": format!(
                            "finding dropped: rule {} of task {} names the file {:?}, not a plain path relative to the root",
                            f.rule, t.id, f.file) },
                        "properties": { "task": t.id, "teammate": t.teammate },
                    }));
                    continue;
                }
                let mut physical = json!({
                    "artifactLocation": { "uri": uri_of(&f.file), "uriBaseId": "%SRCROOT%" },
                });
                if let Some(line) = f.line.filter(|l| *l > 0) {
                    physical["region"] = json!({ "startLine": line });
                }
                // Every finding's rule is in `rule_ids`, built from the same findings.
                let index = rule_ids.binary_search(&&f.rule).unwrap_or_default();
                results.push(json!({
                    "ruleId": f.rule,
                    "ruleIndex": index,
                    "level": f.severity.as_str(),
                    "message": { "text": f.message },
                    "locations": [{ "physicalLocation": physical }],
                    "properties": { "task": t.id, "teammate": t.teammate },
                }));
            }
        }
        let mut notifications: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| t.status != Status::Completed)
            .map(|t| {
                let why = t.error.as_deref().unwrap_or("did not complete");
                json!({
                    "level": "error",
                    "message": { "text": format!("task {} ({}) {}: {why}", t.id, t.subject, status_word(t.status)) },
                    "properties": { "task": t.id, "teammate": t.teammate },
                })
            })
            .collect();
        notifications.extend(dropped);
        notifications.extend(self.denials.iter().map(|d| {
            json!({
                "level": "warning",
                "message": { "text": format!("denied: {} {}: {}", d.teammate, d.operation, d.reason) },
                "properties": { "task": d.task, "teammate": d.teammate },
            })
        }));
        let mut invocation = json!({
            "executionSuccessful": self.success(),
            "toolExecutionNotifications": notifications,
        });
        if let Some(why) = &self.interrupted {
            invocation["exitSignalName"] = json!("interrupted");
            invocation["properties"] = json!({ "interrupted": why });
        }
        if let Some(u) = &self.llm_usage {
            invocation["properties"]["llmUsage"] = json!(u);
        }
        let sarif = json!({
            "$schema": SARIF_SCHEMA,
            "version": SARIF_VERSION,
            "runs": [{
                "tool": { "driver": {
                    "name": "swarm-host",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }},
                "automationDetails": { "id": format!("{}/", self.team) },
                "originalUriBaseIds": { "%SRCROOT%": { "description": { "text": "the team's workspace root" } } },
                "invocations": [invocation],
                "results": results,
            }],
        });
        serde_json::to_string_pretty(&sarif).expect("SARIF values always serialize")
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Failed => "failed",
        Status::Pending => "was not run",
        Status::InProgress => "was still running",
        Status::Completed => "completed",
    }
}

/// True if `path` is a plain root-relative path: not empty, not absolute,
/// no backslash, no drive or scheme colon before the first `/`, and no empty,
/// `.` or `..` segment. Only such paths become SARIF artifact URIs.
fn is_plain_relative(path: &str) -> bool {
    let first = path.split('/').next().unwrap_or_default();
    !path.is_empty()
        && !path.contains('\\')
        && !first.contains(':')
        && path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// A root-relative path as a URI reference: `/`-separated segments with
/// everything but RFC 3986 unreserved characters percent-encoded.
fn uri_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl TaskOutcome {
    fn owned_files_label(&self) -> String {
        match self.owned_files {
            1 => "1 file".into(),
            n => format!("{n} files"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn finding(file: &str, line: Option<u32>, rule: &str, message: &str) -> Finding {
        Finding { file: file.into(), line, rule: rule.into(), message: message.into(), severity: Severity::Warning }
    }

    fn outcome(id: &str, status: Status, findings: Vec<Finding>, error: Option<&str>) -> TaskOutcome {
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
        }
    }

    fn report() -> RunReport {
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
            denials: vec![Denial {
                teammate: "ws-runner".into(),
                task: Some("ws".into()),
                operation: "write".into(),
                reason: "x.rs: not owned by the held task".into(),
            }],
            denial_counts: BTreeMap::from([("ws-runner".into(), 1)]),
            synthesis: None,
            llm_usage: None,
            warnings: Vec::new(),
        }
    }

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

    #[test]
    fn sarif_has_version_rules_results_and_locations() {
        let sarif: Value = serde_json::from_str(&report().to_sarif()).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(sarif["$schema"], SARIF_SCHEMA);
        let runs = sarif["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run["tool"]["driver"]["name"], "swarm-host");
        let rules: Vec<&str> =
            run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(rules, ["todo", "whitespace/crlf", "whitespace/trailing"], "one rule per distinct id");

        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4, "one result per finding");
        for r in results {
            let index = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(r["ruleId"], rules[index], "ruleIndex points at the result's rule");
            assert_eq!(r["level"], "warning");
        }
        let first = &results[0];
        assert_eq!(first["message"]["text"], "trailing whitespace (1 chars)");
        let loc = &first["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "src/a%20b.rs", "URIs are percent-encoded");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(loc["region"]["startLine"], 3);
        let whole_file = &results[1]["locations"][0]["physicalLocation"];
        assert!(whole_file.get("region").is_none(), "a finding without a line has no region: {whole_file}");
        assert_eq!(results[3]["properties"]["task"], "todo");

        let invocation = &run["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0]["level"], "error");
        assert_eq!(notes[0]["message"]["text"], "task links (subject of links) failed: deadline hit");
        assert_eq!(notes[1]["level"], "warning");
        assert!(notes[1]["message"]["text"].as_str().unwrap().contains("not owned"));
    }

    #[test]
    fn sarif_of_a_clean_run_is_successful_and_empty() {
        let mut r = report();
        r.tasks.retain(|t| t.status == Status::Completed);
        r.tasks.iter_mut().for_each(|t| t.findings.clear());
        r.denials.clear();
        r.totals.failed = 0;
        let sarif: Value = serde_json::from_str(&r.to_sarif()).unwrap();
        let run = &sarif["runs"][0];
        assert_eq!(run["results"].as_array().unwrap().len(), 0);
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 0);
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
        assert_eq!(run["invocations"][0]["toolExecutionNotifications"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn sarif_levels_follow_severity_and_paths_that_leave_the_root_are_dropped() {
        let mut r = report();
        r.tasks[0].findings[0].severity = Severity::Error;
        r.tasks[1].findings[0].severity = Severity::Note;
        r.tasks[1].findings.push(finding("../etc/passwd", Some(1), "todo", "escape"));
        r.tasks[1].findings.push(finding("/etc/passwd", None, "todo", "absolute"));
        let sarif: Value = serde_json::from_str(&r.to_sarif()).unwrap();
        let run = &sarif["runs"][0];
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4, "the two findings outside the root have no result");
        let levels: Vec<&str> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["error", "warning", "warning", "note"]);
        for r in results {
            let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap();
            assert!(!uri.contains("..") && !uri.starts_with('/'), "{uri}");
        }
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let trailing = rules.iter().find(|r| r["id"] == "whitespace/trailing").unwrap();
        assert_eq!(trailing["defaultConfiguration"]["level"], "error", "the most severe of its findings");
        let notes = run["invocations"][0]["toolExecutionNotifications"].as_array().unwrap();
        let dropped = notes.iter().filter(|n| n["message"]["text"].as_str().unwrap().starts_with("finding dropped"));
        assert_eq!(dropped.count(), 2);
        assert!(r.to_text(10).contains("Findings by severity: error 1, warning 4, note 1"), "{}", r.to_text(10));
    }

    #[test]
    fn only_plain_relative_paths_become_uris() {
        assert!(is_plain_relative("src/a b.rs"));
        for bad in ["", "/etc/passwd", "../a", "a/../b", "a//b", "./a", "a/.", "a\\b", "C:/x", "file:///x"] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
    }

    #[test]
    fn uris_keep_slashes_and_encode_the_rest() {
        assert_eq!(uri_of("a/b-c_d.e~f"), "a/b-c_d.e~f");
        assert_eq!(uri_of("x y/#1?%.md"), "x%20y/%231%3F%25.md");
        assert_eq!(uri_of("é"), "%C3%A9");
    }
}
