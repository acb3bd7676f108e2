//! Dependent tasks see what their dependencies produced: a task claimed
//! after the tasks it was `blocked_by` gets their summaries and findings
//! through `task-list.dependency-results`, in-process and in a teammate
//! process (over the socket, in the claim's answer).

use std::path::Path;

fn run(dir: &Path, backend: &str) -> serde_json::Value {
    super::report_of(dir, &["run", "--backend", backend, "--json"])
}

fn task<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let t = swarm_tests::report_task(report, id);
    assert_eq!(t["status"], "completed", "{t:#}");
    t
}

fn a_dependent_task_gets_its_dependencies_results(backend: &str) {
    let body = format!(
        "[[teammate]]\nname = \"rogue\"\nplugin = {rogue:?}\n\
         [[teammate]]\nname = \"writer\"\nplugin = {writer:?}\n\
         [[task]]\nid = \"scan\"\nsubject = \"escape\"\nowner = \"rogue\"\nowns = [\"a.txt\"]\nmax_attempts = 1\n\
         description = \"write a.txt\\nread b.txt\"\n\
         [[task]]\nid = \"free\"\nsubject = \"free\"\nowner = \"writer\"\nowns = [\"d.txt\"]\nmax_attempts = 1\n\
         description = \"deps\"\n\
         [[task]]\nid = \"use\"\nsubject = \"use\"\nowner = \"writer\"\nowns = [\"c.txt\"]\nmax_attempts = 1\n\
         blocked_by = [\"scan\"]\ndescription = \"deps\"\n",
        rogue = swarm_tests::ROGUE,
        writer = swarm_tests::WRITER,
    );
    let dir = swarm_tests::team_dir("deps", &[("a.txt", "a"), ("b.txt", "b"), ("c.txt", "c"), ("d.txt", "d")], &body);

    let report = run(dir.path(), backend);

    let scan = task(&report, "scan");
    let findings = scan["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{scan:#}");
    let want = format!(
        "scan: {} (2 findings, first {}: {})",
        scan["summary"].as_str().unwrap(),
        findings[0]["rule"].as_str().unwrap(),
        findings[0]["message"].as_str().unwrap()
    );
    assert_eq!(task(&report, "use")["summary"], want.as_str());
    assert_eq!(task(&report, "free")["summary"], "", "a task without dependencies gets none");
}

#[test]
fn in_process_a_dependent_task_gets_its_dependencies_summaries_and_findings() {
    a_dependent_task_gets_its_dependencies_results("in-process");
}

#[test]
fn teammate_process_a_dependent_task_gets_its_dependencies_summaries_and_findings() {
    a_dependent_task_gets_its_dependencies_results("process");
}
