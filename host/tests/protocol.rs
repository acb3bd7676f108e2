//! Protocol robustness: every message type round-trips, and hostile or
//! malformed input in either encoding is rejected with an error that names
//! what was wrong (never a panic, never a silent drop).
//!
//! The unit tests in `host/src/protocol/` check the documented shapes; this
//! file is the systematic table of bad input, and property tests over
//! mutated wire text. The cargo-fuzz targets in `fuzz/` run the same
//! parsers on inputs libFuzzer invents.

use proptest::prelude::*;
use swarm_host::protocol::json::{MAX_JSON_BYTES, MAX_JSON_DEPTH, TYPES};
use swarm_host::protocol::xml::MAX_XML_BYTES;
use swarm_host::protocol::{Finding, ProtocolError, Severity, TeamLeadMessage, TeammateMessage};

/// One sample of every teammate → coordinator message type.
fn samples() -> Vec<TeammateMessage> {
    let s = |x: &str| x.to_string();
    vec![
        TeammateMessage::TaskCompleted {
            from: s("a-1"),
            task_id: s("t1"),
            summary: s("3 markers"),
            findings: vec![Finding {
                file: s("src/a.rs"),
                line: Some(2),
                rule: s("todo"),
                message: s("tidy"),
                severity: Severity::Note,
            }],
        },
        TeammateMessage::IdleNotification { from: s("a-1"), reason: Some(s("no tasks")) },
        TeammateMessage::ShutdownRequest { request_id: s("r1"), from: s("a-1"), reason: s("done") },
        TeammateMessage::ShutdownResponse { request_id: s("r1"), from: s("a-1"), approve: false, reason: None },
        TeammateMessage::Progress { from: s("a-1"), task_id: Some(s("t1")), done: 1, total: 2 },
        TeammateMessage::Error { from: s("a-1"), task_id: None, message: s("boom") },
        TeammateMessage::AccessDenied { from: s("a-1"), task_id: None, operation: s("write"), reason: s("x") },
        TeammateMessage::Message { from: s("a-1"), to: s("team-lead"), body: s("hi"), summary: None },
    ]
}

fn type_of(m: &TeammateMessage) -> String {
    let v: serde_json::Value = serde_json::from_str(&m.encode()).unwrap();
    v["type"].as_str().unwrap().to_string()
}

#[test]
fn every_json_type_has_a_round_tripping_sample() {
    let samples = samples();
    for m in &samples {
        assert_eq!(TeammateMessage::decode(&m.encode()).as_ref(), Ok(m));
    }
    let covered: Vec<String> = samples.iter().map(type_of).collect();
    for t in TYPES {
        assert!(covered.iter().any(|c| c == t), "message type `{t}` has no round-trip sample here");
    }
}

