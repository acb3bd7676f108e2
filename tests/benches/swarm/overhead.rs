//! Row 5, sandbox overhead: each kernel of `crunch_kernel` run as a task of
//! the `cruncher` guest (wasm, epoch interruption on, as every teammate
//! runs) against the same function compiled natively into this bench (the
//! floor). Both must return the same checksum. The wasm time runs from the
//! start of the teammate's `run` to its `task_completed` event, so it
//! includes claiming and reporting (microseconds against runs of a few
//! hundred milliseconds).
//!
//! Kernels: `crunch`, a multiply chain over a cache-resident buffer (few
//! branches, what wasm does best); `scan`, the `todo-scan` marker scan over
//! a generated text of 16 MiB held in memory (byte searches, UTF-8
//! decoding, unpredictable branches, an allocation per hit); `map`, a hash
//! map of a million keys (about 24 MiB of table: cache misses, the
//! allocator). Runs of the native and the wasm build alternate, so a
//! machine that slows down for a while slows both.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::model::TeammateMessage;
use swarm_host::sandbox::{Limits, Plugin, Sandbox};
use swarm_host::team::Event;

use crate::common;
use crate::stats::{Line, dur, median, ratio};

const RUNS: usize = 5;

/// One kernel: the task description the guest understands, a name for the
/// table, and the native twin.
struct Kernel {
    task: &'static str,
    what: &'static str,
    native: fn() -> u64,
}

const KERNELS: &[Kernel] = &[
    Kernel {
        task: "rounds:4000",
        what: "crunch(4000): multiply chain over a 64 KiB buffer",
        native: || crunch_kernel::crunch(black_box(4000)),
    },
    Kernel {
        task: "scan:16",
        what: "scan(16): todo-scan marker scan over 16 MiB of text in memory",
        native: || crunch_kernel::scan(black_box(16)),
    },
    Kernel {
        task: "map:1000000",
        what: "map(1000000): hash map of 1,000,000 u64 keys, 4,000,000 lookups",
        native: || crunch_kernel::map(black_box(1_000_000)),
    },
];

/// Runs the row.
pub fn run() -> Vec<Line> {
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let plugin = Sandbox::new().load(Path::new(swarm_tests::CRUNCHER), &Limits::default()).expect("load cruncher");
    let mut lines = Vec::new();
    for kernel in KERNELS {
        let expected = (kernel.native)();
        let (mut native, mut wasm) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let started = Instant::now();
            assert_eq!(black_box((kernel.native)()), expected);
            native.push(started.elapsed());
            wasm.push(rt.block_on(in_guest(&plugin, root.path(), kernel.task, expected)));
        }
        let (n, w) = (median(&native), median(&wasm));
        lines.push(
            Line::new(
                "5 sandbox overhead",
                format!("{} in the cruncher guest, median of {RUNS}", kernel.what),
                dur(w),
                format!("{} of native", ratio(w.as_secs_f64(), n.as_secs_f64())),
            )
            .target("≤ 1.5×", w.as_secs_f64() <= 1.5 * n.as_secs_f64()),
        );
        lines.push(Line::new(
            "5 sandbox overhead",
            format!("floor: the same kernel native, median of {RUNS}"),
            dur(n),
            "1×",
        ));
    }
    lines
}

/// Runs `task` in a fresh `cruncher` teammate: time from `run` to its
/// `task_completed` event, whose summary must carry `expected`.
async fn in_guest(plugin: &Plugin, root: &Path, task: &str, expected: u64) -> Duration {
    let ids = common::ids("cruncher", 1);
    let (team, mut events) = common::team(&ids, 16, vec![common::task("t", task)]);
    let instance = plugin
        .instantiate(&common::launch("cruncher-1"), team.clone(), common::workspace(root))
        .await
        .expect("instantiate");
    let started = Instant::now();
    let guest = tokio::spawn(instance.run());
    let summary = common::next(&mut events, |ev| match ev {
        Event::Message(TeammateMessage::TaskCompleted { summary, .. }) => Some(summary.clone()),
        Event::Message(TeammateMessage::Error { message, .. }) => panic!("{task} failed: {message}"),
        _ => None,
    })
    .await;
    let took = started.elapsed();
    assert_eq!(summary, format!("checksum {expected}"), "the guest did the same work ({task})");
    common::stop(&team, &mut events, &ids, vec![guest]).await;
    took
}
