//! Scale-out over NATS JetStream (issue 18), each figure beside its floor
//! measured in the same run, against a private nats-server on 127.0.0.1
//! (`SWARM_NATS_SERVER`, as for the tests):
//!
//! ```sh
//! cargo bench -p swarm-tests --bench nats
//! ```
//!
//! - `cycle`: tasks per second through JetStream, one at a time (publish,
//!   fetch, claim by compare-and-set, run a trivial task, commit by
//!   compare-and-set, ack), against claims and completions of the
//!   in-process task list;
//! - `model-bound`: `SWARM_BENCH_TASKS` tasks (default 32) that each wait
//!   200 ms as a model call would, through 1, 2, 4 and 8 worker processes
//!   of one slot, against the ideal (`ceil(tasks / workers) × 200 ms`);
//! - `cli`: tasks per second through `swarm-host run --nats` with 1, 2 and
//!   4 `swarm-host worker` processes (2 slots each) for a trivial real
//!   task (the `counter` plugin, `SWARM_BENCH_CLI_TASKS` tasks, default
//!   200, 8 teammate instances), against the same team run in-process in
//!   the same run. The workers join before the timed run (a first, untimed
//!   run creates the team's objects and warms the plugin cache), so the
//!   figure is the steady rate, start-up of the coordinator included.
//!
//! A plain `harness = false` binary: one table, best of three for `cycle`.

use std::time::{Duration, Instant};

use swarm_host::cluster::{Assignment, Cluster, ConnectOptions, Settings, Worker};
use swarm_host::tasks::{TaskList, TaskReport, TaskSpec};
use swarm_tests::nats::{NatsServer, WorkerProc};
use swarm_tests::proc::Proc;

const WORKER: &str = env!("CARGO_BIN_EXE_nats-worker-under-test");
const SWARM_HOST: &str = env!("CARGO_BIN_EXE_swarm-host-under-test");
/// Longest one CLI run may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(300);
const CYCLE_TASKS: usize = 500;
const MODEL_MS: u64 = 200;

fn spec(i: usize) -> TaskSpec {
    TaskSpec {
        id: format!("t{i}"),
        subject: "check".into(),
        description: String::new(),
        owned_files: Default::default(),
        owner: None,
        blocked_by: Vec::new(),
        deadline: None,
        max_attempts: 1,
        creates: Vec::new(),
    }
}

