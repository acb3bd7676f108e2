//! Agents against a slow model (issue 15): 8 teammates running the shipped
//! agent (`plugins/agent`), each doing one task of 20 turns against the
//! scripted model answering every call after 200 ms (the scripted
//! provider's `delay_ms`: a model's latency, no thread held), through the
//! library (`run_in_process`, compiled-code cache warm).
//!
//! ```sh
//! cargo bench -p swarm-tests --bench agent
//! ```
//!
//! Printed beside floors measured or fixed in the same run:
//! - the team's wall time against the ideal, 20 × 200 ms (every agent's
//!   turns back to back, all agents at once);
//! - against one agent doing the 8 tasks serially (160 calls in a row), the
//!   team's speed-up (8× is the ceiling);
//! - the tokens spent on routing: everything the model service counted
//!   that is not a teammate's own call. The coordinator routes messages,
//!   claims and completions in code, so this must be 0.
//!
//! Each turn is one `read_file` of a small file (the last is `finish`), so
//! the work between calls is the host's and the guest's, not the tool's.
//!
//! The team runs with `[llm] concurrency = 8` (calls in flight per provider
//! endpoint), so the provider slot is not the limit; one more run at the
//! default of 4 shows what the default costs 8 agents (half of them wait
//! for a slot on every turn).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_host::coordinator::config::LlmMode;
use swarm_host::coordinator::{Loaded, Plan, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_host::tasks::Status;

const AGENTS: usize = 8;
const TURNS: usize = 20;
const LATENCY_MS: u64 = 200;
/// Runs of the 8-agent team (the serial run, 32 s, runs once).
const RUNS: usize = 3;

/// A step of `teammate` answering after the latency with `call`.
fn step(teammate: &str, name: &str, input: Value) -> Value {
    json!({"teammate": teammate, "delay_ms": LATENCY_MS,
           "reply": {"content": [{"type": "tool_call", "id": "c", "name": name, "input": input}],
                     "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 10}}})
}

/// `dir/team.toml` for `instances` agents and [`AGENTS`] tasks, and the
/// script giving each instance `turns_each` turns.
fn team(dir: &Path, cache_name: &str, instances: usize, turns_each: usize, concurrency: usize) {
    let mut steps = Vec::new();
    for i in 1..=instances {
        let me = format!("agent-{i}");
        for t in 1..=turns_each {
            if t % TURNS == 0 {
                steps.push(step(&me, "finish", json!({"summary": "done"})));
            } else {
                steps.push(step(&me, "read_file", json!({"path": format!("src/f{}.rs", 1 + t % AGENTS)})));
            }
        }
    }
    std::fs::write(dir.join(format!("{cache_name}.json")), json!({ "steps": steps }).to_string()).unwrap();
    let mut body = format!(
        "name = \"agent-bench\"\nroot = \"tree\"\nread = \"root\"\n[llm]\nconcurrency = {concurrency}\n[models.slow]\nprovider = \"scripted\"\n\
         model = \"bench\"\nscript = \"{cache_name}.json\"\n[[teammate]]\nname = \"agent\"\nplugin = {:?}\n\
         instances = {instances}\nmodels = [\"slow\"]\n",
        swarm_tests::AGENT
    );
    for i in 1..=AGENTS {
        body.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\nsubject = \"Read around\"\nowns = [\"src/f{i}.rs\"]\n\
             description = \"options: max-turns={TURNS}\"\n"
        ));
    }
    std::fs::write(dir.join("team.toml"), body).unwrap();
}

/// One run: wall time, model calls, tokens of teammates' calls, all tokens.
fn run(dir: &Path, cache: &Path) -> (Duration, u64, u64, u64) {
    let loaded = Loaded::read(&dir.join("team.toml")).unwrap();
    let config = loaded.llm_config(LlmMode::Live).unwrap().unwrap();
    let models = Arc::new(swarm_host::llm::Models::new(config).unwrap());
    let plan = Plan::build(&loaded).unwrap();
    let sandbox = Sandbox::with_cache(cache.to_path_buf())
        .for_in_process_team(plan.teammates.iter().map(|t| &t.limits))
        .with_models(models.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let report = rt.block_on(run_in_process(&plan, &sandbox, RunOptions::default())).expect("the team starts");
    let wall = started.elapsed();
    for t in &report.tasks {
        assert_eq!(t.status, Status::Completed, "{t:#?}");
    }
    let usage = models.usage();
    let of_agents: u64 = usage
        .teammates
        .iter()
        .filter(|(id, _)| id.starts_with("agent-"))
        .map(|(_, u)| u.input_tokens + u.output_tokens)
        .sum();
    (wall, usage.total.calls, of_agents, usage.total.input_tokens + usage.total.output_tokens)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for i in 1..=AGENTS {
        let p = dir.path().join(format!("tree/src/f{i}.rs"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("pub fn f{i}() -> u32 {{\n    {i}\n}}\n")).unwrap();
    }
    // Warm the compiled-code cache (not timed).
    team(dir.path(), "warm", AGENTS, TURNS, AGENTS);
    run(dir.path(), &cache);

    let mut team_walls = Vec::new();
    let mut routing = 0;
    for _ in 0..RUNS {
        team(dir.path(), "team", AGENTS, TURNS, AGENTS);
        let (wall, calls, of_agents, all) = run(dir.path(), &cache);
        assert_eq!(calls, (AGENTS * TURNS) as u64);
        routing += all - of_agents;
        team_walls.push(wall);
    }
    team_walls.sort();
    let team_wall = team_walls[RUNS / 2];
    team(dir.path(), "default", AGENTS, TURNS, 4);
    let (default_slots, _, of_agents, all) = run(dir.path(), &cache);
    routing += all - of_agents;
    team(dir.path(), "serial", 1, AGENTS * TURNS, AGENTS);
    let (serial, calls, of_agents, all) = run(dir.path(), &cache);
    assert_eq!(calls, (AGENTS * TURNS) as u64);
    routing += all - of_agents;

    let ideal = Duration::from_millis(LATENCY_MS * TURNS as u64);
    let secs = |d: Duration| d.as_secs_f64();
    println!("agents: {AGENTS} agents x {TURNS} turns, model latency {LATENCY_MS} ms per call");
    println!(
        "  8 agents at once:   {:.2} s (median of {RUNS}: {}), {:.2}x the ideal {:.1} s (20 x 200 ms)",
        secs(team_wall),
        team_walls.iter().map(|d| format!("{:.2}", secs(*d))).collect::<Vec<_>>().join(", "),
        secs(team_wall) / secs(ideal),
        secs(ideal),
    );
    println!(
        "  1 agent, 8 tasks:   {:.2} s ({:.2}x its ideal {:.1} s); the team is {:.2}x faster (ceiling {AGENTS}x)",
        secs(serial),
        secs(serial) / secs(ideal * AGENTS as u32),
        secs(ideal * AGENTS as u32),
        secs(serial) / secs(team_wall),
    );
    println!(
        "  8 agents, the default 4 calls in flight: {:.2} s, {:.2}x the ideal",
        secs(default_slots),
        secs(default_slots) / secs(ideal)
    );
    println!("  tokens spent on routing (not a teammate's own call), all runs: {routing}");
}
