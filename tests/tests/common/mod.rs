//! Shared helpers: build a workspace tree and a team file in a temp dir, run
//! it in-process through the library, and look at the report.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use swarm_host::coordinator::report::TaskOutcome;
use swarm_host::coordinator::{Loaded, Plan, RunOptions, RunReport, run_in_process};
use swarm_host::sandbox::Sandbox;

/// A temp dir holding `tree/` (the workspace root) and `team.toml`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A fixture whose tree holds `files` (path, contents).
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let p = dir.path().join("tree").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("tree")).unwrap();
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    /// Writes `team.toml` = a header (name, root) plus `body`.
    pub fn team(&self, body: &str) -> PathBuf {
        let path = self.dir.path().join("team.toml");
        std::fs::write(&path, format!("name = \"test\"\nroot = \"tree\"\n{body}")).unwrap();
        path
    }

    /// Plans and runs `body`, with a watchdog so a hung run fails the test.
    pub fn run(&self, body: &str) -> RunReport {
        let path = self.team(body);
        let loaded = Loaded::read(&path).unwrap();
        let plan = Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"));
        run_plan(&plan)
    }
}

pub fn run_plan(plan: &Plan) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sandbox = Sandbox::new();
        let options = RunOptions { shutdown_grace: Duration::from_secs(5), ..RunOptions::default() };
        tokio::time::timeout(Duration::from_secs(120), run_in_process(plan, &sandbox, options))
            .await
            .expect("the run finished within 120 s")
            .expect("the run started")
    })
}

/// A `[[teammate]]` table.
pub fn teammate(name: &str, plugin: &str, instances: u32, extra: &str) -> String {
    format!("[[teammate]]\nname = \"{name}\"\nplugin = {plugin:?}\ninstances = {instances}\n{extra}\n")
}

/// A `[[task]]` table.
pub fn task(id: &str, subject: &str, extra: &str) -> String {
    format!("[[task]]\nid = \"{id}\"\nsubject = \"{subject}\"\n{extra}\n")
}

pub fn outcome<'a>(report: &'a RunReport, id: &str) -> &'a TaskOutcome {
    report.tasks.iter().find(|t| t.id == id).unwrap_or_else(|| panic!("no task {id} in {report:#?}"))
}

/// Hash of every file under `dir` (path and contents), to prove nothing changed.
pub fn tree_hash(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.push((rel, std::fs::read(&entry).unwrap_or_default()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The `examples/ci-audit.toml` team over this repository, with the
/// components this test build compiled (the example points at
/// `target/wasm32-wasip2/release`), run in-process.
pub fn ci_audit_report() -> RunReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci-audit.toml");
    let mut loaded = Loaded::read(&path).unwrap();
    for entry in &mut loaded.team.teammates {
        let entry = entry.get_mut();
        let (_, wasm) = swarm_tests::CHECKERS.iter().find(|(name, _)| *name == entry.name).expect("a shipped checker");
        entry.plugin = wasm.into();
    }
    run_plan(&Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}")))
}
