//! `todo-scan`: a teammate that finds `TODO`, `FIXME` and `XXX` markers in the
//! files its task owns.
//!
//! Each marker becomes one [`Finding`]: the file, the 1-based line, the rule
//! (the marker in lower case: `todo`, `fixme`, `xxx`) and the trimmed line
//! text, with severity `note` (`--fail-on note` fails a run on them). A marker counts only as a whole, upper-case word: `TODO:`,
//! `TODO(bob)` and `// FIXME` match; `TODOS`, `todo_list`, `XXXL` and
//! `MY_TODO` do not. Files that are not UTF-8 are skipped (and counted as
//! such in the summary); a file that cannot be read is an `unreadable`
//! finding, not a task failure.
//!
//! The matching lives in the pure module [`markers`], which `cargo test -p
//! todo-scan` tests natively.

pub mod markers;

use swarm_guest_sdk::prelude::*;

/// The teammate: stateless, every task scans its own files.
#[derive(Default)]
pub struct TodoScan;

impl Teammate for TodoScan {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let files = &task.owned_files;
        let total = u32::try_from(files.len()).unwrap_or(u32::MAX);
        ctx.progress(0, total);

        let mut findings = Vec::new();
        let mut stats = markers::Stats::default();
        for (i, file) in files.iter().enumerate() {
            match ctx.read(file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => {
                        let found = markers::find_markers(&text);
                        stats.record_scanned(found.len());
                        // A marker is worth knowing, nothing to fix now: severity `note`.
                        findings.extend(
                            found
                                .into_iter()
                                .map(|m| Finding::new(file, m.line, m.marker.rule(), m.text).rated(Severity::Note)),
                        );
                    }
                    Err(_) => stats.skipped += 1,
                },
                Err(e) => {
                    stats.unreadable += 1;
                    findings.push(Finding::for_file(file, "unreadable", e.describe()));
                }
            }
            ctx.progress(u32::try_from(i + 1).unwrap_or(u32::MAX), total);
        }

        Ok(Report::with_findings(stats.summary(files.len()), findings))
    }
}

export_teammate!(TodoScan);
// Each rule's description and help for the report (`rules.toml`).
swarm_guest_sdk::describe_rules!();
