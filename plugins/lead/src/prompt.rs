//! What the lead says to its model and how it reads the answers: pure
//! functions over plain data, tested natively (`cargo test -p lead`).
//!
//! Planning is one conversation: the request (goal, teammates, files, any
//! problems the host found in the previous attempt) as the first user
//! message, two tools (`read_file`, when the team lets the lead read, and
//! `submit_plan`), and the plan read from the `submit_plan` call's
//! arguments. Structured output through a tool call is what every provider
//! supports the same way; free text would have to be parsed.

use serde::Deserialize;

/// Name of the tool the model answers with.
pub const SUBMIT: &str = "submit_plan";
/// Name of the tool that reads a file.
pub const READ: &str = "read_file";
/// Most files listed in the prompt; the rest are counted.
pub const MAX_FILES_SHOWN: usize = 2_000;

/// The system prompt for planning.
pub const PLAN_SYSTEM: &str = "You are the lead of a team of sandboxed teammates. Understand the whole goal \
first, then split the work into tasks that teammates can do in parallel. Every task owns a set of files: \
exact paths from the list, or globs such as `src/new/**` for files the task may create. No file may be owned \
by two tasks, and a task can only write the files it owns. Give each task an id (letters, digits, `-`, `_`, \
`.`), a one-line subject, instructions, an owner (one of the teammate groups) and blocked_by (ids of tasks \
that must complete first; no cycles). Answer by calling submit_plan exactly once.";

/// The system prompt for the closing text.
pub const SYNTHESIS_SYSTEM: &str = "You are the lead of a team that has finished its work. Write a short \
closing summary for people: what was achieved towards the goal, what failed and why, and what is left to do. \
Plain text, no more than 20 lines.";

/// The system prompt for a teammate's message while the team runs.
pub const MESSAGE_SYSTEM: &str = "You are the lead of a team that is running. A teammate wrote to you. If the \
message needs an answer (a question, a request for a decision), answer it in a few sentences. If it needs \
none (a status note, an acknowledgement), answer exactly NO-ANSWER.";

/// What the model answers when a message needs no answer.
pub const NO_ANSWER: &str = "NO-ANSWER";

/// The user message for a teammate's message.
pub fn message_message(team: &str, goal: &str, sender: &str, body: &str) -> String {
    format!("Team: {team}\nGoal: {goal}\n\nMessage from teammate {sender}:\n{body}")
}

/// The model's answer to a teammate's message as the lead's answer:
/// nothing for [`NO_ANSWER`] or no text.
pub fn answer_of(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text != NO_ANSWER).then(|| text.to_string())
}

/// One team group, as shown to the model.
pub struct Teammate<'a> {
    /// Group name.
    pub name: &'a str,
    /// Instances.
    pub instances: u32,
    /// Plugin file name.
    pub plugin: &'a str,
}

/// One task, as shown to the model and as read back from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    /// Task id.
    pub id: String,
    /// One line.
    pub subject: String,
    /// Instructions.
    pub instructions: String,
    /// Paths or globs.
    pub owns: Vec<String>,
    /// Teammate group, if any.
    pub owner: Option<String>,
    /// Dependencies.
    pub blocked_by: Vec<String>,
}

/// What there is to plan.
pub struct Ask<'a> {
    /// Team name.
    pub team: &'a str,
    /// The goal.
    pub goal: &'a str,
    /// Files and sizes.
    pub files: Vec<(&'a str, u64)>,
    /// Teammate groups.
    pub teammates: Vec<Teammate<'a>>,
    /// The team file's tasks.
    pub given: Vec<Task>,
    /// Most tasks.
    pub max_tasks: u32,
    /// This attempt and how many there are.
    pub attempt: (u32, u32),
    /// The rejected plan and its problems.
    pub previous: Vec<Task>,
    /// The problems the host found in it.
    pub problems: Vec<String>,
    /// Whether `read_file` is offered.
    pub can_read: bool,
}

/// The first user message of the planning conversation.
pub fn plan_message(ask: &Ask<'_>) -> String {
    let mut m = format!("Team: {}\nGoal: {}\n\nTeammate groups (task owners):\n", ask.team, ask.goal);
    for t in &ask.teammates {
        m.push_str(&format!("- {}: {} instance(s) of {}\n", t.name, t.instances, t.plugin));
    }
    m.push_str(&format!("\nFiles under the root ({} in all; path, bytes):\n", ask.files.len()));
    for (path, size) in ask.files.iter().take(MAX_FILES_SHOWN) {
        m.push_str(&format!("- {path} ({size})\n"));
    }
    if ask.files.len() > MAX_FILES_SHOWN {
        m.push_str(&format!("- and {} more files\n", ask.files.len() - MAX_FILES_SHOWN));
    }
    if !ask.given.is_empty() {
        m.push_str("\nTasks the team already has (your tasks must not own their files; they may depend on them):\n");
        m.push_str(&tasks_json(&ask.given));
        m.push('\n');
    }
    m.push_str(&format!("\nPlan at most {} tasks.", ask.max_tasks));
    if ask.can_read {
        m.push_str(" You may call read_file to read a listed file first; reading has a byte budget.");
    }
    if !ask.problems.is_empty() {
        let (n, of) = ask.attempt;
        m.push_str(&format!(
            "\n\nThe host rejected your previous plan. This is attempt {n} of {of}. Your previous plan:\n{}\n\
             Every problem the host found:\n",
            tasks_json(&ask.previous)
        ));
        for p in &ask.problems {
            m.push_str(&format!("- {p}\n"));
        }
        m.push_str("Fix every problem and call submit_plan with the whole corrected plan.");
    }
    m
}

