//! `lead`: the swarm-host lead (world `lead` of `wit/planner.wit`).
//!
//! `plan-goal` asks the lead's default model for a plan of the team's goal:
//! the goal, the teammate groups and the file tree go in the first message
//! ([`prompt::plan_message`]); the model may call `read_file` (when the
//! team's `read = "root"`, within the host's byte budget) and answers by
//! calling `submit_plan`, whose arguments are the plan. Arguments that are
//! not a plan go back to the model as a tool error. The host validates the
//! plan; a rejected plan comes back in a new `plan-goal` call with every
//! problem listed, which the first message then shows.
//!
//! `on-message` answers a teammate's message to `team-lead` with the model's
//! text, or answers nothing when the model says `NO-ANSWER`. The lead is of
//! world `steering-lead` (WIT 0.1.3): the host calls `steer` instead, whose
//! actions come from the model's tool calls ([`steer`]).
//!
//! `synthesize-run` asks the model for the closing text from every task's
//! outcome ([`prompt::synthesis_message`]); if the call fails, the text
//! says so after the counts.

pub mod prompt;
pub mod steer;

// The generated export glue is `unsafe` (it is the component ABI).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod guest {
    use super::prompt::{self, Ask, Outcome, Task, Teammate};
    use swarm_guest_sdk::llm::{self, ContentBlock, Message, Request, Role, ToolChoice, ToolResult};

    #[allow(unsafe_code, missing_docs, clippy::all)]
    mod bindings {
        wit_bindgen::generate!({
            world: "steering-lead",
            path: "../../wit",
            with: {
                "swarm:teammate/log@0.1.3": swarm_guest_sdk::bindings::swarm::teammate::log,
                "swarm:teammate/llm@0.1.3": swarm_guest_sdk::bindings::swarm::teammate::llm,
                "swarm:teammate/planning@0.1.3": swarm_guest_sdk::planner::bindings::swarm::teammate::planning,
            },
        });
    }

    use bindings::swarm::teammate::leading::{GoalRequest, TaskOutcome};
    use bindings::swarm::teammate::steering::{Action, Incoming, Reassignment};
    use bindings::swarm::teammate::tree;
    use swarm_guest_sdk::planner::{PlannedTask, TaskStatus};

    /// Model turns per `plan-goal` before the lead gives up.
    const MAX_TURNS: usize = 12;

    struct Lead;

    fn task(t: &PlannedTask) -> Task {
        Task {
            id: t.id.clone(),
            subject: t.subject.clone(),
            instructions: t.description.clone(),
            owns: t.owns.clone(),
            owner: t.owner.clone(),
            blocked_by: t.blocked_by.clone(),
        }
    }

    impl bindings::Guest for Lead {
        fn plan_goal(req: GoalRequest) -> Result<Vec<PlannedTask>, String> {
            swarm_guest_sdk::planner::info(&format!("planning team {} (attempt {})", req.team, req.attempt));
            let ask = Ask {
                team: &req.team,
                goal: &req.goal,
                files: req.files.iter().map(|f| (f.path.as_str(), f.size)).collect(),
                teammates: req
                    .teammates
                    .iter()
                    .map(|t| Teammate { name: &t.name, instances: t.instances, plugin: &t.plugin })
                    .collect(),
                given: req.given.iter().map(task).collect(),
                max_tasks: req.max_tasks,
                attempt: (req.attempt, req.attempts),
                previous: req.previous.iter().map(task).collect(),
                problems: req.problems.clone(),
                can_read: req.can_read,
            };
            let mut request = Request::new(vec![Message::user(prompt::plan_message(&ask))]).system(prompt::PLAN_SYSTEM);
            if req.can_read {
                request = request.tool(prompt::READ, "Reads one listed file (text).", prompt::read_schema());
            }
            request = request.tool(prompt::SUBMIT, "Submits the whole plan.", prompt::submit_schema());
            request.tool_choice = Some(ToolChoice::Any);
            for _ in 0..MAX_TURNS {
                let answer = llm::complete(None, &request).map_err(|e| e.describe())?;
                let mut results = Vec::new();
                for call in answer.tool_calls() {
                    let (content, is_error) = match call.name.as_str() {
                        prompt::SUBMIT => match prompt::parse_plan(&call.arguments) {
                            Ok(tasks) => return Ok(tasks.into_iter().map(planned).collect()),
                            Err(e) => (e, true),
                        },
                        prompt::READ if req.can_read => match prompt::parse_read(&call.arguments) {
                            Ok(path) => match tree::read(&path) {
                                Ok(text) => (text, false),
                                Err(e) => (e, true),
                            },
                            Err(e) => (e, true),
                        },
                        other => (format!("unknown tool {other:?}: call submit_plan"), true),
                    };
                    results.push(ContentBlock::ToolResult(ToolResult { call_id: call.id.clone(), content, is_error }));
                }
                request.messages.push(Message { role: Role::Assistant, content: answer.content.clone() });
                if results.is_empty() {
                    request.messages.push(Message::user("Call submit_plan with the whole plan."));
                } else {
                    request.messages.push(Message { role: Role::User, content: results });
                }
            }
            Err(format!("the model did not submit a valid plan in {MAX_TURNS} turns"))
        }

        fn on_message(team: String, goal: String, sender: String, body: String) -> Option<String> {
            answer(&team, &goal, &sender, &body)
        }

        fn steer(msg: Incoming) -> Vec<Action> {
            use super::steer::{self as s, Step};
            let lines: Vec<s::TaskLine<'_>> = msg
                .tasks
                .iter()
                .map(|t| s::TaskLine {
                    id: &t.id,
                    subject: &t.subject,
                    owner: t.owner.as_deref(),
                    status: &t.status,
                    owns: &t.owns,
                })
                .collect();
            let text = s::steer_message(&msg.team, &msg.goal, &msg.sender, &msg.body, &lines, &msg.teammates);
            let mut request = Request::new(vec![Message::user(text)]).system(s::STEER_SYSTEM);
            for (name, description, schema) in s::tools() {
                request = request.tool(name, description, schema);
            }
            let answer = match llm::complete(None, &request) {
                Ok(a) => a,
                Err(e) => return vec![Action::Answer(format!("the lead could not answer: {}", e.describe()))],
            };
            let mut actions = Vec::new();
            for call in answer.tool_calls() {
                actions.push(match s::step_of(&call.name, &call.arguments) {
                    Ok(Step::Answer(t)) => Action::Answer(t),
                    Ok(Step::Broadcast(t)) => Action::Broadcast(t),
                    Ok(Step::AddTask(t)) => Action::AddTask(planned(t)),
                    Ok(Step::Reassign(task, owner)) => Action::Reassign(Reassignment { task, owner }),
                    Err(e) => Action::Answer(format!("the lead's tool call was malformed: {e}")),
                });
            }
            if actions.is_empty()
                && let Some(text) = prompt::answer_of(&answer.text())
            {
                actions.push(Action::Answer(text));
            }
            actions
        }

        fn synthesize_run(team: String, goal: String, outcomes: Vec<TaskOutcome>) -> String {
            let shown: Vec<Outcome<'_>> = outcomes
                .iter()
                .map(|o| Outcome {
                    id: &o.id,
                    subject: &o.subject,
                    completed: o.status == TaskStatus::Completed,
                    summary: &o.summary,
                    findings: &o.findings,
                    finding_count: o.finding_count,
                    diff: (o.files_changed, o.lines_added, o.lines_removed),
                })
                .collect();
            let request = Request::new(vec![Message::user(prompt::synthesis_message(&team, &goal, &shown))])
                .system(prompt::SYNTHESIS_SYSTEM);
            match llm::complete(None, &request) {
                Ok(answer) if !answer.text().trim().is_empty() => answer.text(),
                Ok(_) => prompt::fallback_synthesis(&shown, "it answered no text"),
                Err(e) => prompt::fallback_synthesis(&shown, &e.describe()),
            }
        }
    }

    /// The lead's answer to a teammate: the model's, or why it has none.
    fn answer(team: &str, goal: &str, sender: &str, body: &str) -> Option<String> {
        let request = Request::new(vec![Message::user(prompt::message_message(team, goal, sender, body))])
            .system(prompt::MESSAGE_SYSTEM);
        match llm::complete(None, &request) {
            Ok(answer) => prompt::answer_of(&answer.text()),
            // The sender may be waiting: it learns that no answer comes.
            Err(e) => Some(format!("the lead could not answer: {}", e.describe())),
        }
    }

    fn planned(t: Task) -> PlannedTask {
        PlannedTask {
            id: t.id,
            subject: t.subject,
            description: t.instructions,
            owns: t.owns,
            owner: t.owner,
            blocked_by: t.blocked_by,
        }
    }

    bindings::export!(Lead with_types_in bindings);
}
