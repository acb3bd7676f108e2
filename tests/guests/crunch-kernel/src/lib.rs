//! The kernels of the sandbox-overhead benchmark, in one place so the
//! `cruncher` guest (compiled to wasm) and its native twin (the bench
//! itself) run exactly the same code. Each returns a checksum that proves
//! both builds did the same work.
//!
//! - [`crunch`]: a multiply chain over a buffer that stays in the L1/L2
//!   cache, few branches: what wasm does best.
//! - [`scan`]: the `todo-scan` marker scan (whole-word `TODO`, `FIXME`,
//!   `XXX`, one allocated string per hit) over a large generated text held
//!   in memory: byte searches, UTF-8 decoding, many unpredictable branches
//!   and allocations.
//! - [`map`]: a hash map of `u64` keys much larger than the CPU caches,
//!   inserted, looked up at random and shrunk again: cache misses, bounds
//!   checks on every memory access, the allocator.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Size of the buffer every pass of [`crunch`] hashes.
pub const BUF_BYTES: usize = 64 * 1024;

/// A xorshift generator: the same bytes on every build.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Fills a 64 KiB buffer with xorshift bytes, then makes `rounds` passes
/// over it: each pass hashes the buffer with FNV-1a through a 256-entry
/// substitution table (loads from two arrays, a multiply chain) and flips
/// the byte the hash points at, so no pass can be skipped or hoisted.
/// Returns the last hash.
pub fn crunch(rounds: u32) -> u64 {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let table: Vec<u64> = (0..256).map(|_| rng.next()).collect();
    let mut buf: Vec<u8> = (0..BUF_BYTES).map(|_| rng.next() as u8).collect();
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

/// Words of the generated source text: plain code, the three markers, and
/// near misses the whole-word rule must reject (`TODOS`, `MY_TODO`, `XXXL`,
/// a marker after a non-ASCII letter).
const WORDS: &[&str] = &[
    "let",
    "value",
    "=",
    "compute(x,",
    "y);",
    "//",
    "fn",
    "main()",
    "{",
    "}",
    "self.items.push(item);",
    "return",
    "Ok(())",
    "match",
    "state",
    "=>",
    "TODO:",
    "FIXME",
    "XXX",
    "TODOS",
    "MY_TODO",
    "XXXL",
    "éTODO",
    "(see",
    "#42)",
    "todo_list",
    "café",
    "über",
    "if",
    "else",
    "while",
];

/// A text of about `mib` MiB: lines of 4 to 16 words drawn from [`WORDS`].
pub fn text(mib: u32) -> String {
    let bytes = usize::try_from(mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut text = String::with_capacity(bytes + 256);
    while text.len() < bytes {
        text.push_str("    ");
        let words = 4 + rng.next() % 13;
        for w in 0..words {
            if w > 0 {
                text.push(' ');
            }
            text.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
        }
        text.push('\n');
    }
    text
}

/// The `todo-scan` marker scan of [`text`]`(mib)`: for every line, every
/// whole-word occurrence of `TODO`, `FIXME` or `XXX` (the characters around
/// it are not letters, digits or `_`), in column order, each kept as a hit
/// with its line number and the trimmed line (as `todo-scan` builds its
/// findings). The text is generated before the scan; the checksum folds
/// every hit in.
pub fn scan(mib: u32) -> u64 {
    let text = text(mib);
    let hits = find_markers(&text);
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ hits.len() as u64;
    for (line, marker, shown) in &hits {
        hash =
            (hash ^ u64::from(*line) ^ (*marker as u64) << 32 ^ shown.len() as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Markers in the order `todo-scan` checks them.
const MARKERS: [&str; 3] = ["TODO", "FIXME", "XXX"];

/// Every hit of `text`: (1-based line, index into [`MARKERS`], trimmed line).
fn find_markers(text: &str) -> Vec<(u32, usize, String)> {
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for (marker, word) in MARKERS.iter().enumerate() {
            let mut from = 0;
            while let Some(pos) = line[from..].find(word) {
                let start = from + pos;
                let end = start + word.len();
                let before = line[..start].chars().next_back();
                let after = line[end..].chars().next();
                if !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char) {
                    found.push((start, marker));
                }
                from = end;
            }
        }
        if found.is_empty() {
            continue;
        }
        found.sort_by_key(|(start, _)| *start);
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let shown = line.trim().to_string();
        hits.extend(found.into_iter().map(|(_, marker)| (line_no, marker, shown.clone())));
    }
    hits
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A multiplicative hasher (the same on every build, unlike the standard
/// library's randomly seeded one).
#[derive(Default)]
struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
}

/// A hash map workload over `n` random `u64` keys (about 24 MiB of table
/// for a million keys, far beyond the CPU caches): insert them all, then
/// `4 n` lookups of random keys (half of them present), then remove every
/// other key and update the rest. Returns a checksum of what was found.
pub fn map(n: u32) -> u64 {
    let n = n as usize;
    let mut rng = XorShift(0xd1b5_4a32_d192_ed03);
    let keys: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let mut table: HashMap<u64, u64, BuildHasherDefault<MulHasher>> = HashMap::default();
    for (i, &k) in keys.iter().enumerate() {
        *table.entry(k).or_insert(0) += i as u64;
    }
    let mut sum = 0u64;
    for i in 0..4 * n {
        let r = rng.next();
        // Half hits (a key inserted above), half misses (a fresh number).
        // (The index is reduced as a u64: wasm32's usize is 32 bits.)
        let key = if r & 1 == 0 { keys[((r >> 1) % n as u64) as usize] } else { r };
        if let Some(v) = table.get(&key) {
            sum = sum.wrapping_add(v ^ i as u64);
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if i % 2 == 0 {
            table.remove(k);
        } else if let Some(v) = table.get_mut(k) {
            *v = v.wrapping_mul(3);
        }
    }
    sum ^ table.values().fold(table.len() as u64, |acc, v| acc.wrapping_add(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_change_the_checksum_and_runs_repeat() {
        assert_eq!(crunch(3), crunch(3));
        assert_ne!(crunch(3), crunch(4));
    }

    #[test]
    fn the_scan_keeps_todo_scans_whole_word_rule() {
        let hits = find_markers("// TODO: fix\nTODOS MY_TODO XXXL éTODO\nXXX then FIXME then TODO\n");
        let got: Vec<(u32, usize)> = hits.iter().map(|(l, m, _)| (*l, *m)).collect();
        assert_eq!(got, [(1, 0), (3, 2), (3, 1), (3, 0)]);
        assert_eq!(hits[0].2, "// TODO: fix");
    }

    #[test]
    fn the_scan_finds_markers_and_repeats() {
        let text = text(1);
        assert!(text.len() >= 1 << 20);
        assert!(find_markers(&text).len() > 1000);
        assert_eq!(scan(1), scan(1));
    }

    #[test]
    fn the_map_repeats_and_depends_on_its_size() {
        assert_eq!(map(10_000), map(10_000));
        assert_ne!(map(10_000), map(10_001));
    }
}
