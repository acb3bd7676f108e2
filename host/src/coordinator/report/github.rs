//! GitHub Actions output: workflow-command annotations (`::error file=…`)
//! that put findings on the changed lines of a pull request, and a Markdown
//! job summary for `$GITHUB_STEP_SUMMARY`. Everything a guest wrote is
//! escaped: a finding cannot start a workflow command of its own, and
//! cannot put markup into the summary.

use std::fmt::Write as _;

use super::RunReport;
use super::sarif::{is_plain_relative, status_word};
use crate::model::Severity;
use crate::tasks::Status;

/// Annotations written at most (GitHub shows only the first few per step
/// anyway); one closing notice counts the rest.
pub const MAX_ANNOTATIONS: usize = 50;

/// Findings listed in the job summary; the rest are counted.
pub const SUMMARY_FINDINGS: usize = 100;

impl RunReport {
    /// Workflow commands, one a line: failed tasks as `::error`, findings
    /// as `::error`/`::warning`/`::notice` by severity with their file and
    /// line (a file outside the root is left out of the command), at most
    /// [`MAX_ANNOTATIONS`].
    pub fn github_annotations(&self) -> String {
        let mut lines = Vec::new();
        for t in self.tasks.iter().filter(|t| t.status != Status::Completed) {
            let why = t.error.as_deref().unwrap_or("did not complete");
            lines.push(format!(
                "::error title={}::{}",
                property(&format!("swarm-host task {}", t.id)),
                data(&format!("task {} ({}) {}: {why}", t.id, t.subject, status_word(t.status)))
            ));
        }
        for f in self.tasks.iter().flat_map(|t| &t.findings) {
            let command = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut props = Vec::new();
            if is_plain_relative(&f.file) {
                props.push(format!("file={}", property(&f.file)));
                if let Some(line) = f.line.filter(|l| *l > 0) {
                    props.push(format!("line={line}"));
                }
            }
            props.push(format!("title={}", property(&f.rule)));
            lines.push(format!("::{command} {}::{}", props.join(","), data(&f.message)));
        }
        let total = lines.len();
        lines.truncate(MAX_ANNOTATIONS);
        let mut out = lines.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        if total > MAX_ANNOTATIONS {
            let _ = writeln!(
                out,
                "::notice title=swarm-host::{} more annotation(s) not shown; the report has them all",
                total - MAX_ANNOTATIONS
            );
        }
        out
    }

    /// The job summary in GitHub-flavoured Markdown.
    pub fn github_summary(&self) -> String {
        let mut out = String::new();
        let icon = if self.success() { "✅" } else { "❌" };
        let _ = writeln!(out, "## {icon} swarm-host: team {}\n", md(&self.team));
        let _ = writeln!(out, "| tasks | completed | failed | findings | retries | wall time |");
        let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: |");
        let tt = &self.totals;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1?} |\n",
            tt.tasks, tt.completed, tt.failed, tt.findings, tt.retries, self.duration
        );
        if let Some(v) = &self.verdict {
            let _ = writeln!(out, "**Result:** {}\n", md(&v.line()));
        }
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "**Run interrupted:** {}\n", md(why));
        }
        let failed: Vec<_> = self.tasks.iter().filter(|t| t.status != Status::Completed).collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "### Tasks that did not complete\n");
            let _ = writeln!(out, "| task | teammate | status | error |");
            let _ = writeln!(out, "| --- | --- | --- | --- |");
            for t in failed {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    md(&t.id),
                    md(t.teammate.as_deref().unwrap_or("-")),
                    status_word(t.status),
                    md(t.error.as_deref().unwrap_or("-"))
                );
            }
            out.push('\n');
        }
        if !self.totals.by_rule.is_empty() {
            let _ = writeln!(out, "### Findings\n");
            let _ = writeln!(out, "| severity | file | line | rule | message |");
            let _ = writeln!(out, "| --- | --- | ---: | --- | --- |");
            let all = self.tasks.iter().flat_map(|t| &t.findings);
            for f in all.clone().take(SUMMARY_FINDINGS) {
                let line = f.line.map(|l| l.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {} | {line} | {} | {} |",
                    f.severity.as_str(),
                    md(&f.file),
                    md(&f.rule),
                    md(&f.message)
                );
            }
            let n = all.count();
            if n > SUMMARY_FINDINGS {
                let _ = writeln!(out, "\n… and {} more finding(s) in the report.", n - SUMMARY_FINDINGS);
            }
        }
        out
    }
}

/// A workflow command's message: `%`, CR and LF encoded (the runner's own
/// escaping), so a guest's text stays inside one command.
fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value: as [`data`], and `:` and `,` too.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text in a Markdown table cell: on one line, HTML markup as entities,
/// Markdown's punctuation backslash-escaped (so no link, image, emphasis,
/// code span or cell break comes from a guest).
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '|' | '#' | '!' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{finding, report};
    use super::*;

    #[test]
    fn findings_become_annotations_by_severity_with_file_and_line() {
        let mut r = report();
        r.tasks[1].findings[0].severity = Severity::Error;
        let out = r.github_annotations();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "one failed task, four findings: {out}");
        assert_eq!(lines[0], "::error title=swarm-host task links::task links (subject of links) failed: deadline hit");
        assert_eq!(
            lines[1],
            "::warning file=src/a b.rs,line=3,title=whitespace/trailing::trailing whitespace (1 chars)"
        );
        assert_eq!(lines[4], "::error file=lib.rs,line=1,title=todo::// TODO: x");
    }

    #[test]
    fn a_guest_cannot_start_its_own_workflow_command_or_markup() {
        let mut r = report();
        let evil = "x\n::add-mask::y\r\n::set-output name=a::b";
        r.tasks[0].findings = vec![finding("a,b.rs", Some(1), "r,ule::x", evil)];
        let out = r.github_annotations();
        assert_eq!(out.lines().count(), 3, "the failed task, the guest's finding, the other task's: {out}");
        assert!(
            out.contains(
                "::warning file=a%2Cb.rs,line=1,title=r%2Cule%3A%3Ax::x%0A::add-mask::y%0D%0A::set-output name=a::b\n"
            ),
            "{out}"
        );
        r.tasks[0].findings[0].message = "<script>alert(1)</script> [x](javascript:alert(1)) | cell".into();
        let summary = r.github_summary();
        assert!(!summary.contains("<script>") && !summary.contains("](javascript"), "{summary}");
        assert!(
            summary.contains("&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\[x\\]\\(javascript:alert\\(1\\)\\) \\| cell"),
            "{summary}"
        );
    }

    #[test]
    fn annotations_are_capped_with_a_count_of_the_rest() {
        let mut r = report();
        r.tasks[0].findings =
            (0..MAX_ANNOTATIONS as u32 + 10).map(|n| finding("a.rs", Some(n + 1), "r", "m")).collect();
        let out = r.github_annotations();
        assert_eq!(out.lines().count(), MAX_ANNOTATIONS + 1);
        assert!(
            out.ends_with("::notice title=swarm-host::12 more annotation(s) not shown; the report has them all\n"),
            "{out}"
        );
    }
}
