//! `looper`: a test guest that computes forever, so the host must stop it
//! (epoch interruption).
//!
//! A task whose subject contains `loop` spins in a CPU loop the optimiser
//! cannot remove; any other task completes.

use std::hint::black_box;
use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Looper;

impl Teammate for Looper {
    fn on_task(&mut self, _ctx: &mut Context, task: &Task) -> Result<Report, String> {
        if task.subject.contains("loop") {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        Ok(Report::new(format!("no loop in task {}", task.id)))
    }
}

export_teammate!(Looper);
