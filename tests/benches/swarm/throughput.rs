//! Row 3, throughput: one coordinator, 64 `ping` teammates. The team lead
//! keeps `WINDOW` pings outstanding per teammate and sends the next one as
//! each pong arrives; the figure is messages through the coordinator per
//! second, two per completed exchange (a message to a teammate and its
//! answer back), printed with the exchanges.
//!
//! The floor, measured in the same run and printed first: the same exchange
//! between bare tokio tasks (a lead task and 64 echo tasks, one `mpsc`
//! channel into each echo task and one shared channel back, the same window)
//! on the same 2-worker runtime. The design replaced, as a second ratio: the
//! same exchange over the file inbox polled every 500 ms.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_host::mailbox::{Incoming, TEAM_LEAD};
use swarm_host::model::TeammateMessage;
use swarm_host::sandbox::{Limits, Sandbox};
use swarm_host::team::Event;

use crate::common;
use crate::file_inbox::{FileMailbox, POLL, Poller};
use crate::stats::{Line, ratio};

const TEAMMATES: usize = 64;
/// Pings outstanding per teammate.
const WINDOW: usize = 32;
/// Exchanges per teammate.
const PER_TEAMMATE: usize = 4_000;
/// How long the baseline runs.
const FILE_RUN: Duration = Duration::from_secs(3);

fn ping() -> Incoming {
    Incoming::Message { sender: TEAM_LEAD.into(), body: "ping from team-lead".into(), summary: None }
}

/// Runs the row.
pub fn run() -> Vec<Line> {
    let rt = common::runtime(2);
    let root = tempfile::tempdir().unwrap();
    let plugin = Sandbox::new().load(Path::new(swarm_tests::PING), &Limits::default()).expect("load ping");
    let (exchanges, took) = rt.block_on(async {
        let ids = common::ids("ping", TEAMMATES);
        let (team, mut events) = common::team(&ids, WINDOW * 2, Vec::new());
        let mut guests = Vec::new();
        for id in &ids {
            guests.push(common::start(&plugin, id, &team, root.path()).await);
        }
        common::idle(&mut events, TEAMMATES).await;
        let lead = tokio::spawn({
            let (team, ids) = (team.clone(), ids.clone());
            async move {
                let started = Instant::now();
                let mut sent: HashMap<String, usize> = HashMap::new();
                for id in &ids {
                    for _ in 0..WINDOW {
                        team.mailbox.send(id, ping()).expect("send ping");
                    }
                    sent.insert(id.clone(), WINDOW);
                }
                let total = TEAMMATES * PER_TEAMMATE;
                let mut answered = 0;
                while answered < total {
                    let from = common::next(&mut events, |ev| match ev {
                        Event::Message(TeammateMessage::Message { from, .. }) => Some(from.clone()),
                        _ => None,
                    })
                    .await;
                    answered += 1;
                    let n = sent.get_mut(&from).expect("pong from a teammate");
                    if *n < PER_TEAMMATE {
                        *n += 1;
                        team.mailbox.send(&from, ping()).expect("send ping");
                    }
                }
                (answered, started.elapsed(), events)
            }
        });
        let (answered, took, mut events) = lead.await.expect("lead task");
        common::stop(&team, &mut events, &ids, guests).await;
        (answered, took)
    });
    let rate = exchanges as f64 / took.as_secs_f64();
    let floor = rt.block_on(tokio_throughput());
    let file_rate = file_throughput();
    vec![
        Line::new(
            "3 throughput",
            format!("in-process, {TEAMMATES} teammates, {WINDOW} in flight each"),
            format!("{:.0} messages/s ({rate:.0} exchanges/s)", 2.0 * rate),
            format!("{} of tokio channels", ratio(rate, floor)),
        )
        .replaced(format!("{} of file inbox", ratio(rate, file_rate)))
        // Each exchange is two messages through the coordinator: the
        // lead's ping and the teammate's answer.
        .target("≥ 500,000 messages/s", 2.0 * rate >= 500_000.0),
        Line::new(
            "3 throughput",
            format!("floor: bare tokio mpsc between a lead task and {TEAMMATES} echo tasks, {WINDOW} in flight each"),
            format!("{:.0} messages/s ({floor:.0} exchanges/s)", 2.0 * floor),
            "1×",
        )
        .replaced(format!("{} of file inbox", ratio(floor, file_rate))),
        Line::new(
            "3 throughput",
            format!(
                "the design replaced: file inbox polled every 500 ms, {TEAMMATES} teammates, {WINDOW} in flight each"
            ),
            format!("{:.0} messages/s ({file_rate:.0} exchanges/s)", 2.0 * file_rate),
            "",
        )
        .replaced("1×"),
    ]
}

/// The floor: exchanges per second between bare tokio tasks, the row's
/// shape (`TEAMMATES` echo tasks, `WINDOW` outstanding each,
/// `PER_TEAMMATE` exchanges each); the lead runs on its own spawned task.
async fn tokio_throughput() -> f64 {
    let (to_lead, mut lead_rx) = tokio::sync::mpsc::channel::<usize>(TEAMMATES * WINDOW);
    let mut echoes = Vec::new();
    let mut inboxes = Vec::new();
    for i in 0..TEAMMATES {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(WINDOW * 2);
        let to_lead = to_lead.clone();
        inboxes.push(tx);
        echoes.push(tokio::spawn(async move {
            while rx.recv().await.is_some() {
                if to_lead.send(i).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(to_lead);
    let lead = tokio::spawn(async move {
        let started = Instant::now();
        let mut sent = vec![WINDOW; TEAMMATES];
        for inbox in &inboxes {
            for n in 0..WINDOW {
                inbox.send(n as u64).await.expect("echo task alive");
            }
        }
        let total = TEAMMATES * PER_TEAMMATE;
        let mut answered = 0;
        while answered < total {
            let from = tokio::time::timeout(common::WAIT, lead_rx.recv())
                .await
                .expect("answer in time")
                .expect("echo tasks alive");
            answered += 1;
            if sent[from] < PER_TEAMMATE {
                sent[from] += 1;
                inboxes[from].send(sent[from] as u64).await.expect("echo task alive");
            }
        }
        (answered, started.elapsed())
        // Dropping the inboxes ends the echo tasks.
    });
    let (answered, took) = lead.await.expect("lead task");
    for echo in echoes {
        echo.await.expect("echo task");
    }
    answered as f64 / took.as_secs_f64()
}

/// Exchanges per second over the file-inbox design, same shape: 64 polling
/// teammates, the lead polling its inbox every 500 ms and refilling each
/// teammate's window.
fn file_throughput() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = FileMailbox::new(dir.path());
    let ids = common::ids("mate", TEAMMATES);
    let pollers: Vec<_> = ids.iter().map(|id| Poller::start(mailbox.clone(), id.clone())).collect();
    let started = Instant::now();
    for id in &ids {
        for _ in 0..WINDOW {
            mailbox.send(id, TEAM_LEAD, "ping");
        }
    }
    let mut answered = 0usize;
    while started.elapsed() < FILE_RUN {
        std::thread::sleep(POLL);
        for (from, _) in mailbox.take_unread(TEAM_LEAD) {
            answered += 1;
            mailbox.send(&from, TEAM_LEAD, "ping");
        }
    }
    let rate = answered as f64 / started.elapsed().as_secs_f64();
    for p in pollers {
        p.stop();
    }
    rate
}
