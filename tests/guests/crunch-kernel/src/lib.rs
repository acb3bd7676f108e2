//! The CPU-bound kernel of the sandbox-overhead benchmark, in one place so
//! the `cruncher` guest (compiled to wasm) and its native twin (the bench
//! itself) run exactly the same code.
//!
//! [`crunch`] fills a 64 KiB buffer with xorshift bytes, then makes `rounds`
//! passes over it: each pass hashes the buffer with FNV-1a through a
//! 256-entry substitution table (loads from two arrays, a multiply chain) and
//! flips the byte the hash points at, so no pass can be skipped or hoisted.

/// Size of the buffer every pass hashes.
pub const BUF_BYTES: usize = 64 * 1024;

/// Runs `rounds` passes and returns the last hash (a checksum that proves
/// both builds did the same work).
pub fn crunch(rounds: u32) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let table: Vec<u64> = (0..256).map(|_| next()).collect();
    let mut buf: Vec<u8> = (0..BUF_BYTES).map(|_| next() as u8).collect();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for round in 0..rounds {
        hash = 0xcbf2_9ce4_8422_2325 ^ u64::from(round);
        for &b in &buf {
            hash = (hash ^ table[usize::from(b)]).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let at = (hash % BUF_BYTES as u64) as usize;
        buf[at] = buf[at].wrapping_add(1);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_change_the_checksum_and_runs_repeat() {
        assert_eq!(crunch(3), crunch(3));
        assert_ne!(crunch(3), crunch(4));
    }
}
