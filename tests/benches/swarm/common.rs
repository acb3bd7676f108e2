//! Building blocks the rows share: a runtime shaped like the CLI's, a team
//! context, one teammate started on its own task, and event waits with
//! timeouts (never sleep-and-hope).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use swarm_host::mailbox::{Incoming, Mailbox, TEAM_LEAD};
use swarm_host::model::TeammateMessage;
use swarm_host::sandbox::{Launch, Limits, Plugin, ReadScope, Workspace};
use swarm_host::tasks::{TaskList, TaskSpec};
use swarm_host::team::{Event, ExitReason, Roster, Team};
use tokio::sync::mpsc;

/// How long any single wait on the team may take before the bench fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A multi-threaded runtime with `workers` worker threads (the CLI uses one
/// per core; this machine class has 2).
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("tokio runtime")
}

/// A team of `ids` (inbox bound `inbox_len`) with `tasks`.
pub fn team(ids: &[String], inbox_len: usize, tasks: Vec<TaskSpec>) -> (Arc<Team>, mpsc::Receiver<Event>) {
    let mailbox = Mailbox::new(ids.iter().map(|id| (id.as_str(), inbox_len)));
    let roster = Roster::default();
    for id in ids {
        roster.add(id, group_of(id), "blue");
    }
    Team::new("bench", mailbox, TaskList::new(tasks), roster)
}

/// `ping` for `ping-12`.
pub fn group_of(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(g, _)| g)
}

/// `<group>-1` .. `<group>-n`.
pub fn ids(group: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{group}-{i}")).collect()
}

/// Messages one bench teammate may send to the team lead in a run. A real
/// run caps them at `inbox_len` (the lead keeps every one for the report);
/// the round-trip and throughput rows send tens of thousands, which the
/// bench consumes as they arrive.
pub const LEAD_MESSAGES: u32 = 1_000_000;

/// What a teammate is started with: default limits, but room for
/// [`LEAD_MESSAGES`] messages to the team lead.
pub fn launch(id: &str) -> Launch {
    let limits = Limits { inbox_len: LEAD_MESSAGES, ..Limits::default() };
    Launch { id: id.into(), group: group_of(id).into(), color: "blue".into(), limits }
}

/// A workspace over `root`, as the in-process backend gives each teammate.
pub fn workspace(root: &Path) -> Arc<Workspace> {
    let dir = Workspace::open_root(root).expect("open the workspace root");
    Arc::new(Workspace::new(dir, ReadScope::Owned, Limits::default().file_bytes()))
}

/// A task anyone may claim.
pub fn task(id: &str, description: &str) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        subject: id.into(),
        description: description.into(),
        owned_files: Default::default(),
        owner: None,
        blocked_by: Vec::new(),
        deadline: None,
        max_attempts: 1,
        creates: Vec::new(),
    }
}

/// Instantiates `plugin` as `id` and runs it on its own task.
pub async fn start(plugin: &Plugin, id: &str, team: &Arc<Team>, root: &Path) -> tokio::task::JoinHandle<ExitReason> {
    let instance = plugin.instantiate(&launch(id), team.clone(), workspace(root)).await.expect("instantiate");
    tokio::spawn(instance.run())
}

/// Waits for the next event that `pick` maps to `Some`, skipping others.
pub async fn next<T>(events: &mut mpsc::Receiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let wait = async {
        loop {
            let ev = events.recv().await.expect("the team's event channel closed");
            if let Some(t) = pick(&ev) {
                return t;
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.expect("the event arrived in time")
}

/// The team lead's side of a round-trip row: `trips` timed pings to
/// `ping-1` (after a tenth as many untimed, to warm up), each timed from
/// queuing the ping until its pong is on the event channel. Owns the
/// receiver so it can run as its own task, and hands it back.
pub async fn ping_round_trips(
    team: Arc<Team>,
    mut events: mpsc::Receiver<Event>,
    trips: usize,
) -> (Vec<Duration>, mpsc::Receiver<Event>) {
    let mut samples = Vec::with_capacity(trips);
    for i in 0..trips + trips / 10 {
        let ping = Incoming::Message { sender: TEAM_LEAD.into(), body: "ping from team-lead".into(), summary: None };
        let started = std::time::Instant::now();
        team.mailbox.send("ping-1", ping).expect("send ping");
        next(&mut events, |ev| {
            matches!(ev, Event::Message(TeammateMessage::Message { body, .. }) if body == "pong from ping-1")
                .then_some(())
        })
        .await;
        if i >= trips / 10 {
            samples.push(started.elapsed());
        }
    }
    (samples, events)
}

/// Waits until `n` idle notifications arrived.
pub async fn idle(events: &mut mpsc::Receiver<Event>, n: usize) {
    for _ in 0..n {
        next(events, |ev| matches!(ev, Event::Message(TeammateMessage::IdleNotification { .. })).then_some(())).await;
    }
}

/// Asks every teammate in `ids` to shut down and waits for them to end,
/// draining their events meanwhile (the channel is bounded: a full one
/// would hold up their shutdown responses).
pub async fn stop(
    team: &Team,
    events: &mut mpsc::Receiver<Event>,
    ids: &[String],
    guests: Vec<tokio::task::JoinHandle<ExitReason>>,
) {
    for id in ids {
        let request = Incoming::Shutdown { request_id: format!("stop-{id}"), reason: "bench done".into() };
        team.mailbox.send(id, request).expect("shutdown request queued");
    }
    let mut all = tokio::spawn(async move {
        let mut exits = Vec::new();
        for guest in guests {
            exits.push(guest.await.expect("guest task"));
        }
        exits
    });
    let exits = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                exits = &mut all => return exits.expect("waiter task"),
                _ = events.recv() => {}
            }
        }
    })
    .await
    .expect("teammates exit in time");
    for exit in exits {
        assert!(exit.is_clean(), "teammate ended badly: {exit}");
    }
}
