//! `trapper`: a test guest that misbehaves on purpose, by task subject:
//! - `panic`: panics;
//! - `unreachable`: executes the wasm `unreachable` instruction;
//! - `recurse`: recurses without end (a stack overflow);
//! - `env`: completes with how many environment variables and arguments it
//!   can see (`env=<n> args=<n>`);
//! - anything else completes.

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
        if task.subject.contains("recurse") {
            return Ok(Report::new(format!("depth {}", recurse(std::hint::black_box(1)))));
        }
        if task.subject.contains("env") {
            let (env, args) = (std::env::vars_os().count(), std::env::args_os().count());
            return Ok(Report::new(format!("env={env} args={args}")));
        }
        Ok(Report::new(format!("no trap in task {}", task.id)))
    }
}

/// Recursion the optimiser cannot turn into a loop: every frame keeps a
/// buffer alive across the call. Unbounded on purpose.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let buf = std::hint::black_box([n; 64]);
    recurse(std::hint::black_box(n + 1)) + buf[(n % 64) as usize]
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
