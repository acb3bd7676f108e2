//! Model calls from a guest, end to end through `swarm-host run`: the
//! `llm-caller` guest calls the `llm` import, the coordinator's model service
//! answers (a scripted provider, or a loopback server that never answers),
//! and the report says what was used. No test reaches the internet.

mod cli_run;

use cli_run::{command, swarm_host, text};
use std::path::Path;
use std::process::Output;

/// A team of one `llm-caller` (`models` is its teammate line) and one task
/// `subject`, the scripted provider's file `script`, and `extra` TOML.
fn team(models: &str, subject: &str, script: &str, extra: &str) -> tempfile::TempDir {
    let body = format!(
        "{extra}\n[models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"caller\"\nplugin = {:?}\n{models}\n\
         [[task]]\nid = \"t\"\nsubject = {subject:?}\nmax_attempts = 1\n",
        swarm_tests::LLM_CALLER
    );
    let dir = swarm_tests::team_dir("llm", &[("a.txt", "x\n")], &body);
    std::fs::write(dir.path().join("script.json"), script).unwrap();
    dir
}

fn run_json(dir: &Path, extra_args: &[&str]) -> (Output, serde_json::Value) {
    run_json_on(dir, "in-process", extra_args)
}

fn run_json_on(dir: &Path, backend: &str, extra_args: &[&str]) -> (Output, serde_json::Value) {
    let team = dir.join("team.toml");
    let mut args = vec!["run", "--fresh", "--json", "--backend", backend];
    args.extend_from_slice(extra_args);
    args.push(team.to_str().unwrap());
    let out = swarm_host(dir, &args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, report)
}

const HELLO: &str = r#"{"steps": [{"expect": {"last_text_contains": "hello"},
  "reply": {"content": [{"type": "text", "text": "hi there"}],
            "usage": {"input_tokens": 10, "output_tokens": 5}}}]}"#;

#[test]
fn a_guest_calls_the_model_through_the_host_and_the_report_counts_its_usage() {
    let dir = team("models = [\"s\"]\nbudget = { calls = 3 }", "ask hello", HELLO, "");
    // A teammate process reaches the model through the coordinator's socket.
    for backend in ["in-process", "process"] {
        let (out, report) = run_json_on(dir.path(), backend, &[]);
        assert_eq!(out.status.code(), Some(0), "{backend}: {report:#}\n{}", text(&out.stderr));
        let summary = report["tasks"][0]["summary"].as_str().unwrap();
        assert!(summary.starts_with("answer: hi there | model=scripted:"), "{backend}: {summary}");
        assert!(
            summary.contains("in=10 out=5 stop=StopReason::EndTurn") && summary.contains("calls_left=2"),
            "{backend}: {summary}"
        );
        let usage = &report["llm_usage"];
        assert_eq!(usage["total"]["calls"], 1, "{backend}: {usage:#}");
        assert_eq!(usage["teammates"]["caller-1"]["input_tokens"], 10, "{backend}: {usage:#}");
        assert_eq!(usage["tasks"]["t"]["output_tokens"], 5, "{backend}: {usage:#}");
    }

    // The text report says the same.
    let team = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["run", "--fresh", "--backend", "in-process", team.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("model usage: 1 calls, 10 tokens in, 5 out"), "{stdout}");
    assert!(stdout.contains("model usage for task t: 1 calls"), "{stdout}");
}

#[test]
fn a_teammate_without_an_allow_list_gets_model_not_allowed() {
    let dir = team("", "ask hello", HELLO, "");
    let (out, report) = run_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let error = report["tasks"][0]["error"].as_str().unwrap();
    assert!(error.contains("llm error: model not allowed") && error.contains("caller-1"), "{error}");
}

