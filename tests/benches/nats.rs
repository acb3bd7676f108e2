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
//!   of one slot, against the ideal (`ceil(tasks / workers) × 200 ms`).
//!
//! A plain `harness = false` binary: one table, best of three for `cycle`.

use std::time::{Duration, Instant};

use swarm_host::cluster::{Assignment, Cluster, ConnectOptions, Settings, Worker};
use swarm_host::tasks::{TaskList, TaskReport, TaskSpec};
use swarm_tests::nats::{NatsServer, WorkerProc};

const WORKER: &str = env!("CARGO_BIN_EXE_nats-worker-under-test");
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
}
