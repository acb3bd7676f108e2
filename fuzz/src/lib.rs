//! The socket protocol of swarm-host, compiled on its own for fuzzing.
//!
//! `host/src/protocol/` uses no other module of swarm-host (the host's
//! `tests/layering.rs` checks) and depends only on serde, serde_json,
//! thiserror and tokio's I/O traits, so the fuzz target compiles those very
//! source files here instead of depending on the `swarm-host` crate: an
//! instrumented build of wasmtime and cranelift would take many times
//! longer than the fuzzing itself, and fuzzes nothing of ours.

#[path = "../../host/src/protocol/mod.rs"]
pub mod protocol;
