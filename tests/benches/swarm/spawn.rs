//! Row 1, teammate spawn: instantiating one teammate from the warm,
//! pre-instantiated component (a fresh `Store` + `instantiate_async`), with
//! the default on-demand allocator and with wasmtime's pooling allocator.
//! Baseline in the same run: starting the smallest possible process
//! (`true`, spawned and reaped), a floor under any process-per-teammate
//! backend. The headless-process and tmux-pane backends themselves are
//! measured in `native.rs`, against the same floor.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swarm_host::sandbox::{Limits, Plugin, Sandbox};

use crate::common;
use crate::stats::{Line, dur, percentile, ratio};

const SAMPLES: usize = 2_000;
const PROCESS_SAMPLES: usize = 200;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let plugin_path = Path::new(swarm_tests::COUNTER);
    let on_demand = Sandbox::new().load(plugin_path, &Limits::default()).expect("load counter");
    let pooled = Sandbox::new().with_pooling(64).load(plugin_path, &Limits::default()).expect("load counter, pooled");

    let process = process_floor();
    let p50_floor = percentile(&process, 50.0);
    let mut lines = Vec::new();
    for (name, plugin) in [("in-process, on-demand allocator", &on_demand), ("in-process, pooling allocator", &pooled)]
    {
        let samples = rt.block_on(instantiate_many(plugin, root.path()));
        let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
        let vs = |d: Duration| format!("{} of process floor", ratio(d.as_secs_f64(), p50_floor.as_secs_f64()));
        lines.push(
            Line::new("1 spawn", format!("{name}, p50"), dur(p50), vs(p50))
                .target("p50 ≤ 50 µs", p50 <= Duration::from_micros(50)),
        );
        lines.push(Line::new("1 spawn", format!("{name}, p99"), dur(p99), vs(p99)));
    }
    lines.push(Line::new(
        "1 spawn",
        "baseline: process floor (spawn + reap `true`), p50 / p99",
        format!("{} / {}", dur(p50_floor), dur(percentile(&process, 99.0))),
        "1×",
    ));
    lines.extend(crate::native::spawn_lines(p50_floor));
    lines
}

async fn instantiate_many(plugin: &Plugin, root: &Path) -> Vec<Duration> {
    let (team, _events) = common::team(&common::ids("counter", 1), 16, Vec::new());
    let launch = common::launch("counter-1");
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES + SAMPLES / 10 {
        let ws = common::workspace(root);
        let started = Instant::now();
        let instance = plugin.instantiate(&launch, team.clone(), ws).await.expect("instantiate");
        let took = started.elapsed();
        drop(instance);
        // The first tenth warms caches and the pool; it is not recorded.
        if i >= SAMPLES / 10 {
            samples.push(took);
        }
    }
    samples
}

fn process_floor() -> Vec<Duration> {
    (0..PROCESS_SAMPLES)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new("true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run `true`");
            assert!(status.success());
            started.elapsed()
        })
        .collect()
}