#[test]
fn a_call_over_the_budget_never_leaves_the_host_and_the_guest_sees_budget_exhausted() {
    // Two scripted answers, a budget of one call: the second call is refused
    // before it is sent (its scripted step stays unused).
    let script = r#"{"steps": [
      {"reply": {"content": [{"type": "text", "text": "one"}], "usage": {"input_tokens": 1, "output_tokens": 1}}},
      {"reply": {"content": [{"type": "text", "text": "two"}], "usage": {"input_tokens": 1, "output_tokens": 1}}}]}"#;
    let dir = team("models = [\"s\"]\nbudget = { calls = 1 }", "ask x2 hello", script, "");
    let (out, report) = run_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let error = report["tasks"][0]["error"].as_str().unwrap();
    assert!(error.contains("llm error: budget exhausted"), "{error}");
    assert_eq!(report["llm_usage"]["total"]["calls"], 1, "{report:#}");
}

#[test]
fn a_recorded_run_replays_offline_and_a_changed_request_is_a_replay_miss() {
    let dir = team("models = [\"s\"]", "ask hello", HELLO, "");
    let cassettes = dir.path().join("cassettes");
    let (out, recorded) = run_json(dir.path(), &["--llm-record", cassettes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{recorded:#}");
    assert!(cassettes.join("caller-1.jsonl").is_file());

    // The script is gone: only the cassette can answer.
    std::fs::write(dir.path().join("script.json"), r#"{"steps": []}"#).unwrap();
    let (out, replayed) = run_json(dir.path(), &["--llm-replay", cassettes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{replayed:#}");
    assert_eq!(replayed["tasks"][0]["summary"], recorded["tasks"][0]["summary"]);

    let toml = std::fs::read_to_string(dir.path().join("team.toml")).unwrap();
    std::fs::write(dir.path().join("team.toml"), toml.replace("ask hello", "ask goodbye")).unwrap();
    let (out, missed) = run_json(dir.path(), &["--llm-replay", cassettes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{missed:#}");
    let error = missed["tasks"][0]["error"].as_str().unwrap();
    assert!(error.contains("llm error: replay miss") && error.contains("messages"), "{error}");
}

#[test]
fn a_model_call_that_outlasts_the_task_deadline_stops_the_teammate_on_the_deadline() {
    // A loopback "provider" that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let extra = format!(
        "[models.silent]\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         [limits]\ntask_deadline = \"500ms\"\n"
    );
    let dir = team("models = [\"silent\"]", "ask hello", HELLO, &extra);
    for backend in ["in-process", "process"] {
        let (out, report) = run_json_on(dir.path(), backend, &[]);
        assert_eq!(out.status.code(), Some(4), "{backend}: {report:#}\n{}", text(&out.stderr));
        assert_eq!(report["tasks"][0]["limit"], "deadline", "{backend}: {report:#}");
    }
}

#[test]
fn validate_names_the_file_and_line_of_an_unknown_alias() {
    let dir = team("models = [\"s\", \"nope\"]", "ask hello", HELLO, "");
    let team = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["validate", team.to_str().unwrap()]);
    let stderr = text(&out.stderr) + &text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("team.toml:11") && stderr.contains("\"nope\""), "{stderr}");
}

#[test]
fn stopping_the_run_cancels_a_model_call_in_flight() {
    // The provider never answers and the call may take 10 minutes: the run's
    // timeout stops the team, and the teammate waiting in the call is killed
    // after its grace without waiting for the call.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let extra = format!(
        "[models.silent]\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         [llm]\ncall_timeout = \"10m\"\n"
    );
    let dir = team("models = [\"silent\"]", "ask hello", HELLO, &extra);
    for backend in ["in-process", "process"] {
        let started = std::time::Instant::now();
        let (out, report) = run_json_on(dir.path(), backend, &["--timeout", "1s", "--shutdown-grace", "500ms"]);
        assert_eq!(out.status.code(), Some(5), "{backend}: {report:#}\n{}", text(&out.stderr));
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{backend}: {:?}", started.elapsed());
        assert!(report["interrupted"].is_string(), "{backend}: {report:#}");
    }
}

#[test]
fn a_planner_plans_with_the_model_before_anything_spawns_and_its_usage_is_counted() {
    let planned = r#"{"steps": [{"expect": {"last_text_contains": "name the work"},
      "reply": {"content": [{"type": "text", "text": "checked by the model's plan"}],
                "usage": {"input_tokens": 7, "output_tokens": 3}}}]}"#;
    let planner = format!(
        "[planner]\nplugin = {:?}\nsubject = \"ask name the work\"\nowns = [\"**\"]\nmodels = [\"s\"]\n",
        swarm_tests::BAD_PLANNER
    );
    // The team file's own task stays; the planner adds one task per file.
    let dir = team("models = [\"s\"]", "plain", planned, &planner);
    let (out, report) = run_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", text(&out.stderr));
    let subjects: Vec<&str> =
        report["tasks"].as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap()).collect();
    assert!(subjects.contains(&"checked by the model's plan"), "{subjects:?}");
    let usage = &report["llm_usage"];
    assert_eq!(usage["teammates"]["planner"]["input_tokens"], 7, "{usage:#}");
    assert_eq!(usage["teammates"]["planner"]["calls"], 1, "{usage:#}");
}

/// A loopback OpenAI-compatible server that holds its first request
/// unanswered (a model still thinking when the run stops) and answers every
/// later one; it keeps each request's `Authorization` header.
fn holding_then_answering_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut auth, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => auth = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let first = {
                let mut seen = keep.lock().unwrap();
                seen.push(auth);
                seen.len() == 1
            };
            if first {
                held.push(conn);
                continue;
            }
            let answer = serde_json::json!({
                "id": "c2", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "answered after resume"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
            })
            .to_string();
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (port, seen)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() { out.extend(files_under(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn a_resumed_run_calls_the_teams_models_with_the_key_read_again_at_resume() {
    // The run is stopped (its timeout) while the model holds the call; the
    // task stays pending. `resume` calls the same alias of the same team,
    // with the key the environment holds at resume time.
    let (port, seen) = holding_then_answering_server();
    let var = "SWARM_TEST_RESUME_KEY";
    let extra = format!(
        "[models.remote]\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         key_env = \"{var}\"\n[llm]\ncall_timeout = \"10m\"\nmax_retries = 0\n"
    );
    let dir = team("models = [\"remote\"]", "ask hello", HELLO, &extra);
    let (first_key, second_key) = ("sk-first-run-KEY-0123456789", "sk-resumed-KEY-9876543210");
    let team_file = dir.path().join("team.toml");
    let args = ["run", "--fresh", "--json", "--backend", "in-process", "--timeout", "1s", "--shutdown-grace", "500ms"];
    let out = command(dir.path()).args(args).arg(&team_file).env(var, first_key).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "stopped by its timeout: {}\n{}", text(&out.stdout), text(&out.stderr));

    let out = command(dir.path())
        .args(["resume", "--json", "--backend", "in-process", "llm"])
        .env(var, second_key)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", text(&out.stderr));
    let summary = report["tasks"][0]["summary"].as_str().unwrap();
    assert!(summary.starts_with("answer: answered after resume | model=m in=7 out=3"), "{summary}");
    assert_eq!(report["llm_usage"]["teammates"]["caller-1"]["calls"], 1, "{report:#}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [format!("Bearer {first_key}"), format!("Bearer {second_key}")], "the key is read at resume");

    // The state names the variable, never a key.
    let state = dir.path().join("state/llm");
    let models = std::fs::read_to_string(state.join("models.json")).unwrap();
    assert!(models.contains(var), "{models}");
    for file in files_under(&state) {
        let bytes = std::fs::read(&file).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for key in [first_key, second_key] {
            assert!(!content.contains(key), "{} holds a key", file.display());
        }
    }

    // A resume without the variable is refused, naming it and the file.
    let out = command(dir.path()).args(["resume", "llm"]).env_remove(var).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("models.json") && stderr.contains(var) && stderr.contains("is not set"), "{stderr}");
}
