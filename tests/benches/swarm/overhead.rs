//! Row 5, sandbox overhead: the CPU-bound `crunch_kernel::crunch` run as a
//! task of the `cruncher` guest (wasm, epoch interruption on, as every
//! teammate runs) against the same function compiled natively into this
//! bench. Both must return the same checksum. The wasm time runs from the
//! start of the teammate's `run` to its `task_completed` event, so it
//! includes claiming and reporting (microseconds against a run of about a
//! quarter second).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::model::TeammateMessage;
use swarm_host::sandbox::{Limits, Sandbox};
use swarm_host::team::Event;

use crate::common;
use crate::stats::{Line, dur, median, ratio};

const ROUNDS: u32 = 4_000;
const RUNS: usize = 5;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let expected = crunch_kernel::crunch(ROUNDS);
    let native: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(black_box(crunch_kernel::crunch(black_box(ROUNDS))), expected);
            started.elapsed()
        })
        .collect();

    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let plugin = Sandbox::new().load(Path::new(swarm_tests::CRUNCHER), &Limits::default()).expect("load cruncher");
    let wasm: Vec<Duration> = (0..RUNS)
        .map(|_| {
            rt.block_on(async {
                let ids = common::ids("cruncher", 1);
                let (team, mut events) = common::team(&ids, 16, vec![common::task("t", &format!("rounds:{ROUNDS}"))]);
                let instance = plugin
                    .instantiate(&common::launch("cruncher-1"), team.clone(), common::workspace(root.path()))
                    .await
                    .expect("instantiate");
                let started = Instant::now();
                let guest = tokio::spawn(instance.run());
                let summary = common::next(&mut events, |ev| match ev {
                    Event::Message(TeammateMessage::TaskCompleted { summary, .. }) => Some(summary.clone()),
                    Event::Message(TeammateMessage::Error { message, .. }) => panic!("crunch task failed: {message}"),
                    _ => None,
                })
                .await;
                let took = started.elapsed();
                assert_eq!(summary, format!("checksum {expected}"), "the guest did the same work");
                common::stop(&team, &mut events, &ids, vec![guest]).await;
                took
            })
        })
        .collect();
    let (n, w) = (median(&native), median(&wasm));
    vec![
        Line::new(
            "5 sandbox overhead",
            format!("crunch({ROUNDS}) in the cruncher guest, median of {RUNS}"),
            dur(w),
            format!("{} of native", ratio(w.as_secs_f64(), n.as_secs_f64())),
        )
        .target("≤ 1.5×", w.as_secs_f64() <= 1.5 * n.as_secs_f64()),
        Line::new("5 sandbox overhead", format!("baseline: crunch({ROUNDS}) native, median of {RUNS}"), dur(n), "1×"),
    ]
}
