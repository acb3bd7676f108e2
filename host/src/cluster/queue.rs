//! A team's JetStream objects: the coordinator creates them ([`Cluster::create`]),
//! a worker joins them ([`Cluster::join`]). Tasks are published to the
//! work-queue stream with their id as `Nats-Msg-Id` (a second publish in
//! the duplicate window is dropped by the server), after their record is
//! created in the bucket.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::fence::{self, Record, State, Versioned};
use super::names::{CONSUMER, Names, token};

/// Version of the assignment format.
pub const ASSIGNMENT_VERSION: u32 = 1;

/// How the queue redelivers.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a delivery may go without an ack or a heartbeat before the
    /// server hands the task to another worker.
    pub ack_wait: Duration,
    /// Deliveries of one task at most (the plan's `max_attempts`); then it
    /// is a dead letter.
    pub max_attempts: u32,
    /// How long a published task id is remembered against a second publish.
    pub duplicate_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { ack_wait: Duration::from_secs(60), max_attempts: 3, duplicate_window: Duration::from_secs(600) }
    }
}

/// One task as a worker receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Format version ([`ASSIGNMENT_VERSION`]).
    pub v: u32,
    /// The task id.
    pub task: String,
    /// The teammate group that runs it.
    pub group: String,
    /// The sha256 (hex) of the plugin that runs it, in the object store.
    pub plugin: Option<String>,
    /// What the task is about (its description).
    pub body: String,
    /// What the runner needs beyond this (for `swarm-host worker`: the
    /// teammate's launch settings, the claimed task and the workspace
    /// snapshot's digest); opaque to the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
}

impl Assignment {
    /// An assignment of `task` to `group`.
    pub fn new(task: &str, group: &str, plugin: Option<String>, body: &str) -> Self {
        Self { v: ASSIGNMENT_VERSION, task: task.into(), group: group.into(), plugin, body: body.into(), run: None }
    }

    /// This assignment with `run`, what its runner needs.
    pub fn with_run(mut self, run: serde_json::Value) -> Self {
        self.run = Some(run);
        self
    }

    /// Decodes a message payload; an unknown version is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClusterError> {
        let decode = |message: String| ClusterError::Decode { what: "a task assignment".into(), message };
        let a: Self = serde_json::from_slice(bytes).map_err(|e| decode(e.to_string()))?;
        if a.v != ASSIGNMENT_VERSION {
            return Err(decode(format!("version {} (this host reads {ASSIGNMENT_VERSION})", a.v)));
        }
        Ok(a)
    }
}

/// A team's queue, bucket and object store.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) js: jetstream::Context,
    pub(crate) names: Names,
    pub(crate) kv: kv::Store,
    pub(crate) blobs: object_store::ObjectStore,
    pub(crate) tasks: stream::Stream,
    pub(crate) settings: Settings,
}

/// The work queue as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages in the work-queue stream (delivered or not, not yet acked).
    pub messages: u64,
    /// Delivered, not yet acked.
    pub ack_pending: u64,
    /// Not yet delivered.
    pub pending: u64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("team", &self.names.team()).field("settings", &self.settings).finish()
    }
}

