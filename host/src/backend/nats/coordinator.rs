//! The coordinator's side of a team whose tasks run on NATS workers: a
//! [`TeammateBackend`] whose "teammates" are stand-ins in this process,
//! one per planned teammate. A stand-in claims from the local task list as
//! a teammate would (so dependencies, ownership, `max_attempts`, the
//! journal, timeouts and `resume` are the local run's own code), publishes
//! each claimed task to the queue, waits on the bucket for its committed
//! (or dead) record, checks and applies the task's writes, and completes
//! or fails the task locally. While a task is out, the remote teammate's
//! host calls on `swarm.<team>.call.<teammate>` are answered here by
//! [`link::serve_call`] (model calls with this process's keys), and its
//! events are routed to the run as a local teammate's are.
//!
//! Writes are never applied by workers: a task's writes come back as a
//! blob, and every path is checked first exactly as a local write is
//! ([`Workspace::write`] under the run's policy, as the task's holder); one
//! refused path fails the task naming it, and nothing of it is applied.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::job::{CallEnvelope, EventEnvelope, JOB_VERSION, Job, JobOutcome, JobResult, queue_key};
use super::tree;
use crate::backend::{TeammateBackend, link};
use crate::cluster::fence::{self, State};
use crate::cluster::queue::settled;
use crate::cluster::worker::{EXECUTED, FENCED};
use crate::cluster::{Assignment, Cluster};
use crate::llm::SharedModelPort;
use crate::mailbox::Incoming;
use crate::model::{ScaleOut, TeammateMessage};
use crate::protocol::frame::{Call, LaunchConfig, Reply};
use crate::protocol::wire::{WireTaskReport, WorkspaceRules};
use crate::sandbox::workspace::{Holder, Written, clean_path};
use crate::sandbox::{Launch, ReadScope, Workspace};
use crate::tasks::{Claimed, TaskReport, TaskSpec};
use crate::team::{Beat, Event, ExitReason, Liveness, Team};

/// After this long with a task out and no worker holding it, the log says so.
pub const WAITING_NOTE: Duration = Duration::from_secs(3);
/// An idle stand-in claims again after this long without a wake-up (a
/// wake-up may race its going idle, as a guest's `recv` may).
const IDLE_WAIT: Duration = Duration::from_secs(2);
/// Backoff after the bucket could not be watched (the server is away).
const WATCH_RETRY: Duration = Duration::from_millis(500);

/// What the stand-ins of a run share.
#[derive(Debug, Clone)]
pub struct NatsSetup {
    /// Plugin digest per teammate group (uploaded).
    pub plugins: HashMap<String, String>,
    /// The workspace snapshot's digest (uploaded).
    pub snapshot: String,
    /// Read scope.
    pub read: ReadScope,
    /// The policy's wire form (`protected` stays here).
    pub rules: WorkspaceRules,
    /// The frame cap the team's limits need (the socket's sizing).
    pub frame_bytes: usize,
}

