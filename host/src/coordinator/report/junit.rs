//! The report as JUnit XML, for the test tabs of CI systems (GitLab,
//! Jenkins, Azure Pipelines, GitHub test-report actions): one `testsuite`
//! for the team, one `testcase` per task. A task that failed or did not run
//! is a `failure` carrying its error (and the limit that stopped it); a
//! completed task whose findings are at or over the `--fail-on` policy's
//! threshold is a `failure` listing them; other findings go to the test
//! case's `system-out`. The output validates against the Jenkins/Surefire
//! `junit-10.xsd` schema (the tests check it).

use std::fmt::Write as _;

use super::RunReport;
use super::sarif::status_word;
use crate::tasks::Status;

/// Findings listed per test case; the rest are counted.
pub const JUNIT_FINDINGS_PER_CASE: usize = 200;

impl RunReport {
    /// The report as JUnit XML, judged by the verdict's `--fail-on` policy
    /// (the default policy if no verdict was applied).
    pub fn to_junit(&self) -> String {
        let fail_on = self.verdict.as_ref().map(|v| v.fail_on).unwrap_or_default();
        let threshold = fail_on.finding_threshold();
        let mut cases = String::new();
        let mut failures = 0;
        for t in &self.tasks {
            let owner = t.teammate.as_deref().unwrap_or("unassigned");
            let secs: f64 = t.attempts.iter().filter_map(|a| a.duration).map(|d| d.as_secs_f64()).sum();
            let _ = writeln!(
                cases,
                "    <testcase name=\"{}: {}\" classname=\"{}.{}\" time=\"{secs:.3}\">",
                xml(&t.id),
                xml(&t.subject),
                xml(&self.team),
                xml(owner)
            );
            let over: Vec<_> = t.findings.iter().filter(|f| threshold.is_some_and(|min| f.severity >= min)).collect();
            let task_failed = t.status != Status::Completed && fail_on.fails_on_tasks();
            if task_failed || !over.is_empty() {
                failures += 1;
                let (kind, message) = if task_failed {
                    let why = t.error.as_deref().unwrap_or("did not complete");
                    let kind = match t.limit.or_else(|| t.attempts.iter().rev().find_map(|a| a.limit)) {
                        Some(limit) => format!("limit:{}", name_of(limit)),
                        None => format!("task-{}", status_word(t.status).replace(' ', "-")),
                    };
                    (kind, format!("task {} {}: {why}", t.id, status_word(t.status)))
                } else {
                    ("findings".to_string(), format!("{} finding(s) at or over --fail-on {fail_on}", over.len()))
                };
                let mut body = String::new();
                for f in over.iter().take(JUNIT_FINDINGS_PER_CASE) {
                    let _ = writeln!(body, "{}", finding_line(f));
                }
                if over.len() > JUNIT_FINDINGS_PER_CASE {
                    let _ = writeln!(body, "… {} more", over.len() - JUNIT_FINDINGS_PER_CASE);
                }
                let _ = writeln!(
                    cases,
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                    xml(&kind),
                    xml(&message),
                    xml(&body)
                );
            }
            let rest: Vec<_> = t.findings.iter().filter(|f| threshold.is_none_or(|min| f.severity < min)).collect();
            if t.summary.is_some() || !rest.is_empty() {
                let mut out = String::new();
                if let Some(summary) = &t.summary {
                    let _ = writeln!(out, "{summary}");
                }
                for f in rest.iter().take(JUNIT_FINDINGS_PER_CASE) {
                    let _ = writeln!(out, "{}", finding_line(f));
                }
                if rest.len() > JUNIT_FINDINGS_PER_CASE {
                    let _ = writeln!(out, "… {} more finding(s)", rest.len() - JUNIT_FINDINGS_PER_CASE);
                }
                let _ = writeln!(cases, "      <system-out>{}</system-out>", xml(&out));
            }
            cases.push_str("    </testcase>\n");
        }
        let tests = self.tasks.len();
        let time = self.duration.as_secs_f64();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"swarm-host\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">"
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">",
            xml(&self.team)
        );
        let _ = writeln!(out, "    <properties>");
        let _ = writeln!(out, "      <property name=\"backend\" value=\"{}\"/>", xml(&self.backend));
        let _ = writeln!(out, "      <property name=\"fail-on\" value=\"{fail_on}\"/>");
        let _ = writeln!(out, "    </properties>");
        out.push_str(&cases);
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "    <system-err>run interrupted: {}</system-err>", xml(why));
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn finding_line(f: &crate::model::Finding) -> String {
    let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
    format!("{} {}{at} [{}] {}", f.severity.as_str(), f.file, f.rule, f.message)
}

/// A limit's name as the JSON report spells it.
pub(super) fn name_of(limit: crate::model::LimitKind) -> String {
    serde_json::to_value(limit).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// `text` escaped for XML 1.0 text and attribute values: markup characters
/// as entities, line breaks in attributes as character references, and
/// characters XML 1.0 cannot carry at all (control characters, lone
/// surrogates cannot occur in a `str`, U+FFFE/U+FFFF) as U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::report;
    use super::*;
    use crate::coordinator::{FailOn, Verdict};
    use crate::model::Severity;

    #[test]
    fn one_case_per_task_and_failures_follow_the_policy() {
        let mut r = report();
        let xml = r.to_junit();
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(xml.contains("message=\"task links failed: deadline hit\""), "{xml}");
        r.tasks[1].findings[0].severity = Severity::Error;
        r.verdict = Some(Verdict::of(&r, FailOn::Warning));
        let xml = r.to_junit();
        assert_eq!(xml.matches("<failure ").count(), 3, "findings at or over warning fail their tasks: {xml}");
        assert!(xml.contains("type=\"findings\" message=\"3 finding(s) at or over --fail-on warning\""), "{xml}");
        r.verdict = Some(Verdict::of(&r, FailOn::Never));
        assert_eq!(r.to_junit().matches("<failure ").count(), 0);
    }

    #[test]
    fn guest_text_cannot_break_the_xml() {
        assert_eq!(xml("a<b>&\"c'\n\u{1b}"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}");
    }
}
