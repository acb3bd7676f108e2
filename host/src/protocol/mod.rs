//! Versioned wire formats between the coordinator and its teammates.
//!
//! - coordinator → teammate: XML (`<team_lead v="1" ...>text</team_lead>`), see [`xml`];
//! - teammate → coordinator: JSON with a `"v"` version and a `"type"` tag, see [`json`].
//!
//! Every parser has a size cap and rejects what it does not understand with a
//! [`ProtocolError`] that names the field or the limit; nothing is dropped
//! silently and nothing panics.

// The socket framing uses the host's task, team and sandbox types; the fuzz
// crate (`fuzz/`, built with `--cfg fuzzing`) compiles only the parsers.
#[cfg(not(fuzzing))]
pub mod frame;
pub mod json;
pub mod xml;

pub use json::{Finding, Severity, TeammateMessage};
pub use xml::TeamLeadMessage;

/// The only protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Why a wire message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The input is larger than the parser's size cap.
    #[error("message is {actual} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
        /// The input's size in bytes.
        actual: usize,
    },
    /// The input nests deeper than the parser allows.
    #[error("message nests deeper than the limit of {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// The `v` field names a version this build does not speak.
    #[error("unsupported protocol version {found} (this build speaks v{VERSION})")]
    UnsupportedVersion {
        /// The version found in the message.
        found: String,
    },
    /// The `type` tag (JSON) or element name (XML) is not one we know.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A required field or attribute is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present but its value is not acceptable.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The field or attribute name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A construct the protocol forbids (DOCTYPE, entity declaration, nested
    /// element, processing instruction, ...).
    #[error("forbidden construct: {0}")]
    Forbidden(String),
    /// The input is not well-formed.
    #[error("malformed message: {0}")]
    Malformed(String),
}
