//! The shipped checker plugins (whitespace, license-header, md-links,
//! secret-scan), each run in a real in-process team over a fixture tree:
//! their findings, their fix modes (the fixed file contents, and files the
//! task does not own left alone) and their option errors. Last, the
//! `examples/ci-audit.toml` team over this repository.

mod common;

use std::path::Path;

use common::{Fixture, outcome, task, teammate, tree_hash};
use swarm_host::coordinator::{Loaded, Plan, RunReport};
use swarm_host::tasks::Status;

/// The findings of task `id` as `(file, line, rule)`, sorted.
fn found(report: &RunReport, id: &str) -> Vec<(String, Option<u32>, String)> {
    let mut v: Vec<_> = outcome(report, id).findings.iter().map(|f| (f.file.clone(), f.line, f.rule.clone())).collect();
    v.sort();
    v
}

fn at(file: &str, line: Option<u32>, rule: &str) -> (String, Option<u32>, String) {
    (file.to_string(), line, rule.to_string())
}

fn read(fx: &Fixture, path: &str) -> String {
    std::fs::read_to_string(fx.root().join(path)).unwrap()
}

#[test]
fn whitespace_reports_each_rule_with_its_line() {
    let fx = Fixture::new(&[
        ("src/clean.rs", "fn main() {\n    run();\n}\n"),
        ("src/messy.rs", "fn a() {  \n    one();\n    two();\n\tthree();\n    a_rather_long_line();\n}"),
        ("src/dos.txt", "one\r\ntwo\r\n"),
    ]);
    let report = fx.run(&format!(
        "read = \"owned\"\n{}{}",
        teammate("whitespace", swarm_tests::WHITESPACE, 1, ""),
        task("ws", "whitespace", "owns = [\"src/**\"]\ndescription = \"max-line=20\""),
    ));
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        found(&report, "ws"),
        [
            at("src/dos.txt", Some(1), "whitespace/crlf"),
            at("src/messy.rs", Some(1), "whitespace/trailing"),
            at("src/messy.rs", Some(4), "whitespace/mixed-indent"),
            at("src/messy.rs", Some(5), "whitespace/line-length"),
            at("src/messy.rs", Some(6), "whitespace/final-newline"),
        ]
    );
    let long = outcome(&report, "ws").findings.iter().find(|f| f.rule == "whitespace/line-length").unwrap();
    assert_eq!(long.message, "line is 25 characters, over max-line = 20");
    assert_eq!(outcome(&report, "ws").summary.as_deref(), Some("5 issue(s) in 2 of 3 file(s)"));
    assert_eq!(report.totals.by_rule.get("whitespace/trailing"), Some(&1));
}

#[test]
fn whitespace_fix_rewrites_owned_files_only() {
    let messy = "a  \r\n\tb\t\r\nc";
    let fx = Fixture::new(&[("fix/a.txt", messy), ("fix/ok.txt", "fine\n"), ("keep/b.txt", messy)]);
    let before = tree_hash(&fx.root().join("keep"));
    let report = fx.run(&format!(
        "{}{}",
        teammate("whitespace", swarm_tests::WHITESPACE, 1, ""),
        task("fix", "fix whitespace", "owns = [\"fix/**\"]\ndescription = \"fix max-line=0\""),
    ));
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(read(&fx, "fix/a.txt"), "a\n\tb\nc\n");
    assert_eq!(read(&fx, "fix/ok.txt"), "fine\n");
    assert_eq!(tree_hash(&fx.root().join("keep")), before, "a file the task does not own is unchanged");
    let t = outcome(&report, "fix");
    assert_eq!(t.summary.as_deref(), Some("4 issue(s) in 1 of 2 file(s), 1 fixed"));
    assert!(t.findings.iter().all(|f| f.file == "fix/a.txt" && f.message.ends_with("(fixed)")), "{t:#?}");
    assert!(report.denials.is_empty(), "{:#?}", report.denials);
}

#[test]
fn an_unknown_option_fails_the_task_naming_it() {
    let fx = Fixture::new(&[("a.txt", "x \n")]);
    let report = fx.run(&format!(
        "{}{}",
        teammate("whitespace", swarm_tests::WHITESPACE, 1, ""),
        task("bad", "whitespace", "owns = [\"a.txt\"]\ndescription = \"fix colour=red\"\nmax_attempts = 1"),
    ));
    let bad = outcome(&report, "bad");
    assert_eq!(bad.status, Status::Failed);
    let err = bad.error.as_deref().unwrap();
    assert!(err.contains("unknown option `colour`") && err.contains("known: fix, max-line"), "{err}");
    assert_eq!(read(&fx, "a.txt"), "x \n", "nothing was fixed");
}

