//! Row 7, cold start: loading the `todo-scan` plugin in a fresh sandbox
//! (new engine, linker and pre-instantiation, as a new `swarm-host run`
//! does), first compiling it, then from the compiled-code cache the first
//! load filled. Baseline: the compiling load, in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::sandbox::{Limits, Sandbox};

use crate::stats::{Line, dur, median, percentile, ratio};

const COMPILES: usize = 3;
const CACHED: usize = 30;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let plugin = Path::new(swarm_tests::TODO_SCAN);
    let limits = Limits::default();
    let compile: Vec<Duration> = (0..COMPILES)
        .map(|_| {
            let started = Instant::now();
            Sandbox::new().load(plugin, &limits).expect("compile");
            started.elapsed()
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let first = {
        let started = Instant::now();
        Sandbox::with_cache(cache.path().to_path_buf()).load(plugin, &limits).expect("compile into the cache");
        started.elapsed()
    };
    let cached: Vec<Duration> = (0..CACHED)
        .map(|_| {
            let started = Instant::now();
            Sandbox::with_cache(cache.path().to_path_buf()).load(plugin, &limits).expect("load from the cache");
            started.elapsed()
        })
        .collect();
    let (c, p50) = (median(&compile), percentile(&cached, 50.0));
    vec![
        Line::new(
            "7 cold start",
            "load from the compiled-code cache, p50 / p99",
            format!("{} / {}", dur(p50), dur(percentile(&cached, 99.0))),
            format!("{} of compiling", ratio(p50.as_secs_f64(), c.as_secs_f64())),
        )
        .target("≤ 5 ms", p50 <= Duration::from_millis(5)),
        Line::new("7 cold start", "first run: compile and fill the cache", dur(first), ""),
        Line::new("7 cold start", format!("baseline: compile without a cache, median of {COMPILES}"), dur(c), "1×"),
    ]
}
