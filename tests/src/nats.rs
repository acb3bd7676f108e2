//! A private nats-server with JetStream for the scale-out tests and
//! benches: started on 127.0.0.1 with a random port (`-p -1`, read back
//! from its log line `Listening for client connections on 127.0.0.1:<port>`:
//! its ports file is written only after it says it is ready, so waiting
//! for the file would mean polling), a store in a temp dir, killed when
//! dropped. It can
//! be `kill -9`ed and restarted on the same port and store, as the chaos
//! test does.
//!
//! The binary is `$SWARM_NATS_SERVER`, else `nats-server` on `PATH`. A test
//! that needs it and finds none fails with how to install it (never skips).
//!
//! [`WorkerProc`] runs a worker process (`nats-worker-under-test`) and
//! collects its stdout lines, for tests that kill, stop and resume workers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What to do when no server binary is found.
pub const INSTALL_HINT: &str = "nats-server not found: the NATS tests need nats-server >= 2.10 with JetStream. \
     Install the pinned one as CI does: `bash .ci/deps` (it installs it into target/nats-venv, where the tests \
     look), or set SWARM_NATS_SERVER to a nats-server, or put one on PATH";

/// A running nats-server, killed (and its store removed) when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    binary: PathBuf,
    extra: Vec<String>,
}

/// The nats-server binary to start: `$SWARM_NATS_SERVER`, else the one
/// `.ci/deps` installs (`target/nats-venv` in the workspace), else the
/// first `nats-server` on `PATH`. Panics with [`INSTALL_HINT`] when there
/// is none.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SWARM_NATS_SERVER") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SWARM_NATS_SERVER={} is not a file. {INSTALL_HINT}", p.display());
        return p;
    }
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/nats-venv/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("nats-server")).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

impl NatsServer {
    /// Starts a fresh server with JetStream on a random port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a fresh server with JetStream and the extra arguments `extra`
    /// (e.g. `["--auth", "<token>"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra.iter().map(|a| a.to_string()).collect();
        let mut server = Self { child: None, dir, port: 0, binary: binary(), extra };
        server.spawn("-1");
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's store directory.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `kill -9`: the server dies without flushing anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store (after
    /// [`Self::kill9`]).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn(&self.port.to_string());
    }

    fn spawn(&mut self, port: &str) {
        let mut child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", port, "-js", "-sd"])
            .arg(self.store())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}. {INSTALL_HINT}", self.binary.display()));
        // The server logs to stderr: its client port, then "Server is
        // ready" (the event waited for). The rest of its log goes to a file
        // (never a full pipe).
        let stderr = child.stderr.take().unwrap();
        let log = self.dir.path().join("server.log");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
            let mut port = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(out) = out.as_mut() {
                    use std::io::Write as _;
                    let _ = writeln!(out, "{line}");
                }
                if let Some((_, addr)) = line.split_once("Listening for client connections on ") {
                    port = addr.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                }
                if line.contains("Server is ready") {
                    let _ = ready_tx.send(port);
                }
            }
        });
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(port)) => self.port = port,
            _ => {
                let _ = child.kill();
                let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                panic!("nats-server did not report its port and readiness within {READY_TIMEOUT:?}; its log:\n{log}");
            }
        }
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A worker process and its stdout lines; killed when dropped.
#[derive(Debug)]
pub struct WorkerProc {
    child: Child,
    /// Its worker id.
    pub id: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    events: mpsc::Receiver<String>,
    // Held open: the worker ends when its stdin closes.
    _stdin: Option<std::process::ChildStdin>,
}

impl WorkerProc {
    /// Starts worker `id` of `team` at `url` with `slots` slots (`exe` is
    /// `CARGO_BIN_EXE_nats-worker-under-test`) and waits until it has joined.
    pub fn spawn(exe: &str, url: &str, team: &str, id: &str, slots: usize) -> Self {
        let mut child = Command::new(exe)
            .args([url, team, id, &slots.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, events) = mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        let worker = Self { child, id: id.to_string(), lines, events, _stdin: stdin };
        let ready = format!("ready {id}");
        assert!(worker.wait_line(|l| l == ready, READY_TIMEOUT).is_some(), "worker {id} did not start");
        worker
    }

    /// Waits up to `timeout` for a new line matching `pred`.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.events.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Every line it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        crate::proc::kill9(&mut self.child);
    }

    /// Sends `signal` (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        crate::proc::send_signal(&self.child, signal);
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits up to `timeout` for the work queue to hold nothing, delivered or
/// not: a commit is seen on the bucket's watch before the worker's ack
/// reaches the queue, and JetStream announces no event when a queue
/// empties, so this reads the counters every 100 ms until the deadline.
pub async fn drained(cluster: &swarm_host::cluster::Cluster, timeout: Duration) -> swarm_host::cluster::QueueStats {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let stats = cluster.queue_stats().await.unwrap();
        if (stats.messages, stats.ack_pending, stats.pending) == (0, 0, 0) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
