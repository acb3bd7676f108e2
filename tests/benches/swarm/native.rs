//! Rows 1 and 2 for the native backends: spawning a teammate as a headless
//! process and as a tmux pane (from `spawn` until the teammate process has
//! joined over the Unix socket and instantiated its component), and the
//! coordinator → teammate → coordinator round trip over the Unix socket
//! (the `ping` teammate running in a headless `swarm-host teammate`
//! process).
//!
//! The teammate processes run the `swarm-host` binary. `CARGO_BIN_EXE_*`
//! is not set for a bench of another package, so [`swarm_host_exe`] looks
//! for it next to this bench binary's directory (`<target>/release/`), the
//! place `cargo build --release -p swarm-host` puts it; `SWARM_HOST_BIN`
//! overrides. A missing binary fails the rows with the command to run.
//!
//! tmux runs on a private server (its own socket in a temp dir, one detached
//! 200×50 session) that the row starts and kills at the end; the user's
//! server is never touched. Without tmux the row says `skipped`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_host::backend::server::{HEARTBEAT_TIMEOUT, LinkServer, SocketDir};
use swarm_host::backend::{Headless, Native, NativeSetup, TeammateBackend, Tmux};
use swarm_host::sandbox::{Limits, ReadScope, Sandbox};
use swarm_host::team::{Liveness, Team};

use swarm_tests::tmux::TmuxServer;

use crate::common;
use crate::stats::{Line, dur, percentile, ratio};

/// Spawns measured per native backend (each is a process start).
const SPAWNS: usize = 40;
/// Round trips over the socket (plus a tenth to warm up).
const TRIPS: usize = 5_000;

/// The `swarm-host` binary the teammate processes run.
pub use swarm_tests::release_swarm_host as swarm_host_exe;

/// The native spawn lines of row 1, with ratios to `floor` (the process
/// floor's p50).
pub fn spawn_lines(floor: Duration) -> Vec<Line> {
    let exe = match swarm_host_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return vec![
                Line::new("1 spawn", "headless process backend, p50 / p99", "FAILED", e.clone()),
                Line::new("1 spawn", "tmux pane backend, p50 / p99", "FAILED", e),
            ];
        }
    };
    let cache = tempfile::tempdir().unwrap();
    // Fill the compiled-plugin cache once, as a previous run would have.
    Sandbox::with_cache(cache.path().into())
        .load(Path::new(swarm_tests::COUNTER), &Limits::default())
        .expect("load counter");
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let setup = setup(&exe, root.path(), cache.path(), "counter", swarm_tests::COUNTER);
    let vs = |d: Duration| format!("{} of process floor", ratio(d.as_secs_f64(), floor.as_secs_f64()));
    let line = |what: &str, samples: Vec<Duration>| {
        let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
        Line::new("1 spawn", format!("{what}, p50 / p99"), format!("{} / {}", dur(p50), dur(p99)), vs(p50))
    };
    let mut lines = Vec::new();
    let headless = rt.block_on(async {
        let ids = common::ids("counter", SPAWNS);
        let (team, _events) = common::team(&ids, 16, Vec::new());
        let server = link_server(&team);
        spawn_times(&Native::new(team.clone(), server, Headless, setup.clone()), &team, &ids).await
    });
    lines.push(line("headless process backend (spawn → joined and instantiated)", headless));
    if !swarm_tests::tmux::installed() {
        lines.push(Line::new("1 spawn", "tmux pane backend, p50 / p99", "skipped", "skipped: tmux not installed"));
        return lines;
    }
    let server = TmuxServer::start();
    let panes = rt.block_on(async {
        let ids = common::ids("counter", SPAWNS);
        let (team, _events) = common::team(&ids, 16, Vec::new());
        let link = link_server(&team);
        let tmux = Tmux::new(&server.socket, &server.anchor());
        spawn_times(&Native::new(team.clone(), link, tmux, setup), &team, &ids).await
    });
    lines.push(line("tmux pane backend (spawn → joined and instantiated)", panes));
    lines
}

