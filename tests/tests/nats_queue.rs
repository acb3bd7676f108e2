//! Scale-out over NATS JetStream (issue 18), against a real nats-server on
//! 127.0.0.1 started by each test (`swarm_tests::nats`): the fence (a
//! worker stopped past `ack_wait` has its result discarded), the poison
//! task's dead letter, plugin digests, a coordinator that starts again,
//! and the chaos run (workers and the server `kill -9`ed).
//!
//! The workers are `nats-worker-under-test` processes: the cluster's real
//! worker loop with a scripted task runner (`sleep <ms>`, `trap`).

use std::collections::BTreeMap;
use std::time::Duration;

use swarm_host::cluster::blobs::sha256_hex;
use swarm_host::cluster::{Assignment, Cluster, ClusterError, ConnectOptions, Record, Settings, State};
use swarm_tests::nats::{NatsServer, WorkerProc, drained};

const WORKER: &str = env!("CARGO_BIN_EXE_nats-worker-under-test");

async fn coordinator(server: &NatsServer, team: &str, settings: Settings) -> Cluster {
    let client = ConnectOptions::url(server.url()).connect().await.unwrap();
    Cluster::create(client, team, settings).await.unwrap()
}

fn settings(ack_wait_ms: u64, max_attempts: u32) -> Settings {
    Settings { ack_wait: Duration::from_millis(ack_wait_ms), max_attempts, ..Settings::default() }
}

fn worker_of(record: &Record) -> Option<&str> {
    match &record.state {
        State::Done { worker, .. } => Some(worker),
        _ => None,
    }
}

