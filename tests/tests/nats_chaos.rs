//! `swarm-host run --nats` and `swarm-host worker` under failure (issue
//! 18), end to end: the real CLI, real plugins (`writer`, `counter`,
//! `trapper`) and a real nats-server on 127.0.0.1 started by each test.
//!
//! - chaos: many one-file tasks, 4 worker processes `kill -9`ed at random
//!   and restarted, nats-server `kill -9`ed and restarted once: every task
//!   completed once in the report and committed once in the bucket, its
//!   file written, none stuck in the queue, and the report's executions
//!   and duplicates equal what the bucket counted;
//! - a worker stopped (SIGSTOP) past `--ack-wait` and resumed has its late
//!   result fenced off: the report counts it, the task is committed once;
//! - a plugin that traps every time fails its task visibly after
//!   `max_attempts`, the trap in the report, nothing left in the queue.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use swarm_host::cluster::{Cluster, ConnectOptions, State};
use swarm_tests::nats::{NatsServer, drained};
use swarm_tests::proc::{Proc, report};

const SWARM_HOST: &str = env!("CARGO_BIN_EXE_swarm-host-under-test");
/// Longest a whole run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// Tasks in the chaos run (`SWARM_CHAOS_TASKS` to change it).
const CHAOS_TASKS: usize = 300;
const CHAOS_WORKERS: usize = 4;

fn cli(args: &[&str], dir: &Path) -> Proc {
    Proc::start(SWARM_HOST, args, dir)
}

/// Starts worker `id` with `slots` slots and waits until it has joined `team`.
fn worker(url: &str, team: &str, id: &str, slots: u16, dir: &Path, cache: &Path) -> Proc {
    let (cache, slots) = (cache.to_str().unwrap(), slots.to_string());
    let w = cli(&["worker", "--nats", url, "--team", team, "--id", id, "--slots", &slots, "--cache-dir", cache], dir);
    assert!(w.wait_line(&format!("worker {id} joined team {team}"), RUN_TIMEOUT).is_some(), "{id} did not join");
    w
}

/// Joins `team` to read its bucket.
async fn bucket(server: &NatsServer, team: &str) -> Cluster {
    Cluster::join(ConnectOptions::url(server.url()).connect().await.unwrap(), team).await.unwrap()
}

/// Per task id, how many `done` records its queue keys (`<id>-a<n>`)
/// hold in their history, and the bucket's summed runs, results and
/// fenced counts.
async fn commits(cluster: &Cluster) -> (BTreeMap<String, usize>, u64, u64, u64) {
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let (mut runs, mut results, mut fenced) = (0, 0, 0);
    for (key, record) in cluster.records().await.unwrap() {
        let task = key.rsplit_once("-a").map_or(key.as_str(), |(t, _)| t).to_string();
        let history = cluster.history(&key).await.unwrap();
        *done.entry(task).or_default() += history.iter().filter(|r| matches!(r.state, State::Done { .. })).count();
        runs += u64::from(record.runs);
        results += u64::from(record.results);
        fenced += cluster.fenced(&key).await.unwrap();
    }
    (done, runs, results, fenced)
}

