//! Row 2, mailbox round trip coordinator → teammate → coordinator: the team
//! lead queues `ping from team-lead` in the inbox of a `ping` teammate (a
//! real component, suspended in `mailbox.recv`), which answers with a
//! message to the team lead that arrives on the coordinator's event
//! channel.
//!
//! The floor, measured in the same run and printed first: a bare tokio
//! channel round trip between two tasks on the same 2-worker runtime (the
//! lead task sends a ping on one `mpsc` channel, an echo task answers on
//! another), the least any in-process mailbox built on tokio can cost. The
//! design replaced, as a second ratio: the file-inbox mailbox polled every
//! 500 ms. The Unix-socket transport is measured in `native.rs`, against a
//! bare socket echo (its floor) and the same file inbox.

use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::sandbox::{Limits, Sandbox};

use crate::common;
use crate::file_inbox::{FileMailbox, Poller};
use crate::stats::{Line, dur, percentile, ratio};

const SAMPLES: usize = 20_000;
/// Baseline: pairs measured in parallel, round trips per pair.
const FILE_PAIRS: usize = 8;
const FILE_TRIPS: usize = 4;

/// Runs the row.
pub fn run() -> Vec<Line> {
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let plugin = Sandbox::new().load(Path::new(swarm_tests::PING), &Limits::default()).expect("load ping");
    let samples = rt.block_on(async {
        let ids = common::ids("ping", 1);
        let (team, mut events) = common::team(&ids, 256, Vec::new());
        let guest = common::start(&plugin, "ping-1", &team, root.path()).await;
        common::idle(&mut events, 1).await;
        // The coordinator's side runs on a runtime worker, as in a real run.
        let lead = tokio::spawn(common::ping_round_trips(team.clone(), events, SAMPLES));
        let (samples, mut events) = lead.await.expect("lead task");
        common::stop(&team, &mut events, &ids, vec![guest]).await;
        samples
    });
    let floor = rt.block_on(tokio_round_trips(SAMPLES));
    let file = file_round_trips();
    let file_p50 = percentile(&file, 50.0);
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    let (floor_p50, floor_p99) = (percentile(&floor, 50.0), percentile(&floor, 99.0));
    let vs =
        |d: Duration, f: Duration, p: &str| format!("{} of tokio channel {p}", ratio(d.as_secs_f64(), f.as_secs_f64()));
    let replaced = |d: Duration| format!("{} of file inbox p50", ratio(d.as_secs_f64(), file_p50.as_secs_f64()));
    let mut lines = vec![
        Line::new("2 round trip", "in-process, p50", dur(p50), vs(p50, floor_p50, "p50"))
            .replaced(replaced(p50))
            .target("p50 ≤ 20 µs", p50 <= Duration::from_micros(20)),
        Line::new("2 round trip", "in-process, p99", dur(p99), vs(p99, floor_p99, "p99"))
            .replaced(replaced(p99))
            .target("p99 ≤ 200 µs", p99 <= Duration::from_micros(200)),
        Line::new(
            "2 round trip",
            "floor: bare tokio mpsc round trip between two tasks (2-worker runtime), p50 / p99",
            format!("{} / {}", dur(floor_p50), dur(floor_p99)),
            "1×",
        )
        .replaced(replaced(floor_p50)),
        Line::new(
            "2 round trip",
            "the design replaced: file inbox polled every 500 ms, p50 / p99",
            format!("{} / {}", dur(file_p50), dur(percentile(&file, 99.0))),
            "",
        )
        .replaced("1×"),
    ];
    lines.extend(crate::native::round_trip_lines(file_p50));
    lines
}

/// The floor: `trips` round trips (after a tenth as many untimed) between
/// the calling task and an echo task over two tokio `mpsc` channels, each
/// timed from sending the ping until the answer is received. The calling
/// task is spawned on the runtime, like the coordinator's side of the row.
pub async fn tokio_round_trips(trips: usize) -> Vec<Duration> {
    let (to_echo, mut echo_rx) = tokio::sync::mpsc::channel::<u64>(256);
    let (to_lead, mut lead_rx) = tokio::sync::mpsc::channel::<u64>(256);
    let echo = tokio::spawn(async move {
        while let Some(n) = echo_rx.recv().await {
            if to_lead.send(n).await.is_err() {
                break;
            }
        }
    });
    let lead = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(trips);
        for i in 0..trips + trips / 10 {
            let started = Instant::now();
            to_echo.send(i as u64).await.expect("echo task alive");
            let got = tokio::time::timeout(common::WAIT, lead_rx.recv()).await.expect("echo in time");
            assert_eq!(got, Some(i as u64));
            if i >= trips / 10 {
                samples.push(started.elapsed());
            }
        }
        samples
    });
    let samples = lead.await.expect("lead task");
    echo.await.expect("echo task");
    samples
}

/// Round trips through the file-inbox design: `FILE_PAIRS` lead/teammate
/// pairs at once, each doing `FILE_TRIPS` trips, the lead polling its own
/// inbox every 500 ms like the teammate.
fn file_round_trips() -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = FileMailbox::new(dir.path());
    let leads: Vec<_> = (0..FILE_PAIRS)
        .map(|pair| {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                let (me, peer) = (format!("lead-{pair}"), format!("mate-{pair}"));
                let poller = Poller::start(mailbox.clone(), peer.clone());
                let mut samples = Vec::new();
                for _ in 0..FILE_TRIPS {
                    let started = Instant::now();
                    mailbox.send(&peer, &me, "ping");
                    loop {
                        std::thread::sleep(crate::file_inbox::POLL);
                        if !mailbox.take_unread(&me).is_empty() {
                            break;
                        }
                        assert!(started.elapsed() < common::WAIT, "file-inbox pong in time");
                    }
                    samples.push(started.elapsed());
                }
                poller.stop();
                samples
            })
        })
        .collect();
    leads.into_iter().flat_map(|t| t.join().expect("lead thread")).collect()
}