/// `tasks` as the JSON the `submit_plan` tool takes.
pub fn tasks_json(tasks: &[Task]) -> String {
    let list: Vec<serde_json::Value> = tasks
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "subject": t.subject, "instructions": t.instructions, "owns": t.owns,
                "owner": t.owner, "blocked_by": t.blocked_by,
            })
        })
        .collect();
    serde_json::json!({ "tasks": list }).to_string()
}

/// The JSON Schema of `submit_plan`'s input.
pub fn submit_schema() -> String {
    serde_json::json!({
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "unique task id"},
                        "subject": {"type": "string", "description": "one line saying what to do"},
                        "instructions": {"type": "string", "description": "what the teammate is to do"},
                        "owns": {"type": "array", "items": {"type": "string"},
                                 "description": "exact paths or globs of the files the task may write"},
                        "owner": {"type": "string", "description": "the teammate group to run it"},
                        "blocked_by": {"type": "array", "items": {"type": "string"},
                                       "description": "ids of tasks that must complete first"}
                    },
                    "required": ["id", "subject", "owns"]
                }
            }
        },
        "required": ["tasks"]
    })
    .to_string()
}

/// The JSON Schema of `read_file`'s input.
pub fn read_schema() -> String {
    serde_json::json!({
        "type": "object",
        "properties": {"path": {"type": "string", "description": "a path from the file list"}},
        "required": ["path"]
    })
    .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submitted {
    tasks: Vec<SubmittedTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmittedTask {
    id: String,
    subject: String,
    #[serde(default)]
    instructions: String,
    owns: Vec<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    blocked_by: Vec<String>,
}

/// One task in a tool call's arguments (an `add_task` call's whole input).
pub fn parse_task(arguments: &str) -> Result<Task, String> {
    let t: SubmittedTask =
        serde_json::from_str(arguments).map_err(|e| format!("add_task arguments are not a valid task: {e}"))?;
    Ok(task_of(t))
}

fn task_of(t: SubmittedTask) -> Task {
    Task {
        id: t.id,
        subject: t.subject,
        instructions: t.instructions,
        owns: t.owns,
        owner: t.owner.filter(|o| !o.is_empty()),
        blocked_by: t.blocked_by,
    }
}

/// The schema of one task (an item of `submit_plan`'s `tasks`, and
/// `add_task`'s input).
pub fn task_schema() -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&submit_schema())
        .map(|v| v["properties"]["tasks"]["items"].clone())
        .unwrap_or_default()
}

/// The plan in a `submit_plan` call's arguments; `Err` says what is wrong
/// with them, for the model to fix.
pub fn parse_plan(arguments: &str) -> Result<Vec<Task>, String> {
    let s: Submitted =
        serde_json::from_str(arguments).map_err(|e| format!("submit_plan arguments are not a valid plan: {e}"))?;
    Ok(s.tasks.into_iter().map(task_of).collect())
}

/// The path in a `read_file` call's arguments.
pub fn parse_read(arguments: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Read {
        path: String,
    }
    serde_json::from_str::<Read>(arguments)
        .map(|r| r.path)
        .map_err(|e| format!("read_file arguments must be {{\"path\": \"...\"}}: {e}"))
}

/// One finished task, as the synthesis shows it.
pub struct Outcome<'a> {
    /// Task id.
    pub id: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// Completed or failed.
    pub completed: bool,
    /// Summary or failure reason.
    pub summary: &'a str,
    /// Finding lines.
    pub findings: &'a [String],
    /// Findings in all.
    pub finding_count: u32,
    /// Diff stats: files, lines added, lines removed.
    pub diff: (u32, u32, u32),
}