#[derive(Debug, Default)]
struct Counts {
    executions: AtomicU64,
    committed: AtomicU64,
    fenced: AtomicU64,
    dead: AtomicU64,
    picked_up: AtomicU64,
    workers: Mutex<BTreeSet<String>>,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The task a stand-in has out.
#[derive(Debug, Clone)]
struct Out {
    key: String,
    group: String,
}

/// State shared by the stand-ins and the call, event and count servers.
#[derive(Debug)]
struct Shared {
    team: Arc<Team>,
    cluster: Cluster,
    setup: NatsSetup,
    models: Option<SharedModelPort>,
    /// The coordinator's workspace: where checked writes are applied.
    workspace: Arc<Workspace>,
    out: Mutex<HashMap<String, Out>>,
    /// Messages an idle stand-in took from its mailbox, for its next remote
    /// teammate's `recv` (nothing read is dropped).
    kept: Mutex<HashMap<String, VecDeque<Incoming>>>,
    counts: Counts,
}

/// Runs a team's tasks on NATS workers.
pub struct Nats {
    shared: Arc<Shared>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    _dead: crate::cluster::dead::DeadLetters,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats").field("cluster", &self.shared.cluster).finish_non_exhaustive()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

/// A stand-in.
#[derive(Debug, Clone)]
pub struct Handle {
    id: String,
    /// `Some(reason)`: stop. Graceful unless `kill` is set.
    stop: Arc<watch::Sender<Option<(String, bool)>>>,
    exit: watch::Receiver<Option<ExitReason>>,
}

impl Nats {
    /// Serves `team`'s remote teammates on `cluster` (subscribed when this
    /// returns, so no call or count of theirs is missed), applying checked
    /// writes through `workspace`; model calls go to `models`.
    pub async fn start(
        team: Arc<Team>,
        cluster: Cluster,
        setup: NatsSetup,
        workspace: Arc<Workspace>,
        models: Option<SharedModelPort>,
    ) -> Result<Self, crate::cluster::ClusterError> {
        let js = |doing: &str, e: &dyn std::fmt::Display| crate::cluster::ClusterError::js(doing, e);
        let client = cluster.client();
        let names = cluster.names().clone();
        let calls = client.subscribe(names.all_calls()).await.map_err(|e| js("subscribe to the calls", &e))?;
        let events = client.subscribe(names.all_events()).await.map_err(|e| js("subscribe to the events", &e))?;
        let executed =
            client.subscribe(names.worker_events(EXECUTED)).await.map_err(|e| js("subscribe to counts", &e))?;
        let fenced = client.subscribe(names.worker_events(FENCED)).await.map_err(|e| js("subscribe to counts", &e))?;
        let dead = cluster.dead_letters().await?;
        let shared = Arc::new(Shared {
            team,
            cluster,
            setup,
            models,
            workspace,
            out: Mutex::new(HashMap::new()),
            kept: Mutex::new(HashMap::new()),
            counts: Counts::default(),
        });
        let servers = vec![
            tokio::spawn(serve_calls(shared.clone(), calls)),
            tokio::spawn(serve_events(shared.clone(), events)),
            tokio::spawn(count(shared.clone(), executed, |c| &c.executions)),
            tokio::spawn(count(shared.clone(), fenced, |c| &c.fenced)),
        ];
        Ok(Self { shared, servers, _dead: dead })
    }
}

async fn count(shared: Arc<Shared>, mut sub: async_nats::Subscriber, counter: fn(&Counts) -> &AtomicU64) {
    while sub.next().await.is_some() {
        bump(counter(&shared.counts));
    }
}

/// The teammate a call or event subject names (its last token).
fn member_of(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
}

impl Shared {
    /// The group of `teammate` if `key` is the task it has out.
    fn out_as(&self, teammate: &str, key: &str) -> Option<String> {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.get(teammate).filter(|o| o.key == key).map(|o| o.group.clone())
    }

    fn kept(&self, teammate: &str) -> Option<Incoming> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).get_mut(teammate)?.pop_front()
    }
}

async fn serve_calls(shared: Arc<Shared>, mut calls: async_nats::Subscriber) {
    while let Some(msg) = calls.next().await {
        let Some(reply_to) = msg.reply.clone() else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let teammate = member_of(&msg.subject).to_string();
            let reply = match serde_json::from_slice::<CallEnvelope>(&msg.payload) {
                Err(e) => Reply::Done { error: Some(format!("cannot decode the call: {e}")) },
                Ok(CallEnvelope { key, call }) => match shared.out_as(&teammate, &key) {
                    None => Reply::Done {
                        error: Some(format!("`{teammate}` has no task `{key}` out: a stale worker's call is refused")),
                    },
                    Some(group) => answer(&shared, &teammate, &group, call).await,
                },
            };
            let payload = serde_json::to_vec(&reply).expect("replies serialize");
            if let Err(e) = shared.cluster.client().publish(reply_to, payload.into()).await {
                tracing::warn!(teammate = %teammate, "cannot answer a remote call: {e}");
            }
        });
    }
}

async fn answer(shared: &Shared, teammate: &str, group: &str, call: Call) -> Reply {
    match call {
        // The worker answers these itself: the claim is the assignment,
        // the outcome is its commit.
        Call::Claim | Call::Complete { .. } | Call::Fail { .. } => {
            Reply::Done { error: Some("claim, complete and fail are answered by the worker".into()) }
        }
        call => match (&call, shared.kept(teammate)) {
            (Call::Recv { .. }, Some(kept)) => Reply::Incoming { entry: Some(kept.into()) },
            (_, kept) => {
                if let Some(kept) = kept {
                    shared
                        .kept
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(teammate.to_string())
                        .or_default()
                        .push_front(kept);
                }
                link::serve_call(&shared.team, shared.models.as_deref(), teammate, group, call).await
            }
        },
    }
}

