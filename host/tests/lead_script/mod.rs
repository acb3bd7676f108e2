//! Scripted-model steps for the lead (`plugins/lead`) in CLI tests: the
//! `submit_plan` call that plans, and one step of the script with what the
//! lead's request must contain.

/// A `submit_plan` tool call answering with `tasks` (JSON array text).
pub fn submit(id: &str, tasks: &str) -> String {
    format!(r#"{{"type": "tool_call", "id": "{id}", "name": "submit_plan", "input": {{"tasks": {tasks}}}}}"#)
}

/// One scripted step for the lead: `expect` in the last message's text,
/// answered with `content` (JSON blocks).
pub fn step(expect: &str, content: &str, stop: &str) -> String {
    format!(
        r#"{{"teammate": "planner", "expect": {{"last_text_contains": {expect:?}}},
            "reply": {{"content": [{content}], "stop_reason": "{stop}",
                      "usage": {{"input_tokens": 100, "output_tokens": 20}}}}}}"#
    )
}
