//! What a teammate found: a [`Finding`] on a file (and line), with a
//! [`Severity`]. Plain data, persisted in state and reports; the socket
//! carries its own v1 copy (`protocol::wire`).

use serde::{Deserialize, Serialize};

/// How much a finding matters (mirrors the WIT `severity` enum, added in
/// `swarm:teammate@0.1.1`). Ordered: `note < warning < error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, nothing to fix (e.g. a TODO marker).
    Note,
    /// Should be looked at. The severity of a finding that names none (a
    /// guest built against `swarm:teammate@0.1.0`, or an older report).
    #[default]
    Warning,
    /// Must be fixed (e.g. a leaked secret).
    Error,
}

impl Severity {
    /// The lowercase name: `note`, `warning` or `error` (also SARIF's
    /// `level` values).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a teammate found (mirrors the WIT `rated-finding` record; a
/// plain `finding` arrives with severity `warning`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Path relative to the workspace root.
    pub file: String,
    /// 1-based line, when the finding is on a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Machine-readable rule name.
    pub rule: String,
    /// Human-readable message.
    pub message: String,
    /// How much it matters; `warning` when the sender named none.
    #[serde(default)]
    pub severity: Severity,
}