/// The user message of the synthesis.
pub fn synthesis_message(team: &str, goal: &str, outcomes: &[Outcome<'_>]) -> String {
    let mut m = format!("Team: {team}\nGoal: {goal}\n\nEvery task's outcome:\n");
    for o in outcomes {
        let (files, added, removed) = o.diff;
        m.push_str(&format!(
            "- {}: {} ({}). {}. {} finding(s); diff: {files} file(s), +{added} -{removed}\n",
            o.id,
            if o.completed { "completed" } else { "failed" },
            o.subject,
            o.summary,
            o.finding_count,
        ));
        for f in o.findings {
            m.push_str(&format!("    finding: {f}\n"));
        }
    }
    m
}

/// The closing text when the model could not write one: the counts, and why.
pub fn fallback_synthesis(outcomes: &[Outcome<'_>], why: &str) -> String {
    let completed = outcomes.iter().filter(|o| o.completed).count();
    format!(
        "{} tasks: {completed} completed, {} failed (the lead's model gave no closing text: {why})",
        outcomes.len(),
        outcomes.len() - completed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask<'static> {
        Ask {
            team: "t",
            goal: "add docs",
            files: vec![("src/a.rs", 10), ("src/b.rs", 20)],
            teammates: vec![Teammate { name: "agent", instances: 2, plugin: "agent.wasm" }],
            given: vec![],
            max_tasks: 4,
            attempt: (1, 4),
            previous: vec![],
            problems: vec![],
            can_read: false,
        }
    }

    #[test]
    fn no_answer_and_empty_text_answer_nothing() {
        assert_eq!(answer_of(" NO-ANSWER\n"), None);
        assert_eq!(answer_of("  "), None);
        assert_eq!(answer_of(" pong from team-lead\n").as_deref(), Some("pong from team-lead"));
        let m = message_message("t", "g", "ping-1", "ping from ping-1");
        assert!(m.ends_with("Message from teammate ping-1:\nping from ping-1"), "{m}");
    }

    #[test]
    fn the_first_message_shows_goal_teammates_and_files_and_no_problems() {
        let m = plan_message(&ask());
        for want in ["Goal: add docs", "- agent: 2 instance(s) of agent.wasm", "- src/b.rs (20)", "at most 4 tasks"] {
            assert!(m.contains(want), "missing {want:?} in {m}");
        }
        assert!(!m.contains("rejected") && !m.contains("read_file"), "{m}");
    }

    #[test]
    fn a_replan_message_lists_every_problem_and_the_previous_plan() {
        let mut a = ask();
        a.attempt = (2, 4);
        a.previous = vec![Task { id: "x".into(), owns: vec!["src/a.rs".into()], ..Task::default() }];
        a.problems = vec!["tasks `x` and `y` both own 1 file(s): src/a.rs".into(), "cycle".into()];
        let m = plan_message(&a);
        for want in ["attempt 2 of 4", "- tasks `x` and `y` both own 1 file(s): src/a.rs", "- cycle", "\"id\":\"x\""] {
            assert!(m.contains(want), "missing {want:?} in {m}");
        }
    }

    #[test]
    fn a_submitted_plan_is_read_back_and_bad_arguments_are_named() {
        let t = parse_plan(r#"{"tasks":[{"id":"a","subject":"s","owns":["x/**"],"owner":"","blocked_by":["b"]}]}"#)
            .unwrap();
        assert_eq!(t[0].owns, ["x/**"]);
        assert_eq!(t[0].owner, None, "an empty owner means anyone");
        assert_eq!(t[0].blocked_by, ["b"]);
        let e = parse_plan(r#"{"tasks":[{"id":"a"}]}"#).unwrap_err();
        assert!(e.contains("missing field `subject`"), "{e}");
        assert_eq!(parse_read(r#"{"path":"a.rs"}"#).unwrap(), "a.rs");
        assert!(parse_read("{}").is_err());
    }

    #[test]
    fn the_plan_round_trips_through_the_tool_json() {
        let tasks = vec![Task {
            id: "a".into(),
            subject: "s".into(),
            instructions: "i".into(),
            owns: vec!["p".into()],
            owner: Some("agent".into()),
            blocked_by: vec![],
        }];
        assert_eq!(parse_plan(&tasks_json(&tasks)).unwrap(), tasks);
    }

    #[test]
    fn the_synthesis_message_shows_every_outcome_with_its_diff_stats() {
        let findings = vec!["a.rs:1: x".to_string()];
        let outcomes = [
            Outcome {
                id: "a",
                subject: "s",
                completed: true,
                summary: "done",
                findings: &findings,
                finding_count: 1,
                diff: (2, 10, 3),
            },
            Outcome {
                id: "b",
                subject: "t",
                completed: false,
                summary: "boom",
                findings: &[],
                finding_count: 0,
                diff: (0, 0, 0),
            },
        ];
        let m = synthesis_message("team", "goal", &outcomes);
        assert!(m.contains("- a: completed (s). done. 1 finding(s); diff: 2 file(s), +10 -3"), "{m}");
        assert!(m.contains("    finding: a.rs:1: x"), "{m}");
        assert!(m.contains("- b: failed (t). boom."), "{m}");
        assert_eq!(
            fallback_synthesis(&outcomes, "budget exhausted"),
            "2 tasks: 1 completed, 1 failed (the lead's model gave no closing text: budget exhausted)"
        );
    }
}
