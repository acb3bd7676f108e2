//! Row 4, density: resident memory of 1,000 and 10,000 idle teammates, and
//! wake-ups per idle teammate per second.
//!
//! Each count runs in a child process (this bench binary, re-executed with
//! `density-child <n>`) so the figure is not blurred by earlier rows: it
//! spawns `n` `counter` teammates through the real in-process backend (each
//! its own `Store`, suspended in `mailbox.recv`), waits for all their idle
//! notifications, reads `VmRSS` before and after, then watches the idle
//! team for [`WINDOW`]: wake-ups are the mailbox's `recv` returns, and the
//! context switches of every thread of the process show any timer left.
//!
//! The teammates run on the allocator `swarm-host run` chooses for an
//! in-process team of that size: the child builds its sandbox with
//! `Sandbox::for_in_process_team`, the call the CLI makes, so 1,000
//! teammates run on the on-demand allocator and 10,000 on the pooling
//! allocator with one slot per teammate (from
//! `sandbox::POOLING_FROM_TEAMMATES` teammates on). The on-demand allocator
//! maps about 7 regions per teammate (memory reservation, copy-on-write
//! image, fiber stack and guard, ...), so 10,000 of them exceed the kernel's
//! default `vm.max_map_count` (65,530); the pool reserves memories, tables
//! and stacks in one mapping each. The child prints the allocator and the
//! mappings it holds per teammate. A child that cannot spawn a teammate
//! exits with the error (a panic ends the process; it never hangs the
//! bench).
//!
//! Floors in the same run: the resident memory of one idle process
//! (`sleep`, the least a process per teammate costs) and no wake-ups at all.
//! The design replaced: the polls of idle file-inbox teammates.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_host::backend::{InProcess, TeammateBackend};
use swarm_host::sandbox::{Limits, ReadScope, Sandbox, Workspace};

use crate::common;
use crate::file_inbox::{FileMailbox, Poller};
use crate::stats::{Line, ratio};

/// How long an idle team is watched.
const WINDOW: Duration = Duration::from_secs(3);
/// Idle file-inbox teammates watched for the wake-up baseline.
const FILE_IDLE: usize = 100;

/// What one child reports.
struct Child {
    n: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    recv_returns: u64,
    context_switches: u64,
    secs: f64,
    mappings: u64,
    /// Pool slots, 0 on the on-demand allocator.
    pool_slots: u64,
}

/// Runs the row.
pub fn run() -> Vec<Line> {
    let process_kib = idle_process_rss_kib();
    let file_wakeups = file_idle_wakeups();
    let mut lines = Vec::new();
    for n in [1_000, 10_000] {
        let child = match child(n) {
            Ok(c) => c,
            Err(e) => {
                lines.push(Line::new("4 density", format!("{n} idle teammates"), "FAILED", e));
                continue;
            }
        };
        let grown = child.rss_after_kib.saturating_sub(child.rss_before_kib);
        let per = grown as f64 / child.n as f64;
        let allocator = match child.pool_slots {
            0 => "on-demand allocator".to_string(),
            slots => format!("pooling allocator, {slots} slots"),
        };
        let mut line = Line::new(
            "4 density",
            format!("{n} idle teammates ({allocator}, as `swarm-host run` chooses), resident memory (per teammate)"),
            format!("{:.1} MiB ({per:.0} KiB)", grown as f64 / 1024.0),
            format!("{} of an idle process ({process_kib} KiB)", ratio(per, process_kib as f64)),
        );
        if n == 10_000 {
            line = line.target("≤ 2 GiB", grown <= 2 * 1024 * 1024);
        }
        lines.push(line);
        let wakeups = child.recv_returns as f64 / child.n as f64 / child.secs;
        lines.push(
            Line::new(
                "4 density",
                format!("{n} idle teammates, wake-ups per teammate per second"),
                format!("{wakeups:.4}"),
                "floor: 0",
            )
            .replaced(format!("{} of file inbox ({file_wakeups:.2}/s)", ratio(wakeups, file_wakeups)))
            .target("0", wakeups == 0.0),
        );
        lines.push(Line::new(
            "4 density",
            format!("{n} idle teammates, thread wake-ups of the whole process per second"),
            format!("{:.0}", child.context_switches as f64 / child.secs),
            "",
        ));
        lines.push(Line::new(
            "4 density",
            format!("{n} idle teammates, memory mappings of the process (per teammate)"),
            format!("{} ({:.2})", child.mappings, child.mappings as f64 / child.n as f64),
            "vm.max_map_count default: 65530",
        ));
    }
    lines.push(
        Line::new(
            "4 density",
            format!("the design replaced: {FILE_IDLE} idle file-inbox teammates, wake-ups per teammate per second"),
            format!("{file_wakeups:.2}"),
            "",
        )
        .replaced("1×"),
    );
    lines
}

