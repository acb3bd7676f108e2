//! Protocol robustness: every frame type round-trips through the real
//! frame reader, and hostile or malformed frames are rejected with an error
//! that names what was wrong (never a panic, never a silent drop).
//!
//! The unit tests in `host/src/protocol/` check the documented shapes; this
//! file is the systematic table of bad input, and property tests over
//! mutated frames. The cargo-fuzz target `frame` in `fuzz/` runs the same
//! reader and decoder on inputs libFuzzer invents.

use proptest::prelude::*;
use swarm_host::protocol::frame::{
    Call, FrameError, FrameReader, MAX_FRAME_BYTES, Reply, ToCoordinator, ToTeammate, decode, encode, encode_frame,
};
use swarm_host::protocol::wire::{
    WireBeat, WireDependency, WireEvent, WireExitReason, WireFinding, WireIncoming, WireLimitKind, WireSendError,
    WireSeverity, WireTaskReport, WireTaskSpec,
};

fn events(a: &str, b: &str) -> Vec<WireEvent> {
    let from = || "lint-1".to_string();
    vec![
        WireEvent::TaskCompleted {
            from: from(),
            task_id: "t1".into(),
            summary: a.into(),
            findings: vec![WireFinding {
                file: a.into(),
                line: Some(3),
                rule: b.into(),
                message: b.into(),
                severity: WireSeverity::Error,
            }],
        },
        WireEvent::IdleNotification { from: from(), reason: Some(a.into()) },
        WireEvent::ShutdownRequest { request_id: "r1".into(), from: from(), reason: a.into() },
        WireEvent::ShutdownResponse { request_id: "r1".into(), from: from(), approve: false, reason: Some(b.into()) },
        WireEvent::Progress { from: from(), task_id: None, done: 1, total: 2 },
        WireEvent::Error { from: from(), task_id: Some("t1".into()), message: a.into() },
        WireEvent::AccessDenied { from: from(), task_id: None, operation: "read".into(), reason: b.into() },
        WireEvent::Message { from: from(), to: "*".into(), body: a.into(), summary: Some(b.into()) },
    ]
}

/// One sample of every frame a teammate process sends.
fn to_coordinator(a: &str, b: &str) -> Vec<ToCoordinator> {
    let calls = [
        Call::Recv { timeout_ms: 5 },
        Call::Send { to: "w-2".into(), body: a.into(), summary: None },
        Call::Broadcast { body: a.into(), summary: Some(b.into()) },
        Call::Roster,
        Call::Claim,
        Call::Complete { task_id: "t1".into(), report: WireTaskReport { summary: a.into(), findings: vec![] } },
        Call::Fail { task_id: "t1".into(), reason: b.into() },
    ];
    let mut frames = vec![
        ToCoordinator::Hello { agent_id: "lint-1".into(), token: b.into(), pid: 7 },
        ToCoordinator::Beat { beat: WireBeat::Progress { done: 1, total: 2 } },
        ToCoordinator::Heartbeat,
        ToCoordinator::Exit {
            reason: WireExitReason::Killed { message: a.into(), limit: Some(WireLimitKind::Memory) },
        },
    ];
    frames.extend(calls.into_iter().enumerate().map(|(i, call)| ToCoordinator::Request { id: i as u64, call }));
    frames.extend(events(a, b).into_iter().map(|message| ToCoordinator::Event { message }));
    frames
}

/// One sample of every frame the coordinator sends (but the welcome, whose
/// launch configuration the unit tests cover).
fn to_teammate(a: &str) -> Vec<ToTeammate> {
    let spec = WireTaskSpec {
        id: "t1".into(),
        subject: a.into(),
        description: a.into(),
        owned_files: vec!["a.rs".into()],
        owner: None,
        blocked_by: vec![],
        deadline_ms: Some(1000),
        max_attempts: 2,
        creates: vec![],
    };
    let replies = [
        Reply::Incoming { entry: Some(WireIncoming::Message { sender: "w".into(), body: a.into(), summary: None }) },
        Reply::Incoming { entry: Some(WireIncoming::TasksAvailable) },
        Reply::Sent { error: Some(WireSendError::InboxFull { recipient: "w".into(), limit: 3 }) },
        Reply::Roster { ids: vec![a.into()] },
        Reply::Claimed {
            task: Some((Box::new(spec), 1)),
            dependencies: vec![WireDependency {
                task_id: a.into(),
                subject: a.into(),
                summary: a.into(),
                findings: Vec::new(),
                omitted_findings: 1,
            }],
        },
        Reply::Done { error: Some(a.into()) },
    ];
    let mut frames = vec![ToTeammate::Refused { reason: a.into() }];
    frames.extend(replies.into_iter().enumerate().map(|(i, reply)| ToTeammate::Response { id: i as u64, reply }));
    frames
}

