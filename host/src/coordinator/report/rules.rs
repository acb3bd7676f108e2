//! What each finding rule means, for SARIF's rule table (code-scanning UIs
//! show it beside every alert): a short description, a full one and help
//! text on how to resolve a finding. The shipped plugins' rules are
//! described here; a rule no table knows gets a description naming the rule
//! and the teammate that reported it, so every rule carries all three.

/// A rule's descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHelp {
    /// One line: what was found.
    pub short: String,
    /// What the rule checks.
    pub full: String,
    /// How to resolve a finding.
    pub help: String,
}

/// `(rule id, short, full, help)` for the shipped plugins' rules.
const SHIPPED: &[(&str, &str, &str, &str)] = &[
    (
        "todo",
        "TODO marker",
        "todo-scan: a TODO marker in a comment or text: work someone left for later.",
        "Do the work the marker names and remove it, or track it in an issue and link the issue.",
    ),
    (
        "fixme",
        "FIXME marker",
        "todo-scan: a FIXME marker: code its author knew to be wrong.",
        "Fix what the marker describes and remove it.",
    ),
    (
        "xxx",
        "XXX marker",
        "todo-scan: an XXX marker: a warning its author left about dangerous or unclear code.",
        "Resolve what the marker warns about and remove it.",
    ),
    (
        "license-header/missing",
        "No SPDX licence header",
        "license-header: no SPDX-License-Identifier header near the top of the file.",
        "Add an `SPDX-License-Identifier:` comment in the file's first lines (the plugin's `fix` mode inserts it).",
    ),
    (
        "license-header/mismatch",
        "SPDX header names another licence",
        "license-header: the file's SPDX header names another licence than the one the task asks for.",
        "Correct the header to the project's licence, or change the task's expected licence if the file is licensed differently on purpose.",
    ),
    (
        "license-header/unknown-style",
        "No comment syntax known for the file",
        "license-header: `fix` could not insert a header because no comment syntax is known for the file's type.",
        "Add the header by hand, or exclude the file from the task.",
    ),
    (
        "whitespace/trailing",
        "Trailing whitespace",
        "whitespace: a line ends with spaces or tabs.",
        "Remove the whitespace at the end of the line (most editors can trim it on save).",
    ),
    (
        "whitespace/mixed-indent",
        "Mixed tabs and spaces in indentation",
        "whitespace: a line's indentation mixes tabs and spaces.",
        "Indent with one kind of whitespace, as the file's other lines do.",
    ),
    (
        "whitespace/final-newline",
        "No newline at end of file",
        "whitespace: the file does not end with a newline.",
        "End the file with a single newline.",
    ),
    (
        "whitespace/crlf",
        "CRLF line endings",
        "whitespace: lines end with CRLF instead of LF.",
        "Convert the file to LF line endings (or set `.gitattributes` to normalise them).",
    ),
    (
        "whitespace/line-length",
        "Line too long",
        "whitespace: a line is longer than the task's maximum length.",
        "Wrap or shorten the line, or raise the limit in the task's description.",
    ),
    (
        "md-links/broken-link",
        "Broken relative link",
        "md-links: a relative Markdown link whose target file or directory does not exist.",
        "Point the link at an existing file, or remove it.",
    ),
    (
        "md-links/broken-image",
        "Broken relative image",
        "md-links: a relative Markdown image whose file does not exist.",
        "Add the image file or correct its path.",
    ),
    (
        "md-links/broken-anchor",
        "Broken anchor",
        "md-links: a `#anchor` that no heading or id of the target Markdown file defines.",
        "Link to an existing heading (anchors are the heading in lower case, spaces as dashes).",
    ),
    (
        "md-links/outside-root",
        "Link leaves the repository",
        "md-links: a relative link that climbs above the workspace root.",
        "Link inside the repository, or use an absolute URL for external documents.",
    ),
    (
        "secret-scan/aws-access-key",
        "AWS access key id",
        "secret-scan: an AWS access key id (AKIA…, ASIA…) in the source.",
        "Revoke the key in AWS, remove it from the file and its history, and load it from the environment or a secret store.",
    ),
    (
        "secret-scan/private-key",
        "Private key",
        "secret-scan: a PEM private-key block in the source.",
        "Treat the key as compromised: replace it, remove it from the file and its history, and keep keys out of the repository.",
    ),
    (
        "secret-scan/github-token",
        "GitHub token",
        "secret-scan: a GitHub token (ghp_…, github_pat_…) in the source.",
        "Revoke the token on GitHub, remove it from the file and its history, and use a secret of the CI system instead.",
    ),
    (
        "secret-scan/slack-token",
        "Slack token or webhook",
        "secret-scan: a Slack token (xoxb-…) or incoming-webhook URL in the source.",
        "Revoke the token or webhook in Slack, remove it from the file and its history, and load it from a secret store.",
    ),
    (
        "secret-scan/password-assignment",
        "Hard-coded password",
        "secret-scan: a quoted, high-entropy value assigned to a name like `password`.",
        "Move the value to the environment or a secret store and rotate it.",
    ),
];

/// The descriptions of `rule`, reported by `teammates` (for rules no table
/// knows).
pub fn describe(rule: &str, teammates: &[&str]) -> RuleHelp {
    if let Some((_, short, full, help)) = SHIPPED.iter().find(|(id, ..)| *id == rule) {
        return RuleHelp { short: (*short).into(), full: (*full).into(), help: (*help).into() };
    }
    let who = if teammates.is_empty() { "a teammate".to_string() } else { teammates.join(", ") };
    RuleHelp {
        short: format!("Rule {rule}"),
        full: format!(
            "Rule `{rule}` of a swarm-host teammate plugin ({who}); the plugin describes it in its own docs."
        ),
        help: format!(
            "See the documentation of the plugin behind {who} for what rule `{rule}` checks and how to resolve it."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_are_described_and_others_name_their_teammate() {
        let known = describe("secret-scan/private-key", &["secret-scan"]);
        assert_eq!(known.short, "Private key");
        assert!(known.help.contains("compromised"));
        let unknown = describe("acme/x", &["acme-1"]);
        assert!(unknown.full.contains("acme-1") && unknown.help.contains("acme/x"), "{unknown:?}");
        for (id, short, full, help) in SHIPPED {
            assert!(!short.is_empty() && !full.is_empty() && !help.is_empty(), "{id}");
        }
    }
}
