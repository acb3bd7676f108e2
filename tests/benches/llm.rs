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
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_host::llm::{
    AliasConfig, Budget, LlmConfig, Message, ModelRequest, Models, ProviderKind, Secret, TeammateModels,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const ANSWER: &str = r#"{"id":"chatcmpl-1","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;

/// When each request arrived at the server, and the first body, while
/// [`Arrivals::start`] is on: the guest rows time a call by the gap
/// between one request's arrival and the next (the guest cannot read a
/// clock the bench trusts), and so does their floor.
#[derive(Debug, Default)]
struct Arrivals {
    on: std::sync::atomic::AtomicBool,
    stamps: std::sync::Mutex<(Vec<Instant>, Option<Vec<u8>>)>,
}

impl Arrivals {
    fn start(&self) {
        *self.stamps.lock().unwrap() = (Vec::new(), None);
        self.on.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops recording: the gaps between consecutive arrivals, after the
    /// first `warm` requests, and the first body.
    fn stop(&self, warm: usize) -> (Vec<Duration>, Vec<u8>) {
        self.on.store(false, std::sync::atomic::Ordering::SeqCst);
        let (stamps, body) = std::mem::take(&mut *self.stamps.lock().unwrap());
        let gaps = stamps.windows(2).skip(warm).map(|w| w[1] - w[0]).collect();
        (gaps, body.unwrap_or_default())
    }

    fn record(&self, body: &[u8]) {
        if self.on.load(std::sync::atomic::Ordering::SeqCst) {
            let mut s = self.stamps.lock().unwrap();
            s.0.push(Instant::now());
            s.1.get_or_insert_with(|| body.to_vec());
        }
    }
}

/// A zero-latency OpenAI-compatible server with keep-alive.
async fn server(arrivals: Arc<Arrivals>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else { return };
            conn.set_nodelay(true).unwrap();
            let arrivals = arrivals.clone();
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
                    if rd.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    arrivals.record(&body);
                    if wr.write_all(response.as_bytes()).await.is_err() {
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

/// Calls a guest makes in one guest row, and how many of them warm up.
const GUEST_CALLS: usize = 3000;
const GUEST_WARM: usize = 300;
/// Rounds of the guest rows (each: in-process, process, direct, host only).
const GUEST_ROUNDS: usize = 3;

/// Runs the `llm-caller` guest through `swarm-host run` on `backend`, making
/// [`GUEST_CALLS`] calls one after another against the server: the gaps
/// between their arrivals, and the body the host sent.
fn guest_run(exe: &Path, port: u16, backend: &str, arrivals: &Arrivals) -> (Vec<Duration>, Vec<u8>) {
    let body = format!(
        "[models.fast]\nprovider = \"openai\"\nmodel = \"bench\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         key_env = \"SWARM_BENCH_KEY\"\nmax_output_tokens = 16\n\
         [[teammate]]\nname = \"caller\"\nplugin = {:?}\nmodels = [\"fast\"]\n\
         [[task]]\nid = \"t\"\nsubject = \"ask x{GUEST_CALLS} say ok\"\nmax_attempts = 1\n",
        swarm_tests::LLM_CALLER
    );
    let dir = swarm_tests::team_dir("llm-bench", &[("a.txt", "x\n")], &body);
    arrivals.start();
    let out = std::process::Command::new(exe)
        .current_dir(dir.path())
        .env("SWARM_BENCH_KEY", "sk-bench")
        .args(["run", "--fresh", "--json", "--backend", backend, "team.toml"])
        .output()
        .unwrap();
    let (gaps, body) = arrivals.stop(GUEST_WARM);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{backend}: no JSON report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["tasks"][0]["status"], "completed", "{backend}: {report:#}");
    assert_eq!(gaps.len(), GUEST_CALLS - 1 - GUEST_WARM, "{backend}: every call reached the server");
    (gaps, body)
}

/// Environment variable that makes the bench binary a client of the guest
/// rows' floors: `direct PORT` posts the body read from stdin, `host PORT`
/// calls `Models::complete`, [`GUEST_CALLS`] times one after another. The
/// floors run in a process of their own, as the guest's coordinator does,
/// so that no row shares the server's runtime.
const CLIENT_ENV: &str = "SWARM_LLM_BENCH_CLIENT";

async fn client_main(spec: &str) {
    let (kind, port) = spec.split_once(' ').expect("KIND PORT");
    let port: u16 = port.parse().unwrap();
    match kind {
        "direct" => {
            let mut body = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut body).unwrap();
            let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
            let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            for _ in 0..GUEST_CALLS {
                direct(&client, &url, &body).await;
            }
        }
        "host" => {
            let m = models(port, 1, 4);
            for _ in 0..GUEST_CALLS {
                m.complete("t-0", None, request()).await.unwrap();
            }
        }
        other => panic!("unknown client `{other}`"),
    }
}

/// [`GUEST_CALLS`] calls made one after another by this bench binary as a
/// client process of `kind` (see [`CLIENT_ENV`]), timed as the guest's
/// (gaps between arrivals at the server).
fn client_gaps(kind: &str, port: u16, body: &[u8], arrivals: &Arrivals) -> Vec<Duration> {
    use std::io::Write as _;
    arrivals.start();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CLIENT_ENV, format!("{kind} {port}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    assert!(child.wait().unwrap().success(), "the {kind} client failed");
    let (gaps, _) = arrivals.stop(GUEST_WARM);
    assert_eq!(gaps.len(), GUEST_CALLS - 1 - GUEST_WARM, "{kind}: every call reached the server");
    gaps
}

/// The WIT boundary and the socket (issue 14's rows from a guest): the
/// `llm-caller` guest making calls back to back in-process and in a
/// headless teammate process (over the coordinator's socket), against the
/// same request posted directly and `Models::complete` without a guest.
async fn guest(port: u16, arrivals: &Arrivals) {
    let exe = match swarm_tests::release_swarm_host() {
        Ok(exe) => exe,
        Err(e) => {
            println!("guest: FAILED: {e}");
            return;
        }
    };
    let (mut floor, mut host, mut in_process, mut process) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Rounds of the four, so that drift (other work on the machine) hits
    // all alike.
    for _ in 0..GUEST_ROUNDS {
        let (gaps, body) = guest_run(&exe, port, "in-process", arrivals);
        in_process.extend(gaps);
        process.extend(guest_run(&exe, port, "process", arrivals).0);
        floor.extend(client_gaps("direct", port, &body, arrivals));
        host.extend(client_gaps("host", port, &body, arrivals));
    }
    let sorted = |mut v: Vec<Duration>| {
        v.sort();
        v
    };
    let (floor, host, in_process, process) = (sorted(floor), sorted(host), sorted(in_process), sorted(process));
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let f = us(percentile(&floor, p));
        let line = |what: &str, v: &[Duration], base: f64, base_name: &str| {
            let x = us(percentile(v, p));
            println!(
                "guest {name}: {what} {x:.1} us per call, added {:.1} us over the direct call ({:.2}x), {:.1} us over {base_name}",
                x - f,
                x / f,
                x - base
            );
        };
        println!("guest {name}: direct {f:.1} us per call (the floor: the same body posted by reqwest)");
        line("host only (Models::complete)", &host, f, "the direct call");
        let h = us(percentile(&host, p));
        line("guest in-process", &in_process, h, "the host alone (the WIT boundary)");
        line("guest in a teammate process", &process, us(percentile(&in_process, p)), "in-process (the socket)");
    }
}

#[tokio::main]
async fn main() {
    if let Ok(spec) = std::env::var(CLIENT_ENV) {
        return client_main(&spec).await;
    }
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let arrivals = Arc::new(Arrivals::default());
    let port = server(arrivals.clone()).await;
    if filter.as_deref().is_none_or(|f| "overhead".contains(f)) {
        overhead(port).await;
    }
    if filter.as_deref().is_none_or(|f| "concurrent".contains(f)) {
        concurrent(port).await;
    }
    if filter.as_deref().is_none_or(|f| "guest".contains(f)) {
        guest(port, &arrivals).await;
    }
}