#[test]
fn license_header_checks_the_named_licence() {
    let fx = Fixture::new(&[
        ("src/good.rs", "// SPDX-License-Identifier: MIT\nfn a() {}\n"),
        ("src/none.rs", "fn b() {}\n"),
        ("src/other.py", "#!/usr/bin/env python\n# SPDX-License-Identifier: GPL-3.0-only\n"),
        ("src/late.toml", "\n\n\n\n\n\n# SPDX-License-Identifier: MIT\n"),
    ]);
    let report = fx.run(&format!(
        "{}{}",
        teammate("license-header", swarm_tests::LICENSE_HEADER, 1, ""),
        task("lic", "licences", "owns = [\"src/*\"]\ndescription = \"license=MIT\""),
    ));
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        found(&report, "lic"),
        [
            at("src/late.toml", Some(1), "license-header/missing"),
            at("src/none.rs", Some(1), "license-header/missing"),
            at("src/other.py", Some(2), "license-header/mismatch"),
        ]
    );
    let mismatch = outcome(&report, "lic").findings.iter().find(|f| f.file == "src/other.py").unwrap();
    assert_eq!(mismatch.message, "header names `GPL-3.0-only`, expected `MIT`");
}

#[test]
fn license_header_fix_inserts_headers_into_owned_files_only() {
    let fx = Fixture::new(&[
        ("fix/a.rs", "fn a() {}\n"),
        ("fix/run.sh", "#!/bin/sh\necho hi\n"),
        ("fix/has.rs", "// SPDX-License-Identifier: Apache-2.0\n"),
        ("fix/LICENSE", "Apache License\n"),
        ("keep/b.rs", "fn b() {}\n"),
    ]);
    let before = tree_hash(&fx.root().join("keep"));
    let report = fx.run(&format!(
        "{}{}{}",
        teammate("license-header", swarm_tests::LICENSE_HEADER, 1, ""),
        task("fix", "insert headers", "owns = [\"fix/*\"]\ndescription = \"fix license=Apache-2.0\""),
        task("nolicence", "fix without a licence", "description = \"fix\"\nmax_attempts = 1"),
    ));
    assert_eq!(outcome(&report, "fix").status, Status::Completed, "{}", report.to_text(50));
    assert_eq!(read(&fx, "fix/a.rs"), "// SPDX-License-Identifier: Apache-2.0\nfn a() {}\n");
    assert_eq!(read(&fx, "fix/run.sh"), "#!/bin/sh\n# SPDX-License-Identifier: Apache-2.0\necho hi\n");
    assert_eq!(read(&fx, "fix/has.rs"), "// SPDX-License-Identifier: Apache-2.0\n");
    assert_eq!(read(&fx, "fix/LICENSE"), "Apache License\n", "no comment syntax known: left alone");
    assert_eq!(tree_hash(&fx.root().join("keep")), before, "a file the task does not own is unchanged");
    assert_eq!(
        found(&report, "fix"),
        [
            at("fix/LICENSE", None, "license-header/unknown-style"),
            at("fix/LICENSE", Some(1), "license-header/missing"),
            at("fix/a.rs", Some(1), "license-header/missing"),
            at("fix/run.sh", Some(1), "license-header/missing"),
        ]
    );
    assert_eq!(outcome(&report, "fix").summary.as_deref(), Some("3 of 4 file(s) without a licence header, 2 inserted"));
    let nolicence = outcome(&report, "nolicence");
    assert_eq!(nolicence.status, Status::Failed);
    assert!(nolicence.error.as_deref().unwrap().contains("`fix` needs `license=<SPDX expression>`"), "{nolicence:#?}");
}

const README: &str = "# Project\n\n## Quick start\n\n\
    See [the guide](docs/guide.md), [its API section](docs/guide.md#api), [start](#quick-start)\n\
    and [plugins](plugins/).\n\
    Broken: [gone](docs/missing.md), ![logo](img/logo.png), [bad anchor](#nowhere),\n\
    [bad remote anchor](docs/guide.md#nope), [up](../outside.md), [not a dir](README.md/x).\n\
    External: [site](https://example.org/x.md), <https://example.org>.\n\n\
    ```\n[in code](not/checked.md)\n```\n";

const GUIDE: &str = "# Guide\n\n## API\n\nBack to the [readme](../README.md#project) and [root](/README.md).\n";

#[test]
fn md_links_reports_broken_targets_and_anchors() {
    let fx = Fixture::new(&[("README.md", README), ("docs/guide.md", GUIDE), ("plugins/x.txt", "x")]);
    let before = tree_hash(&fx.root());
    let report = fx.run(&format!(
        "read = \"root\"\n{}{}",
        teammate("md-links", swarm_tests::MD_LINKS, 1, ""),
        task("links", "links", "owns = [\"**/*.md\"]"),
    ));
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        found(&report, "links"),
        [
            at("README.md", Some(7), "md-links/broken-anchor"),
            at("README.md", Some(7), "md-links/broken-image"),
            at("README.md", Some(7), "md-links/broken-link"),
            at("README.md", Some(8), "md-links/broken-anchor"),
            at("README.md", Some(8), "md-links/broken-link"),
            at("README.md", Some(8), "md-links/outside-root"),
        ]
    );
    let t = outcome(&report, "links");
    let msg = |rule: &str, line: u32| {
        t.findings.iter().find(|f| f.rule == rule && f.line == Some(line)).unwrap().message.clone()
    };
    assert_eq!(msg("md-links/broken-link", 7), "link target `docs/missing.md` does not exist (docs/missing.md)");
    assert_eq!(msg("md-links/broken-anchor", 7), "no heading or id `#nowhere` in this file");
    assert_eq!(msg("md-links/broken-anchor", 8), "no heading or id `#nope` in docs/guide.md");
    assert_eq!(t.summary.as_deref(), Some("6 broken of 12 relative link(s) in 2 Markdown file(s)"));
    assert_eq!(tree_hash(&fx.root()), before, "md-links only reads");
}

