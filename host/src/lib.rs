//! swarm-host: runs multi-agent teams of sandboxed WebAssembly teammates.
//!
//! A coordinator ([`coordinator`]) plans the whole run from a team file,
//! gives every task a disjoint set of owned files, spawns teammates on a
//! [`backend`], routes their messages through the [`mailbox`] and the shared
//! [`tasks`] list, and merges their results into one report. Teammates are
//! WebAssembly components run in the [`sandbox`], reaching the host only
//! through the imports of `wit/teammate.wit`, which call the team through a
//! [`port`]; a teammate in another process reaches it over a Unix socket in
//! the versioned frames of [`protocol`].
//!
//! Layers, bottom to top (`host/tests/layering.rs` fails on an import
//! against them): [`model`] and [`sanitize`]; the core ([`tasks`],
//! [`mailbox`], [`team`], [`port`]) and the host's model calls ([`llm`]);
//! [`sandbox`] and [`protocol`] side by side, neither naming the other;
//! [`backend`]; [`coordinator`]; [`cli`].

pub mod backend;
pub mod cli;
#[cfg(feature = "nats")]
pub mod cluster;
pub mod coordinator;
pub mod llm;
pub mod mailbox;
pub mod model;
pub mod options_line;
pub mod port;
pub mod protocol;
pub mod sandbox;
pub mod sanitize;
pub mod tasks;
pub mod team;