async fn serve_events(shared: Arc<Shared>, mut events: async_nats::Subscriber) {
    while let Some(msg) = events.next().await {
        let teammate = member_of(&msg.subject);
        let Ok(EventEnvelope { key, message }) = serde_json::from_slice::<EventEnvelope>(&msg.payload) else {
            tracing::warn!(teammate = %teammate, "dropping a remote event that does not decode");
            continue;
        };
        if shared.out_as(teammate, &key).is_none() {
            continue;
        }
        let message: TeammateMessage = message.into();
        if message.from() != teammate {
            tracing::warn!(teammate = %teammate, "dropping a remote event sent as `{}`", message.from());
            continue;
        }
        // The stand-in reports the task's end itself, once it is applied.
        if matches!(message, TeammateMessage::TaskCompleted { .. } | TeammateMessage::Error { task_id: Some(_), .. }) {
            continue;
        }
        let _ = shared.team.events.send(Event::Message(message)).await;
    }
}

impl TeammateBackend for Nats {
    type Handle = Handle;

    fn name(&self) -> &'static str {
        "nats"
    }

    fn team(&self) -> &Arc<Team> {
        &self.shared.team
    }

    fn id<'a>(&self, handle: &'a Handle) -> &'a str {
        &handle.id
    }

    async fn spawn(&self, launch: Launch) -> anyhow::Result<Handle> {
        if !self.shared.setup.plugins.contains_key(&launch.group) {
            anyhow::bail!("no plugin uploaded for teammate group `{}`", launch.group);
        }
        let (stop, stop_rx) = watch::channel(None);
        let (exit_tx, exit) = watch::channel(None);
        let handle = Handle { id: launch.id.clone(), stop: Arc::new(stop), exit };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let id = launch.id.clone();
            let reason = stand_in(&shared, &launch, stop_rx).await;
            shared.out.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            crate::backend::publish_exit(&shared.team, id, reason, &exit_tx).await;
        });
        Ok(handle)
    }

    async fn result(&self, handle: &Handle) -> ExitReason {
        crate::backend::wait_exit(&handle.exit).await
    }

    async fn kill(&self, handle: &Handle, why: &str) -> ExitReason {
        self.shared.team.roster.update(&handle.id, |m| m.state = Liveness::Stopping);
        handle.stop.send_replace(Some((why.to_string(), true)));
        self.result(handle).await
    }

    /// No shutdown request through the mailbox: that belongs to the remote
    /// teammate. An idle stand-in ends at once; one with a task out waits
    /// up to `grace` for its result, then ends and its task goes back to
    /// pending (a resumed run picks the result up from the bucket).
    async fn stop(&self, handle: &Handle, _request_id: &str, reason: &str, grace: Duration) -> ExitReason {
        self.shared.team.roster.update(&handle.id, |m| m.state = Liveness::Stopping);
        handle.stop.send_if_modified(|s| {
            let first = s.is_none();
            if first {
                *s = Some((reason.to_string(), false));
            }
            first
        });
        match tokio::time::timeout(grace, self.result(handle)).await {
            Ok(exit) => exit,
            Err(_) => {
                let why = format!("no result within the {} shutdown grace period", humantime::format_duration(grace));
                self.kill(handle, &why).await
            }
        }
    }

    fn scale_out(&self) -> Option<ScaleOut> {
        let c = &self.shared.counts;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (executions, committed) = (load(&c.executions), load(&c.committed));
        Some(ScaleOut {
            workers: c.workers.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect(),
            executions,
            committed,
            duplicates: executions.saturating_sub(committed),
            fenced: load(&c.fenced),
            dead_letters: load(&c.dead),
            picked_up: load(&c.picked_up),
        })
    }
}

type Stop = watch::Receiver<Option<(String, bool)>>;

/// Waits until a stop is asked for; whether it is a kill.
async fn stopped(stop: &mut Stop) -> (String, bool) {
    match stop.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or_default(),
        Err(_) => ("the backend is gone".into(), true),
    }
}

