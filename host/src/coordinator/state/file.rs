//! How a state file reaches the disk: whole and atomic (a temp file in the
//! same directory, fsync, rename over the old file, and an fsync of the
//! directory when the rename must survive a power loss), as indented JSON
//! when it is small and compact when it is large.
//!
//! A large file (a report or task list of many findings: 13 MB for 114,000)
//! is not encoded into one buffer and then written: the encoder hands it in
//! [`CHUNK`]-byte pieces to a second thread that writes them while the next
//! piece is encoded, so encoding and the copy into the page cache overlap
//! (the row-6 report spent 23 ms encoding, then 32 ms in `write`) and no
//! copy of the whole file is held.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;

/// Files up to this size are written indented, for people; larger ones
/// (a report or task list with many findings) compact: no indentation to
/// format and write at every nesting level of every finding.
pub(super) const PRETTY_UP_TO: usize = 256 * 1024;

/// Bytes the encoder hands the writer thread at a time.
const CHUNK: usize = 1 << 20;

/// Chunks in flight between the encoder and the writer.
const IN_FLIGHT: usize = 2;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a state file could not be written.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The value could not be encoded as JSON.
    Encode(serde_json::Error),
    /// The file could not be written.
    Io(std::io::Error),
}

/// Writes `bytes` to `dir/name` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    write_whole(dir, name, bytes, true)
}

/// Writes `bytes` to `dir/name` atomically: the file's contents are synced
/// before the rename, so it is never torn; with `durable_rename`, the
/// directory too, so that after a power loss it is the new version rather
/// than possibly the previous one.
pub(super) fn write_whole(dir: &Path, name: &str, bytes: &[u8], durable_rename: bool) -> std::io::Result<()> {
    let tmp = tmp_path(dir, name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        finish(dir, name, &tmp, durable_rename)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the JSON of `value` to `dir/name` as [`write_whole`] does:
/// indented up to [`PRETTY_UP_TO`] bytes of compact JSON, else compact,
/// encoded and written side by side (module doc).
pub(super) fn write_json<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable_rename: bool,
) -> Result<(), WriteError> {
    let tmp = tmp_path(dir, name);
    let mut sink = Sink::Small(Vec::new(), tmp.clone());
    let encoded = serde_json::to_writer(&mut sink, value)
        .map_err(|e| if e.is_io() { WriteError::Io(e.into()) } else { WriteError::Encode(e) });
    let result = match sink {
        Sink::Small(..) => encoded.and_then(|()| {
            let pretty = serde_json::to_vec_pretty(value).map_err(WriteError::Encode)?;
            write_whole(dir, name, &pretty, durable_rename).map_err(WriteError::Io)
        }),
        Sink::Large(mut large) => {
            let sent = encoded.and_then(|()| large.send_rest().map_err(WriteError::Io));
            // The writer's own error explains a broken pipe on this side.
            let written = large.join().map_err(WriteError::Io);
            sent.and(written).and_then(|()| finish(dir, name, &tmp, durable_rename).map_err(WriteError::Io))
        }
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Renames the synced `tmp` over `dir/name`, and syncs the directory if
/// asked.
fn finish(dir: &Path, name: &str, tmp: &Path, durable_rename: bool) -> std::io::Result<()> {
    std::fs::rename(tmp, dir.join(name))?;
    if durable_rename { File::open(dir)?.sync_all() } else { Ok(()) }
}

/// Where the encoder's bytes go: a buffer while the file may still be
/// small, then chunks to the writer thread.
enum Sink {
    /// The compact JSON so far, under [`PRETTY_UP_TO`]; the temp file's path.
    Small(Vec<u8>, PathBuf),
    Large(Large),
}

/// A large file being written by a thread of its own.
struct Large {
    chunk: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
}

impl Large {
    /// Creates `tmp` and starts the thread that writes and syncs it.
    fn start(tmp: &Path, first: Vec<u8>) -> std::io::Result<Self> {
        let file = File::create(tmp)?;
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let writer = std::thread::Builder::new().name("swarm-state-write".into()).spawn(move || write_all(file, rx))?;
        let mut large = Self { chunk: Vec::with_capacity(CHUNK), tx: Some(tx), writer: Some(writer) };
        large.send(first)?;
        Ok(large)
    }

    fn send(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        let stopped = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the state writer stopped");
        self.tx.as_ref().ok_or_else(stopped)?.send(chunk).map_err(|_| stopped())
    }

    /// Sends what is left and ends the stream.
    fn send_rest(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.chunk);
        let sent = if rest.is_empty() { Ok(()) } else { self.send(rest) };
        self.tx = None;
        sent
    }

    /// Waits for the writer: its own error, if it failed.
    fn join(&mut self) -> std::io::Result<()> {
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the state writer thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Large {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The writer thread: every chunk in order, then an fsync.
fn write_all(mut file: File, rx: Receiver<Vec<u8>>) -> std::io::Result<()> {
    for chunk in rx {
        file.write_all(&chunk)?;
    }
    file.sync_all()
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Small(bytes, tmp) => {
                bytes.extend_from_slice(buf);
                if bytes.len() > PRETTY_UP_TO {
                    let first = std::mem::take(bytes);
                    *self = Sink::Large(Large::start(tmp, first)?);
                }
            }
            Sink::Large(large) => {
                large.chunk.extend_from_slice(buf);
                if large.chunk.len() >= CHUNK {
                    let full = std::mem::replace(&mut large.chunk, Vec::with_capacity(CHUNK));
                    large.send(full)?;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f.json", b"one").unwrap();
        write_atomic(dir.path(), "f.json", b"two").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f.json")).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn small_files_are_indented_and_large_ones_compact_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_json(dir.path(), "small.json", &vec!["finding"; 10], true).unwrap();
        let small = std::fs::read(dir.path().join("small.json")).unwrap();
        assert!(small.contains(&b'\n'), "{}", String::from_utf8_lossy(&small));
        // Several chunks, the last one partial.
        let many: Vec<String> = (0..(3 * CHUNK / 10)).map(|i| format!("finding {i}")).collect();
        write_json(dir.path(), "large.json", &many, true).unwrap();
        let large = std::fs::read(dir.path().join("large.json")).unwrap();
        assert!(large.len() > 3 * CHUNK && !large.contains(&b'\n'), "a large file is one compact line");
        assert_eq!(large, serde_json::to_vec(&many).unwrap(), "every chunk, in order");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temp file is left");
    }

    /// Fails to encode after `after` elements.
    struct FailsAfter(usize);

    impl Serialize for FailsAfter {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error as _, SerializeSeq as _};
            let mut seq = s.serialize_seq(None)?;
            for i in 0..self.0 {
                seq.serialize_element(&format!("element {i} of a long list"))?;
            }
            Err(S::Error::custom("this value cannot be encoded"))
        }
    }

    #[test]
    fn a_value_that_fails_to_encode_midway_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f.json", b"old").unwrap();
        for after in [3, CHUNK / 4] {
            let err = write_json(dir.path(), "f.json", &FailsAfter(after), true).unwrap_err();
            assert!(matches!(&err, WriteError::Encode(e) if e.to_string().contains("cannot be encoded")), "{err:?}");
            assert_eq!(std::fs::read(dir.path().join("f.json")).unwrap(), b"old");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file is left");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let many: Vec<String> = (0..(CHUNK / 10)).map(|i| format!("finding {i}")).collect();
        assert!(matches!(write_json(&missing, "f.json", &many, true), Err(WriteError::Io(_))));
        assert!(matches!(write_json(&missing, "f.json", &1, true), Err(WriteError::Io(_))));
    }
}
