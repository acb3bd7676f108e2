//! Task records in the team's key-value bucket, and the fence: a claim is a
//! compare-and-set on the record's revision, and so is the commit of a
//! result, against the revision the claim wrote. A worker whose claim was
//! taken over (the server redelivered its task after `ack_wait`) finds the
//! revision moved: its result is discarded, never committed. JetStream
//! acks cannot do this (a late ack is accepted: nats-server#4786, #6937).
//!
//! The counts a report gives are kept here too, durably, so a coordinator
//! that was not listening still has them: every record carries how many
//! claims (executions started) and how many recorded results its task had,
//! each write carrying them forward, and a fenced result is counted under
//! its own key (`fenced.<task>`, a compare-and-set counter), since the
//! fenced worker may not touch the task's record.

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
    /// Claims so far: executions started, duplicates included.
    #[serde(default)]
    pub runs: u32,
    /// Results recorded so far (committed, or a failed attempt recorded).
    /// `runs - results` executions ended without one: their worker died,
    /// or was fenced off.
    #[serde(default)]
    pub results: u32,
}

impl Record {
    /// A record in `state`.
    pub fn new(state: State) -> Self {
        Self { v: RECORD_VERSION, state, runs: 0, results: 0 }
    }

    /// The record a claim writes over this one: `state`, one more run.
    pub fn claimed(&self, state: State) -> Self {
        Self { v: RECORD_VERSION, state, runs: self.runs.saturating_add(1), results: self.results }
    }

    /// The record a result writes over this (claimed) one: `state`, one
    /// more result.
    pub fn recorded(&self, state: State) -> Self {
        Self { v: RECORD_VERSION, state, runs: self.runs, results: self.results.saturating_add(1) }
    }

    /// This record's counts with another `state` (a dead letter).
    pub fn with_state(&self, state: State) -> Self {
        Self { v: RECORD_VERSION, state, ..*self }
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

/// Counts one fenced result of `task` (`fenced.<task>`, by compare-and-set
/// until it lands); the count now.
pub async fn count_fenced(store: &kv::Store, task: &str) -> Result<u64, ClusterError> {
    let key = Names::fenced_key(task);
    loop {
        let entry = store.entry(key.as_str()).await.map_err(|e| ClusterError::js(format!("read {key}"), e))?;
        let written = match entry.filter(|e| e.operation == kv::Operation::Put) {
            None => match store.create(key.as_str(), "1".into()).await {
                Ok(_) => Some(1),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => None,
                Err(e) => return Err(ClusterError::js(format!("create {key}"), e)),
            },
            Some(e) => {
                let n = decode_count(&key, &e.value)? + 1;
                match store.update(key.as_str(), n.to_string().into(), e.revision).await {
                    Ok(_) => Some(n),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => None,
                    Err(e) => return Err(ClusterError::js(format!("write {key}"), e)),
                }
            }
        };
        if let Some(n) = written {
            return Ok(n);
        }
    }
}

/// Fenced results of `task` so far.
pub async fn fenced(store: &kv::Store, task: &str) -> Result<u64, ClusterError> {
    let key = Names::fenced_key(task);
    match store.entry(key.as_str()).await.map_err(|e| ClusterError::js(format!("read {key}"), e))? {
        Some(e) if e.operation == kv::Operation::Put => decode_count(&key, &e.value),
        _ => Ok(0),
    }
}

/// A counter's value (decimal text).
pub fn decode_count(key: &str, bytes: &[u8]) -> Result<u64, ClusterError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClusterError::Decode { what: format!("the counter `{key}`"), message: "not a number".into() })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_carried_from_record_to_record_and_old_records_read_as_zero() {
        let queued = Record::new(State::Queued);
        let running = queued.claimed(State::Running { worker: "a".into(), attempt: 1 });
        let again = running.claimed(State::Running { worker: "b".into(), attempt: 2 });
        let done = again.recorded(State::Done { worker: "b".into(), attempt: 2, output: String::new() });
        assert_eq!((done.runs, done.results), (2, 1));
        let decoded = Record::decode("t", &done.encode()).unwrap();
        assert_eq!(decoded, done);
        let old = Record::decode("t", br#"{"v":1,"state":"queued"}"#).unwrap();
        assert_eq!((old.runs, old.results), (0, 0));
    }
}
