//! swarm-host: runs multi-agent teams of sandboxed WebAssembly teammates.
//!
//! A coordinator ([`coordinator`]) plans the whole run from a team file,
//! gives every task a disjoint set of owned files, spawns teammates on a
//! [`backend`], routes their messages through the [`mailbox`] and the shared
//! [`tasks`] list, and merges their results into one report. Teammates are
//! WebAssembly components run in the [`sandbox`], reaching the host only
//! through the imports of `wit/teammate.wit`; messages crossing a process
//! boundary use the versioned wire formats of [`protocol`].

pub mod backend;
pub mod cli;
pub mod coordinator;
pub mod mailbox;
pub mod protocol;
pub mod sandbox;
pub mod sanitize;
pub mod tasks;
pub mod team;