fn child(n: usize) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["density-child", &n.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last: Vec<_> = err.lines().rev().take(3).collect();
        return Err(format!("child failed ({}): {}", out.status, last.join(" / ")));
    };
    let f: Vec<f64> = line.split_whitespace().map(|v| v.parse().expect("number")).collect();
    Ok(Child {
        n: f[0] as usize,
        rss_before_kib: f[1] as u64,
        rss_after_kib: f[2] as u64,
        recv_returns: f[3] as u64,
        context_switches: f[4] as u64,
        secs: f[5],
        mappings: f[6] as u64,
        pool_slots: f[7] as u64,
    })
}

/// The child: spawns `n` idle teammates and prints one `RESULT` line.
pub fn child_main(n: usize) {
    // A failed spawn or a missed wait panics; end the process there and
    // then (with the default hook's message) instead of unwinding into the
    // drop of a runtime that still holds thousands of teammates.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    // The allocator `swarm-host run` chooses for `n` in-process teammates.
    let sandbox = Sandbox::new().for_in_process_team(std::iter::repeat_n(&limits, n));
    let pool_slots = sandbox.pooling().unwrap_or(0);
    let plugin = sandbox.load(Path::new(swarm_tests::COUNTER), &limits).expect("load counter");
    let ids = common::ids("counter", n);
    let (team, mut events) = common::team(&ids, 16, Vec::new());
    let dir = Workspace::open_root(root.path()).expect("open root");
    let backend =
        Arc::new(InProcess::new(team.clone(), dir, ReadScope::Owned, HashMap::from([("counter".into(), plugin)])));
    // Warm the runtime, allocator and pre-instantiated component first.
    let before = rt.block_on(async {
        tokio::task::yield_now().await;
        rss_kib()
    });
    let handles = rt.block_on(async {
        let mut handles = Vec::new();
        for id in &ids {
            handles.push(backend.spawn(common::launch(id)).await.expect("spawn"));
        }
        common::idle(&mut events, n).await;
        handles
    });
    let after = rss_kib();
    let (recv0, cs0, started) = (team.mailbox.recv_returns(), context_switches(), Instant::now());
    std::thread::sleep(WINDOW);
    let (recv1, cs1, secs) = (team.mailbox.recv_returns(), context_switches(), started.elapsed().as_secs_f64());
    let mappings = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps").lines().count();
    println!(
        "RESULT {n} {before} {after} {} {} {secs} {mappings} {pool_slots}",
        recv1 - recv0,
        cs1.saturating_sub(cs0)
    );
    drop(handles);
    // Tearing 10,000 stores down is not measured; leave at once.
    std::process::exit(0);
}

/// `VmRSS` of this process, KiB.
fn rss_kib() -> u64 {
    status_field(&std::fs::read_to_string("/proc/self/status").expect("/proc/self/status"), "VmRSS:")
}

fn status_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in status"))
}

/// Voluntary plus involuntary context switches of every thread: how often
/// any thread of the process ran again.
fn context_switches() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        if let Ok(status) = std::fs::read_to_string(task.path().join("status")) {
            total += status_field(&status, "voluntary_ctxt_switches:");
            total += status_field(&status, "nonvoluntary_ctxt_switches:");
        }
    }
    total
}

/// Resident memory of one idle process: `sleep`, the least a process per
/// teammate can cost.
fn idle_process_rss_kib() -> u64 {
    let mut child = Command::new("sleep").arg("30").spawn().expect("run sleep");
    let status_path = format!("/proc/{}/status", child.id());
    // Wait (bounded) until the exec has happened and `sleep` is asleep in
    // its nanosleep (state S): started, its image mapped and touched.
    let started = Instant::now();
    let kib = loop {
        let status = std::fs::read_to_string(&status_path).unwrap_or_default();
        if status.contains("Name:\tsleep") && status.contains("State:\tS") && status.contains("VmRSS:") {
            break status_field(&status, "VmRSS:");
        }
        assert!(started.elapsed() < common::WAIT, "sleep started in time");
        std::thread::yield_now();
    };
    child.kill().expect("kill sleep");
    child.wait().expect("reap sleep");
    kib
}

/// Polls per idle file-inbox teammate per second.
fn file_idle_wakeups() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = FileMailbox::new(dir.path());
    let pollers: Vec<_> =
        common::ids("mate", FILE_IDLE).into_iter().map(|id| Poller::start(mailbox.clone(), id)).collect();
    let polls = |ps: &[Poller]| ps.iter().map(|p| p.polls.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>();
    let (p0, started) = (polls(&pollers), Instant::now());
    std::thread::sleep(WINDOW);
    let (p1, secs) = (polls(&pollers), started.elapsed().as_secs_f64());
    for p in pollers {
        p.stop();
    }
    (p1 - p0) as f64 / FILE_IDLE as f64 / secs
}
