//! The worker loop: fetch a task when a slot is free, claim it in the
//! bucket, keep its delivery alive with in-progress heartbeats while it
//! runs, commit its result by compare-and-set on the claim's revision, and
//! only then ack. A worker whose claim was taken over is fenced: its result
//! is discarded and counted, and it sends no ack (a late ack would still be
//! accepted by the server and could drop the new holder's delivery).
//!
//! What runs a task is the caller's: a function from the assignment, its
//! attempt and its plugin's bytes to the output text or the error. The
//! plugin is read from the object store and re-hashed first: bytes that
//! do not match the digest the task names are refused (the attempt fails
//! with the reason, and the runner never sees them).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;

use super::ClusterError;
use super::fence::{self, Cas, Record, State};
use super::names::CONSUMER;
use super::queue::{Assignment, Cluster};

/// How long one fetch waits on the server for a task.
const FETCH_WAIT: Duration = Duration::from_secs(5);
/// Backoff after a failed fetch (the server is away; the client reconnects).
const FETCH_RETRY: Duration = Duration::from_millis(250);

/// A task's result: the output, or why it failed.
pub type Outcome = Result<String, String>;

/// What a worker did, counted.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Tasks run (every attempt, duplicates included).
    pub executed: AtomicU64,
    /// Results committed.
    pub committed: AtomicU64,
    /// Results discarded because the claim was taken over.
    pub fenced: AtomicU64,
    /// Deliveries of tasks already committed or dead, acked without running.
    pub already_done: AtomicU64,
    /// Attempts that failed (the task is redelivered or dead-lettered).
    pub failed: AtomicU64,
    /// Claims lost to another worker's claim at the same time.
    pub contended: AtomicU64,
}

impl WorkerStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What workers tell the coordinator they did, on
/// [`Names::worker_events`](super::Names::worker_events) (the payload is
/// the task id): every execution, and every result fenced off. Core NATS,
/// at most once: the coordinator's counts are what it heard.
pub const EXECUTED: &str = "executed";
/// See [`EXECUTED`].
pub const FENCED: &str = "fenced";

/// A worker of one team.
#[derive(Debug, Clone)]
pub struct Worker {
    cluster: Cluster,
    id: String,
    slots: usize,
    stats: Arc<WorkerStats>,
}

impl Worker {
    /// Worker `id` of `cluster`'s team, running up to `slots` tasks at once.
    pub fn new(cluster: Cluster, id: impl Into<String>, slots: usize) -> Self {
        Self { cluster, id: id.into(), slots: slots.max(1), stats: Arc::default() }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// Runs tasks with `run` until `shutdown` resolves; tasks in flight are
    /// then abandoned (redelivered after `ack_wait`).
    pub async fn run<H, F>(&self, run: H, shutdown: impl Future<Output = ()>) -> Result<(), ClusterError>
    where
        H: Fn(Assignment, u32, Option<Vec<u8>>) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let consumer: consumer::PullConsumer = self
            .cluster
            .tasks
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| ClusterError::js(format!("open consumer {CONSUMER}"), e))?;
        let run = Arc::new(run);
        let slots = Arc::new(Semaphore::new(self.slots));
        let mut running = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let fetched = async {
                let mut batch =
                    consumer.fetch().max_messages(1).expires(FETCH_WAIT).messages().await.map_err(|e| e.to_string())?;
                batch.next().await.transpose().map_err(|e| e.to_string())
            };
            let message = tokio::select! {
                m = fetched => m,
                () = &mut shutdown => break,
            };
            match message {
                Ok(Some(message)) => {
                    let (this, run) = (self.clone(), run.clone());
                    running.spawn(async move {
                        this.handle(message, run.as_ref()).await;
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("fetch failed (retrying): {e}");
                    tokio::select! {
                        () = tokio::time::sleep(FETCH_RETRY) => {}
                        () = &mut shutdown => break,
                    }
                }
            }
            while running.try_join_next().is_some() {}
        }
        running.abort_all();
        Ok(())
    }

