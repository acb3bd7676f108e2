//! `looper`: a test guest that computes forever, so the host must stop it
//! (epoch interruption).
//!
//! A task whose subject contains `loop` spins in a CPU loop the optimiser
//! cannot remove; any other task completes. A teammate whose id starts
//! with `spin-idle` spins as soon as it starts, before it ever claims a
//! task: no task deadline applies, only the host's idle-compute limit.

use std::hint::black_box;
use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Looper;

/// Computes forever.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

impl Teammate for Looper {
    fn on_task(&mut self, _ctx: &mut Context, task: &Task) -> Result<Report, String> {
        if task.subject.contains("loop") {
            spin();
        }
        Ok(Report::new(format!("no loop in task {}", task.id)))
    }
}

/// The component's `run`: the SDK's loop, unless this teammate is one that
/// spins before claiming.
#[cfg(target_arch = "wasm32")]
struct Export;

#[cfg(target_arch = "wasm32")]
impl swarm_guest_sdk::bindings::Guest for Export {
    fn run(me: Identity) -> Result<(), String> {
        if me.id.starts_with("spin-idle") {
            spin();
        }
        swarm_guest_sdk::run::<Looper>(me)
    }
}

#[cfg(target_arch = "wasm32")]
swarm_guest_sdk::bindings::export!(Export with_types_in swarm_guest_sdk::bindings);
