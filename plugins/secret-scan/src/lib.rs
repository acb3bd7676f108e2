//! `secret-scan`: a teammate that looks for credentials committed in the
//! files its task owns. It only reads; it never rewrites a file.
//!
//! Rules (ids are stable):
//!
//! - `secret-scan/aws-access-key`: `AKIA…` / `ASIA…` followed by 16
//!   upper-case letters or digits;
//! - `secret-scan/private-key`: a `-----BEGIN … PRIVATE KEY-----` line;
//! - `secret-scan/github-token`: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`
//!   tokens and `github_pat_` fine-grained tokens;
//! - `secret-scan/slack-token`: `xoxb-`, `xoxp-`, … tokens and
//!   `hooks.slack.com/services/` webhook URLs;
//! - `secret-scan/password-assignment`: a quoted literal of at least 8
//!   characters and at least 3 bits/char of entropy assigned (`=`, `:`,
//!   `:=`) to a name containing `password`, `secret`, `token`, `api_key`…;
//!   placeholders like `${VAR}` or `<…>` are ignored.
//!
//! Every possible secret is a finding of severity `error` (`swarm-host run
//! --fail-on error` does not fail on findings; `--fail-on warning` does);
//! an `unreadable` file is a `warning`.
//!
//! Findings never echo a secret: they show at most its public prefix
//! (`AKIA`, `ghp_`) and its length. A line containing `secret-scan:allow` is
//! not scanned (for documented examples and test fixtures).
//!
//! The task's `description` takes no options (an unknown one fails the
//! task). Files that are not UTF-8 are skipped; a file that cannot be read
//! is an `unreadable` finding.

pub mod patterns;

use swarm_guest_sdk::options::Options;
use swarm_guest_sdk::prelude::*;

/// The teammate: stateless, every task scans its own files.
#[derive(Default)]
pub struct SecretScan;

impl Teammate for SecretScan {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        Options::parse(&task.description, &[])?;
        let files = &task.owned_files;
        let total = u32::try_from(files.len()).unwrap_or(u32::MAX);
        ctx.progress(0, total);

        let mut findings = Vec::new();
        let (mut with_secrets, mut skipped) = (0, 0);
        for (i, file) in files.iter().enumerate() {
            match ctx.read(file).map(String::from_utf8) {
                Ok(Ok(text)) => {
                    let hits = patterns::scan(&text);
                    with_secrets += usize::from(!hits.is_empty());
                    // A leaked secret must be fixed: severity `error`.
                    findings.extend(
                        hits.into_iter().map(|h| Finding::new(file, h.line, h.rule, h.message).rated(Severity::Error)),
                    );
                }
                Ok(Err(_)) => skipped += 1,
                Err(e) => findings.push(Finding::for_file(file, "unreadable", e.describe())),
            }
            ctx.progress(u32::try_from(i + 1).unwrap_or(u32::MAX), total);
        }

        let mut summary = format!("{} possible secret(s) in {with_secrets} of {} file(s)", findings.len(), files.len());
        if skipped > 0 {
            summary += &format!(", {skipped} skipped (not UTF-8)");
        }
        Ok(Report::with_findings(summary, findings))
    }
}

export_teammate!(SecretScan);
// Each rule's description and help for the report (`rules.toml`).
swarm_guest_sdk::describe_rules!();
