//! Start-up costs of a teammate, measured side by side in one run:
//! compiling a plugin, loading it from the compiled-code cache, and
//! instantiating one teammate from the pre-instantiated component (a fresh
//! `Store` plus `instantiate_async`).
//!
//! `cargo bench -p swarm-tests --bench spawn`

// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use swarm_host::mailbox::Mailbox;
use swarm_host::sandbox::{Launch, Limits, ReadScope, Sandbox, Workspace};
use swarm_host::tasks::TaskList;
use swarm_host::team::{Roster, Team};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let limits = Limits::default();
    let plugin_path = std::path::Path::new(swarm_tests::COUNTER);
    let cache = tempfile::tempdir().unwrap();

    let mut group = c.benchmark_group("plugin load");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("compile (no cache)", |b| b.iter(|| Sandbox::new().load(plugin_path, &limits).unwrap()));
    Sandbox::with_cache(cache.path().to_path_buf()).load(plugin_path, &limits).unwrap();
    group.bench_function("load from the compiled-code cache", |b| {
        b.iter(|| Sandbox::with_cache(cache.path().to_path_buf()).load(plugin_path, &limits).unwrap())
    });
    group.finish();

    let sandbox = Sandbox::new();
    let plugin = sandbox.load(plugin_path, &limits).unwrap();
    let root = tempfile::tempdir().unwrap();
    let (team, _events) =
        Team::new("bench", Mailbox::new([("counter-1", 16)]), TaskList::new(Vec::new()), Roster::default());
    let launch =
        Launch { id: "counter-1".into(), group: "counter".into(), color: "blue".into(), limits: limits.clone() };
    let workspace = |root: &std::path::Path| {
        Arc::new(Workspace::new(Workspace::open_root(root).unwrap(), ReadScope::Owned, limits.file_bytes()))
    };
    let mut group = c.benchmark_group("teammate");
    group.bench_function("instantiate one teammate (warm, pre-instantiated)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ws = workspace(root.path());
                    let started = Instant::now();
                    let instance = plugin.instantiate(&launch, team.clone(), ws).await.unwrap();
                    total += started.elapsed();
                    drop(instance);
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
