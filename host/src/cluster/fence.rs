//! Task records in the team's key-value bucket, and the fence: a claim is a
//! compare-and-set on the record's revision, and so is the commit of a
//! result, against the revision the claim wrote. A worker whose claim was
//! taken over (the server redelivered its task after `ack_wait`) finds the
//! revision moved: its result is discarded, never committed. JetStream
//! acks cannot do this (a late ack is accepted: nats-server#4786, #6937).

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::names::Names;

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Published, nobody holds it.
    Queued,
    /// Claimed by `worker` for delivery `attempt`.
    Running {
        /// The worker.
        worker: String,
        /// The delivery count (1 = first).
        attempt: u32,
    },
    /// An attempt failed; the task waits for its redelivery.
    Retrying {
        /// The failed attempt.
        attempt: u32,
        /// Why it failed.
        error: String,
    },
    /// Committed: the one result of the task.
    Done {
        /// The worker whose result won.
        worker: String,
        /// Its attempt.
        attempt: u32,
        /// The result.
        output: String,
    },
    /// Out of attempts: moved to the dead letters.
    Dead {
        /// Deliveries made.
        deliveries: u32,
        /// The last error known.
        error: Option<String>,
    },
}

/// A task's record: `task.<id>` in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The state.
    #[serde(flatten)]
    pub state: State,
}

impl Record {
    /// A record in `state`.
    pub fn new(state: State) -> Self {
        Self { v: RECORD_VERSION, state }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialize")
    }

    /// Decodes a record of task `task`; an unknown version is an error.
    pub fn decode(task: &str, bytes: &[u8]) -> Result<Self, ClusterError> {
        let decode = |message: String| ClusterError::Decode { what: format!("the record of task `{task}`"), message };
        let record: Self = serde_json::from_slice(bytes).map_err(|e| decode(e.to_string()))?;
        if record.v != RECORD_VERSION {
            return Err(decode(format!("version {} (this host reads {RECORD_VERSION})", record.v)));
        }
        Ok(record)
    }
}

/// A record and the revision it was read at.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The record.
    pub record: Record,
    /// Its revision: the token a compare-and-set must name.
    pub revision: u64,
}

/// What a compare-and-set came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cas {
    /// Written; the new revision.
    Written(u64),
    /// Someone else wrote the record since the revision given.
    Moved,
}

/// Reads task `task`'s record.
pub async fn read(store: &kv::Store, task: &str) -> Result<Option<Versioned>, ClusterError> {
    let key = Names::task_key(task);
    let entry = store.entry(key.as_str()).await.map_err(|e| ClusterError::js(format!("read {key}"), e))?;
    match entry {
        Some(e) if e.operation == kv::Operation::Put => {
            Ok(Some(Versioned { record: Record::decode(task, &e.value)?, revision: e.revision }))
        }
        _ => Ok(None),
    }
}

/// Writes `record` for `task` if the record is still at `revision`.
pub async fn write(store: &kv::Store, task: &str, record: &Record, revision: u64) -> Result<Cas, ClusterError> {
    let key = Names::task_key(task);
    match store.update(key.as_str(), record.encode().into(), revision).await {
        Ok(rev) => Ok(Cas::Written(rev)),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(Cas::Moved),
        Err(e) => Err(ClusterError::js(format!("write {key}"), e)),
    }
}

/// Creates `task`'s record if it has none; `false` if it had one.
pub async fn create(store: &kv::Store, task: &str, record: &Record) -> Result<bool, ClusterError> {
    let key = Names::task_key(task);
    match store.create(key.as_str(), record.encode().into()).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(ClusterError::js(format!("create {key}"), e)),
    }
}
