//! The report as human text for terminals and CI logs; everything a
//! teammate wrote is sanitised.

use std::fmt::Write as _;

use super::{RunReport, TaskOutcome};
use crate::sanitize;
use crate::tasks::Status;

impl RunReport {
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
            for d in &t.diffs {
                let _ = match &d.note {
                    Some(note) => writeln!(out, "     changed {}: {}", s(&d.path), s(note)),
                    None => {
                        let (added, removed) = d.counts();
                        writeln!(out, "     changed {} (+{added} -{removed})", s(&d.path))
                    }
                };
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
        for r in &self.file_requests {
            let verb = if r.granted { "granted" } else { "denied" };
            let _ = writeln!(
                out,
                "file request {}: {} asked for {} (task {}): {verb} by {}",
                s(&r.id),
                s(&r.teammate),
                s(&r.path),
                s(&r.task),
                s(&r.decided_by)
            );
        }
        for c in &self.lead_changes {
            let _ = writeln!(out, "lead change {}", s(c));
        }
        for m in &self.lead_unanswered {
            let _ = writeln!(out, "not answered by the lead (the run ended): from {}: {}", s(&m.from), s(&m.body));
        }
        if let Some(u) = &self.lead_usage {
            let _ = writeln!(
                out,
                "lead usage (coordination): {} calls, {} tokens in, {} out, ~${:.4}",
                u.calls, u.input_tokens, u.output_tokens, u.usd
            );
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
        if let Some(c) = &self.scale_out {
            let _ = writeln!(
                out,
                "workers: {} ({}); {} execution(s), {} committed, {} duplicate(s), {} fenced, {} dead letter(s), {} \
                 picked up from the bucket",
                c.workers.len(),
                s(&c.workers.join(", ")),
                c.executions,
                c.committed,
                c.duplicates,
                c.fenced,
                c.dead_letters,
                c.picked_up
            );
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

impl TaskOutcome {
    fn owned_files_label(&self) -> String {
        match self.owned_files {
            1 => "1 file".into(),
            n => format!("{n} files"),
        }
    }
}
