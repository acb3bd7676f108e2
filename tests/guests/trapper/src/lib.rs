//! `trapper`: a test guest that traps on purpose.
//!
//! A task whose subject contains `panic` panics; one whose subject contains
//! `unreachable` executes the wasm `unreachable` instruction; any other task
//! completes.

use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Trapper;

impl Teammate for Trapper {
    fn on_task(&mut self, _ctx: &mut Context, task: &Task) -> Result<Report, String> {
        if task.subject.contains("panic") {
            panic!("deliberate panic in task {}", task.id);
        }
        if task.subject.contains("unreachable") {
            trap();
        }
        Ok(Report::new(format!("no trap in task {}", task.id)))
    }
}

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}

export_teammate!(Trapper);
