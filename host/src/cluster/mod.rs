//! Scale-out over NATS JetStream (the `nats` feature): the team's tasks in a
//! work-queue stream, the team's state in a key-value bucket, plugins and
//! task outputs in an object store, workers on any machine.
//!
//! JetStream only *delivers*; the bucket is the truth. A worker claims a
//! task by a compare-and-set on its record and commits its result by a
//! compare-and-set on the revision its claim wrote ([`fence`]): a worker the
//! server presumed dead (its `ack_wait` passed) and that comes back finds
//! the revision moved and its result is discarded and counted, never
//! committed (a late ack is still accepted by the server, so an ack proves
//! nothing). Only then is the message acked.
//!
//! - [`connect`]: connection options (credentials file, token, TLS) and the
//!   refusal of servers older than 2.10;
//! - [`names`]: the subjects, streams, bucket and keys of a team;
//! - [`queue`]: creating or joining a team's JetStream objects, publishing
//!   tasks, reading records;
//! - [`fence`]: task records, claim and commit by revision;
//! - [`dead`]: dead letters (the max-deliveries advisory);
//! - [`blobs`]: content-addressed plugins and outputs, re-hashed on read;
//! - [`spill`]: payloads over the server's `max_payload` moved through the
//!   object store;
//! - [`worker`]: the worker loop (fetch, claim, heartbeats, run, commit, ack).

pub mod blobs;
pub mod connect;
pub mod dead;
pub mod fence;
pub mod names;
pub mod queue;
pub mod spill;
pub mod worker;

pub use connect::{ConnectOptions, MIN_SERVER};
pub use fence::{Record, State};
pub use names::Names;
pub use queue::{Assignment, Cluster, QueueStats, Settings};
pub use worker::{Outcome, Worker, WorkerStats};

/// Why a cluster operation failed. Errors of the NATS client are kept as
/// text (the client has one error type per call), with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Connecting failed (address, authentication, TLS, timeout).
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server is older than [`MIN_SERVER`].
    #[error(
        "nats-server {version} at {url} is too old: swarm-host needs nats-server >= {MIN_SERVER} with JetStream \
         (2.9 lacks what the key-value bucket needs and can leave finished tasks stuck in the queue after a crash)"
    )]
    ServerTooOld {
        /// The server URL.
        url: String,
        /// The version the server reported.
        version: String,
    },
    /// A name cannot be part of a NATS subject or key.
    #[error("{what} `{name}` cannot be used on NATS: only ASCII letters, digits, `-` and `_` are allowed")]
    Name {
        /// Which name (team, task, group).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A JetStream call failed.
    #[error("JetStream: cannot {doing}: {message}")]
    JetStream {
        /// What was being done.
        doing: String,
        /// The client's error.
        message: String,
    },
    /// A record or message did not decode.
    #[error("cannot decode {what}: {message}")]
    Decode {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
    /// A payload is larger than even the object store takes.
    #[error(
        "{what} is {bytes} bytes, over the {limit}-byte limit of one blob (payloads over the server's max_payload go through the object store)"
    )]
    TooLarge {
        /// What was being sent.
        what: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A blob's bytes do not hash to the digest it was asked for by.
    #[error("blob {expected} refused: its bytes hash to {actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
}

impl ClusterError {
    /// A JetStream error while `doing`.
    pub(crate) fn js(doing: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Self::JetStream { doing: doing.into(), message: e.to_string() }
    }
}
