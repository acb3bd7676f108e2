//! `bad-planner`: a test planner that misbehaves on request, chosen by the
//! request's subject:
//!
//! - `loop`: spins forever, so the host's deadline must stop it;
//! - `panic`: panics;
//! - `hog`: allocates and touches 1 MiB chunks until the memory limit stops it;
//! - `err`: refuses with `err("refused: <team>")`;
//! - `log`: logs a line with control characters, then plans one task per file;
//! - `ask <prompt>`: asks its default model `<prompt>` and plans one task
//!   per file with the answer's text as their subject;
//! - anything else: one task per file.
//!
//! `synthesize` spins forever if the team is named `loop`, else uses the
//! SDK's default.

use std::hint::black_box;
use swarm_guest_sdk::llm::{Message, Request};
use swarm_guest_sdk::planner::*;

/// The planner.
#[derive(Default)]
pub struct BadPlanner;

impl Planner for BadPlanner {
    fn plan(&mut self, req: &PlanRequest) -> Result<Vec<PlannedTask>, String> {
        match req.subject.as_str() {
            "loop" => spin(),
            "panic" => panic!("deliberate panic planning team {}", req.team),
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                    black_box(&mut hoard);
                }
            }
            "err" => Err(format!("refused: {}", req.team)),
            ask if ask.starts_with("ask ") => {
                let request = Request::new(vec![Message::user(&ask[4..])]);
                let answer = swarm_guest_sdk::llm::complete(None, &request).map_err(|e| e.describe())?;
                let subject = answer.text();
                Ok(req
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| PlannedTask::new(format!("p{}", i + 1), &subject, vec![f.clone()]))
                    .collect())
            }
            subject => {
                if subject == "log" {
                    warn("bad\x1b[2Jplanner\r\nsays hi");
                }
                let task = |(i, f): (usize, &String)| PlannedTask::new(format!("p{}", i + 1), subject, vec![f.clone()]);
                Ok(req.files.iter().enumerate().map(task).collect())
            }
        }
    }

    fn synthesize(&mut self, team: &str, results: &[TaskResult]) -> String {
        if team == "loop" {
            spin();
        }
        count_results(results)
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

export_planner!(BadPlanner);
