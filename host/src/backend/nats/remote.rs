//! A worker's side of one task: runs the teammate's real component in the
//! same sandbox as a local teammate, against a private copy of the
//! workspace snapshot with its writes captured in an overlay, through a
//! [`TeamPort`] of its own ([`JobPort`]):
//!
//! - `claim` hands out exactly the assigned task, once;
//! - `complete` and `fail` record the outcome, which the worker commits
//!   by the queue's fenced compare-and-set (never applied here);
//! - mailbox, roster and model calls go to the coordinator by NATS
//!   request/reply on `swarm.<team>.call.<teammate>`, as the socket's
//!   [`Call`]s, answered there by the socket's own code
//!   (`link::serve_call`): keys stay in the coordinator's process;
//! - events go to `swarm.<team>.evt.msg.<teammate>`.
//!
//! Once the task is over, the guest's next wait gets a shutdown request
//! (it ends as after a local run); a guest that keeps running gets
//! [`DONE_GRACE`], then it is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::link;
use crate::cluster::blobs::MAX_BLOB_BYTES;
use crate::cluster::{Assignment, Cluster};
use crate::llm::{BoxFuture, LlmError, ModelCall, ModelPort, ModelResponse};
use crate::mailbox::{Incoming, SendError};
use crate::model::TeammateMessage;
use crate::port::{PortError, PortFuture, SharedPort, TeamPort};
use crate::protocol::frame::{Call, Reply};
use crate::sandbox::workspace::{Policy, PolicySpec};
use crate::sandbox::{Launch, Limits, Sandbox, Workspace};
use crate::tasks::{Claimed, TaskReport};
use crate::team::{Beat, ExitReason};

use super::job::{CallEnvelope, DONE_REQUEST, EventEnvelope, JOB_VERSION, Job, JobOutcome, JobResult};
use super::tree;

/// How long a guest may run on once its task is over.
pub const DONE_GRACE: Duration = Duration::from_secs(5);
/// Added to a `recv`'s own wait for the reply to arrive.
const CALL_SLACK: Duration = Duration::from_secs(30);
/// Longest wait for the answer to a model call (the coordinator's own
/// retries and timeouts end it first).
const MODEL_CALL_WAIT: Duration = Duration::from_secs(30 * 60);

/// What a worker process keeps between tasks.
#[derive(Debug)]
pub struct WorkerHost {
    cluster: Cluster,
    sandbox: Arc<Sandbox>,
    dir: PathBuf,
    router: Arc<ModelRouter>,
    /// Held while a snapshot is fetched and unpacked (one at a time).
    trees: tokio::sync::Mutex<()>,
}

/// Routes the model calls of the teammates running here to their task's port.
#[derive(Debug, Default)]
struct ModelRouter {
    ports: Mutex<HashMap<String, Arc<JobPort>>>,
}

