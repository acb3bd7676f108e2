//! Teammates on NATS workers (the `nats` feature): the coordinator's side
//! ([`coordinator`]: a backend of stand-ins that send each claimed task to
//! the queue and apply what comes back), the worker's side ([`remote`]: the
//! real teammate component run in the same sandbox, its host calls sent to
//! the coordinator), what crosses between them ([`job`]) and the files they
//! exchange ([`tree`]: the workspace snapshot, the task's writes). The queue,
//! the bucket, fencing and blobs are [`crate::cluster`]'s.

pub mod coordinator;
pub mod job;
pub mod remote;
pub mod tree;

pub use coordinator::{Nats, NatsSetup};
pub use remote::WorkerHost;
