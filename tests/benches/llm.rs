//! Model calls through the host (issue 14), each figure beside a floor
//! measured in the same run against the same loopback server:
//!
//! ```sh
//! cargo bench -p swarm-tests --bench llm
//! ```
//!
//! - `overhead`: one call at a time. The floor is the same HTTP request
//!   (the body the host would send, with the key header) posted directly
//!   with a reqwest client to a zero-latency OpenAI-compatible server on
//!   127.0.0.1; the row is `Models::complete` through the host's model
//!   service (allow-list, request rules, budget reservation and settlement,
//!   the provider's concurrency slot, serialisation, the answer's parsing,
//!   usage books). Printed: p50 and p99 of each, and the added latency.
//!   It measures the host's model layer, not the WIT boundary.
//! - `concurrent`: 64 callers (teammates) calling at once for a fixed
//!   number of calls, the provider's concurrency set to 64 so it is not the
//!   limit: calls per second through the host, against the same 64 callers
//!   posting directly.
//!
//! A plain `harness = false` binary on a multi-threaded runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_host::llm::{
    AliasConfig, Budget, LlmConfig, Message, ModelRequest, Models, ProviderKind, Secret, TeammateModels,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const ANSWER: &str = r#"{"id":"chatcmpl-1","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;

/// A zero-latency OpenAI-compatible server with keep-alive.
async fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else { return };
            conn.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let (rd, mut wr) = conn.into_split();
                let mut rd = BufReader::new(rd);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                let mut body = Vec::new();
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    body.resize(length, 0);
                    if rd.read_exact(&mut body).await.is_err() || wr.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn models(port: u16, teammates: usize, concurrency: usize) -> Models {
    let mut alias = AliasConfig::new(ProviderKind::OpenAi, "bench");
    alias.base_url = Some(format!("http://127.0.0.1:{port}/v1"));
    alias.key = Some(Secret::new("sk-bench"));
    alias.max_output_tokens = Some(16);
    let mut config = LlmConfig { aliases: BTreeMap::from([("fast".to_string(), alias)]), ..LlmConfig::default() };
    config.limits.concurrency_per_provider = concurrency;
    for i in 0..teammates {
        let t = TeammateModels { allow: vec!["fast".into()], default: Some("fast".into()), budget: Budget::default() };
        config.teammates.insert(format!("t-{i}"), t);
    }
    Models::new(config).unwrap()
}

fn request() -> ModelRequest {
    ModelRequest { messages: vec![Message::user("say ok")], max_output_tokens: Some(16), ..ModelRequest::default() }
}

/// The body the host posts for [`request`] (the floor posts the same bytes).
fn direct_body() -> String {
    r#"{"model":"bench","messages":[{"role":"user","content":"say ok"}],"max_tokens":16}"#.to_string()
}

async fn direct(client: &reqwest::Client, url: &str, body: &str) {
    let r = client
        .post(url)
        .header("authorization", "Bearer sk-bench")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let _: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn overhead(port: u16) {
    const N: usize = 4000;
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let body = direct_body();
    let m = models(port, 1, 4);
    // Warm both connections.
    for _ in 0..200 {
        direct(&client, &url, &body).await;
        m.complete("t-0", None, request()).await.unwrap();
    }
    let (mut floor, mut host) = (Vec::with_capacity(N), Vec::with_capacity(N));
    // Interleaved, so drift hits both alike.
    for _ in 0..N {
        let t = Instant::now();
        direct(&client, &url, &body).await;
        floor.push(t.elapsed());
        let t = Instant::now();
        m.complete("t-0", None, request()).await.unwrap();
        host.push(t.elapsed());
    }
    floor.sort();
    host.sort();
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let (f, h) = (percentile(&floor, p), percentile(&host, p));
        println!(
            "overhead {name}: direct {:.1} us, through the host {:.1} us, added {:.1} us ({:.2}x of the floor)",
            us(f),
            us(h),
            us(h) - us(f),
            us(h) / us(f)
        );
    }
}

async fn concurrent(port: u16) {
    const CALLERS: usize = 64;
    const PER_CALLER: usize = 200;
    let url = Arc::new(format!("http://127.0.0.1:{port}/v1/chat/completions"));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let m = Arc::new(models(port, CALLERS, CALLERS));
    for round in 0..2 {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CALLERS {
            let (client, url, body) = (client.clone(), url.clone(), direct_body());
            tasks.push(tokio::spawn(async move {
                for _ in 0..PER_CALLER {
                    direct(&client, &url, &body).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let floor = (CALLERS * PER_CALLER) as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..CALLERS {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("t-{i}");
                for _ in 0..PER_CALLER {
                    m.complete(&id, None, request()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let host = (CALLERS * PER_CALLER) as f64 / t.elapsed().as_secs_f64();
        if round == 1 {
            println!(
                "concurrent ({CALLERS} callers x {PER_CALLER}): direct {floor:.0} calls/s, through the host {host:.0} calls/s ({:.2}x of the floor)",
                host / floor
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let port = server().await;
    if filter.as_deref().is_none_or(|f| "overhead".contains(f)) {
        overhead(port).await;
    }
    if filter.as_deref().is_none_or(|f| "concurrent".contains(f)) {
        concurrent(port).await;
    }
}