#[test]
fn md_links_under_read_owned_fails_saying_it_needs_read_root() {
    let fx = Fixture::new(&[("README.md", "[guide](docs/guide.md)\n"), ("docs/guide.md", "# Guide\n")]);
    let report = fx.run(&format!(
        "read = \"owned\"\n{}{}",
        teammate("md-links", swarm_tests::MD_LINKS, 1, ""),
        task("links", "links", "owns = [\"README.md\"]\nmax_attempts = 1"),
    ));
    let t = outcome(&report, "links");
    assert_eq!(t.status, Status::Failed);
    assert!(t.error.as_deref().unwrap().contains("md-links needs `read = \"root\"`"), "{t:#?}");
}

#[test]
fn secret_scan_finds_secrets_without_echoing_them() {
    // Assembled at run time so this file holds no secret-shaped literal.
    let aws = format!("AKIA{}", "Q7LMZ2XWNB4RT5KD");
    let ghp = format!("ghp_{}", "x".repeat(4) + "Zq81KmL0pW2nB7vC3dE9fG4hJ6kR5sT1uY");
    let password = "Vq7#Lm2!Xz9@Rb4";
    let config = format!("[db]\nuser = \"app\"\npassword = \"{password}\"\naws_key = \"{aws}\"\n");
    let key = format!("-----BEGIN {} PRIVATE KEY-----\nMIIB...\n-----END RSA PRIVATE KEY-----\n", "RSA");
    let script = format!("curl -H 'Authorization: token {ghp}' x\nexample {aws} # secret-scan:allow\n");
    let fx = Fixture::new(&[
        ("conf/app.toml", &config),
        ("conf/id_rsa", &key),
        ("conf/ci.sh", &script),
        ("conf/clean.toml", "password = \"${DB_PASSWORD}\"\n"),
    ]);
    let before = tree_hash(&fx.root());
    let report = fx.run(&format!(
        "read = \"owned\"\n{}{}",
        teammate("secret-scan", swarm_tests::SECRET_SCAN, 1, ""),
        task("secrets", "secrets", "owns = [\"conf/**\"]"),
    ));
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        found(&report, "secrets"),
        [
            at("conf/app.toml", Some(3), "secret-scan/password-assignment"),
            at("conf/app.toml", Some(4), "secret-scan/aws-access-key"),
            at("conf/ci.sh", Some(1), "secret-scan/github-token"),
            at("conf/id_rsa", Some(1), "secret-scan/private-key"),
        ]
    );
    for rendered in [report.to_json(), report.to_text(50), report.to_sarif()] {
        for secret in [aws.as_str(), &aws[4..], ghp.as_str(), &ghp[4..], password, &password[..4]] {
            assert!(!rendered.contains(secret), "the report echoes `{secret}`:\n{rendered}");
        }
    }
    let t = outcome(&report, "secrets");
    let aws_finding = t.findings.iter().find(|f| f.rule == "secret-scan/aws-access-key").unwrap();
    assert_eq!(aws_finding.message, "AWS access key id AKIA…(20 chars)");
    assert_eq!(t.summary.as_deref(), Some("4 possible secret(s) in 3 of 4 file(s)"));
    assert_eq!(tree_hash(&fx.root()), before, "secret-scan only reads");
}

#[test]
fn the_ci_audit_example_completes_every_task_over_this_repository() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci-audit.toml");
    let mut loaded = Loaded::read(&path).unwrap();
    // The example points at `target/wasm32-wasip2/release`; use the
    // components this test build compiled instead.
    let built = swarm_tests::CHECKERS;
    assert_eq!(loaded.team.teammates.len(), built.len(), "the example runs the five checkers");
    for entry in &mut loaded.team.teammates {
        let entry = entry.get_mut();
        let (_, wasm) = built.iter().find(|(name, _)| *name == entry.name).expect("a shipped checker");
        entry.plugin = wasm.into();
    }
    let plan = Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    for t in &plan.tasks {
        assert!(!t.owned_files.is_empty(), "task {} owns no file", t.id);
        assert!(t.owned_files.iter().all(|f| !f.starts_with("target/")), "task {} owns build output", t.id);
    }
    let report = common::run_plan(&plan);
    assert!(report.success(), "{}", report.to_text(20));
    for (group, _) in built {
        let t = report.tasks.iter().find(|t| t.teammate.as_deref() == Some(format!("{group}-1").as_str())).unwrap();
        assert!(t.summary.is_some(), "{group} reported: {t:#?}");
    }
    assert!(report.denials.is_empty(), "{:#?}", report.denials);
}
