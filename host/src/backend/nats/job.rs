//! What crosses NATS between the coordinator and a worker for one task,
//! besides the queue's own records: the job an assignment carries (the
//! teammate's launch settings, the claimed task, the workspace snapshot),
//! the result a worker commits, and the envelopes of a remote teammate's
//! host calls and events. Each is versioned; an unknown version is a named
//! error. The call and event bodies are the socket's own wire types
//! ([`Call`], [`Reply`], [`WireEvent`]), answered by the same code.

use serde::{Deserialize, Serialize};

use crate::protocol::frame::{Call, LaunchConfig};
use crate::protocol::wire::{WireDependency, WireEvent, WireLimitKind, WireTaskReport, WireTaskSpec};

/// Version of [`Job`] and [`JobResult`].
pub const JOB_VERSION: u32 = 1;

/// The request id of the shutdown request a worker gives its guest once
/// the task is over (the guest then ends; its answer is not forwarded).
pub const DONE_REQUEST: &str = "worker-task-done";

/// One task for a worker: everything it needs to run the teammate as the
/// coordinator would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Format version ([`JOB_VERSION`]).
    pub v: u32,
    /// The teammate that claimed the task at the coordinator: the guest
    /// runs as it (its id, mailbox and model allow-list).
    pub launch: LaunchConfig,
    /// The claimed task.
    pub task: WireTaskSpec,
    /// Its attempt number at the coordinator.
    pub attempt: u32,
    /// What the tasks it was blocked by produced.
    pub dependencies: Vec<WireDependency>,
    /// The sha256 of the workspace snapshot (a blob in the object store).
    pub snapshot: String,
}

/// How a task ended on a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JobOutcome {
    /// The guest completed it with this report.
    Completed {
        /// The report.
        report: WireTaskReport,
    },
    /// The guest failed it, trapped, hit a limit, or could not start.
    Failed {
        /// Why.
        reason: String,
        /// The sandbox limit that ended it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<WireLimitKind>,
    },
}

/// What a worker commits as a task's output: the outcome and the digest of
/// the task's writes (a blob), which the coordinator checks and applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Format version ([`JOB_VERSION`]).
    pub v: u32,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: JobOutcome,
    /// The sha256 of the packed writes ([`super::tree`]), if it wrote any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<String>,
}

/// A remote teammate's host call, named by the queue key of the task it
/// runs: the coordinator answers only the teammate's task in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnvelope {
    /// The task's queue key.
    pub key: String,
    /// The call.
    pub call: Call,
}

/// A remote teammate's event (one-way), named like a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The task's queue key.
    pub key: String,
    /// The event.
    pub message: WireEvent,
}

/// Why a job or result did not decode.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {what}: {message}")]
pub struct DecodeError {
    what: &'static str,
    message: String,
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, value: T, v: u32) -> Result<T, DecodeError> {
    if v == JOB_VERSION {
        Ok(value)
    } else {
        Err(DecodeError { what, message: format!("version {v} (this host reads {JOB_VERSION})") })
    }
}

impl Job {
    /// Decodes an assignment's `run`.
    pub fn decode(value: serde_json::Value) -> Result<Self, DecodeError> {
        let job: Self =
            serde_json::from_value(value).map_err(|e| DecodeError { what: "a job", message: e.to_string() })?;
        let v = job.v;
        decode("a job", job, v)
    }
}

impl JobResult {
    /// Decodes a committed output.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let result: Self =
            serde_json::from_str(text).map_err(|e| DecodeError { what: "a task's result", message: e.to_string() })?;
        let v = result.v;
        decode("a task's result", result, v)
    }
}

/// The queue key of attempt `attempt` of task `task`: one key per attempt
/// the coordinator counts (interrupted ones do not count), so a resumed
/// coordinator asks for the same key again and finds what a worker
/// committed meanwhile. Characters a subject cannot hold become `_`, and a
/// changed id gets a hash of the original, so two ids never share a key.
pub fn queue_key(task: &str, attempt: u32) -> String {
    let clean: String = task
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(96)
        .collect();
    if clean == task {
        format!("{clean}-a{attempt}")
    } else {
        let hash = &crate::cluster::blobs::sha256_hex(task.as_bytes())[..12];
        format!("{clean}-{hash}-a{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_are_subject_tokens_and_distinct() {
        assert_eq!(queue_key("markers", 1), "markers-a1");
        let (a, b) = (queue_key("docs.md", 2), queue_key("docs_md", 2));
        assert_ne!(a, b);
        assert!(crate::cluster::names::token("task", &a).is_ok(), "{a}");
        assert!(crate::cluster::names::token("task", &queue_key(&"x".repeat(300), 1)).is_ok());
    }

    #[test]
    fn an_unknown_result_version_is_a_named_error() {
        let err = JobResult::decode(r#"{"v":9,"outcome":"failed","reason":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
        let ok = JobResult::decode(r#"{"v":1,"outcome":"failed","reason":"x"}"#).unwrap();
        assert_eq!(ok.outcome, JobOutcome::Failed { reason: "x".into(), limit: None });
    }
}
