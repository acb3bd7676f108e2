//! The socket's frame reader and decoder on arbitrary bytes: the first byte
//! picks the direction (bit 0: coordinator → teammate) and the frame cap
//! (the other bits: 0 is the default cap, n is n × 32 bytes); the rest is
//! the stream. Every frame read must re-encode to bytes that decode to the
//! same frame; nothing may panic, hang or allocate past the cap.

#![no_main]

use std::fmt::Debug;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use swarm_protocol_fuzz::protocol::frame::{FrameReader, MAX_FRAME_BYTES, ToCoordinator, ToTeammate, decode, encode};

fn read_all<T: DeserializeOwned + Serialize + PartialEq + Debug>(stream: &[u8], limit: usize) {
    let mut reader = FrameReader::new(stream, limit);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // A byte slice is always ready: one poll reads a frame, an error or
        // the end.
        let Poll::Ready(next) = pin!(reader.next::<T>()).poll(&mut cx) else { panic!("a byte slice never waits") };
        match next {
            Ok(Some(frame)) => {
                let again: T = decode(&encode(&frame).expect("a decoded frame encodes")).expect("and decodes again");
                assert_eq!(again, frame);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else { return };
    let limit = match usize::from(first >> 1) {
        0 => MAX_FRAME_BYTES,
        n => n * 32,
    };
    if first & 1 == 0 {
        read_all::<ToCoordinator>(stream, limit);
        // The payload decoder on its own, without the length prefix.
        let _ = decode::<ToCoordinator>(stream);
    } else {
        read_all::<ToTeammate>(stream, limit);
        let _ = decode::<ToTeammate>(stream);
    }
});
