//! Protocol v1 between the coordinator and a teammate process: the
//! socket's frames ([`frame`]) and the data they carry ([`wire`]).
//!
//! The protocol is a layer of its own: it uses no other module of the
//! crate (`host/tests/layering.rs` checks), so a change to a host type
//! cannot change the wire by accident; `backend::wire` converts between the
//! two. Every decoder has a size cap and rejects what it does not
//! understand with an error that names the field or the limit; nothing is
//! dropped silently and nothing panics. The fuzz crate (`fuzz/`) compiles
//! this module on its own and feeds arbitrary bytes to [`frame::FrameReader`]
//! and [`frame::decode`].

pub mod control;
pub mod frame;
pub mod wire;

/// The only protocol version this build speaks.
pub const VERSION: u32 = 1;
