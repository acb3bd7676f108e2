//! `license-header`: a teammate that checks that each file its task owns
//! starts with an SPDX licence header, and on request inserts one.
//!
//! A header is a line holding `SPDX-License-Identifier: <licence>` right
//! after a comment opener (`//`, `#`, `--`, `<!--`, `/*`, ` *` …; a mere
//! mention of the tag in code or prose does not count), within the first
//! lines of the file (after a `#!` shebang or an `<?xml …?>`
//! declaration, which stay first). The comment syntax follows the file's
//! extension: `//` (Rust, C, Go, JS, WIT…), `#` (TOML, Python, shell,
//! YAML…), `--` (SQL, Lua), `<!-- -->` (Markdown, HTML, XML), `/* */` (CSS).
//!
//! Rules (ids are stable):
//!
//! - `license-header/missing`: no header (`(inserted)` in fix mode once
//!   written);
//! - `license-header/mismatch`: a header naming another licence than
//!   `license=` (never rewritten: changing a licence is a human decision);
//! - `license-header/unknown-style`: fix mode, but no comment syntax is known
//!   for the file.
//!
//! Options, in the task's `description` (see `swarm_guest_sdk::options`):
//!
//! - `license=<SPDX expression>`: the licence the header must name (without
//!   it, any SPDX header passes); required by `fix`;
//! - `fix`: insert the header into each owned file that lacks one;
//! - `within=<n>`: how many lines from the top may hold the header
//!   (default 5).
//!
//! Files that are not UTF-8 are skipped (counted in the summary); a file
//! that cannot be read or written is an `unreadable` / `unwritable` finding.

pub mod header;

use header::{Style, Verdict, rule};
use swarm_guest_sdk::options::Options;
use swarm_guest_sdk::prelude::*;

/// The teammate: stateless, every task checks its own files.
#[derive(Default)]
pub struct LicenseHeader;

impl Teammate for LicenseHeader {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let opts = Options::parse(&task.description, &["license", "fix", "within"])?;
        let want = opts.value("license").filter(|l| !l.is_empty());
        let fix = opts.flag("fix");
        if fix && want.is_none() {
            return Err("option `fix` needs `license=<SPDX expression>` to know which header to insert".into());
        }
        let within = opts.number("within", header::DEFAULT_WITHIN)?;
        let files = &task.owned_files;
        let total = u32::try_from(files.len()).unwrap_or(u32::MAX);
        ctx.progress(0, total);

        let mut findings = Vec::new();
        let (mut missing, mut inserted, mut skipped) = (0, 0, 0);
        for (i, file) in files.iter().enumerate() {
            let text = match ctx.read(file).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => {
                    skipped += 1;
                    continue;
                }
                Err(e) => {
                    findings.push(Finding::for_file(file, "unreadable", e.describe()));
                    continue;
                }
            };
            match header::check(&text, want, within) {
                Verdict::Ok => {}
                Verdict::Mismatch { line, found } => findings.push(Finding::new(
                    file,
                    line,
                    rule::MISMATCH,
                    format!("header names `{found}`, expected `{}`", want.unwrap_or_default()),
                )),
                Verdict::Missing => {
                    missing += 1;
                    let what = match want {
                        Some(l) => format!("no `{} {l}` header in the first {within} lines", header::SPDX_TAG),
                        None => format!("no `{}` header in the first {within} lines", header::SPDX_TAG),
                    };
                    match (fix, want, Style::for_path(file)) {
                        (true, Some(license), Some(style)) => {
                            match ctx.write(file, header::insert(&text, &style.header(license))) {
                                Ok(()) => {
                                    inserted += 1;
                                    // Fixed in this run: only a note.
                                    let inserted_header = format!("{what} (inserted)");
                                    findings.push(
                                        Finding::new(file, 1, rule::MISSING, inserted_header).rated(Severity::Note),
                                    );
                                }
                                Err(e) => {
                                    findings.push(Finding::new(file, 1, rule::MISSING, what));
                                    findings.push(Finding::for_file(file, "unwritable", e.describe()));
                                }
                            }
                        }
                        (true, _, None) => {
                            findings.push(Finding::new(file, 1, rule::MISSING, what));
                            findings.push(Finding::for_file(
                                file,
                                rule::UNKNOWN_STYLE,
                                "no known comment syntax for this kind of file; header not inserted",
                            ));
                        }
                        _ => findings.push(Finding::new(file, 1, rule::MISSING, what)),
                    }
                }
            }
            ctx.progress(u32::try_from(i + 1).unwrap_or(u32::MAX), total);
        }

        let mut summary = format!("{missing} of {} file(s) without a licence header", files.len());
        if fix {
            summary += &format!(", {inserted} inserted");
        }
        if skipped > 0 {
            summary += &format!(", {skipped} skipped (not UTF-8)");
        }
        Ok(Report::with_findings(summary, findings))
    }
}

export_teammate!(LicenseHeader);
// Each rule's description and help for the report (`rules.toml`).
swarm_guest_sdk::describe_rules!();