/// Every frame read back by a [`FrameReader`] from one stream of all of them.
fn read_all<T: for<'de> serde::Deserialize<'de>>(bytes: &[u8]) -> Vec<Result<T, String>> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut reader = FrameReader::new(bytes, MAX_FRAME_BYTES);
        let mut got = Vec::new();
        loop {
            match reader.next::<T>().await {
                Ok(Some(frame)) => got.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => {
                    got.push(Err(e.to_string()));
                    break;
                }
            }
        }
        got
    })
}

#[test]
fn every_frame_type_round_trips_through_the_reader() {
    let sent = to_coordinator("a <b> & \"c\" \u{1}", "ünï");
    let mut bytes = Vec::new();
    for f in &sent {
        encode_frame(f, &mut bytes, MAX_FRAME_BYTES).unwrap();
    }
    let got: Vec<ToCoordinator> = read_all(&bytes).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, sent);
    let sent = to_teammate("x");
    let mut bytes = Vec::new();
    for f in &sent {
        encode_frame(f, &mut bytes, MAX_FRAME_BYTES).unwrap();
    }
    let got: Vec<ToTeammate> = read_all(&bytes).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, sent);
}

#[test]
fn malformed_frames_are_rejected_with_a_named_error() {
    let version_cases = [
        ("wrong version", r#"{"v":2,"type":"heartbeat"}"#, "2"),
        ("version as string", r#"{"v":"1","type":"heartbeat"}"#, "\"1\""),
        ("version as float", r#"{"v":1.5,"type":"heartbeat"}"#, "1.5"),
        ("negative version", r#"{"v":-1,"type":"heartbeat"}"#, "-1"),
        ("no version", r#"{"type":"heartbeat"}"#, "none"),
    ];
    for (name, input, want) in version_cases {
        let err = decode::<ToCoordinator>(input.as_bytes()).expect_err(name);
        assert!(matches!(&err, FrameError::UnsupportedVersion { found } if found == want), "{name}: {err}");
    }
    let event = |rest: &str| format!(r#"{{"v":1,"type":"event","message":{{"type":"error","from":"a"{rest}}}}}"#);
    let progress = |done: &str| {
        format!(r#"{{"v":1,"type":"event","message":{{"type":"progress","from":"a","done":{done},"total":2}}}}"#)
    };
    let named: Vec<(&str, String, &str)> = vec![
        ("unknown type", r#"{"v":1,"type":"rm_rf"}"#.into(), "rm_rf"),
        ("no type", r#"{"v":1,"pid":3}"#.into(), "missing field `type`"),
        ("not an object", "[1,2]".into(), "expected a JSON object"),
        ("truncated", r#"{"v":1,"type":"heart"#.into(), "EOF"),
        ("trailing garbage", r#"{"v":1,"type":"heartbeat"} {}"#.into(), "trailing characters"),
        ("type not a string", r#"{"v":1,"type":7}"#.into(), "malformed frame"),
        ("unknown event type", event(r#","message":"m","kind":"x""#).replace("\"error\"", "\"rm_rf\""), "rm_rf"),
        ("unknown field in an event", event(r#","message":"m","admin":true"#), "unknown field `admin`"),
        ("missing field in an event", event(""), "missing field `message`"),
        ("wrong field type", progress("\"1\""), "invalid type: string"),
        ("overflowing number", progress("4294967296"), "invalid value"),
        ("lone surrogate", event(r#","message":"\ud800""#), "hex escape"),
        ("NUL outside a string", "{\"v\":1,\0}".into(), "malformed frame"),
        (
            "deep nesting",
            format!(r#"{{"v":1,"type":"hello","agent_id":{}1{}}}"#, "[".repeat(200), "]".repeat(200)),
            "recursion limit",
        ),
    ];
    for (name, input, want) in &named {
        let err = decode::<ToCoordinator>(input.as_bytes()).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: `{err}` does not contain {want:?}");
    }
    // A length prefix over the cap is refused before its payload is read.
    let mut huge = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let got = read_all::<ToCoordinator>(&huge);
    assert!(matches!(&got[..], [Err(e)] if e.contains("over the 16777216-byte frame limit")), "{got:?}");
}

proptest! {
    /// Cutting or flipping a byte of a stream of valid frames gives frames
    /// or an error, never a panic; whatever decodes re-encodes to a frame
    /// that decodes to the same value.
    #[test]
    fn mutated_frames_never_panic(a in ".{0,40}", b in ".{0,40}", at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = Vec::new();
        for f in to_coordinator(&a, &b) {
            encode_frame(&f, &mut bytes, MAX_FRAME_BYTES).unwrap();
        }
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        for frame in read_all::<ToCoordinator>(&bytes).into_iter().flatten() {
            prop_assert_eq!(decode::<ToCoordinator>(&encode(&frame).unwrap()).unwrap(), frame);
        }
    }
}