/// Claims and completions per second of the in-process task list.
fn in_process_rate(n: usize) -> f64 {
    let list = TaskList::new((0..n).map(spec).collect());
    let start = Instant::now();
    while let Some(claimed) = list.claim("w", "g") {
        let report = TaskReport { summary: String::new(), findings: Vec::new() };
        list.complete("w", &claimed.spec.id, report).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Tasks per second through JetStream, one task in flight at a time.
async fn jetstream_rate(server: &NatsServer, round: usize, n: usize) -> f64 {
    let team = format!("cycle{round}");
    let options = ConnectOptions::url(server.url());
    let coordinator = Cluster::create(options.connect().await.unwrap(), &team, Settings::default()).await.unwrap();
    let worker = Worker::new(Cluster::join(options.connect().await.unwrap(), &team).await.unwrap(), "w", 1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker.run(|_, _, _| async { Ok(String::new()) }, async { drop(stopped.await) }).await.unwrap();
    });
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let start = Instant::now();
    for id in &ids {
        coordinator.publish(&Assignment::new(id, "g", None, "")).await.unwrap();
        coordinator.wait_settled(std::slice::from_ref(id), Duration::from_secs(10)).await.unwrap().unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = stop.send(());
    running.await.unwrap();
    rate
}

/// Wall time of `tasks` model-bound tasks through `workers` processes.
async fn model_bound(server: &NatsServer, workers: usize, tasks: usize) -> Duration {
    let team = format!("model{workers}");
    let coordinator = Cluster::create(
        ConnectOptions::url(server.url()).connect().await.unwrap(),
        &team,
        Settings { ack_wait: Duration::from_secs(10), ..Settings::default() },
    )
    .await
    .unwrap();
    let procs: Vec<WorkerProc> =
        (0..workers).map(|i| WorkerProc::spawn(WORKER, &server.url(), &team, &format!("w{i}"), 1)).collect();
    let ids: Vec<String> = (0..tasks).map(|i| format!("t{i}")).collect();
    let start = Instant::now();
    for id in &ids {
        coordinator.publish(&Assignment::new(id, "g", None, &format!("sleep {MODEL_MS}"))).await.unwrap();
    }
    coordinator.wait_settled(&ids, Duration::from_secs(120)).await.unwrap().unwrap();
    let wall = start.elapsed();
    drop(procs);
    wall
}

/// A team of `tasks` counter tasks over a one-file tree.
fn cli_team(tasks: usize) -> tempfile::TempDir {
    let mut body = format!("[[teammate]]\nname = \"counter\"\nplugin = \"{}\"\ninstances = 8\n", swarm_tests::COUNTER);
    for i in 0..tasks {
        body.push_str(&format!("[[task]]\nid = \"t{i}\"\nsubject = \"count\"\nowner = \"counter\"\n"));
    }
    swarm_tests::team_dir("bench", &[("a.txt", "a")], &body)
}

/// Wall time of `swarm-host run` over `dir` with `extra` arguments; every
/// task must complete.
fn cli_run(dir: &std::path::Path, cache: &str, extra: &[&str]) -> Duration {
    let mut args = vec!["--state-dir", "state", "run", "team.toml", "--format", "json", "--cache-dir", cache];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let (code, out) = Proc::start(SWARM_HOST, &args, dir).finish(CLI_TIMEOUT);
    let wall = start.elapsed();
    assert_eq!(code, 0, "the bench run failed: {out}");
    wall
}

/// `n` worker processes of team `bench`, joined.
fn cli_workers(url: &str, n: usize, dir: &std::path::Path, cache: &str) -> Vec<Proc> {
    (0..n)
        .map(|i| {
            let id = format!("w{i}");
            let args = ["worker", "--nats", url, "--team", "bench", "--id", &id, "--slots", "2", "--cache-dir", cache];
            let w = Proc::start(SWARM_HOST, &args, dir);
            assert!(w.wait_line(&format!("worker {id} joined"), CLI_TIMEOUT).is_some(), "{id} did not join");
            w
        })
        .collect()
}

/// The `cli` rows.
fn cli_rows(server: &NatsServer) {
    let tasks: usize = std::env::var("SWARM_BENCH_CLI_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let dir = cli_team(tasks);
    let cache = dir.path().join("cache");
    let cache = cache.to_str().unwrap();
    let url = server.url();
    let floor = (0..2).map(|_| cli_run(dir.path(), cache, &["--backend", "in-process"])).min().unwrap();
    // Untimed: creates the team's objects (workers join them) and warms the cache.
    let warm = Proc::start(
        SWARM_HOST,
        &["--state-dir", "state", "run", "team.toml", "--nats", &url, "--cache-dir", cache, "--format", "json"],
        dir.path(),
    );
    assert!(warm.wait_line("team started", CLI_TIMEOUT).is_some(), "the warm-up run did not start");
    let workers = cli_workers(&url, 1, dir.path(), cache);
    let (code, out) = warm.finish(CLI_TIMEOUT);
    assert_eq!(code, 0, "the warm-up run failed: {out}");
    drop(workers);
    let rate = |wall: Duration| tasks as f64 / wall.as_secs_f64();
    for n in [1, 2, 4] {
        let workers = cli_workers(&url, n, dir.path(), cache);
        let wall = cli_run(dir.path(), cache, &["--nats", &url]);
        drop(workers);
        println!(
            "| cli: {tasks} counter tasks through `run --nats`, {n} worker process(es) of 2 slots | {:.0} tasks/s ({:.2} s) | same team in-process {:.0} tasks/s ({:.2} s) | {:.1}x slower |",
            rate(wall),
            wall.as_secs_f64(),
            rate(floor),
            floor.as_secs_f64(),
            wall.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = NatsServer::start();
    println!("| row | figure | floor | ratio |");
    println!("| --- | --- | --- | --- |");
    let best = |rates: Vec<f64>| rates.into_iter().fold(0.0, f64::max);
    let floor = best((0..3).map(|_| in_process_rate(CYCLE_TASKS)).collect());
    let mut rates = Vec::new();
    for round in 0..3 {
        rates.push(jetstream_rate(&server, round, CYCLE_TASKS).await);
    }
    let rate = best(rates);
    println!(
        "| cycle: tasks/s through JetStream, one in flight ({:.2} ms/task) | {rate:.0}/s | in-process task list {floor:.0}/s | {:.0}x slower |",
        1000.0 / rate,
        floor / rate
    );
    let tasks: usize = std::env::var("SWARM_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    for workers in [1, 2, 4, 8] {
        let wall = model_bound(&server, workers, tasks).await;
        let ideal = Duration::from_millis(tasks.div_ceil(workers) as u64 * MODEL_MS);
        println!(
            "| model-bound: {tasks} tasks of {MODEL_MS} ms, {workers} worker process(es) | {:.2} s | ideal {:.2} s | {:.2}x |",
            wall.as_secs_f64(),
            ideal.as_secs_f64(),
            wall.as_secs_f64() / ideal.as_secs_f64()
        );
    }
    tokio::task::block_in_place(|| cli_rows(&server));
}
