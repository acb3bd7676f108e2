//! The CI formats as CI systems read them: SARIF through Microsoft's SARIF
//! Multitool with GitHub's ingestion rules (`validate --rule-kind
//! "Gh;Sarif"`), JUnit XML through `xmllint --schema` against the vendored
//! Jenkins/Surefire schema (`tests/schemas/junit-10.xsd`). Both for the
//! ci-audit example's report and for a synthetic one full of hostile text
//! and rules no table describes; and a plugin's own rule table (its
//! `swarm-rules` custom section) reaching the SARIF, bounded and escaped. `.ci/run` installs both tools (pinned);
//! `SARIF_MULTITOOL` and `XMLLINT` override where they are found.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use swarm_host::coordinator::{FailOn, RunReport, Verdict};

/// The multitool's native binary: `$SARIF_MULTITOOL`, else the one the
/// global npm package `@microsoft/sarif-multitool` resolves to (its own
/// `bin.js` runs it through a shell, which would split `Gh;Sarif`).
fn multitool() -> PathBuf {
    if let Some(path) = std::env::var_os("SARIF_MULTITOOL") {
        return path.into();
    }
    let script = "const p=require('path'),c=require('child_process');\
                  console.log(require(p.join(c.execSync('npm root -g').toString().trim(),'@microsoft/sarif-multitool')))";
    let out = Command::new("node").args(["-e", script]).output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap().trim().into(),
        _ => panic!(
            "the SARIF Multitool is not installed: `npm install -g @microsoft/sarif-multitool@5.7.0` (as .ci/run does), or set SARIF_MULTITOOL"
        ),
    }
}

/// The errors the multitool finds in `sarif` with GitHub's and SARIF's
/// rules, as `rule: message` lines.
fn multitool_errors(sarif: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("report.sarif");
    let output = dir.path().join("validation.sarif");
    std::fs::write(&input, sarif).unwrap();
    let run = Command::new(multitool())
        .args(["validate", "--rule-kind", "Gh;Sarif", "-o"])
        .arg(&output)
        .arg(&input)
        .output()
        .expect("the SARIF Multitool runs");
    let log = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(output.exists(), "the multitool wrote no log:\n{log}");
    let found: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let results = found["runs"][0]["results"].as_array().cloned().unwrap_or_default();
    let notes =
        found["runs"][0]["invocations"][0]["toolExecutionNotifications"].as_array().cloned().unwrap_or_default();
    results
        .iter()
        .chain(&notes)
        .filter(|r| r["level"] == "error")
        .map(|r| format!("{}: {}", r["ruleId"], r["message"]))
        .collect()
}