    /// Tells the coordinator (if it listens) that this worker did `kind` for `task`.
    async fn tell(&self, kind: &str, task: &str) {
        let subject = self.cluster.names.worker_events(kind);
        if let Err(e) = self.cluster.client().publish(subject, task.to_string().into()).await {
            tracing::debug!(task = %task, "cannot tell the coordinator `{kind}`: {e}");
        }
    }

    /// One delivery: claim, run with heartbeats, commit, ack.
    async fn handle<H, F>(&self, message: jetstream::Message, run: &H)
    where
        H: Fn(Assignment, u32, Option<Vec<u8>>) -> F,
        F: Future<Output = Outcome>,
    {
        let attempt = message.info().map_or(1, |i| u32::try_from(i.delivered).unwrap_or(u32::MAX));
        let (message, acker) = message.split();
        let a = match Assignment::decode(&message.payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("dropping a task message on {}: {e}", message.subject);
                let _ = acker.ack_with(AckKind::Term).await;
                return;
            }
        };
        let kv = &self.cluster.kv;
        let current = match fence::read(kv, &a.task).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::error!(task = %a.task, "task has no record in the bucket: left for redelivery");
                let _ = acker.ack_with(AckKind::Nak(Some(FETCH_WAIT))).await;
                return;
            }
            Err(e) => {
                tracing::warn!(task = %a.task, "cannot read the task's record (left for redelivery): {e}");
                return;
            }
        };
        if matches!(current.record.state, State::Done { .. } | State::Dead { .. }) {
            WorkerStats::bump(&self.stats.already_done);
            let _ = acker.double_ack().await;
            return;
        }
        let running = Record::new(State::Running { worker: self.id.clone(), attempt });
        let claim = match fence::write(kv, &a.task, &running, current.revision).await {
            Ok(Cas::Written(revision)) => revision,
            Ok(Cas::Moved) => {
                WorkerStats::bump(&self.stats.contended);
                let _ = acker.ack_with(AckKind::Nak(Some(Duration::from_millis(100)))).await;
                return;
            }
            Err(e) => {
                tracing::warn!(task = %a.task, "cannot claim the task (left for redelivery): {e}");
                return;
            }
        };
        let acker = Arc::new(acker);
        let beat = {
            let (acker, every) = (acker.clone(), self.cluster.settings.ack_wait / 3);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = acker.ack_with(AckKind::Progress).await;
                }
            })
        };
        let task = a.task.clone();
        let plugin = match &a.plugin {
            Some(digest) => self.cluster.blob(digest).await.map(Some).map_err(|e| format!("plugin refused: {e}")),
            None => Ok(None),
        };
        let outcome = match plugin {
            Ok(plugin) => {
                WorkerStats::bump(&self.stats.executed);
                self.tell(EXECUTED, &task).await;
                run(a, attempt, plugin).await
            }
            Err(refused) => {
                tracing::error!(task = %task, "{refused}");
                Err(refused)
            }
        };
        beat.abort();
        let (record, failed) = match outcome {
            Ok(output) => (Record::new(State::Done { worker: self.id.clone(), attempt, output }), false),
            Err(error) => (Record::new(State::Retrying { attempt, error }), true),
        };
        match fence::write(kv, &task, &record, claim).await {
            Ok(Cas::Written(_)) if failed => {
                WorkerStats::bump(&self.stats.failed);
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            }
            Ok(Cas::Written(_)) => {
                WorkerStats::bump(&self.stats.committed);
                tracing::info!(task = %task, worker = %self.id, attempt, "committed");
                // A lost ack is harmless: the redelivery finds the task done.
                let _ = acker.double_ack().await;
            }
            Ok(Cas::Moved) => {
                WorkerStats::bump(&self.stats.fenced);
                self.tell(FENCED, &task).await;
                tracing::warn!(task = %task, worker = %self.id, attempt, "fenced: the claim was taken over, result discarded");
            }
            Err(e) => tracing::warn!(task = %task, "cannot record the result (left for redelivery): {e}"),
        }
    }
}
