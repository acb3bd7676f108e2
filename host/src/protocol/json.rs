//! Teammate → coordinator messages as JSON, e.g.
//! `{"v":1,"type":"shutdown_request","requestId":"r1","from":"lint-1","reason":"done"}`.
//!
//! Decoding is strict and staged so that each failure names what was wrong:
//! size cap, nesting depth, well-formedness, version, type tag, then fields
//! (unknown fields are rejected too).

use serde::{Deserialize, Serialize};

use super::{ProtocolError, VERSION};

/// Size cap of one JSON message, in bytes.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;
/// Maximum nesting of arrays and objects.
pub const MAX_JSON_DEPTH: usize = 16;

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

/// Every message a teammate sends to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum TeammateMessage {
    /// A held task is done.
    TaskCompleted {
        /// Sender id.
        from: String,
        /// The task's id.
        task_id: String,
        /// One-line summary.
        summary: String,
        /// Structured findings.
        #[serde(default)]
        findings: Vec<Finding>,
    },
    /// The teammate holds no task and waits.
    IdleNotification {
        /// Sender id.
        from: String,
        /// Why it is idle, when it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The teammate asks to be shut down.
    ShutdownRequest {
        /// Correlates the response.
        request_id: String,
        /// Sender id.
        from: String,
        /// Why.
        reason: String,
    },
    /// The answer to a shutdown request from the team lead.
    ShutdownResponse {
        /// The request being answered.
        request_id: String,
        /// Sender id.
        from: String,
        /// True to approve (the teammate then exits).
        approve: bool,
        /// Why it rejects, when it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Progress on the held task.
    Progress {
        /// Sender id.
        from: String,
        /// The held task, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// Units done.
        done: u32,
        /// Units in all.
        total: u32,
    },
    /// Something went wrong; with a `task_id`, that task failed.
    Error {
        /// Sender id.
        from: String,
        /// The task that failed, if the error is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The sandbox refused a file operation (reported by the host side of
    /// the teammate, not by the guest, so a guest cannot hide it).
    AccessDenied {
        /// Sender id.
        from: String,
        /// The held task, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// `read`, `write` or `list`.
        operation: String,
        /// Why, including the path.
        reason: String,
    },
    /// A text message for another teammate or the team lead.
    Message {
        /// Sender id.
        from: String,
        /// Recipient id, `team-lead`, or `*` for broadcast.
        to: String,
        /// The text.
        body: String,
        /// A short summary for the team view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
}

/// The `type` tags this version knows, in declaration order.
pub const TYPES: &[&str] = &[
    "task_completed",
    "idle_notification",
    "shutdown_request",
    "shutdown_response",
    "progress",
    "error",
    "access_denied",
    "message",
];

impl TeammateMessage {
    /// The sender's id.
    pub fn from(&self) -> &str {
        match self {
            Self::TaskCompleted { from, .. }
            | Self::IdleNotification { from, .. }
            | Self::ShutdownRequest { from, .. }
            | Self::ShutdownResponse { from, .. }
            | Self::Progress { from, .. }
            | Self::Error { from, .. }
            | Self::AccessDenied { from, .. }
            | Self::Message { from, .. } => from,
        }
    }

    /// Encodes the message with its version, e.g. `{"v":1,"type":...}`.
    pub fn encode(&self) -> String {
        let mut value = serde_json::to_value(self).expect("protocol types always serialize");
        let map = value.as_object_mut().expect("an internally tagged enum is an object");
        map.insert("v".into(), VERSION.into());
        serde_json::to_string(&value).expect("a JSON value always serializes")
    }

    /// Parses one message, strictly.
    pub fn decode(input: &str) -> Result<Self, ProtocolError> {
        if input.len() > MAX_JSON_BYTES {
            return Err(ProtocolError::TooLarge { limit: MAX_JSON_BYTES, actual: input.len() });
        }
        check_depth(input.as_bytes(), MAX_JSON_DEPTH)?;
        let mut value: serde_json::Value =
            serde_json::from_str(input).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let map = value.as_object_mut().ok_or_else(|| ProtocolError::Malformed("expected a JSON object".into()))?;
        match map.remove("v") {
            None => return Err(ProtocolError::MissingField("v")),
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => return Err(ProtocolError::UnsupportedVersion { found: v.to_string() }),
        }
        match map.get("type") {
            None => return Err(ProtocolError::MissingField("type")),
            Some(serde_json::Value::String(t)) if TYPES.contains(&t.as_str()) => {}
            Some(serde_json::Value::String(t)) => return Err(ProtocolError::UnknownType(t.clone())),
            Some(other) => {
                return Err(ProtocolError::InvalidField {
                    field: "type".into(),
                    reason: format!("expected a string, got {other}"),
                });
            }
        }
        let kind = map["type"].as_str().unwrap_or_default().to_string();
        serde_json::from_value(value).map_err(|e| ProtocolError::InvalidField { field: kind, reason: e.to_string() })
    }
}

/// Rejects input nesting deeper than `limit` before any allocation happens.
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), ProtocolError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(ProtocolError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_the_documented_shape() {
        let m =
            TeammateMessage::ShutdownRequest { request_id: "r1".into(), from: "lint-1".into(), reason: "done".into() };
        let v: serde_json::Value = serde_json::from_str(&m.encode()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v":1,"type":"shutdown_request","requestId":"r1","from":"lint-1","reason":"done"})
        );
        assert_eq!(TeammateMessage::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn rejects_with_named_errors() {
        let cases: &[(&str, ProtocolError)] = &[
            (r#"{"type":"progress"}"#, ProtocolError::MissingField("v")),
            (r#"{"v":2,"type":"progress"}"#, ProtocolError::UnsupportedVersion { found: "2".into() }),
            (r#"{"v":"1","type":"progress"}"#, ProtocolError::UnsupportedVersion { found: "\"1\"".into() }),
            (r#"{"v":1}"#, ProtocolError::MissingField("type")),
            (r#"{"v":1,"type":"launch_missiles"}"#, ProtocolError::UnknownType("launch_missiles".into())),
            (&"[".repeat(100), ProtocolError::TooDeep { limit: MAX_JSON_DEPTH }),
        ];
        for (input, want) in cases {
            assert_eq!(&TeammateMessage::decode(input).unwrap_err(), want, "{input}");
        }
        assert!(matches!(TeammateMessage::decode("{\"v\":1,"), Err(ProtocolError::Malformed(_))));
        assert!(matches!(TeammateMessage::decode("[1]"), Err(ProtocolError::Malformed(_))));
        assert!(matches!(
            TeammateMessage::decode(r#"{"v":1,"type":"progress","from":"a","done":1}"#),
            Err(ProtocolError::InvalidField { field, reason }) if field == "progress" && reason.contains("total")
        ));
        assert!(matches!(
            TeammateMessage::decode(r#"{"v":1,"type":"idle_notification","from":"a","admin":true}"#),
            Err(ProtocolError::InvalidField { reason, .. }) if reason.contains("admin")
        ));
        let huge = format!(r#"{{"v":1,"type":"error","from":"a","message":"{}"}}"#, "x".repeat(MAX_JSON_BYTES));
        assert!(matches!(TeammateMessage::decode(&huge), Err(ProtocolError::TooLarge { limit: MAX_JSON_BYTES, .. })));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_depth() {
        let m =
            TeammateMessage::Error { from: "a".into(), task_id: None, message: "[[[[[[[[[[[[[[[[[[[[\\\"[[[[".into() };
        assert_eq!(TeammateMessage::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn a_finding_without_severity_is_a_warning() {
        let f: Finding = serde_json::from_str(r#"{"file":"a.rs","rule":"r","message":"m"}"#).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        let f: Finding =
            serde_json::from_str(r#"{"file":"a.rs","rule":"r","message":"m","severity":"error"}"#).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(Severity::Note < Severity::Warning && Severity::Warning < Severity::Error);
    }

    fn finding() -> impl Strategy<Value = Finding> {
        let severity = prop_oneof![Just(Severity::Note), Just(Severity::Warning), Just(Severity::Error)];
        (any::<String>(), any::<Option<u32>>(), any::<String>(), any::<String>(), severity)
            .prop_map(|(file, line, rule, message, severity)| Finding { file, line, rule, message, severity })
    }

    fn message() -> impl Strategy<Value = TeammateMessage> {
        let s = any::<String>;
        let os = any::<Option<String>>;
        prop_oneof![
            (s(), s(), s(), proptest::collection::vec(finding(), 0..4)).prop_map(
                |(from, task_id, summary, findings)| {
                    TeammateMessage::TaskCompleted { from, task_id, summary, findings }
                }
            ),
            (s(), os()).prop_map(|(from, reason)| TeammateMessage::IdleNotification { from, reason }),
            (s(), s(), s()).prop_map(|(request_id, from, reason)| TeammateMessage::ShutdownRequest {
                request_id,
                from,
                reason
            }),
            (s(), s(), any::<bool>(), os()).prop_map(|(request_id, from, approve, reason)| {
                TeammateMessage::ShutdownResponse { request_id, from, approve, reason }
            }),
            (s(), os(), any::<u32>(), any::<u32>())
                .prop_map(|(from, task_id, done, total)| { TeammateMessage::Progress { from, task_id, done, total } }),
            (s(), os(), s()).prop_map(|(from, task_id, message)| TeammateMessage::Error { from, task_id, message }),
            (s(), os(), s(), s()).prop_map(|(from, task_id, operation, reason)| TeammateMessage::AccessDenied {
                from,
                task_id,
                operation,
                reason
            }),
            (s(), s(), s(), os()).prop_map(|(from, to, body, summary)| TeammateMessage::Message {
                from,
                to,
                body,
                summary
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_type_round_trips(m in message()) {
            prop_assert_eq!(TeammateMessage::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,256}") {
            let _ = TeammateMessage::decode(&s);
        }
    }
}
