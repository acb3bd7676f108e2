//! Planning from a goal, end to end through `swarm-host`: the lead
//! (`plugins/lead`) asks a scripted model for a plan, the host validates it
//! with the team file's rules and sends a rejected plan back with every
//! problem named, nothing spawns before a plan validates, `plan` prints and
//! saves the plan, `run --plan` runs a saved (edited) plan after validating
//! it again, and the lead's synthesis sees every task's outcome. No test
//! reaches the internet: the model is the scripted provider.

mod cli_run;
mod lead_script;

use cli_run::{swarm_host, text};
use lead_script::{step, submit};
use serde_json::json;
use std::path::Path;

/// Two tasks that both own `src/b.rs`.
const OVERLAPPING: &str = r#"[{"id": "a", "subject": "scan the sources", "owns": ["src/**"], "owner": "scan"},
                              {"id": "b", "subject": "scan b", "owns": ["src/b.rs"], "owner": "scan"}]"#;
/// Disjoint: `a` owns `src/a.rs`, `b` owns `src/b.rs` and runs after `a`.
const DISJOINT: &str = r#"[{"id": "a", "subject": "scan a", "instructions": "look for TODOs", "owns": ["src/a.rs"], "owner": "scan"},
                           {"id": "b", "subject": "scan b", "owns": ["src/b.rs"], "owner": "scan", "blocked_by": ["a"]}]"#;

const OVERLAP_PROBLEM: &str = "tasks `a` and `b` both own 1 file(s): src/b.rs";

/// A goal-driven team of two `todo-scan` instances whose lead answers from
/// `steps`; `extra` goes into the `[planner]` table.
fn team(steps: &[String], extra: &str) -> tempfile::TempDir {
    let body = format!(
        "goal = \"find every TODO in the sources\"\n\
         [models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"scan\"\nplugin = {:?}\ninstances = 2\n\
         [planner]\nplugin = {:?}\nmodels = [\"s\"]\n{extra}\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::LEAD,
    );
    let files = [("src/a.rs", "// TODO: first\n"), ("src/b.rs", "fn b() {} // FIXME later\n"), ("README.md", "hi\n")];
    let dir = swarm_tests::team_dir("goal", &files, &body);
    std::fs::write(dir.path().join("script.json"), format!("{{\"steps\": [{}]}}", steps.join(",\n"))).unwrap();
    dir
}

/// The synthesis step: the closing text the scripted model writes.
fn synthesis() -> String {
    step("Every task's outcome", r#"{"type": "text", "text": "Both files were scanned: 2 TODOs."}"#, "end_turn")
}

/// The canonical requests the lead sent, from its recorded cassette.
fn lead_requests(dir: &Path) -> Vec<serde_json::Value> {
    let cassette = std::fs::read_to_string(dir.join("cassettes/planner.jsonl")).unwrap();
    cassette.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["request"].clone()).collect()
}

/// A recorded request as one JSON text (its messages' text is escaped in it).
fn request_text(request: &serde_json::Value) -> String {
    request.to_string()
}