/// The task's attempts that completed (no error, not interrupted).
fn completed_attempts(task: &serde_json::Value) -> usize {
    task["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["error"].is_null() && !a["interrupted"].as_bool().unwrap_or(false))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_through_the_cli_every_task_is_committed_once() {
    let tasks: usize = std::env::var("SWARM_CHAOS_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(CHAOS_TASKS);
    let files: Vec<(String, String)> = (0..tasks).map(|i| (format!("out/t{i}.txt"), String::new())).collect();
    let tree: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let mut body = format!(
        "max_attempts = 3\n[limits]\ntask_deadline = \"120s\"\nmemory_mib = 64\n\
         [[teammate]]\nname = \"writer\"\nplugin = \"{}\"\ninstances = 12\n",
        swarm_tests::WRITER
    );
    for i in 0..tasks {
        body.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\nsubject = \"write\"\nowner = \"writer\"\n\
             description = \"write:out/t{i}.txt\"\nowns = [\"out/t{i}.txt\"]\n"
        ));
    }
    let dir = swarm_tests::team_dir("chaos", &tree, &body);
    let cache = dir.path().join("cache");
    let mut server = NatsServer::start();
    let url = server.url();
    let started = std::time::Instant::now();
    let run = cli(
        &[
            "--state-dir",
            "state",
            "run",
            "team.toml",
            "--nats",
            &url,
            "--ack-wait",
            "2s",
            "--format",
            "json",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(run.wait_line("team started", RUN_TIMEOUT).is_some(), "the coordinator did not start");
    let mut spawned = 0usize;
    let mut spawn = || {
        spawned += 1;
        worker(&url, "chaos", &format!("w{spawned}"), 2, dir.path(), &cache)
    };
    let mut workers: Vec<Proc> = (0..CHAOS_WORKERS).map(|_| spawn()).collect();
    // A deterministic pseudo-random sequence (repeatable, no dependency).
    let mut next = swarm_tests::xorshift(0x5eed_cafe);
    const ROUNDS: usize = 12;
    for round in 0..ROUNDS {
        // Chaos at random moments: the pause is the chaos, not a wait
        // for something to happen.
        std::thread::sleep(Duration::from_millis(300 + next() % 500));
        let victim = (next() % CHAOS_WORKERS as u64) as usize;
        workers[victim].kill9();
        workers[victim] = spawn();
        if round == ROUNDS / 2 {
            server.kill9();
            std::thread::sleep(Duration::from_millis(500));
            server.restart();
        }
    }
    let (code, out) = run.finish(RUN_TIMEOUT);
    let wall = started.elapsed();
    let report = report(&out);
    assert_eq!(code, 0, "the chaos run failed: {out}");
    assert_eq!(report["totals"]["completed"], tasks, "{}", report["totals"]);
    for task in report["tasks"].as_array().unwrap() {
        assert_eq!(task["status"], "completed", "{task}");
        assert_eq!(completed_attempts(task), 1, "completed more than once: {task}");
        let id = task["id"].as_str().unwrap();
        let teammate = task["teammate"].as_str().unwrap();
        let written = std::fs::read_to_string(dir.path().join(format!("tree/out/{id}.txt"))).unwrap();
        assert_eq!(written, format!("written by {teammate}"), "{id}'s write was not applied");
    }
    // The bucket: one commit per task across its queue keys.
    let cluster = bucket(&server, "chaos").await;
    let (done, runs, results, fenced) = commits(&cluster).await;
    assert_eq!(done.len(), tasks, "tasks in the bucket");
    let twice: Vec<_> = done.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "tasks not committed exactly once: {twice:?}");
    // None stuck: acks lost while the server was down are redelivered to
    // the live workers, which ack them as already done.
    let stats = drained(&cluster, Duration::from_secs(30)).await;
    assert_eq!((stats.messages, stats.ack_pending, stats.pending), (0, 0, 0), "messages stuck: {stats:?}");
    // The report's counts are the bucket's.
    let scale = &report["scale_out"];
    assert_eq!(scale["executions"], runs, "{scale}");
    assert_eq!(scale["duplicates"], runs - results, "{scale}");
    assert!(runs >= tasks as u64, "{scale}");
    assert!(scale["fenced"].as_u64().unwrap() <= fenced, "{scale} vs {fenced} fenced in the bucket");
    drop(workers);
    println!(
        "chaos through the CLI: {tasks} tasks, {spawned} worker processes, {runs} executions ({} duplicates), \
         {} fenced, in {:.1} s",
        runs - results,
        scale["fenced"],
        wall.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_past_ack_wait_through_the_cli_is_fenced_and_counted() {
    let body = format!(
        "[limits]\ntask_deadline = \"120s\"\n[[teammate]]\nname = \"counter\"\nplugin = \"{}\"\n\
         [[task]]\nid = \"slow\"\nsubject = \"slow\"\nowner = \"counter\"\ndescription = \"wait:1500\"\n",
        swarm_tests::COUNTER
    );
    let dir = swarm_tests::team_dir("fence", &[("a.txt", "a")], &body);
    let cache = dir.path().join("cache");
    let server = NatsServer::start();
    let url = server.url();
    let run = cli(
        &["--state-dir", "state", "run", "team.toml", "--nats", &url, "--ack-wait", "1s", "--format", "json"],
        dir.path(),
    );
    assert!(run.wait_line("published to the workers", RUN_TIMEOUT).is_some(), "the task was not published");
    // One slot each: a stopped worker holds no second delivery of the task.
    let a = worker(&url, "fence", "a", 1, dir.path(), &cache);
    assert!(a.wait_line("executing", RUN_TIMEOUT).is_some(), "a did not start the task");
    // Stopped mid-task (the guest waits 1.5 s): no heartbeat, so the
    // server redelivers after ack_wait, to b.
    a.signal("STOP");
    let b = worker(&url, "fence", "b", 1, dir.path(), &cache);
    assert!(b.wait_line("executing", RUN_TIMEOUT).is_some(), "b did not get the redelivery");
    // b is stopped too, so a's late result meets b's claim before any
    // commit can end the run: a is fenced off (and counts it in the
    // bucket) before it fetches again; b's delivery then expires too.
    b.signal("STOP");
    a.signal("CONT");
    let fenced = a.wait_line("fenced", RUN_TIMEOUT);
    assert!(fenced.is_some(), "a was not fenced off");
    b.signal("CONT");
    let (code, out) = run.finish(RUN_TIMEOUT);
    let report = report(&out);
    assert_eq!(code, 0, "the run failed: {out}");
    let task = &report["tasks"][0];
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(completed_attempts(task), 1, "{task}");
    let scale = &report["scale_out"];
    assert!(scale["fenced"].as_u64().unwrap() >= 1, "the fenced result is not counted: {scale}");
    assert!(scale["executions"].as_u64().unwrap() >= 2, "{scale}");
    assert!(scale["duplicates"].as_u64().unwrap() >= 1, "{scale}");
    let (done, ..) = commits(&bucket(&server, "fence").await).await;
    assert_eq!(done.get("slow"), Some(&1), "committed once: {done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_fails_visibly_after_max_attempts_through_the_cli() {
    let body = format!(
        "max_attempts = 2\n[limits]\ntask_deadline = \"60s\"\n[[teammate]]\nname = \"trapper\"\nplugin = \"{}\"\n\
         [[task]]\nid = \"poison\"\nsubject = \"unreachable\"\nowner = \"trapper\"\n\
         [[task]]\nid = \"fine\"\nsubject = \"fine\"\nowner = \"trapper\"\n",
        swarm_tests::TRAPPER
    );
    let dir = swarm_tests::team_dir("poison", &[("a.txt", "a")], &body);
    let cache = dir.path().join("cache");
    let server = NatsServer::start();
    let url = server.url();
    let run = cli(&["--state-dir", "state", "run", "team.toml", "--nats", &url, "--format", "json"], dir.path());
    assert!(run.wait_line("team started", RUN_TIMEOUT).is_some(), "the coordinator did not start");
    let _w = worker(&url, "poison", "w", 1, dir.path(), &cache);
    let (code, out) = run.finish(RUN_TIMEOUT);
    let report = report(&out);
    assert_ne!(code, 0, "a failed task must fail the run: {out}");
    let tasks: BTreeMap<&str, &serde_json::Value> =
        report["tasks"].as_array().unwrap().iter().map(|t| (t["id"].as_str().unwrap(), t)).collect();
    assert_eq!(tasks["fine"]["status"], "completed", "{}", tasks["fine"]);
    let poison = tasks["poison"];
    assert_eq!(poison["status"], "failed", "{poison}");
    let error = poison["error"].as_str().unwrap_or_default();
    assert!(error.contains("unreachable") || error.contains("trap"), "the trap is not the reason: {poison}");
    assert_eq!(poison["attempts"].as_array().unwrap().len(), 2, "max_attempts = 2 attempts: {poison}");
    let cluster = bucket(&server, "poison").await;
    let stats = drained(&cluster, Duration::from_secs(10)).await;
    assert_eq!(stats.messages, 0, "nothing stuck in the queue: {stats:?}");
}