impl ModelPort for ModelRouter {
    fn complete(&self, call: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>> {
        let port = self.ports.lock().unwrap_or_else(|e| e.into_inner()).get(&call.teammate).cloned();
        Box::pin(async move {
            let Some(port) = port else {
                return Err(LlmError::Provider(format!("no task of `{}` runs on this worker", call.teammate)));
            };
            link::model_answer(port.call(Call::Model { request: Box::new(call.into()) }, MODEL_CALL_WAIT).await)
        })
    }
}

impl WorkerHost {
    /// A worker of `cluster`'s team keeping plugins, snapshots and overlays
    /// under `dir`, compiled plugins in `cache_dir`.
    pub fn new(cluster: Cluster, dir: PathBuf, cache_dir: Option<PathBuf>) -> std::io::Result<Self> {
        for sub in ["plugins", "trees", "overlays"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let router = Arc::new(ModelRouter::default());
        let sandbox = match cache_dir {
            Some(d) => Sandbox::with_cache(d),
            None => Sandbox::new(),
        }
        .with_models(router.clone());
        let sandbox = Arc::new(sandbox);
        Ok(Self { cluster, sandbox, dir, router, trees: tokio::sync::Mutex::new(()) })
    }

    /// Runs one assignment (its plugin's bytes already verified by the
    /// queue) and returns the result to commit; `Err` for what a retry on
    /// another worker may fix (the job could not be read or set up).
    pub async fn run(&self, a: Assignment, plugin: Option<Vec<u8>>) -> Result<String, String> {
        let job = Job::decode(a.run.clone().ok_or("the assignment carries no job")?).map_err(|e| e.to_string())?;
        let (digest, bytes) = match (&a.plugin, plugin) {
            (Some(d), Some(b)) => (d.clone(), b),
            _ => return Err("the assignment names no plugin".into()),
        };
        let plugin_path = self.plugin_file(&digest, &bytes)?;
        let tree = self.tree(&job.snapshot).await?;
        let overlay = self.dir.join("overlays").join(format!(
            "{}-{}",
            a.task,
            crate::backend::server::random_hex(6).map_err(|e| e.to_string())?
        ));
        std::fs::create_dir(&overlay).map_err(|e| format!("cannot create the overlay {}: {e}", overlay.display()))?;
        let ran = self.run_guest(&a, &job, &plugin_path, &tree, &overlay).await;
        let outcome = match ran {
            Ok(outcome) => outcome,
            Err(lost) => {
                let _ = std::fs::remove_dir_all(&overlay);
                return Err(lost);
            }
        };
        let writes = tree::collect(&overlay).map_err(|e| format!("cannot read the task's writes: {e}"));
        let _ = std::fs::remove_dir_all(&overlay);
        let writes = match writes? {
            files if files.is_empty() => None,
            files => {
                let blob = tree::pack(&files, MAX_BLOB_BYTES).map_err(|e| format!("the task's writes: {e}"))?;
                Some(self.cluster.put_blob(&blob).await.map_err(|e| e.to_string())?)
            }
        };
        let result = JobResult { v: JOB_VERSION, outcome, writes };
        Ok(serde_json::to_string(&result).expect("results serialize"))
    }

    /// The plugin's file here, written once per digest (the bytes were
    /// re-hashed against it already).
    fn plugin_file(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let path = self.dir.join("plugins").join(format!("sha256-{digest}.wasm"));
        if !path.is_file() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot keep the plugin at {}: {e}", path.display()))?;
        }
        Ok(path)
    }

    /// The unpacked snapshot `digest`: fetched (re-hashed) and unpacked
    /// once, read-only afterwards (writes go to each task's overlay).
    async fn tree(&self, digest: &str) -> Result<PathBuf, String> {
        crate::cluster::names::token("snapshot", digest).map_err(|e| e.to_string())?;
        let path = self.dir.join("trees").join(digest);
        let _one = self.trees.lock().await;
        if path.is_dir() {
            return Ok(path);
        }
        let blob = self.cluster.blob(digest).await.map_err(|e| format!("workspace snapshot refused: {e}"))?;
        let files = tree::unpack(&blob).map_err(|e| format!("workspace snapshot {digest}: {e}"))?;
        let tmp = path.with_extension("unpacking");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| format!("cannot unpack the snapshot: {e}"))?;
        tree::materialize(&tmp, &files).map_err(|e| format!("cannot unpack the snapshot: {e}"))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot unpack the snapshot: {e}"))?;
        Ok(path)
    }