#[test]
fn an_overlapping_plan_goes_back_with_the_overlap_named_and_the_second_plan_runs() {
    let steps = [
        step("Goal: find every TODO in the sources", &submit("c1", OVERLAPPING), "tool_use"),
        step(OVERLAP_PROBLEM, &submit("c2", DISJOINT), "tool_use"),
        synthesis(),
    ];
    let dir = team(&steps, "");
    let team_file = dir.path().join("team.toml");
    let cassettes = dir.path().join("cassettes");
    let out = swarm_host(
        dir.path(),
        &[
            "run",
            "--json",
            "--backend",
            "in-process",
            "--llm-record",
            cassettes.to_str().unwrap(),
            team_file.to_str().unwrap(),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", text(&out.stderr));

    // The second plan ran: its tasks, its ownership, its order.
    let tasks = report["tasks"].as_array().unwrap();
    let ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b"], "{report:#}");
    assert!(tasks.iter().all(|t| t["status"] == "completed"), "{report:#}");
    assert_eq!(tasks[0]["owned_files"], 1, "{report:#}");

    // The report keeps both proposals (the first with its problem) and the
    // validated plan.
    let proposed = report["lead_plan"]["proposed"].as_array().unwrap();
    assert_eq!(proposed.len(), 2, "{report:#}");
    assert!(proposed[0]["problems"][0].as_str().unwrap().contains(OVERLAP_PROBLEM), "{report:#}");
    assert_eq!(proposed[1]["problems"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(proposed[1]["tasks"][0]["owns"], json!(["src/a.rs"]), "as the lead wrote it: {report:#}");
    let validated = &report["lead_plan"]["validated"];
    assert_eq!(validated[0]["files"], json!(["src/a.rs"]), "{report:#}");
    assert_eq!((validated[1]["id"].as_str(), validated[1]["file_count"].as_u64()), (Some("b"), Some(1)));

    // The rejection was said on stderr, and sent back with the previous plan.
    assert!(text(&out.stderr).contains(OVERLAP_PROBLEM), "{}", text(&out.stderr));
    let requests = lead_requests(dir.path());
    assert_eq!(requests.len(), 3, "two plans and one synthesis: {requests:#?}");
    let replan = request_text(&requests[1]);
    assert!(replan.contains("attempt 2 of 4"), "{replan}");
    assert!(replan.contains(r#"\"owns\":[\"src/**\"]"#), "the previous plan is shown: {replan}");

    // The synthesis saw every task's outcome and became the report's.
    let synth = request_text(&requests[2]);
    for want in ["- a: completed (scan a)", "- b: completed (scan b)", "finding: src/a.rs:1:", "finding: src/b.rs:1:"] {
        assert!(synth.contains(want), "missing {want:?} in {synth}");
    }
    assert_eq!(report["synthesis"], "Both files were scanned: 2 TODOs.", "{report:#}");

    // The lead's tokens (plans and synthesis) are counted apart.
    let lead = &report["llm_usage"]["teammates"]["planner"];
    assert_eq!(lead["calls"], 3, "{report:#}");
    assert_eq!(lead["input_tokens"], 300, "{report:#}");
}

#[test]
fn a_plan_that_never_validates_stops_the_run_with_exit_2_and_nothing_spawned() {
    let steps = [
        step("Goal:", &submit("c1", OVERLAPPING), "tool_use"),
        step(OVERLAP_PROBLEM, &submit("c2", OVERLAPPING), "tool_use"),
    ];
    let dir = team(&steps, "replan_rounds = 1");
    let team_file = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["run", "--backend", "in-process", team_file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}\n{}", text(&out.stdout));
    assert!(stderr.contains("the lead's plan was rejected 2 time(s) ([planner] replan_rounds = 1)"), "{stderr}");
    assert!(stderr.contains(OVERLAP_PROBLEM), "{stderr}");
    // No report, no team state: nothing was started.
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(!dir.path().join("state/goal").exists(), "the team's state was created");
}

#[test]
fn plan_prints_the_validated_plan_and_run_plan_runs_an_edited_one_after_validating_it_again() {
    let steps = [step("Goal:", &submit("c1", DISJOINT), "tool_use"), synthesis()];
    let dir = team(&steps, "");
    let team_file = dir.path().join("team.toml");
    let saved = dir.path().join("plan.json");

    let out = swarm_host(dir.path(), &["plan", team_file.to_str().unwrap(), "-o", saved.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    for want in [
        "Plan of team goal: 2 task(s)",
        "goal: find every TODO in the sources",
        "a: scan a",
        "  owner: scan",
        "  owns: src/a.rs",
        "  1 existing file(s): src/a.rs",
        "  | look for TODOs",
        "  after: a",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in {stdout}");
    }
    assert!(text(&out.stderr).contains("planning used 1 model call(s)"), "{}", text(&out.stderr));
    assert!(!dir.path().join("state/goal").exists(), "plan ran the team");

    // A person edits the plan: task b also takes the README.
    let mut plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(plan["version"], 1);
    plan["tasks"][1]["owns"] = serde_json::json!(["src/b.rs", "README.md"]);
    std::fs::write(&saved, plan.to_string()).unwrap();
    let out = swarm_host(
        dir.path(),
        &["run", "--json", "--backend", "in-process", "--plan", saved.to_str().unwrap(), team_file.to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", text(&out.stderr));
    assert_eq!(report["tasks"][1]["owned_files"], 2, "{report:#}");
    // The saved plan was not planned again: the lead's only call was the synthesis.
    assert_eq!(report["llm_usage"]["teammates"]["planner"]["calls"], 1, "{report:#}");

    // An edit that breaks a rule is refused like a team file, before anything runs.
    plan["tasks"][0]["owns"] = serde_json::json!(["src/**"]);
    std::fs::write(&saved, plan.to_string()).unwrap();
    let out = swarm_host(
        dir.path(),
        &["run", "--fresh", "--backend", "in-process", "--plan", saved.to_str().unwrap(), team_file.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(OVERLAP_PROBLEM) && stderr.contains("plan.json"), "{stderr}");
}

#[test]
fn validate_refuses_a_planner_given_a_goal_without_spending_tokens() {
    let body = format!(
        "goal = \"x\"\n[[teammate]]\nname = \"scan\"\nplugin = {:?}\n[planner]\nplugin = {:?}\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::PLANNER,
    );
    let dir = swarm_tests::team_dir("goal", &[("a.rs", "x")], &body);
    let team_file = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["validate", team_file.to_str().unwrap()]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("the team has a goal, so its plugin must be a lead"), "{all}");
}

#[test]
fn with_read_rights_the_lead_reads_a_listed_file_and_is_refused_one_it_was_not_shown() {
    let reads = r#"{"type": "tool_call", "id": "r1", "name": "read_file", "input": {"path": "src/a.rs"}},
                   {"type": "tool_call", "id": "r2", "name": "read_file", "input": {"path": "../team.toml"}}"#;
    let steps = [
        step("You may call read_file", reads, "tool_use"),
        // The tool results come back before the plan is submitted.
        format!(
            r#"{{"teammate": "planner", "expect": {{"tool_results": ["r1", "r2"]}},
                "reply": {{"content": [{}], "stop_reason": "tool_use"}}}}"#,
            submit("c1", DISJOINT)
        ),
    ];
    let dir = team(&steps, "");
    let team_file = dir.path().join("team.toml");
    let body = std::fs::read_to_string(&team_file).unwrap();
    std::fs::write(&team_file, body.replacen("goal = ", "read = \"root\"\ngoal = ", 1)).unwrap();
    let cassettes = dir.path().join("cassettes");
    let out = swarm_host(
        dir.path(),
        &["plan", "--llm-record", cassettes.to_str().unwrap(), "--json", team_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let requests = lead_requests(dir.path());
    let second = request_text(&requests[1]);
    assert!(second.contains("// TODO: first"), "the listed file's text reached the model: {second}");
    assert!(second.contains("is not one of the files listed"), "the escape was refused: {second}");
    assert!(!second.contains("[planner]"), "the team file's text leaked: {second}");
}

#[test]
fn a_setting_only_the_other_kind_of_planner_uses_is_refused_not_ignored() {
    // A lead's settings on a plain planner.
    let body = format!(
        "[[teammate]]\nname = \"scan\"\nplugin = {:?}\n[planner]\nplugin = {:?}\nreplan_rounds = 2\n",
        swarm_tests::TODO_SCAN,
        swarm_tests::PLANNER,
    );
    let dir = swarm_tests::team_dir("plain", &[("a.rs", "x")], &body);
    let team_file = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["validate", team_file.to_str().unwrap()]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("[planner] replan_rounds: only a lead planning the team's `goal` uses it"), "{all}");

    // A planner's subject template on a lead, refused before any model call.
    let dir = team(&[], "subject = \"scan {n}\"");
    let team_file = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["plan", team_file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[planner] subject: a goal is planned by a lead, which takes no subject template"),
        "{stderr}"
    );
}

#[test]
fn a_teammates_message_to_team_lead_reaches_the_lead_and_its_answer_reaches_the_teammate() {
    // `ping` sends `ping from ping-1` to team-lead and completes only once
    // `pong from team-lead` comes back.
    let plan = r#"[{"id": "ask", "subject": "ask the lead", "instructions": "send-to:team-lead", "owns": [], "owner": "ping"}]"#;
    let steps = [
        step("Goal:", &submit("c1", plan), "tool_use"),
        step(
            "Message from teammate ping-1:\nping from ping-1",
            r#"{"type": "text", "text": "pong from team-lead"}"#,
            "end_turn",
        ),
        synthesis(),
    ];
    let body = format!(
        "goal = \"say hello\"\n\
         [models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"ping\"\nplugin = {:?}\n\
         [planner]\nplugin = {:?}\nmodels = [\"s\"]\n",
        swarm_tests::PING,
        swarm_tests::LEAD,
    );
    let dir = swarm_tests::team_dir("talk", &[("a.txt", "x")], &body);
    std::fs::write(dir.path().join("script.json"), format!("{{\"steps\": [{}]}}", steps.join(",\n"))).unwrap();
    let team_file = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["run", "--json", "--backend", "in-process", team_file.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", text(&out.stderr));
    assert_eq!(report["tasks"][0]["summary"], "got: pong from team-lead", "{report:#}");
    // The message is in the report too, and the lead's answer cost one call.
    assert_eq!(report["messages"][0]["body"], "ping from ping-1", "{report:#}");
    assert_eq!(report["llm_usage"]["teammates"]["planner"]["calls"], 3, "{report:#}");
    // The lead's answer is drawn as a message to the teammate: it is in the
    // report's traffic, after the teammate's message to the lead.
    let answer = report["traffic"].as_array().unwrap().iter().find(|m| m["from"] == "team-lead" && m["to"] == "ping-1");
    let answer = answer.unwrap_or_else(|| panic!("the lead's answer in the traffic: {report:#}"));
    assert!(answer["at_unix_ms"].as_u64() >= report["messages"][0]["at_unix_ms"].as_u64(), "{report:#}");
}

#[test]
fn plugins_inspect_says_a_lead_is_a_lead() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm_host(dir.path(), &["plugins", "inspect", "--json", swarm_tests::LEAD]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let i: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["world"], "lead", "{i:#}");
    let fits: Vec<(&str, bool)> =
        i["fits"].as_array().unwrap().iter().map(|f| (f["world"].as_str().unwrap(), f["fits"] == true)).collect();
    assert_eq!(fits, [("teammate", false), ("lead", true)], "{i:#}");
}
