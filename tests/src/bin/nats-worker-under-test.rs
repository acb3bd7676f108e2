//! A scale-out worker for the NATS tests and benches: `swarm_host::cluster`'s
//! worker loop with a scripted task runner instead of a teammate, as a
//! process that tests can `kill -9`, stop and resume.
//!
//! `nats-worker-under-test URL TEAM WORKER-ID SLOTS`. A task's body says
//! what running it does: `sleep <ms>` waits and succeeds (as a model call
//! would), `echo <n> ...` succeeds with an output of `n` bytes (a large
//! result), `trap` fails every time (a poison task). Each run is printed as
//! `executed <task> <attempt>`; the worker's own log (committed, fenced)
//! follows on stdout. It ends when its stdin closes.

use std::time::Duration;

use swarm_host::cluster::{Cluster, ConnectOptions, Worker};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, team, id, slots] = &args[..] else {
        eprintln!("usage: nats-worker-under-test URL TEAM WORKER-ID SLOTS");
        std::process::exit(2);
    };
    tracing_subscriber::fmt().with_ansi(false).with_target(false).with_writer(std::io::stdout).init();
    let client = ConnectOptions { name: Some(id.clone()), ..ConnectOptions::url(url) }.connect().await.unwrap();
    let cluster = Cluster::join(client, team).await.unwrap();
    let worker = Worker::new(cluster, id.clone(), slots.parse().unwrap());
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    };
    println!("ready {id}");
    worker
        .run(
            |a, attempt, _plugin| async move {
                println!("executed {} {attempt}", a.task);
                match a.body.split_once(' ') {
                    Some(("sleep", ms)) => {
                        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
                        Ok(format!("slept {ms} ms"))
                    }
                    Some(("echo", rest)) => {
                        let n: usize = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
                        Ok("x".repeat(n))
                    }
                    _ if a.body == "trap" => Err("the plugin trapped: unreachable".to_string()),
                    _ => Err(format!("unknown task body `{}`", a.body)),
                }
            },
            stdin_closed,
        )
        .await
        .unwrap();
}