    /// Runs the guest; `Err` when a host call could not reach the
    /// coordinator and the guest did not finish its task (left for a
    /// redelivery, never committed as the task's failure).
    async fn run_guest(
        &self,
        a: &Assignment,
        job: &Job,
        plugin: &Path,
        tree: &Path,
        overlay: &Path,
    ) -> Result<JobOutcome, String> {
        let failed = |reason: String, limit| Ok(JobOutcome::Failed { reason: crate::sanitize::line(&reason), limit });
        let limits = Limits::from(&job.launch.limits);
        let (sandbox, path, load_limits) = (self.sandbox.clone(), plugin.to_path_buf(), limits.clone());
        let loaded = match tokio::task::spawn_blocking(move || sandbox.load(&path, &load_limits)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return failed(e.to_string(), None),
            Err(e) => return failed(format!("plugin loader panicked: {e}"), None),
        };
        let rules = &job.launch.workspace;
        let spec = PolicySpec {
            read_allow: rules.read_allow.clone(),
            exclude: rules.exclude.clone(),
            creates: rules.creates.clone(),
            protected: Vec::new(),
        };
        let workspace = match Policy::build(tree, job.launch.read.into(), &spec)
            .map_err(|e| format!("workspace policy: {e}"))
            .and_then(|policy| {
                let root = Workspace::open_root(tree).map_err(|e| format!("cannot open the snapshot: {e}"))?;
                let over = Workspace::open_root(overlay).map_err(|e| format!("cannot open the overlay: {e}"))?;
                Ok(Workspace::with_policy(root, Arc::new(policy), limits.file_bytes()).with_overlay(over))
            }) {
            Ok(w) => Arc::new(w),
            Err(e) => return failed(e, None),
        };
        let claimed = Claimed {
            spec: job.task.clone().into(),
            attempt: job.attempt,
            dependencies: job.dependencies.iter().cloned().map(Into::into).collect(),
        };
        let port = Arc::new(JobPort {
            cluster: self.cluster.clone(),
            key: a.task.clone(),
            teammate: job.launch.id.clone(),
            task: claimed.spec.id.clone(),
            claimed: Mutex::new(Some(claimed)),
            outcome: Mutex::new(None),
            lost: Mutex::new(None),
            over: tokio::sync::Notify::new(),
        });
        let id = job.launch.id.clone();
        self.router.ports.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), port.clone());
        let launch =
            Launch { id: id.clone(), group: job.launch.group.clone(), color: job.launch.color.clone(), limits };
        let link: SharedPort = port.clone();
        let exit = match loaded.instantiate_linked(&launch, link, &job.launch.team, workspace).await {
            Ok(instance) => {
                let over = async {
                    port.over.notified().await;
                    tokio::time::sleep(DONE_GRACE).await;
                };
                tokio::select! {
                    exit = instance.run() => exit,
                    () = over => ExitReason::killed(format!("still running {} after its task was over", humantime::format_duration(DONE_GRACE))),
                }
            }
            Err(e) => ExitReason::SpawnFailed {
                message: crate::sanitize::line(&format!("{e:#}")),
                limit: crate::sandbox::limit_kind_of(&e),
            },
        };
        self.router.ports.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let recorded = port.outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
        let lost = port.lost.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (recorded, lost) {
            (Some(outcome), _) => Ok(outcome),
            (None, Some(lost)) => Err(format!("the coordinator could not be reached ({lost}): left for redelivery")),
            (None, None) if exit.is_clean() => {
                failed("the teammate returned from run while holding the task".into(), None)
            }
            (None, None) => failed(exit.to_string(), exit.limit().map(Into::into)),
        }
    }
}

/// The port of one task on a worker (see the module doc).
#[derive(Debug)]
pub struct JobPort {
    cluster: Cluster,
    key: String,
    teammate: String,
    task: String,
    claimed: Mutex<Option<Claimed>>,
    outcome: Mutex<Option<JobOutcome>>,
    /// Why a call could not reach the coordinator, if one could not.
    lost: Mutex<Option<String>>,
    /// Notified once the outcome is recorded.
    over: tokio::sync::Notify,
}

impl JobPort {
    async fn call(&self, call: Call, wait: Duration) -> Result<Reply, PortError> {
        self.request(call, wait).await.map_err(|(_, e)| e)
    }

    /// A call; on failure, also whether nobody listens on the subject (no
    /// coordinator runs the team now). A failure is remembered: the task
    /// is then left for redelivery unless the guest finishes it anyway.
    async fn request(&self, call: Call, wait: Duration) -> Result<Reply, (bool, PortError)> {
        let envelope = CallEnvelope { key: self.key.clone(), call };
        let payload = serde_json::to_vec(&envelope).expect("calls serialize");
        // Over the server's max_payload, the call goes through the object store.
        let (headers, payload) =
            self.cluster.outgoing("a host call", payload).await.map_err(|e| (false, PortError::Lost(e.to_string())))?;
        let request = async_nats::Request::new().headers(headers).payload(payload.into()).timeout(Some(wait));
        let subject = self.cluster.names().calls(&self.teammate);
        let answer = match self.cluster.client().send_request(subject, request).await {
            Ok(answer) => answer,
            Err(e) => {
                let nobody = e.kind() == async_nats::RequestErrorKind::NoResponders;
                let why = format!("NATS request: {e}");
                self.lost.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why.clone());
                return Err((nobody, PortError::Lost(why)));
            }
        };
        let answer = self
            .cluster
            .incoming(answer.headers.as_ref(), &answer.payload)
            .await
            .map_err(|e| (false, PortError::Lost(format!("the reply: {e}"))))?;
        serde_json::from_slice(&answer).map_err(|e| (false, PortError::Lost(format!("bad reply: {e}"))))
    }

    fn is_over(&self) -> bool {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Records how the task ended, once; the error says why not.
    fn finish(&self, task_id: &str, outcome: JobOutcome) -> Result<(), String> {
        if task_id != self.task {
            return Err(format!("task `{}` is not held by `{}`", crate::sanitize::line(task_id), self.teammate));
        }
        let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Err(format!("task `{task_id}` is already over"));
        }
        *slot = Some(outcome);
        drop(slot);
        self.over.notify_one();
        Ok(())
    }
}