/// `xmllint --schema tests/schemas/junit-10.xsd` on `xml`: `Ok` or its
/// complaints.
fn junit_schema_check(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/junit-10.xsd");
    let xmllint = std::env::var_os("XMLLINT").unwrap_or_else(|| "xmllint".into());
    let out = Command::new(&xmllint)
        .args(["--noout", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("xmllint does not run ({e}): install Debian's libxml2-utils, as .ci/run does"));
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

const HOSTILE: &str =
    "</script><script>alert(1)</script> \"quoted' & <b>bold</b>\n::error::forged javascript:alert(2) ]]> \u{1b}[31m";

/// A report as a hostile guest could make it: text everywhere, a rule no
/// table describes, a failed task stopped by a limit, a retry.
fn hostile_report() -> RunReport {
    let finding = |file: &str, line: Value, rule: &str, severity: &str| json!({ "file": file, "line": line, "rule": rule, "message": HOSTILE, "severity": severity });
    serde_json::from_value(json!({
        "v": 1, "team": "hostile", "backend": "in-process", "duration": "2s 5ms",
        "interrupted": null, "warnings": [], "teammates": [], "messages": [],
        "totals": { "tasks": 2, "completed": 1, "failed": 1, "findings": 3, "retries": 1 },
        "tasks": [
            { "id": "t1", "subject": HOSTILE, "status": "completed", "owned_files": 1, "teammate": "evil-1",
              "attempts": [], "summary": HOSTILE, "error": null,
              "findings": [
                  finding("src/a.rs", json!(3), "evil/<rule>", "error"),
                  finding("src/b c.rs", Value::Null, "todo", "note"),
                  finding("../outside", json!(1), "evil/<rule>", "warning"),
              ] },
            { "id": "t2", "subject": "two", "status": "failed", "owned_files": 1, "teammate": "evil-2",
              "attempts": [
                  { "teammate": "evil-1", "error": HOSTILE, "claimed_seq": 1, "ended_seq": 2, "duration": "1s", "limit": "deadline" },
                  { "teammate": "evil-2", "error": HOSTILE, "claimed_seq": 3, "ended_seq": 4, "duration": "1ms" }
              ],
              "summary": null, "findings": [], "error": HOSTILE, "limit": "deadline" }
        ]
    }))
    .unwrap()
}

#[test]
fn the_multitool_rejects_sarif_without_rule_help_so_its_verdict_means_something() {
    let mut sarif: Value = serde_json::from_str(&hostile_report().to_sarif()).unwrap();
    let driver = &mut sarif["runs"][0]["tool"]["driver"];
    driver.as_object_mut().unwrap().remove("informationUri");
    for rule in driver["rules"].as_array_mut().unwrap() {
        rule.as_object_mut().unwrap().remove("help");
    }
    let errors = multitool_errors(&sarif.to_string());
    assert!(errors.iter().any(|e| e.starts_with("\"GH")), "GitHub's rules flag a rule without help: {errors:?}");
}

#[test]
fn sarif_of_a_hostile_report_passes_the_multitool_with_github_rules() {
    let errors = multitool_errors(&hostile_report().to_sarif());
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_ci_audit_example_gives_sarif_the_multitool_accepts_and_junit_that_validates() {
    let mut report = common::ci_audit_report();
    assert!(report.totals.findings > 0, "the example finds something to check: {}", report.to_text(5));
    let sarif = report.to_sarif();
    let errors = multitool_errors(&sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    let parsed: Value = serde_json::from_str(&sarif).unwrap();
    let levels: Vec<&str> =
        parsed["runs"][0]["results"].as_array().unwrap().iter().map(|r| r["level"].as_str().unwrap()).collect();
    let findings: Vec<_> = report.tasks.iter().flat_map(|t| &t.findings).collect();
    assert_eq!(levels, findings.iter().map(|f| f.severity.as_str()).collect::<Vec<_>>(), "levels follow severities");
    // Every rule's text is the one its plugin wrote in its rules.toml.
    let written = shipped_rule_help();
    for rule in parsed["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        let help = written.get(id).unwrap_or_else(|| panic!("no plugin's rules.toml describes {id}"));
        assert_eq!(rule["help"]["text"], help.as_str(), "{id}: {:?}", report.warnings);
    }

    for fail_on in [FailOn::Error, FailOn::Note] {
        report.verdict = Some(Verdict::of(&report, fail_on));
        let xml = report.to_junit();
        junit_schema_check(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(xml.matches("<testcase ").count(), report.tasks.len(), "one test case per task");
    }
    let tasks_with_findings = report.tasks.iter().filter(|t| !t.findings.is_empty()).count();
    assert_eq!(
        report.to_junit().matches("<failure ").count(),
        tasks_with_findings,
        "--fail-on note: every finding fails"
    );
}

/// Rule id → help of every shipped Rust checker's `rules.toml` (the ids
/// the ci-audit team can report; `unreadable` has the same help in each).
fn shipped_rule_help() -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for plugin in ["todo-scan", "license-header", "whitespace", "md-links", "secret-scan"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins").join(plugin).join("rules.toml");
        let table: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for rule in table["rule"].as_array().unwrap() {
            out.insert(rule["id"].as_str().unwrap().to_string(), rule["help"].as_str().unwrap().to_string());
        }
    }
    out
}

/// A copy of the `legacy` guest (built before rule tables existed; it
/// reports `legacy.txt:1 legacy-rule`) with `rules` appended as its
/// `swarm-rules` custom section, in `dir`.
fn legacy_with_rules(dir: &Path, rules: &str) -> PathBuf {
    let mut wasm = std::fs::read(swarm_tests::LEGACY).unwrap();
    let name = b"swarm-rules";
    let mut size = 1 + name.len() + rules.len();
    wasm.push(0);
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        wasm.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    wasm.push(name.len() as u8);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(rules.as_bytes());
    let path = dir.join("legacy-with-rules.wasm");
    std::fs::write(&path, wasm).unwrap();
    path
}

/// One `[[rule]]` table of `legacy-rule` as TOML (the serializer escapes
/// whatever the texts hold).
fn legacy_rule_toml(short: &str, full: &str, help: &str) -> String {
    let rule: toml::Table = [("id", "legacy-rule"), ("short", short), ("full", full), ("help", help)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), toml::Value::from(v)))
        .collect();
    let file: toml::Table = std::iter::once(("rule".to_string(), toml::Value::Array(vec![rule.into()]))).collect();
    toml::to_string(&file).unwrap()
}

/// The report of one task run by `plugin` (the legacy guest's copy).
fn run_legacy(fx: &common::Fixture, plugin: &Path) -> RunReport {
    let body = format!(
        "[[teammate]]\nname = \"legacy\"\nplugin = {plugin:?}\n[[task]]\nid = \"t\"\nsubject = \"scan\"\nowns = [\"legacy.txt\"]\n"
    );
    let report = fx.run(&body);
    assert!(report.success(), "{}", report.to_text(10));
    report
}

#[test]
fn a_plugins_own_rule_help_reaches_sarif_bounded_and_escaped() {
    let fx = common::Fixture::new(&[("legacy.txt", "x\n")]);
    let hostile_help = format!("{HOSTILE} {}", "long ".repeat(1000));
    let rules = legacy_rule_toml("Legacy rule", "What legacy checks.", &hostile_help);
    let report = run_legacy(&fx, &legacy_with_rules(fx.root().parent().unwrap(), &rules));
    let sarif = report.to_sarif();
    let errors = multitool_errors(&sarif);
    assert!(errors.is_empty(), "{errors:#?}");

    let parsed: Value = serde_json::from_str(&sarif).unwrap();
    let driver = &parsed["runs"][0]["tool"]["driver"];
    assert!(driver["informationUri"].as_str().unwrap().starts_with("https://"), "{driver}");
    let rule = &driver["rules"][0];
    assert_eq!(rule["id"], "legacy-rule");
    assert_eq!(rule["shortDescription"]["text"], "Legacy rule", "the plugin's own text");
    assert_eq!(rule["fullDescription"]["text"], "What legacy checks.");
    let help = rule["help"]["text"].as_str().unwrap();
    assert!(
        help.starts_with("</script><script>alert(1)</script>"),
        "markup is JSON text, escaped by SARIF readers: {help}"
    );
    assert!(!help.contains('\u{1b}') && help.contains("\\u{1b}[31m"), "the escape is inert: {help}");
    assert!(!help.contains('\n'), "one line: {help}");
    assert!(help.ends_with('…'), "cut: {help}");
    let limit = swarm_host::coordinator::report::MAX_TEXT_CHARS;
    assert!(help.chars().count() <= limit + 16, "{} chars, over the {limit} limit", help.chars().count());
}

#[test]
fn a_broken_rule_table_is_named_in_the_warnings_and_its_rules_get_generic_text() {
    let fx = common::Fixture::new(&[("legacy.txt", "x\n")]);
    let plugin = legacy_with_rules(fx.root().parent().unwrap(), "[[rule]]\nid = \"legacy-rule\"\nshort = \"s\"\n");
    let report = run_legacy(&fx, &plugin);
    let warning = report.warnings.iter().find(|w| w.contains("rule descriptions")).expect("a warning");
    assert!(warning.contains("teammate legacy") && warning.contains("legacy-with-rules.wasm"), "{warning}");
    assert!(warning.contains("missing field `full`"), "names what was wrong: {warning}");
    let parsed: Value = serde_json::from_str(&report.to_sarif()).unwrap();
    let full = parsed["runs"][0]["tool"]["driver"]["rules"][0]["fullDescription"]["text"].as_str().unwrap();
    assert!(full.contains("legacy-1") && full.contains("does not describe it"), "{full}");
}

#[test]
fn junit_of_a_hostile_report_validates_and_keeps_the_text() {
    let mut report = hostile_report();
    report.verdict = Some(Verdict::of(&report, FailOn::Warning));
    let xml = report.to_junit();
    junit_schema_check(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(!xml.contains("<script>") && !xml.contains("<b>") && !xml.contains('\u{1b}'), "{xml}");
    assert!(xml.contains("type=\"limit:deadline\""), "the failure names the limit: {xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "t1's error and warning findings, t2's failure: {xml}");
}

#[test]
fn a_broken_junit_file_fails_the_schema_check() {
    let xml = "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"x\"><testcase/></testsuite></testsuites>\n";
    assert!(junit_schema_check(xml).is_err(), "a test case without a name and a suite without counts");
}

#[test]
fn the_cli_prints_junit_writes_html_beside_it_and_reports_to_github_actions() {
    let body = "[[teammate]]\nname = \"todo-scan\"\nplugin = PLUGIN\n\n[[task]]\nid = \"markers\"\nsubject = \"markers\"\nowns = [\"**\"]\n"
        .replace("PLUGIN", &format!("{:?}", swarm_tests::TODO_SCAN));
    let dir = swarm_tests::team_dir("cli-formats", &[("src/a.rs", "// TODO: one\n")], &body);
    let html = dir.path().join("report.html");
    let summary = dir.path().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_swarm-host-under-test"))
        .args(["run", "--fresh", "--backend", "in-process", "--format", "junit", "--annotations", "--html"])
        .arg(&html)
        .arg(dir.path().join("team.toml"))
        .env("SWARM_STATE_DIR", dir.path().join("state"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    junit_schema_check(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert!(stdout.contains("<testcase name=\"markers: markers\""), "{stdout}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("id=\"report-data\""));
    assert!(stderr.contains("::notice file=src/a.rs,line=1,title=todo::// TODO: one"), "{stderr}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ✅ swarm-host: team cli-formats"), "{md}");
    assert!(md.contains("| note | src/a.rs | 1 | todo | // TODO: one |"), "{md}");
}
