//! `whitespace`: a teammate that checks, and on request fixes, whitespace in
//! the files its task owns.
//!
//! Rules (ids are stable):
//!
//! | rule | what | fixed by `fix` |
//! | --- | --- | --- |
//! | `whitespace/trailing` | spaces or tabs at the end of a line | yes |
//! | `whitespace/final-newline` | the last line has no `\n` | yes |
//! | `whitespace/crlf` | lines ending in `\r\n` (one finding per file) | yes |
//! | `whitespace/mixed-indent` | lines indented with tabs in a file indented with spaces, or the reverse | no |
//! | `whitespace/line-length` | a line over `max-line` characters | no |
//!
//! Options, in the task's `description` (see `swarm_guest_sdk::options`):
//!
//! - `fix`: rewrite each file with a fixable issue (through the workspace,
//!   so only owned files, which the host enforces); the findings are still
//!   reported, those repaired end in `(fixed)`;
//! - `max-line=<n>`: longest allowed line in characters (default 100, `0`
//!   turns the check off).
//!
//! Files that are not UTF-8 are skipped (and counted in the summary); a
//! file that cannot be read or written is an `unreadable` / `unwritable`
//! finding, not a task failure. An unknown option fails the task.

pub mod check;

use swarm_guest_sdk::options::Options;
use swarm_guest_sdk::prelude::*;

/// The teammate: stateless, every task checks its own files.
#[derive(Default)]
pub struct Whitespace;

impl Teammate for Whitespace {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let opts = Options::parse(&task.description, &["fix", "max-line"])?;
        let fix = opts.flag("fix");
        let config = check::Config { max_line: opts.number("max-line", check::DEFAULT_MAX_LINE)? };
        let files = &task.owned_files;
        let total = u32::try_from(files.len()).unwrap_or(u32::MAX);
        ctx.progress(0, total);

        let mut findings = Vec::new();
        let (mut with_issues, mut fixed, mut skipped) = (0, 0, 0);
        for (i, file) in files.iter().enumerate() {
            match ctx.read(file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => {
                        let issues = check::check(&text, config);
                        with_issues += usize::from(!issues.is_empty());
                        let repaired = fix && issues.iter().any(|i| i.fixable);
                        if repaired {
                            match ctx.write(file, check::fix(&text)) {
                                Ok(()) => fixed += 1,
                                Err(e) => findings.push(Finding::for_file(file, "unwritable", e.describe())),
                            }
                        }
                        findings.extend(issues.into_iter().map(|issue| {
                            let message = if repaired && issue.fixable {
                                format!("{} (fixed)", issue.message)
                            } else {
                                issue.message
                            };
                            // An issue this run fixed is only a note; one left is a warning.
                            let severity = if repaired && issue.fixable { Severity::Note } else { Severity::Warning };
                            Finding { file: file.clone(), line: issue.line, rule: issue.rule.into(), message, severity }
                        }));
                    }
                    Err(_) => skipped += 1,
                },
                Err(e) => findings.push(Finding::for_file(file, "unreadable", e.describe())),
            }
            ctx.progress(u32::try_from(i + 1).unwrap_or(u32::MAX), total);
        }

        let mut summary = format!("{} issue(s) in {with_issues} of {} file(s)", findings.len(), files.len());
        if fix {
            summary += &format!(", {fixed} fixed");
        }
        if skipped > 0 {
            summary += &format!(", {skipped} skipped (not UTF-8)");
        }
        Ok(Report::with_findings(summary, findings))
    }
}

export_teammate!(Whitespace);
// Each rule's description and help for the report (`rules.toml`).
swarm_guest_sdk::describe_rules!();