/// One stand-in's life: claim, send out, apply; idle until woken.
async fn stand_in(shared: &Arc<Shared>, launch: &Launch, mut stop: Stop) -> ExitReason {
    let (team, id) = (&shared.team, launch.id.as_str());
    team.roster.beat(id, &Beat::Started);
    loop {
        if let Some((why, kill)) = stop.borrow().clone() {
            return if kill { ExitReason::killed(why) } else { ExitReason::Finished };
        }
        team.roster.beat(id, &Beat::Idle);
        if let Some(claimed) = team.tasks.claim(id, &launch.group) {
            team.roster.beat(id, &Beat::Working { task: claimed.spec.id.clone() });
            if let Err(reason) = send_out(shared, launch, claimed, &mut stop).await {
                return reason;
            }
            team.roster.beat(id, &Beat::TaskCleared);
            continue;
        }
        tokio::select! {
            got = team.mailbox.recv(id, IDLE_WAIT) => match got {
                Some(Incoming::Shutdown { .. }) => return ExitReason::Finished,
                Some(Incoming::TasksAvailable) | None => {}
                Some(other) => shared.kept.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_string()).or_default().push_back(other),
            },
            (why, kill) = stopped(&mut stop) => return if kill { ExitReason::killed(why) } else { ExitReason::Finished },
        }
    }
}

/// Sends `claimed` out and ends the attempt with what comes back. `Err`:
/// the stand-in was stopped meanwhile (the task goes back to pending).
async fn send_out(shared: &Arc<Shared>, launch: &Launch, claimed: Claimed, stop: &mut Stop) -> Result<(), ExitReason> {
    let (team, id) = (&shared.team, launch.id.as_str());
    let spec = claimed.spec.clone();
    // Attempts the task list counts (an interrupted one does not): a
    // resumed run asks for the same key again.
    let counted = team
        .tasks
        .snapshot()
        .iter()
        .find(|t| t.spec.id == spec.id)
        .map_or(claimed.attempt, |t| t.attempts.iter().filter(|a| !a.interrupted).count() as u32);
    let key = queue_key(&spec.id, counted);
    let job = Job {
        v: JOB_VERSION,
        launch: LaunchConfig {
            team: team.name.clone(),
            id: id.to_string(),
            group: launch.group.clone(),
            color: launch.color.clone(),
            // The worker loads the plugin by its digest, into its own dir.
            plugin: std::path::PathBuf::new(),
            limits: (&launch.limits).into(),
            root: std::path::PathBuf::new(),
            read: shared.setup.read.into(),
            cache_dir: None,
            heartbeat_ms: 0,
            workspace: shared.setup.rules.clone(),
            frame_bytes: shared.setup.frame_bytes,
        },
        task: spec.clone().into(),
        attempt: claimed.attempt,
        dependencies: claimed.dependencies.iter().cloned().map(Into::into).collect(),
        snapshot: shared.setup.snapshot.clone(),
    };
    let plugin = shared.setup.plugins.get(&launch.group).cloned();
    let a = Assignment::new(&key, &launch.group, plugin, &spec.subject)
        .with_run(serde_json::to_value(&job).expect("jobs serialize"));
    shared
        .out
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.to_string(), Out { key: key.clone(), group: launch.group.clone() });
    let record = tokio::select! {
        r = committed(shared, &a) => r,
        (why, kill) = stopped(stop) => {
            // A graceful stop waits for the result within the grace period
            // (the kill after it ends this wait).
            if kill {
                return Err(ExitReason::killed(why));
            }
            tokio::select! {
                r = committed(shared, &a) => r,
                (why, _) = async { let _ = stop.wait_for(|s| s.as_ref().is_some_and(|(_, k)| *k)).await; stopped(stop).await } => return Err(ExitReason::killed(why)),
            }
        }
    };
    shared.out.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    let ended = match record {
        State::Done { worker, output, .. } => {
            shared.counts.workers.lock().unwrap_or_else(|e| e.into_inner()).insert(worker);
            apply(shared, id, &spec, &output).await
        }
        State::Dead { deliveries, error } => {
            bump(&shared.counts.dead);
            let why = error.map(|e| format!(": last error: {e}")).unwrap_or_default();
            Err((format!("no worker could run it: out of deliveries after {deliveries}{why}"), None))
        }
        other => Err((format!("unexpected task record {other:?}"), None)),
    };
    let message = match ended {
        Ok(report) => {
            let (summary, findings) = (report.summary.clone(), report.findings.clone());
            match team.complete_for(id, &spec.id, report).await {
                Ok(()) => {
                    TeammateMessage::TaskCompleted { from: id.into(), task_id: spec.id.clone(), summary, findings }
                }
                Err(e) => TeammateMessage::Error { from: id.into(), task_id: Some(spec.id.clone()), message: e },
            }
        }
        Err((reason, limit)) => {
            if let Err(e) = team.tasks.fail_attempt(id, &spec.id, &reason, limit) {
                tracing::warn!(teammate = %id, task = %spec.id, "cannot fail the task: {e}");
            }
            team.tasks.flushed().await;
            TeammateMessage::Error { from: id.into(), task_id: Some(spec.id.clone()), message: reason }
        }
    };
    let _ = team.events.send(Event::Message(message)).await;
    Ok(())
}