impl Cluster {
    /// Creates team `team`'s objects (or opens them as they are: a resumed
    /// coordinator calls this too).
    pub async fn create(client: async_nats::Client, team: &str, settings: Settings) -> Result<Self, ClusterError> {
        let names = Names::new(team)?;
        let js = jetstream::new(client);
        let tasks = js
            .get_or_create_stream(stream::Config {
                name: names.tasks_stream(),
                subjects: vec![names.tasks_subjects()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: settings.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::js(format!("create stream {}", names.tasks_stream()), e))?;
        tasks
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    max_deliver: i64::from(settings.max_attempts.max(1)),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ClusterError::js(format!("create consumer {CONSUMER}"), e))?;
        js.get_or_create_stream(stream::Config {
            name: names.dead_stream(),
            subjects: vec![format!("swarm.{}.dead.>", names.team())],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::js(format!("create stream {}", names.dead_stream()), e))?;
        let kv = match js.get_key_value(names.bucket()).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: names.bucket(),
                    history: 5,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| ClusterError::js(format!("create bucket {}", names.bucket()), e))?,
        };
        let blobs = match js.get_object_store(names.blobs()).await {
            Ok(b) => b,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: names.blobs(),
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| ClusterError::js(format!("create object store {}", names.blobs()), e))?,
        };
        Ok(Self { js, names, kv, blobs, tasks, settings })
    }

    /// Joins team `team`'s objects, which its coordinator created.
    pub async fn join(client: async_nats::Client, team: &str) -> Result<Self, ClusterError> {
        let names = Names::new(team)?;
        let js = jetstream::new(client);
        let missing = |what: String, e: &dyn std::fmt::Display| {
            ClusterError::js(format!("open {what} (has the coordinator of team `{team}` started?)"), e)
        };
        let mut tasks = js.get_stream(names.tasks_stream()).await.map_err(|e| missing(names.tasks_stream(), &e))?;
        let consumer: consumer::PullConsumer =
            tasks.get_consumer(CONSUMER).await.map_err(|e| missing(format!("consumer {CONSUMER}"), &e))?;
        let config = &consumer.cached_info().config;
        let settings = Settings {
            ack_wait: config.ack_wait,
            max_attempts: u32::try_from(config.max_deliver).unwrap_or(u32::MAX),
            duplicate_window: tasks
                .info()
                .await
                .map_err(|e| missing(names.tasks_stream(), &e))?
                .config
                .duplicate_window,
        };
        let kv = js.get_key_value(names.bucket()).await.map_err(|e| missing(names.bucket(), &e))?;
        let blobs = js.get_object_store(names.blobs()).await.map_err(|e| missing(names.blobs(), &e))?;
        Ok(Self { js, names, kv, blobs, tasks, settings })
    }

    /// The client this cluster uses (for request/reply and events).
    pub fn client(&self) -> async_nats::Client {
        self.js.client()
    }

    /// Empties the work queue and the bucket, for a fresh run of a team
    /// whose objects an earlier run left (a resumed run keeps them: that is
    /// where it picks its state up). Plugins and blobs stay (they are
    /// content-addressed); the workers' consumer stays, so running workers
    /// keep fetching.
    pub async fn purge(&self) -> Result<(), ClusterError> {
        self.tasks.purge().await.map_err(|e| ClusterError::js(format!("purge {}", self.names.tasks_stream()), e))?;
        let bucket_stream = format!("KV_{}", self.names.bucket());
        let kv_stream = self
            .js
            .get_stream(bucket_stream.as_str())
            .await
            .map_err(|e| ClusterError::js(format!("open {bucket_stream}"), e))?;
        kv_stream.purge().await.map_err(|e| ClusterError::js(format!("purge {bucket_stream}"), e))?;
        Ok(())
    }

    /// The team's names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The redelivery settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Publishes `a`: creates its record (`queued`) unless it has one, then
    /// puts it on the queue. Publishing a task twice puts it there once
    /// (its id is the message id); a task already committed is not
    /// published again.
    pub async fn publish(&self, a: &Assignment) -> Result<(), ClusterError> {
        token("task", &a.task)?;
        token("group", &a.group)?;
        fence::create(&self.kv, &a.task, &Record::new(State::Queued)).await?;
        if let Some(Versioned { record: Record { state: State::Done { .. } | State::Dead { .. }, .. }, .. }) =
            fence::read(&self.kv, &a.task).await?
        {
            return Ok(());
        }
        let payload = serde_json::to_vec(a).expect("assignments serialize");
        let subject = self.names.task_subject(&a.group, &a.task);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", a.task.as_str());
        let ack = self
            .js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|e| ClusterError::js(format!("publish task {}", a.task), e))?;
        ack.await.map_err(|e| ClusterError::js(format!("publish task {}", a.task), e))?;
        Ok(())
    }

    /// Task `task`'s record.
    pub async fn record(&self, task: &str) -> Result<Option<Record>, ClusterError> {
        Ok(fence::read(&self.kv, task).await?.map(|v| v.record))
    }

    /// The work queue's counters.
    pub async fn queue_stats(&self) -> Result<QueueStats, ClusterError> {
        let mut tasks = self.tasks.clone();
        let messages = tasks.info().await.map_err(|e| ClusterError::js("read the queue's info", e))?.state.messages;
        let mut consumer: consumer::PullConsumer =
            tasks.get_consumer(CONSUMER).await.map_err(|e| ClusterError::js("open the workers' consumer", e))?;
        let info = consumer.info().await.map_err(|e| ClusterError::js("read the consumer's info", e))?;
        Ok(QueueStats { messages, ack_pending: info.num_ack_pending as u64, pending: info.num_pending })
    }

    /// The records of every task, by id.
    pub async fn records(&self) -> Result<std::collections::BTreeMap<String, Record>, ClusterError> {
        use futures_util::StreamExt as _;
        let mut keys = self.kv.keys().await.map_err(|e| ClusterError::js("list the bucket's keys", e))?;
        let mut out = std::collections::BTreeMap::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| ClusterError::js("list the bucket's keys", e))?;
            if let Some(task) = key.strip_prefix("task.")
                && let Some(v) = fence::read(&self.kv, task).await?
            {
                out.insert(task.to_string(), v.record);
            }
        }
        Ok(out)
    }

    /// Waits (on the bucket's watch, no polling) until every task of
    /// `tasks` is done or dead, for at most `timeout`; returns their
    /// records, or the ids still open when the time ran out.
    pub async fn wait_settled(
        &self,
        tasks: &[String],
        timeout: Duration,
    ) -> Result<Result<std::collections::BTreeMap<String, Record>, Vec<String>>, ClusterError> {
        self.wait_for(tasks, settled, timeout).await
    }

    /// Waits (on the bucket's watch) until the record of every task of
    /// `tasks` satisfies `done`, for at most `timeout`; returns their
    /// records, or the ids that did not when the time ran out.
    pub async fn wait_for(
        &self,
        tasks: &[String],
        done: impl Fn(&Record) -> bool,
        timeout: Duration,
    ) -> Result<Result<std::collections::BTreeMap<String, Record>, Vec<String>>, ClusterError> {
        use futures_util::StreamExt as _;
        // One task: watch its key alone (the whole bucket's history is
        // replayed to a new watch otherwise).
        let keys = match tasks {
            [one] => Names::task_key(one),
            _ => "task.>".to_string(),
        };
        let mut watch =
            self.kv.watch_with_history(keys.as_str()).await.map_err(|e| ClusterError::js("watch the bucket", e))?;
        let wanted: std::collections::BTreeSet<&str> = tasks.iter().map(String::as_str).collect();
        let mut latest = std::collections::BTreeMap::new();
        let open = |latest: &std::collections::BTreeMap<String, Record>| -> Vec<String> {
            wanted.iter().filter(|t| !latest.get(**t).is_some_and(&done)).map(|t| t.to_string()).collect()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while !open(&latest).is_empty() {
            let entry = match tokio::time::timeout_at(deadline, watch.next()).await {
                Ok(Some(entry)) => entry.map_err(|e| ClusterError::js("watch the bucket", e))?,
                Ok(None) | Err(_) => break,
            };
            let Some(task) = entry.key.strip_prefix("task.") else { continue };
            if entry.operation == kv::Operation::Put && wanted.contains(task) {
                latest.insert(task.to_string(), Record::decode(task, &entry.value)?);
            }
        }
        let still = open(&latest);
        Ok(if still.is_empty() { Ok(latest) } else { Err(still) })
    }

    /// Every record task `task` had that the bucket still keeps (its
    /// history), oldest first.
    pub async fn history(&self, task: &str) -> Result<Vec<Record>, ClusterError> {
        use futures_util::StreamExt as _;
        let key = Names::task_key(task);
        let mut entries =
            self.kv.history(key.as_str()).await.map_err(|e| ClusterError::js(format!("read history of {key}"), e))?;
        let mut out = Vec::new();
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(|e| ClusterError::js(format!("read history of {key}"), e))?;
            if entry.operation == kv::Operation::Put {
                out.push(Record::decode(task, &entry.value)?);
            }
        }
        Ok(out)
    }
}

/// The teams whose objects are on the server `client` reaches, by name.
pub async fn teams(client: &async_nats::Client) -> Result<Vec<String>, ClusterError> {
    use futures_util::StreamExt as _;
    let js = jetstream::new(client.clone());
    let mut names = js.stream_names();
    let mut teams = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.map_err(|e| ClusterError::js("list the server's streams", e))?;
        if let Some(team) = name.strip_prefix("SWARM_TASKS_") {
            teams.push(team.to_string());
        }
    }
    teams.sort();
    Ok(teams)
}

/// Whether a task is over: done or dead.
pub fn settled(record: &Record) -> bool {
    matches!(record.state, State::Done { .. } | State::Dead { .. })
}