#[test]
fn malformed_xml_is_rejected_with_a_named_error() {
    let ok = |body: &str| format!(r#"<team_lead v="1" teammate_id="a">{body}</team_lead>"#);
    let billion_laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">{}]>{}"#,
        (1..10).map(|i| format!(r#"<!ENTITY lol{i} "{}">"#, format!("&lol{};", i - 1).repeat(10))).collect::<String>(),
        ok("&lol9;")
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("doctype", format!("<!DOCTYPE team_lead>{}", ok("t")), "forbidden construct: DOCTYPE"),
        ("billion laughs", billion_laughs, "forbidden construct: DOCTYPE"),
        (
            "external entity",
            format!(r#"<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>{}"#, ok("&xxe;")),
            "forbidden construct: DOCTYPE",
        ),
        ("undeclared entity", ok("&xxe;"), "forbidden construct: entity reference &xxe;"),
        (
            "processing instruction",
            format!("<?php evil() ?>{}", ok("t")),
            "forbidden construct: processing instruction",
        ),
        ("comment", ok("<!-- hidden -->t"), "forbidden construct: comment"),
        ("nested element", ok("<cmd>rm</cmd>"), "forbidden construct: element <cmd>"),
        ("deep nesting", ok(&"<a>".repeat(50_000)), "forbidden construct: element <a>"),
        ("unclosed root", r#"<team_lead v="1" teammate_id="a">open"#.into(), "malformed message: unclosed <team_lead>"),
        ("unclosed tag", r#"<team_lead v="1" teammate_id="a"#.into(), "malformed message"),
        ("second root", format!("{}{}", ok("t"), ok("u")), "forbidden construct: element <team_lead>"),
        ("trailing text", format!("{}trailing", ok("t")), "forbidden construct: content outside <team_lead>"),
        ("empty", String::new(), "malformed message: empty input"),
        ("self-closing", r#"<team_lead v="1" teammate_id="a"/>"#.into(), "malformed message: <team_lead/> has no text"),
        ("wrong root", r#"<boss v="1" teammate_id="a">t</boss>"#.into(), "unknown message type `boss`"),
        ("no version", r#"<team_lead teammate_id="a">t</team_lead>"#.into(), "missing field `v`"),
        ("wrong version", r#"<team_lead v="2" teammate_id="a">t</team_lead>"#.into(), "unsupported protocol version 2"),
        ("no addressee", r#"<team_lead v="1">t</team_lead>"#.into(), "missing field `teammate_id`"),
        (
            "unknown attribute",
            r#"<team_lead v="1" teammate_id="a" admin="yes">t</team_lead>"#.into(),
            "invalid field `admin`: unknown attribute",
        ),
        (
            "huge attribute",
            format!(r#"<team_lead v="1" teammate_id="{}">t</team_lead>"#, "a".repeat(MAX_XML_BYTES)),
            "over the 262144-byte limit",
        ),
        ("huge text", ok(&"t".repeat(MAX_XML_BYTES)), "over the 262144-byte limit"),
        ("NUL reference", ok("&#0;"), "malformed message: invalid character reference"),
        ("escape reference", ok("&#27;"), "malformed message: invalid character reference"),
        ("bad reference", ok("&#xZZ;"), "malformed message"),
    ];
    let err = TeamLeadMessage::decode(r#"<team_lead v="1" teammate_id="a">t</lead>"#).expect_err("mismatched end");
    assert!(matches!(err, ProtocolError::Malformed(_) | ProtocolError::Forbidden(_)), "mismatched end: {err}");
    for (name, input, want) in &cases {
        let err = TeamLeadMessage::decode(input).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err} does not contain {want:?}");
    }
}

#[test]
fn malformed_json_is_rejected_with_a_named_error() {
    let cases: Vec<(&str, String, ProtocolError)> = vec![
        ("excess depth (arrays)", "[".repeat(MAX_JSON_DEPTH + 1), ProtocolError::TooDeep { limit: MAX_JSON_DEPTH }),
        (
            "excess depth (inside a valid message)",
            format!(
                r#"{{"v":1,"type":"error","from":"a","message":"m","x":{}1{}}}"#,
                "[".repeat(MAX_JSON_DEPTH),
                "]".repeat(MAX_JSON_DEPTH)
            ),
            ProtocolError::TooDeep { limit: MAX_JSON_DEPTH },
        ),
        ("unknown type", r#"{"v":1,"type":"rm_rf","from":"a"}"#.into(), ProtocolError::UnknownType("rm_rf".into())),
        ("wrong version", r#"{"v":2,"type":"error","from":"a","message":"m"}"#.into(), unsupported("2")),
        ("version as string", r#"{"v":"1","type":"error","from":"a","message":"m"}"#.into(), unsupported("\"1\"")),
        ("version as float", r#"{"v":1.5,"type":"error","from":"a","message":"m"}"#.into(), unsupported("1.5")),
        ("negative version", r#"{"v":-1,"type":"error","from":"a","message":"m"}"#.into(), unsupported("-1")),
        ("no version", r#"{"type":"error","from":"a","message":"m"}"#.into(), ProtocolError::MissingField("v")),
        ("no type", r#"{"v":1,"from":"a"}"#.into(), ProtocolError::MissingField("type")),
    ];
    for (name, input, want) in &cases {
        assert_eq!(&TeammateMessage::decode(input).expect_err(name), want, "{name}");
    }
    let huge = format!(r#"{{"v":1,"type":"error","from":"a","message":"{}"}}"#, "x".repeat(MAX_JSON_BYTES));
    let err = TeammateMessage::decode(&huge).expect_err("huge string");
    assert!(err.to_string().contains("over the 1048576-byte limit"), "{err}");
    let named: Vec<(&str, &str, &str)> = vec![
        ("not an object", "[1,2]", "malformed message: expected a JSON object"),
        ("truncated", r#"{"v":1,"type":"err"#, "malformed message"),
        ("trailing garbage", r#"{"v":1,"type":"error","from":"a","message":"m"} {}"#, "malformed message"),
        ("type not a string", r#"{"v":1,"type":7,"from":"a"}"#, "invalid field `type`"),
        ("unknown field", r#"{"v":1,"type":"error","from":"a","message":"m","admin":true}"#, "admin"),
        ("missing field", r#"{"v":1,"type":"progress","from":"a","done":1}"#, "total"),
        (
            "wrong field type",
            r#"{"v":1,"type":"progress","from":"a","done":"1","total":2}"#,
            "invalid field `progress`",
        ),
        ("overflowing number", r#"{"v":1,"type":"progress","from":"a","done":4294967296,"total":1}"#, "progress"),
        ("lone surrogate", r#"{"v":1,"type":"error","from":"a","message":"\ud800"}"#, "malformed message"),
        ("NUL outside a string", "{\"v\":1,\0}", "malformed message"),
    ];
    for (name, input, want) in &named {
        let err = TeammateMessage::decode(input).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err} does not contain {want:?}");
    }
}

fn unsupported(found: &str) -> ProtocolError {
    ProtocolError::UnsupportedVersion { found: found.into() }
}

fn any_message() -> impl Strategy<Value = TeammateMessage> {
    (0..samples().len(), ".{0,40}", ".{0,40}").prop_map(|(i, a, b)| match samples().swap_remove(i) {
        TeammateMessage::TaskCompleted { from, task_id, .. } => TeammateMessage::TaskCompleted {
            from,
            task_id,
            summary: a.clone(),
            findings: vec![Finding { file: a, line: None, rule: b.clone(), message: b, severity: Severity::Error }],
        },
        TeammateMessage::Message { from, to, .. } => TeammateMessage::Message { from, to, body: a, summary: Some(b) },
        TeammateMessage::Error { from, task_id, .. } => TeammateMessage::Error { from, task_id, message: a + &b },
        other => other,
    })
}

proptest! {
    /// Cutting, splicing or flipping a byte of a valid JSON message gives a
    /// message or an error, never a panic; whatever decodes re-encodes to
    /// something that decodes to the same message.
    #[test]
    fn mutated_json_never_panics(m in any_message(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut wire = m.encode().into_bytes();
        let i = at.index(wire.len());
        if cut { wire.truncate(i) } else { wire[i] = byte }
        if let Ok(text) = std::str::from_utf8(&wire)
            && let Ok(decoded) = TeammateMessage::decode(text)
        {
            prop_assert_eq!(TeammateMessage::decode(&decoded.encode()), Ok(decoded));
        }
    }

    /// The same for XML.
    #[test]
    fn mutated_xml_never_panics(text in ".{0,40}", id in "[a-z0-9-]{1,12}", at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let m = TeamLeadMessage { teammate_id: id, color: Some("blue".into()), summary: None, text };
        let Ok(wire) = m.encode() else { return Ok(()) };
        let mut wire = wire.into_bytes();
        let i = at.index(wire.len());
        if cut { wire.truncate(i) } else { wire[i] = byte }
        if let Ok(text) = std::str::from_utf8(&wire)
            && let Ok(decoded) = TeamLeadMessage::decode(text)
            && let Ok(again) = decoded.encode()
        {
            prop_assert_eq!(TeamLeadMessage::decode(&again), Ok(decoded));
        }
    }
}