/// Waits without blocking the runtime's workers.
async fn wait_line(w: &WorkerProc, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
    tokio::task::block_in_place(|| w.wait_line(pred, timeout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_past_ack_wait_is_fenced_off() {
    let server = NatsServer::start();
    let team = "fence";
    let cluster = coordinator(&server, team, settings(1000, 5)).await;
    cluster.publish(&Assignment::new("t1", "g", None, "sleep 1500")).await.unwrap();
    let a = WorkerProc::spawn(WORKER, &server.url(), team, "a", 1);
    assert!(wait_line(&a, |l| l == "executed t1 1", Duration::from_secs(10)).await.is_some());
    // Stopped mid-task: no heartbeat, so the server redelivers after ack_wait.
    a.signal("STOP");
    let b = WorkerProc::spawn(WORKER, &server.url(), team, "b", 1);
    assert!(wait_line(&b, |l| l.contains("committed") && l.contains("t1"), Duration::from_secs(15)).await.is_some());
    // A resumes, finishes its attempt and tries to commit on its old claim.
    a.signal("CONT");
    let fenced = wait_line(&a, |l| l.contains("fenced") && l.contains("t1"), Duration::from_secs(10)).await;
    assert!(fenced.is_some(), "worker a was not fenced; its lines: {:?}", a.lines());
    assert!(!a.lines().iter().any(|l| l.contains("committed")), "the stale worker committed: {:?}", a.lines());
    let record = cluster.record("t1").await.unwrap().unwrap();
    assert!(matches!(&record.state, State::Done { worker, attempt: 2, .. } if worker == "b"), "{record:?}");
    let done = cluster.history("t1").await.unwrap().iter().filter(|r| worker_of(r).is_some()).count();
    assert_eq!(done, 1, "one commit in the task's history");
    let stats = drained(&cluster, Duration::from_secs(10)).await;
    assert_eq!((stats.messages, stats.ack_pending, stats.pending), (0, 0, 0), "the queue is empty: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_task_is_dead_lettered_after_max_attempts() {
    let server = NatsServer::start();
    let team = "poison";
    let cluster = coordinator(&server, team, settings(2000, 3)).await;
    let dead = cluster.dead_letters().await.unwrap();
    cluster.publish(&Assignment::new("poison", "g", None, "trap")).await.unwrap();
    cluster.publish(&Assignment::new("fine", "g", None, "sleep 10")).await.unwrap();
    let w = WorkerProc::spawn(WORKER, &server.url(), team, "w", 2);
    let ids = ["poison".to_string(), "fine".to_string()];
    let records = cluster.wait_settled(&ids, Duration::from_secs(30)).await.unwrap().expect("both tasks settle");
    match &records["poison"].state {
        State::Dead { deliveries, error } => {
            assert_eq!(*deliveries, 3, "max_attempts deliveries");
            assert!(error.as_deref().is_some_and(|e| e.contains("trapped")), "the last error is kept: {error:?}");
        }
        other => panic!("the poison task is not dead: {other:?}"),
    }
    assert_eq!(worker_of(&records["fine"]), Some("w"));
    let executed = w.lines().iter().filter(|l| l.starts_with("executed poison ")).count();
    assert_eq!(executed, 3, "ran exactly max_attempts times: {:?}", w.lines());
    // The exhausted message was moved out of the queue: nothing is stuck.
    assert!(dead.wait_moved(1, Duration::from_secs(10)).await, "the dead letter was not moved");
    let stats = drained(&cluster, Duration::from_secs(10)).await;
    assert_eq!(stats.messages, 0, "nothing stuck in the queue: {stats:?}");
    assert_eq!(dead.moved(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_task_that_ran_out_while_no_coordinator_listened_is_swept_at_start() {
    let server = NatsServer::start();
    let team = "sweep";
    let cluster = coordinator(&server, team, settings(2000, 2)).await;
    cluster.publish(&Assignment::new("poison", "g", None, "trap")).await.unwrap();
    let w = WorkerProc::spawn(WORKER, &server.url(), team, "w", 1);
    // No dead-letter mover yet: the advisory goes unheard.
    let last = |r: &Record| matches!(r.state, State::Retrying { attempt: 2, .. });
    let ids = ["poison".to_string()];
    cluster.wait_for(&ids, last, Duration::from_secs(20)).await.unwrap().expect("the last attempt failed");
    assert_eq!(cluster.queue_stats().await.unwrap().messages, 1, "JetStream keeps the exhausted message");
    let dead = cluster.dead_letters().await.unwrap();
    assert_eq!(dead.moved(), 1, "the sweep at start moved it");
    assert!(matches!(cluster.record("poison").await.unwrap().unwrap().state, State::Dead { deliveries: 2, .. }));
    assert_eq!(cluster.queue_stats().await.unwrap().messages, 0, "nothing stuck in the queue");
    assert_eq!(w.lines().iter().filter(|l| l.starts_with("executed poison ")).count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_passed_through_and_a_wrong_one_is_refused() {
    let server = NatsServer::start_with(&["--auth", "team-token-1"]);
    let right = ConnectOptions { token: Some("team-token-1".into()), ..ConnectOptions::url(server.url()) };
    Cluster::create(right.connect().await.unwrap(), "auth", Settings::default()).await.unwrap();
    for wrong in [None, Some("other".to_string())] {
        let options = ConnectOptions { token: wrong.clone(), ..ConnectOptions::url(server.url()) };
        match options.connect().await {
            Err(e @ ClusterError::Connect { .. }) => {
                assert!(e.to_string().contains(&server.url()), "{e}");
                assert!(!e.to_string().contains("team-token-1"), "the error shows the token: {e}");
            }
            other => panic!("token {wrong:?} was not refused: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_whose_bytes_do_not_match_its_digest_is_refused() {
    let server = NatsServer::start();
    let cluster = coordinator(&server, "blobs", Settings::default()).await;
    let plugin = b"\0asm\x0d\0\x01\0 a component".to_vec();
    let digest = cluster.put_blob(&plugin).await.unwrap();
    assert_eq!(digest, sha256_hex(&plugin));
    assert_eq!(cluster.blob(&digest).await.unwrap(), plugin);
    // The attack: other bytes stored under the digest a task names.
    let wanted = sha256_hex(b"the plugin the plan pinned");
    let mut evil: &[u8] = b"\0asm\x0d\0\x01\0 something else";
    cluster.blob_store().put(format!("sha256-{wanted}").as_str(), &mut evil).await.unwrap();
    match cluster.blob(&wanted).await {
        Err(ClusterError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, sha256_hex(b"\0asm\x0d\0\x01\0 something else"));
        }
        other => panic!("the mismatching blob was not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_a_plugin_whose_bytes_do_not_match_its_digest() {
    let server = NatsServer::start();
    let team = "digest";
    let cluster = coordinator(&server, team, settings(2000, 2)).await;
    let dead = cluster.dead_letters().await.unwrap();
    let good = cluster.put_blob(b"\0asm\x0d\0\x01\0 the pinned plugin").await.unwrap();
    let wanted = sha256_hex(b"\0asm\x0d\0\x01\0 the plugin the plan pinned");
    let mut evil: &[u8] = b"\0asm\x0d\0\x01\0 other code";
    cluster.blob_store().put(format!("sha256-{wanted}").as_str(), &mut evil).await.unwrap();
    cluster.publish(&Assignment::new("swapped", "g", Some(wanted.clone()), "sleep 1")).await.unwrap();
    cluster.publish(&Assignment::new("genuine", "g", Some(good), "sleep 1")).await.unwrap();
    let w = WorkerProc::spawn(WORKER, &server.url(), team, "w", 1);
    let ids = ["swapped".to_string(), "genuine".to_string()];
    let records = cluster.wait_settled(&ids, Duration::from_secs(20)).await.unwrap().expect("both tasks settle");
    assert_eq!(worker_of(&records["genuine"]), Some("w"));
    match &records["swapped"].state {
        State::Dead { error: Some(error), .. } => {
            assert!(error.contains("plugin refused") && error.contains(&wanted), "{error}");
        }
        other => panic!("the task with the swapped plugin did not fail: {other:?}"),
    }
    assert!(
        !w.lines().iter().any(|l| l.starts_with("executed swapped")),
        "the runner was handed the swapped bytes: {:?}",
        w.lines()
    );
    assert!(dead.wait_moved(1, Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_picks_the_state_up_from_the_bucket() {
    let server = NatsServer::start();
    let team = "resume";
    let ids: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    {
        let first = coordinator(&server, team, settings(2000, 3)).await;
        for id in &ids[..10] {
            first.publish(&Assignment::new(id, "g", None, "sleep 5")).await.unwrap();
        }
        let w = WorkerProc::spawn(WORKER, &server.url(), team, "w1", 4);
        first.wait_settled(&ids[..10], Duration::from_secs(30)).await.unwrap().expect("the first half is done");
        drop(w);
        // The first coordinator goes away here (its connection is dropped).
    }
    // A new coordinator publishes the whole plan again, as a resume does.
    let second = coordinator(&server, team, settings(2000, 3)).await;
    for id in &ids {
        second.publish(&Assignment::new(id, "g", None, "sleep 5")).await.unwrap();
    }
    let w = WorkerProc::spawn(WORKER, &server.url(), team, "w2", 4);
    let records = second.wait_settled(&ids, Duration::from_secs(30)).await.unwrap().expect("every task is done");
    for id in &ids[..10] {
        assert_eq!(worker_of(&records[id]), Some("w1"), "{id} kept its first result");
    }
    for id in &ids[10..] {
        assert_eq!(worker_of(&records[id]), Some("w2"), "{id} ran after the restart");
    }
    let rerun: Vec<_> =
        w.lines().into_iter().filter(|l| ids[..10].iter().any(|id| *l == format!("executed {id} 1"))).collect();
    assert!(rerun.is_empty(), "tasks done before the restart ran again: {rerun:?}");
}

/// 300 tasks, 4 workers `kill -9`ed at random and restarted, the server
/// `kill -9`ed and restarted once: every task committed exactly once, none
/// lost, none stuck in the queue; duplicate executions are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_task_is_committed_exactly_once() {
    const TASKS: usize = 300;
    const WORKERS: usize = 4;
    const ROUNDS: usize = 24;
    let mut server = NatsServer::start();
    let team = "chaos";
    let cluster = coordinator(&server, team, settings(2000, 1000)).await;
    let ids: Vec<String> = (0..TASKS).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        // The publish is repeated: the queue must hold each task once.
        let a = Assignment::new(id, "g", None, &format!("sleep {}", 20 + (i * 37) % 180));
        cluster.publish(&a).await.unwrap();
        cluster.publish(&a).await.unwrap();
    }
    assert_eq!(cluster.queue_stats().await.unwrap().messages, TASKS as u64, "duplicates were not dropped");
    let url = server.url();
    let mut spawned = 0usize;
    let spawn = |spawned: &mut usize| {
        *spawned += 1;
        tokio::task::block_in_place(|| WorkerProc::spawn(WORKER, &url, team, &format!("w{spawned}"), 4))
    };
    let mut workers: Vec<WorkerProc> = (0..WORKERS).map(|_| spawn(&mut spawned)).collect();
    let mut finished: Vec<WorkerProc> = Vec::new();
    // A deterministic pseudo-random sequence (no dependency, repeatable).
    let mut next = swarm_tests::xorshift(0x5eed_cafe);
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(300 + next() % 500)).await;
        let victim = (next() % WORKERS as u64) as usize;
        workers[victim].kill9();
        let fresh = spawn(&mut spawned);
        finished.push(std::mem::replace(&mut workers[victim], fresh));
        if round == ROUNDS / 2 {
            server.kill9();
            tokio::time::sleep(Duration::from_millis(500)).await;
            tokio::task::block_in_place(|| server.restart());
        }
    }
    let records = match cluster.wait_settled(&ids, Duration::from_secs(90)).await.unwrap() {
        Ok(records) => records,
        Err(open) => panic!("{} tasks never finished: {:?}", open.len(), &open[..open.len().min(10)]),
    };
    assert!(records.values().all(|r| worker_of(r).is_some()), "every task is done");
    // Exactly one commit per task: the bucket's history of each task holds
    // one `done` record (nothing is written after it), and no worker's log
    // shows two commits of one task.
    let mut commits: BTreeMap<String, usize> = BTreeMap::new();
    let mut executed = 0usize;
    let mut fenced = 0usize;
    for w in finished.iter().chain(&workers) {
        for line in w.lines() {
            if line.starts_with("executed ") {
                executed += 1;
            } else if line.contains("fenced") {
                fenced += 1;
            } else if line.contains(" committed") {
                let task = line.split("task=").nth(1).and_then(|t| t.split_whitespace().next()).unwrap_or("");
                *commits.entry(task.to_string()).or_default() += 1;
            }
        }
    }
    for id in &ids {
        let done = cluster.history(id).await.unwrap().iter().filter(|r| worker_of(r).is_some()).count();
        assert_eq!(done, 1, "task {id} has {done} commits in the bucket");
        assert!(commits.get(id).copied().unwrap_or(0) <= 1, "task {id} logged {:?} commits", commits.get(id));
    }
    // None stuck: acks lost while the server was down are redelivered and
    // acked as already done within ack_wait; wait for the queue to drain.
    let stats = drained(&cluster, Duration::from_secs(30)).await;
    assert_eq!((stats.messages, stats.ack_pending, stats.pending), (0, 0, 0), "messages stuck in the queue: {stats:?}");
    println!(
        "chaos: {TASKS} tasks, {spawned} worker processes, {executed} executions ({} duplicates), {fenced} fenced results",
        executed.saturating_sub(TASKS)
    );
}

/// Payloads over the server's `max_payload` (64 KiB here) go through the
/// object store: an assignment of 200 KiB is published and run, its
/// 300 KiB output committed, a 2 MiB request answered with a 2 MiB reply;
/// past the blob limit the error names the size and the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_over_max_payload_go_through_the_object_store() {
    const MAX_PAYLOAD: usize = 64 << 10;
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("nats.conf");
    std::fs::write(&path, format!("max_payload: {MAX_PAYLOAD}\n")).unwrap();
    let server = NatsServer::start_with(&["-c", path.to_str().unwrap()]);
    let team = "large";
    let cluster = coordinator(&server, team, settings(5000, 2)).await;
    assert!(cluster.inline_limit() < MAX_PAYLOAD, "{}", cluster.inline_limit());
    let client = cluster.client();
    let refused = client.publish("plain", vec![0u8; 200 << 10].into()).await;
    assert!(refused.is_err(), "the server's limit is not in force");

    let body = format!("echo {} {}", 300 << 10, "y".repeat(200 << 10));
    cluster.publish(&Assignment::new("big", "g", None, &body)).await.unwrap();
    let _w = WorkerProc::spawn(WORKER, &server.url(), team, "w", 1);
    let ids = ["big".to_string()];
    let records = cluster.wait_settled(&ids, Duration::from_secs(20)).await.unwrap().expect("the task settles");
    let State::Done { output, .. } = &records["big"].state else { panic!("not done: {:?}", records["big"]) };
    assert!(output.starts_with(swarm_host::cluster::spill::BLOB_VALUE), "the output was not spilled: {}", output.len());
    assert_eq!(cluster.unspill_text(output).await.unwrap(), "x".repeat(300 << 10));

    // Request/reply, both ways over the limit.
    let mut calls = client.subscribe("large.call").await.unwrap();
    let answering = cluster.clone();
    tokio::spawn(async move {
        use futures_util::StreamExt as _;
        while let Some(msg) = calls.next().await {
            let mut bytes = answering.incoming(msg.headers.as_ref(), &msg.payload).await.unwrap();
            bytes.reverse();
            let (headers, reply) = answering.outgoing("a reply", bytes).await.unwrap();
            let to = msg.reply.unwrap();
            answering.client().publish_with_headers(to, headers, reply.into()).await.unwrap();
        }
    });
    let call: Vec<u8> = (0..(2usize << 20)).map(|i| (i % 251) as u8).collect();
    let (headers, payload) = cluster.outgoing("a call", call.clone()).await.unwrap();
    assert!(payload.is_empty() && headers.get(swarm_host::cluster::spill::BLOB_HEADER).is_some());
    let request = async_nats::Request::new().headers(headers).payload(payload.into());
    let answer = client.send_request("large.call", request).await.unwrap();
    let mut back = cluster.incoming(answer.headers.as_ref(), &answer.payload).await.unwrap();
    back.reverse();
    assert_eq!(back, call, "the reply came back whole");

    let too_large = vec![0u8; swarm_host::cluster::blobs::MAX_BLOB_BYTES + 1];
    match cluster.outgoing("a model call", too_large).await {
        Err(e @ ClusterError::TooLarge { .. }) => {
            let text = e.to_string();
            assert!(text.contains("a model call") && text.contains(&(64usize << 20).to_string()), "{text}");
            assert!(text.contains(&((64usize << 20) + 1).to_string()), "{text}");
        }
        other => panic!("an oversized payload was not refused: {:?}", other.map(|(_, p)| p.len())),
    }
}

/// A fresh run of a team purges the previous run's queue and bucket; its
/// tasks (same ids, within the server's duplicate window) must still be
/// queued, not dropped as the earlier run's duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_run_of_the_same_team_is_not_dropped_as_a_duplicate() {
    let server = NatsServer::start();
    let mut cluster = coordinator(&server, "again", settings(2000, 2)).await;
    let a = Assignment::new("t1", "g", None, "sleep 1");
    cluster.publish(&a).await.unwrap();
    cluster.publish(&a).await.unwrap();
    assert_eq!(cluster.queue_stats().await.unwrap().messages, 1, "a repeated publish within one run is dropped");
    cluster.purge().await.unwrap();
    assert_eq!(cluster.queue_stats().await.unwrap().messages, 0);
    cluster.publish(&a).await.unwrap();
    assert_eq!(cluster.queue_stats().await.unwrap().messages, 1, "the new run's task was dropped as a duplicate");
    // A coordinator resuming this run keeps its generation: no second copy.
    let resumed = coordinator(&server, "again", settings(2000, 2)).await;
    resumed.publish(&a).await.unwrap();
    assert_eq!(resumed.queue_stats().await.unwrap().messages, 1, "a resumed run published the task again");
}
