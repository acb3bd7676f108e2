//! The wire-protocol parsers of swarm-host, compiled on their own for
//! fuzzing.
//!
//! `host/src/protocol/` depends only on serde, serde_json, quick-xml and
//! thiserror, so the fuzz targets compile those very source files here
//! instead of depending on the `swarm-host` crate: an instrumented build of
//! wasmtime and cranelift (which swarm-host pulls in) would take many times
//! longer than the fuzzing itself, and fuzzes nothing of ours.

#[path = "../../host/src/protocol/mod.rs"]
pub mod protocol;