impl TeamPort for JobPort {
    fn recv<'a>(&'a self, _id: &'a str, wait: Duration) -> PortFuture<'a, Result<Option<Incoming>, PortError>> {
        Box::pin(async move {
            if self.is_over() {
                let reason = "the task is over: this worker runs one task per teammate start".to_string();
                return Ok(Some(Incoming::Shutdown { request_id: DONE_REQUEST.into(), reason }));
            }
            let call = Call::Recv { timeout_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) };
            match self.request(call, wait.saturating_add(CALL_SLACK)).await {
                Ok(reply) => link::incoming(reply),
                // No coordinator now (killed, being resumed): nothing was
                // taken from the mailbox, which stays with the team.
                Err((true, _)) => {
                    self.lost.lock().unwrap_or_else(|e| e.into_inner()).take();
                    Ok(None)
                }
                Err((false, e)) => Err(e),
            }
        })
    }

    fn send<'a>(
        &'a self,
        _id: &'a str,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(async move { link::sent("send", self.call(Call::Send { to, body, summary }, CALL_SLACK).await?) })
    }

    fn broadcast<'a>(
        &'a self,
        _id: &'a str,
        body: String,
        summary: Option<String>,
    ) -> PortFuture<'a, Result<Result<(), SendError>, PortError>> {
        Box::pin(
            async move { link::sent("broadcast", self.call(Call::Broadcast { body, summary }, CALL_SLACK).await?) },
        )
    }

    fn roster<'a>(&'a self, _id: &'a str) -> PortFuture<'a, Result<Vec<String>, PortError>> {
        Box::pin(async move { link::roster_ids(self.call(Call::Roster, CALL_SLACK).await?) })
    }

    fn claim<'a>(&'a self, _id: &'a str, _group: &'a str) -> PortFuture<'a, Result<Option<Claimed>, PortError>> {
        Box::pin(std::future::ready(Ok(self.claimed.lock().unwrap_or_else(|e| e.into_inner()).take())))
    }

    fn complete<'a>(
        &'a self,
        _id: &'a str,
        task_id: String,
        report: TaskReport,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        let outcome = JobOutcome::Completed { report: report.into() };
        Box::pin(std::future::ready(Ok(self.finish(&task_id, outcome))))
    }

    fn fail<'a>(
        &'a self,
        _id: &'a str,
        task_id: String,
        reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        let outcome = JobOutcome::Failed { reason, limit: None };
        Box::pin(std::future::ready(Ok(self.finish(&task_id, outcome))))
    }

    fn request_file<'a>(
        &'a self,
        _id: &'a str,
        path: String,
        _reason: String,
    ) -> PortFuture<'a, Result<Result<(), String>, PortError>> {
        // A worker's writes are checked against the task's files as the job
        // carried them; a file granted now would not reach that check.
        Box::pin(std::future::ready(Ok(Err(format!(
            "cannot request `{}`: ownership requests are not served to teammates on NATS workers (run --nats); \
             the task keeps the files it was given",
            crate::sanitize::line(&path)
        )))))
    }

    fn emit(&self, msg: TeammateMessage) -> PortFuture<'static, ()> {
        // The answer to the worker's own shutdown request stays here.
        if matches!(&msg, TeammateMessage::ShutdownResponse { request_id, .. } if request_id == DONE_REQUEST) {
            return Box::pin(std::future::ready(()));
        }
        let envelope = EventEnvelope { key: self.key.clone(), message: msg.into() };
        let payload = serde_json::to_vec(&envelope).expect("events serialize");
        let (cluster, subject) = (self.cluster.clone(), self.cluster.names().events(&self.teammate));
        Box::pin(async move {
            let sent = match cluster.outgoing("an event", payload).await {
                Ok((headers, payload)) => cluster
                    .client()
                    .publish_with_headers(subject, headers, payload.into())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = sent {
                tracing::warn!("cannot send an event to the coordinator: {e}");
            }
        })
    }

    fn beat(&self, _id: &str, _beat: Beat) {
        // The coordinator's own stand-in keeps the roster row of a remote
        // teammate (working while its task is out, idle otherwise).
    }
}
