//! The report as SARIF 2.1.0 for code-scanning UIs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{RunReport, count_by_rule};
use crate::model::Severity;
use crate::tasks::Status;

/// The SARIF version [`RunReport::to_sarif`] writes.
pub const SARIF_VERSION: &str = "2.1.0";

/// The schema [`RunReport::to_sarif`] names.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The tool's `informationUri` in SARIF (code-scanning UIs link it): the
/// project's `repository` from the workspace's `Cargo.toml`.
pub const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");
const _: () = assert!(!INFORMATION_URI.is_empty(), "Cargo.toml's [workspace.package] sets `repository`");

impl RunReport {
    /// The report as SARIF 2.1.0 (pretty JSON), for code-scanning UIs: one
    /// run whose tool is `swarm-host`, one rule per distinct rule id (its
    /// default level the most severe of its findings; its descriptions and
    /// help from the plugin that reported it, see [`rules`](super::rules)),
    /// one result per
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
        // The teammates that reported each rule, for rules no table describes.
        let mut reporters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in &self.tasks {
            let Some(who) = t.teammate.as_deref() else { continue };
            for f in &t.findings {
                let list = reporters.entry(f.rule.as_str()).or_default();
                if !list.contains(&who) {
                    list.push(who);
                }
            }
        }
        let rules: Vec<Value> = rule_ids
            .iter()
            .map(|id| {
                let level = worst.get(id.as_str()).copied().unwrap_or_default();
                let help = super::rules::describe(self, id, reporters.get(id.as_str()).map_or(&[][..], Vec::as_slice));
                json!({
                    "id": id,
                    "shortDescription": { "text": help.short },
                    "fullDescription": { "text": help.full },
                    "help": { "text": help.help },
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
                    "informationUri": INFORMATION_URI,
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

pub(super) fn status_word(status: Status) -> &'static str {
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
pub(super) fn is_plain_relative(path: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::RuleHelp;
    use super::super::fixtures::{finding, report};
    use super::*;
    use serde_json::Value;

    #[test]
    fn sarif_has_version_rules_results_and_locations() {
        let mut r = report();
        let trailing = RuleHelp { short: "Trailing whitespace".into(), full: "F".into(), help: "Trim it.".into() };
        r.rules.insert("whitespace/trailing".into(), trailing);
        let sarif: Value = serde_json::from_str(&r.to_sarif()).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(sarif["$schema"], SARIF_SCHEMA);
        let runs = sarif["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert_eq!(run["tool"]["driver"]["name"], "swarm-host");
        let rules: Vec<&str> =
            run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(rules, ["todo", "whitespace/crlf", "whitespace/trailing"], "one rule per distinct id");
        assert_eq!(run["tool"]["driver"]["informationUri"], INFORMATION_URI);
        for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
            for key in ["shortDescription", "fullDescription", "help"] {
                assert!(rule[key]["text"].as_str().is_some_and(|t| !t.is_empty()), "{key} of {rule}");
            }
        }
        let described = &run["tool"]["driver"]["rules"][2];
        assert_eq!(described["shortDescription"]["text"], "Trailing whitespace", "the plugin's text");
        assert_eq!(described["help"]["text"], "Trim it.");
        let generic = &run["tool"]["driver"]["rules"][0]["fullDescription"]["text"];
        assert!(generic.as_str().unwrap().contains("todo-runner"), "a rule no plugin describes: {generic}");
        assert!(INFORMATION_URI.starts_with("https://"), "{INFORMATION_URI}");

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