/// The Unix-socket lines of row 2: ratio to a bare echo between two
/// processes over a Unix socket (the floor, measured here), then to
/// `file_p50` (the design replaced).
pub fn round_trip_lines(file_p50: Duration) -> Vec<Line> {
    let fail = |e: String| vec![Line::new("2 round trip", "Unix socket, p50 / p99", "FAILED", e)];
    let exe = match swarm_host_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(e),
    };
    let cache = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let setup = setup(&exe, root.path(), cache.path(), "ping", swarm_tests::PING);
    let rt = common::runtime(2);
    let samples = rt.block_on(async {
        let ids = common::ids("ping", 1);
        let (team, mut events) = common::team(&ids, 256, Vec::new());
        let backend = Native::new(team.clone(), link_server(&team), Headless, setup);
        let handle = backend.spawn(common::launch("ping-1")).await.expect("spawn ping-1");
        common::idle(&mut events, 1).await;
        // The coordinator's side runs on a runtime worker, as in a real run.
        let lead = tokio::spawn(common::ping_round_trips(team.clone(), events, TRIPS));
        let (samples, mut events) = lead.await.expect("lead task");
        let exit = tokio::time::timeout(common::WAIT, async {
            let stopping = backend.stop(&handle, "stop-ping-1", "bench done", common::WAIT);
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    exit = &mut stopping => return exit,
                    _ = events.recv() => {}
                }
            }
        })
        .await
        .expect("ping-1 stops in time");
        assert!(exit.is_clean(), "ping-1 ended badly: {exit}");
        samples
    });
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    let floor = socket_floor();
    let vs = |d: Duration| match &floor {
        Ok(floor) => format!("{} of the socket echo p50", ratio(d.as_secs_f64(), floor.as_secs_f64())),
        Err(_) => "floor FAILED".into(),
    };
    let replaced = |d: Duration| format!("{} of file inbox p50", ratio(d.as_secs_f64(), file_p50.as_secs_f64()));
    let mut lines = vec![
        Line::new("2 round trip", "Unix socket (headless process), p50", dur(p50), vs(p50))
            .replaced(replaced(p50))
            .target("p50 ≤ 100 µs", p50 <= Duration::from_micros(100)),
        Line::new("2 round trip", "Unix socket (headless process), p99", dur(p99), vs(p99)).replaced(replaced(p99)),
    ];
    match floor {
        Ok(floor) => lines.push(
            Line::new(
                "2 round trip",
                "floor: bare 64-byte echo between two processes over a Unix socket, p50",
                dur(floor),
                "1×",
            )
            .replaced(replaced(floor)),
        ),
        Err(e) => lines.push(Line::new("2 round trip", "floor: bare Unix-socket echo", "FAILED", e)),
    }
    lines
}

fn setup(exe: &Path, root: &Path, cache: &Path, group: &str, plugin: &str) -> NativeSetup {
    NativeSetup {
        exe: exe.into(),
        root: root.into(),
        read: ReadScope::Owned,
        workspace: Default::default(),
        plugins: HashMap::from([(group.to_string(), PathBuf::from(plugin))]),
        cache_dir: Some(cache.into()),
    }
}

fn link_server(team: &Arc<Team>) -> Arc<LinkServer> {
    let dir = SocketDir::create("bench").expect("socket dir");
    LinkServer::start(team.clone(), dir, HEARTBEAT_TIMEOUT).expect("link server")
}

/// Spawn → the teammate left `Spawning` (joined and instantiated), one id
/// at a time; each is killed before the next starts.
async fn spawn_times<B: TeammateBackend>(backend: &B, team: &Team, ids: &[String]) -> Vec<Duration> {
    let mut times = Vec::with_capacity(ids.len());
    for id in ids {
        let started = Instant::now();
        let handle = backend.spawn(common::launch(id)).await.expect("spawn");
        let left_spawning = async {
            loop {
                let state = team.roster.snapshot().into_iter().find(|m| &m.id == id).map(|m| m.state);
                if state.is_some_and(|s| s != Liveness::Spawning) {
                    return;
                }
                team.roster.changed().await;
            }
        };
        tokio::time::timeout(common::WAIT, left_spawning).await.expect("the teammate joined in time");
        times.push(started.elapsed());
        backend.kill(&handle, "measured").await;
    }
    times
}

/// Round trips of the bare socket floor.
const FLOOR_TRIPS: usize = 5_000;

/// The floor of any round trip between two processes over a Unix socket:
/// this bench and a child process (`echo-child`) that echoes 64-byte
/// messages with blocking reads and writes, no runtime and no work. p50.
pub fn socket_floor() -> Result<Duration, String> {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let socket = dir.path().join("echo");
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("echo-child")
        .arg(&socket)
        .spawn()
        .map_err(|e| format!("cannot start the echo child: {e}"))?;
    let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut msg = [7u8; 64];
    let mut samples = Vec::with_capacity(FLOOR_TRIPS);
    for i in 0..FLOOR_TRIPS + FLOOR_TRIPS / 10 {
        let started = Instant::now();
        stream.write_all(&msg).map_err(|e| e.to_string())?;
        stream.read_exact(&mut msg).map_err(|e| e.to_string())?;
        if i >= FLOOR_TRIPS / 10 {
            samples.push(started.elapsed());
        }
    }
    drop(stream);
    child.wait().map_err(|e| e.to_string())?;
    Ok(percentile(&samples, 50.0))
}

/// The echo child of [`socket_floor`]: echoes 64-byte messages until the
/// bench closes the socket.
pub fn echo_child(socket: &Path) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect to the bench");
    let mut msg = [0u8; 64];
    while stream.read_exact(&mut msg).is_ok() {
        if stream.write_all(&msg).is_err() {
            break;
        }
    }
}
