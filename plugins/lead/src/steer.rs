//! Steering while the team runs (`steer`, world `steering-lead`): what the
//! lead tells its model about a message to `team-lead`, and how it reads
//! the model's answer back as actions. Pure functions over plain data,
//! tested natively.
//!
//! One model call per message: the message, the tasks and the teammate
//! groups go in; every tool call of the answer is one action (`answer`,
//! `broadcast`, `add_task`, `reassign`), and text without a tool call is an
//! answer to the sender (none for `NO-ANSWER`). A tool call whose arguments
//! are wrong becomes an answer saying so: the host validates the rest.

use serde::Deserialize;

use super::prompt::{self, Task};

/// The system prompt for a message while the team runs.
pub const STEER_SYSTEM: &str = "You are the lead of a team that is running. Someone wrote to you: a teammate, \
or `person` (a human steering the team). Decide what to do with the tools: answer the sender, broadcast to \
every teammate, add a task (it must own existing files no unfinished task owns), or give a task that has not \
started to another teammate group. Call no tool and answer NO-ANSWER if nothing is needed. The host checks \
every change and refuses one that breaks the plan's rules.";

/// Tool names.
pub const ANSWER: &str = "answer";
/// Tool names.
pub const BROADCAST: &str = "broadcast";
/// Tool names.
pub const ADD_TASK: &str = "add_task";
/// Tool names.
pub const REASSIGN: &str = "reassign";

/// One thing to do, read from the model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer the sender.
    Answer(String),
    /// Message everyone.
    Broadcast(String),
    /// Add a task.
    AddTask(Task),
    /// New owner (`None`: anyone) for a task.
    Reassign(String, Option<String>),
}

/// One task line for the model.
pub struct TaskLine<'a> {
    /// Id.
    pub id: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// Owner.
    pub owner: Option<&'a str>,
    /// Status.
    pub status: &'a str,
    /// Owned files.
    pub owns: &'a [String],
}

/// The user message for a message to the lead.
pub fn steer_message(
    team: &str,
    goal: &str,
    sender: &str,
    body: &str,
    tasks: &[TaskLine<'_>],
    groups: &[String],
) -> String {
    let mut m = format!("Team: {team}\nGoal: {goal}\nTeammate groups: {}\n\nTasks:\n", groups.join(", "));
    for t in tasks {
        m.push_str(&format!(
            "- {} [{}] owner {}: {} (owns {})\n",
            t.id,
            t.status,
            t.owner.unwrap_or("anyone"),
            t.subject,
            if t.owns.is_empty() { "nothing".to_string() } else { t.owns.join(", ") }
        ));
    }
    // The same words as `on-message`'s prompt for a teammate's message.
    match sender {
        "person" => m.push_str(&format!("\nMessage from a person steering the team:\n{body}")),
        _ => m.push_str(&format!("\nMessage from teammate {sender}:\n{body}")),
    }
    m
}

/// The tools offered: (name, description, JSON Schema).
pub fn tools() -> Vec<(&'static str, &'static str, String)> {
    let text = serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
    let reassign = serde_json::json!({"type": "object", "properties": {
        "task": {"type": "string"}, "owner": {"type": "string", "description": "a teammate group; empty for anyone"}},
        "required": ["task"]});
    vec![
        (ANSWER, "Answers the sender.", text.to_string()),
        (BROADCAST, "Sends a message to every teammate.", text.to_string()),
        (ADD_TASK, "Adds a task to the running team.", prompt::task_schema().to_string()),
        (REASSIGN, "Gives a task that has not started to another teammate group.", reassign.to_string()),
    ]
}

/// The step of one tool call; `Err` is what to answer instead.
pub fn step_of(name: &str, arguments: &str) -> Result<Step, String> {
    #[derive(Deserialize)]
    struct Text {
        text: String,
    }
    #[derive(Deserialize)]
    struct Reassign {
        task: String,
        #[serde(default)]
        owner: Option<String>,
    }
    let text = || serde_json::from_str::<Text>(arguments).map(|t| t.text).map_err(|e| format!("{name}: {e}"));
    match name {
        ANSWER => text().map(Step::Answer),
        BROADCAST => text().map(Step::Broadcast),
        ADD_TASK => prompt::parse_task(arguments).map(Step::AddTask),
        REASSIGN => serde_json::from_str::<Reassign>(arguments)
            .map(|r| Step::Reassign(r.task, r.owner.filter(|o| !o.is_empty())))
            .map_err(|e| format!("{name}: {e}")),
        other => Err(format!("unknown tool {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_become_steps_and_bad_arguments_say_why() {
        assert_eq!(step_of(ANSWER, r#"{"text": "ok"}"#), Ok(Step::Answer("ok".into())));
        let add = step_of(ADD_TASK, r#"{"id": "x", "subject": "s", "owns": ["a.rs"], "owner": "scan"}"#).unwrap();
        assert!(matches!(add, Step::AddTask(t) if t.id == "x" && t.owns == ["a.rs"]));
        assert_eq!(step_of(REASSIGN, r#"{"task": "t", "owner": ""}"#), Ok(Step::Reassign("t".into(), None)));
        assert!(step_of(ADD_TASK, r#"{"id": "x"}"#).unwrap_err().contains("add_task"));
        assert!(step_of("nope", "{}").unwrap_err().contains("unknown tool"));
    }
}