/// Publishes `a` (unless its record is settled already: a resumed run
/// picks that up) and waits on the bucket until its record is settled.
async fn committed(shared: &Shared, a: &Assignment) -> State {
    let task = [a.task.clone()];
    let mut published = false;
    let mut noted = false;
    loop {
        if !published {
            match fence::read(&shared.cluster.kv, &a.task).await {
                Ok(Some(v)) if settled(&v.record) => {
                    bump(&shared.counts.picked_up);
                    tracing::info!(task = %a.task, "result picked up from the bucket (committed while no coordinator listened)");
                    return v.record.state;
                }
                Ok(_) => match shared.cluster.publish(a).await {
                    Ok(()) => {
                        published = true;
                        tracing::info!(task = %a.task, "published to the workers");
                    }
                    Err(e) => tracing::warn!(task = %a.task, "cannot publish the task (retrying): {e}"),
                },
                Err(e) => tracing::warn!(task = %a.task, "cannot read the task's record (retrying): {e}"),
            }
            if !published {
                tokio::time::sleep(WATCH_RETRY).await;
                continue;
            }
        }
        let wait = if noted { Duration::from_secs(24 * 3600) } else { WAITING_NOTE };
        match shared.cluster.wait_for(&task, settled, wait).await {
            Ok(Ok(mut records)) => {
                if let Some(r) = records.remove(&a.task) {
                    if matches!(r.state, State::Done { .. }) {
                        bump(&shared.counts.committed);
                    }
                    return r.state;
                }
            }
            Ok(Err(_)) if !noted => {
                noted = true;
                let held = matches!(fence::read(&shared.cluster.kv, &a.task).await, Ok(Some(v)) if matches!(v.record.state, State::Running { .. }));
                if !held {
                    tracing::warn!(task = %a.task, "waiting for workers: no worker has taken the task for {}s (start one with `swarm-host worker --nats URL --team {}`)", WAITING_NOTE.as_secs(), shared.cluster.names().team());
                }
            }
            Ok(Err(_)) => {}
            Err(e) => {
                tracing::warn!(task = %a.task, "cannot watch the bucket (retrying): {e}");
                tokio::time::sleep(WATCH_RETRY).await;
            }
        }
    }
}

/// Checks and applies the writes of a committed result; the task's report,
/// or why it failed (and the limit that ended it).
async fn apply(
    shared: &Arc<Shared>,
    id: &str,
    spec: &TaskSpec,
    output: &str,
) -> Result<TaskReport, (String, Option<crate::model::LimitKind>)> {
    let result = JobResult::decode(output).map_err(|e| (e.to_string(), None))?;
    let files = match &result.writes {
        None => Vec::new(),
        Some(digest) => {
            let blob = shared.cluster.blob(digest).await.map_err(|e| (format!("the task's writes: {e}"), None))?;
            tree::unpack(&blob).map_err(|e| (format!("the task's writes: {e}"), None))?
        }
    };
    if !files.is_empty() {
        let (workspace, spec) = (shared.workspace.clone(), spec.clone());
        tokio::task::spawn_blocking(move || write_checked(&workspace, &spec, &files))
            .await
            .map_err(|e| (format!("applying the writes panicked: {e}"), None))?
            .map_err(|e| (e, None))?;
    }
    match result.outcome {
        JobOutcome::Completed { report } => Ok(checked_findings(&shared.workspace, id, spec, report)),
        JobOutcome::Failed { reason, limit } => Err((reason, limit.map(Into::into))),
    }
}

