//! Fuzzes the teammate → coordinator JSON parser: no input may panic, and
//! every message it accepts must encode and decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_protocol_fuzz::protocol::TeammateMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(msg) = TeammateMessage::decode(input) else {
        return;
    };
    let wire = msg.encode();
    assert_eq!(TeammateMessage::decode(&wire).as_ref(), Ok(&msg), "round trip of {wire:?}");
});
