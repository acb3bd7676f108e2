//! `memhog`: a test guest that allocates and touches memory, 1 MiB at a
//! time, until the host's memory limit stops it.

use std::hint::black_box;
use swarm_guest_sdk::prelude::*;

const CHUNK: usize = 1 << 20;

/// The teammate.
#[derive(Default)]
pub struct Memhog;

impl Teammate for Memhog {
    fn on_task(&mut self, _ctx: &mut Context, _task: &Task) -> Result<Report, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // `vec![1; n]` writes every byte, so each page is really used.
            hoard.push(black_box(vec![1u8; CHUNK]));
            black_box(&mut hoard);
        }
    }
}

export_teammate!(Memhog);
