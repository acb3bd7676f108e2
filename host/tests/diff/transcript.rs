//! A task's model transcript in the report, derived by the host from the
//! `llm.complete` calls it served (the guest says nothing about it): the
//! model's text and each tool call with its arguments, in-process and from
//! a teammate process (whose calls reach the coordinator's model service).

use std::path::Path;

const SCRIPT: &str = r#"{"steps": [{"reply": {"content": [
    {"type": "text", "text": "reading it first"},
    {"type": "tool_call", "id": "c1", "name": "read_file", "input": {"path": "a.txt"}}],
  "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}}}]}"#;

fn run(dir: &Path, backend: &str) -> serde_json::Value {
    super::report_of(dir, &["run", "--fresh", "--json", "--backend", backend])
}

#[test]
fn the_report_holds_each_tasks_model_turns_and_tool_calls_as_the_host_saw_them() {
    let body = format!(
        "[models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"caller\"\nplugin = {:?}\nmodels = [\"s\"]\n\
         [[task]]\nid = \"t\"\nsubject = \"ask hello\"\ndescription = \"tool:read_file\"\nmax_attempts = 1\n",
        swarm_tests::LLM_CALLER
    );
    let dir = swarm_tests::team_dir("transcript", &[("a.txt", "x\n")], &body);
    std::fs::write(dir.path().join("script.json"), SCRIPT).unwrap();
    for backend in ["in-process", "process"] {
        let report = run(dir.path(), backend);
        let t = &report["tasks"][0];
        assert_eq!(t["status"], "completed", "{backend}: {t:#}");
        let got: Vec<(String, String, String)> = t["transcript"]
            .as_array()
            .unwrap_or_else(|| panic!("{backend}: no transcript: {t:#}"))
            .iter()
            .map(|e| (e["kind"].to_string(), e["name"].to_string(), e["text"].to_string()))
            .collect();
        let want = [
            ("\"model\"", "null", "\"reading it first\""),
            ("\"tool_call\"", "\"read_file\"", "\"{\\\"path\\\":\\\"a.txt\\\"}\""),
        ]
        .map(|(k, n, x)| (k.to_string(), n.to_string(), x.to_string()));
        assert_eq!(got, want, "{backend}");
    }
}