/// Every path is checked first (as the task's holder, under the run's
/// policy), then written as a local write is; one refusal fails the task
/// naming the path, before anything is written.
fn write_checked(workspace: &Workspace, spec: &TaskSpec, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    let refused = |path: &str, e: &dyn std::fmt::Display| {
        format!("the worker's write to `{}` was refused: {e}", crate::sanitize::line(path))
    };
    let policy = workspace.policy();
    for (path, _) in files {
        let rel = clean_path(path).map_err(|e| refused(path, &e))?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        let checked = if spec.owned_files.contains(&rel) {
            policy.check_write(&rel)
        } else {
            policy.check_create(&rel, Some(&spec.id))
        };
        checked.map_err(|e| refused(path, &e))?;
    }
    let mut owned = spec.owned_files.clone();
    for (path, bytes) in files {
        let holder = Holder { task: Some(&spec.id), owned: &owned };
        match workspace.write(path, bytes, &holder) {
            Ok(Written::Created(rel)) => {
                owned.insert(rel);
            }
            Ok(_) => {}
            Err(e) => return Err(refused(path, &e)),
        }
    }
    Ok(())
}

/// The report with the findings the task could not have read dropped (as
/// the sandbox drops them locally).
fn checked_findings(workspace: &Workspace, id: &str, spec: &TaskSpec, report: WireTaskReport) -> TaskReport {
    let mut report = TaskReport::from(report);
    let holder = Holder { task: Some(&spec.id), owned: &spec.owned_files };
    report.findings.retain_mut(|f| match workspace.check_finding(&f.file, &holder) {
        Ok(file) => {
            f.file = file;
            true
        }
        Err(e) => {
            tracing::warn!(teammate = %id, task = %spec.id, "dropping a remote finding: {e}");
            false
        }
    });
    report
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sandbox::workspace::{Policy, PolicySpec};

    fn spec(owned: &[&str], creates: &[&str]) -> TaskSpec {
        TaskSpec::owning("t", owned, creates)
    }

    fn workspace(root: &std::path::Path, creates: &[&str]) -> Workspace {
        let rules = PolicySpec {
            creates: BTreeMap::from([("t".to_string(), creates.iter().map(|s| s.to_string()).collect())]),
            ..PolicySpec::default()
        };
        let policy = Policy::build(root, ReadScope::Root, &rules).unwrap();
        Workspace::with_policy(Workspace::open_root(root).unwrap(), Arc::new(policy), 1 << 20)
    }

    #[test]
    fn a_returned_write_outside_the_task_is_refused_naming_it_and_nothing_is_applied() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("mine.rs"), "old").unwrap();
        std::fs::write(root.path().join("theirs.rs"), "theirs").unwrap();
        let ws = workspace(root.path(), &["new/*.rs"]);
        let task = spec(&["mine.rs"], &["new/*.rs"]);
        let files = vec![("mine.rs".to_string(), b"new".to_vec()), ("theirs.rs".to_string(), b"stolen".to_vec())];
        let err = write_checked(&ws, &task, &files).unwrap_err();
        assert!(err.contains("`theirs.rs`") && err.contains("not owned"), "{err}");
        assert_eq!(std::fs::read_to_string(root.path().join("mine.rs")).unwrap(), "old", "applied before the check");
        assert_eq!(std::fs::read_to_string(root.path().join("theirs.rs")).unwrap(), "theirs");
        for bad in ["../escape.rs", ".git/config"] {
            let err = write_checked(&ws, &task, &[(bad.to_string(), b"x".to_vec())]).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn owned_and_newly_owned_writes_are_applied() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("mine.rs"), "old").unwrap();
        let ws = workspace(root.path(), &["new/*.rs"]);
        let task = spec(&["mine.rs"], &["new/*.rs"]);
        let files = vec![("mine.rs".to_string(), b"new".to_vec()), ("new/a.rs".to_string(), b"a".to_vec())];
        write_checked(&ws, &task, &files).unwrap();
        assert_eq!(std::fs::read_to_string(root.path().join("mine.rs")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(root.path().join("new/a.rs")).unwrap(), "a");
    }
}
