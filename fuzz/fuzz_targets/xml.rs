//! Fuzzes the coordinator → teammate XML parser: no input may panic, and
//! every message it accepts must encode and decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_protocol_fuzz::protocol::TeamLeadMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(msg) = TeamLeadMessage::decode(input) else {
        return;
    };
    // Encoding may refuse what XML cannot carry (a raw control character
    // that came in as text) or grow past the size cap through escaping;
    // whatever it does encode must decode to the same message.
    if let Ok(wire) = msg.encode() {
        assert_eq!(TeamLeadMessage::decode(&wire).as_ref(), Ok(&msg), "round trip of {wire:?}");
    }
});
