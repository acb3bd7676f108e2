//! The state journal, `journal.jsonl`: what changed since the last
//! snapshot, one record a line, so that a save costs what changed rather
//! than the whole task list.
//!
//! ## Format
//!
//! Each line is `<crc32 of the JSON, 8 hex digits> <JSON record>\n`. The
//! first record is `start` with the journal's *generation*; the others are
//! `task` (one task's state after a change, [`TaskChange`]) and `mail` (a
//! text message queued or delivered, [`MailChange`]). Since format v2 a
//! task's findings are arrays `[file, line, rule, message, severity]`
//! (about 40% fewer bytes to encode and sync before a completion is
//! acknowledged); v1 journals, with objects, replay as well.
//!
//! ## Writing
//!
//! The task list and the mailbox hand their changes to a [`Journal`] under
//! their own locks, which only numbers them and sends them down a channel:
//! no I/O under those locks, and nothing that blocks a tokio worker. One
//! dedicated thread drains the channel, appends every record it drained as
//! one write, fsyncs once for the batch, and then publishes the number of
//! the last record it made durable. [`Journal::flushed`] waits for that
//! number to pass the caller's last record: a completion, failure or text
//! message is acknowledged to the teammate only once it is on disk, and
//! concurrent callers share one fsync. A claim is not waited for: a claim
//! lost in a crash is an attempt nobody hears of, and the task is still
//! pending.
//!
//! ## Compaction and replay
//!
//! `tasks.json` and `mailbox.json` are full snapshots, each stamped with a
//! generation. At the start of a run (fresh or resumed) the coordinator
//! writes both snapshots atomically with the next generation, then replaces
//! the journal by one holding only a `start` record of that generation. At
//! its end it only closes the journal: every change is already on disk, and
//! compacting then would write every finding again just before
//! `report.json` does (the row-6 run of 114,000 findings spent a third of
//! its state cost there). Readers ([`super::StateDir::load`]) replay the
//! journal onto the snapshots, and the next run or resume compacts. Replay applies the journal's task records onto `tasks.json`
//! only if both have the same generation, and its mail records onto
//! `mailbox.json` likewise: a crash between the writes of a compaction
//! leaves a snapshot that already holds the journal's changes (newer
//! generation, records skipped) or one that does not (same generation,
//! records applied), never both.
//!
//! A `kill -9` can leave the last line torn (cut short, or failing its
//! checksum): replay ignores it with a note, since its change was never
//! acknowledged. A bad line with anything after it is corruption, and an
//! error naming the file and the byte offset of the line.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{StateDir, StateError};
use crate::mailbox::{MailChange, MailFlushFn, MailSaveFn, MailboxState};
use crate::tasks::{FlushFn, SaveFn, TaskChange, TaskState};

/// The journal's file name in the team's state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Format version of the journal's records. Version 2 writes a report's
/// findings as arrays (`tasks/compact.rs`); version 1 journals, with
/// findings as objects, are read too.
pub const JOURNAL_VERSION: u32 = 2;

/// Most records the writer appends with one fsync.
const MAX_BATCH: usize = 4096;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", content = "d", rename_all = "snake_case")]
pub enum Record {
    /// The first line: the journal's format and generation.
    Start {
        /// Format version.
        v: u32,
        /// The snapshots' generation these records follow.
        generation: u64,
    },
    /// One task's state after a change.
    Task(TaskChange),
    /// A text message queued or delivered.
    Mail(MailChange),
}

/// Encodes one record as a journal line.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    // A record is plain data: encoding it cannot fail.
    let json = serde_json::to_vec(record).unwrap_or_default();
    out.extend_from_slice(format!("{:08x} ", crc32fast::hash(&json)).as_bytes());
    out.extend_from_slice(&json);
    out.push(b'\n');
}

/// What a journal file holds.
#[derive(Debug, Default)]
pub struct Replay {
    /// Its generation (from the `start` record); `None` for an empty file.
    pub generation: Option<u64>,
    /// Every record after `start`, in order, with its byte offset.
    pub records: Vec<(u64, Record)>,
    /// What was ignored (a torn last record), one line each.
    pub notes: Vec<String>,
}

/// Reads a journal: every intact record, a torn last one noted and
/// ignored, a bad one in the middle an error naming the file and offset.
pub fn read(path: &Path) -> Result<Replay, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
    parse(path, &bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Replay, StateError> {
    let mut replay = Replay::default();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(n) => (&rest[..n], offset + n + 1),
            None => (rest, bytes.len()),
        };
        // A line without its newline was cut short by a crash.
        let decoded = if rest.len() > line.len() { decode(line) } else { Err("cut short".to_string()) };
        let last = next >= bytes.len();
        match decoded {
            Ok(record) => match record {
                Record::Start { v, generation } if offset == 0 => {
                    if !(1..=JOURNAL_VERSION).contains(&v) {
                        return Err(StateError::Invalid {
                            path: path.to_path_buf(),
                            message: format!("journal format v{v}, this build reads v1 to v{JOURNAL_VERSION}"),
                        });
                    }
                    replay.generation = Some(generation);
                }
                Record::Start { .. } => return Err(corrupt(path, offset, "a second `start` record".into())),
                _ if offset == 0 => return Err(corrupt(path, offset, "the first record is not `start`".into())),
                record => replay.records.push((offset as u64, record)),
            },
            Err(why) if last => {
                replay.notes.push(format!(
                    "{}: ignored a torn last record at byte {offset} ({why}): the coordinator stopped while writing it, before it was acknowledged",
                    path.display()
                ));
            }
            Err(why) => return Err(corrupt(path, offset, why)),
        }
        offset = next;
    }
    Ok(replay)
}

fn corrupt(path: &Path, offset: usize, why: String) -> StateError {
    StateError::Invalid { path: path.to_path_buf(), message: format!("corrupt journal record at byte {offset}: {why}") }
}

fn decode(line: &[u8]) -> Result<Record, String> {
    let (crc, json) = match (line.get(..8), line.get(8), line.get(9..)) {
        (Some(crc), Some(b' '), Some(json)) => (crc, json),
        _ => return Err("cut short".into()),
    };
    let crc = std::str::from_utf8(crc).ok().and_then(|c| u32::from_str_radix(c, 16).ok());
    if crc != Some(crc32fast::hash(json)) {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(json).map_err(|e| format!("not a record: {e}"))
}

/// Applies the records of `replay` onto the snapshots whose generation
/// matches the journal's (see the module doc).
pub fn apply(
    path: &Path,
    replay: Replay,
    tasks: Option<(&mut Vec<TaskState>, u64)>,
    mailbox: (&mut MailboxState, u64),
) -> Result<(), StateError> {
    let Some(generation) = replay.generation else { return Ok(()) };
    let mut tasks = tasks.filter(|(_, g)| *g == generation).map(|(t, _)| t);
    let mut mailbox = (mailbox.1 == generation).then_some(mailbox.0);
    for (offset, record) in replay.records {
        let result = match record {
            Record::Task(change) => tasks.as_deref_mut().map_or(Ok(()), |t| change.apply(t)),
            Record::Mail(change) => mailbox.as_deref_mut().map_or(Ok(()), |m| change.apply(m)),
            Record::Start { .. } => Ok(()),
        };
        result.map_err(|why| corrupt(path, offset as usize, why))?;
    }
    Ok(())
}

enum Msg {
    Record(u64, Record),
    Close,
}

/// The sending side shared by the task list's and the mailbox's hooks.
struct Shared {
    /// Records numbered so far, and the channel to the writer. One mutex
    /// for both, so that numbers follow channel order; held for a channel
    /// send only.
    tx: Mutex<(u64, mpsc::Sender<Msg>)>,
    /// The number of the last record made durable.
    synced: watch::Receiver<u64>,
}

impl Shared {
    fn send(&self, record: Record) {
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.0 += 1;
        // A closed journal (the run is over) takes no more records.
        let _ = tx.1.send(Msg::Record(tx.0, record));
    }

    fn flush(self: &Arc<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let target = self.tx.lock().unwrap_or_else(|e| e.into_inner()).0;
        let mut synced = self.synced.clone();
        // Resolves early if the writer is gone (it recorded why).
        Box::pin(async move {
            let _ = synced.wait_for(|&n| n >= target).await;
        })
    }
}

/// An open journal and its writer thread.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
    generation: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl Journal {
    /// Replaces the journal of `state` by an empty one of `generation` and
    /// starts its writer thread.
    pub fn create(state: &StateDir, generation: u64) -> Result<Self, StateError> {
        let path = state.path().join(JOURNAL_FILE);
        let io = |source| StateError::Io { path: path.clone(), source };
        let mut header = Vec::new();
        encode(&Record::Start { v: JOURNAL_VERSION, generation }, &mut header);
        super::write_atomic(state.path(), JOURNAL_FILE, &header).map_err(io)?;
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(io)?;
        let (tx, rx) = mpsc::channel();
        let (synced_tx, synced) = watch::channel(0);
        let writer = std::thread::Builder::new()
            .name("swarm-journal".into())
            .spawn({
                let state = state.clone();
                move || write_loop(file, path, &rx, &synced_tx, &state)
            })
            .map_err(io_spawn)?;
        let shared = Arc::new(Shared { tx: Mutex::new((0, tx)), synced });
        Ok(Self { shared, writer: Some(writer), generation })
    }

    /// The generation of its records.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The hook for [`crate::tasks::TaskList::with_journal`].
    pub fn task_hooks(&self) -> (SaveFn, FlushFn) {
        let (s, f) = (self.shared.clone(), self.shared.clone());
        (
            Box::new(move |changes| {
                for c in changes {
                    s.send(Record::Task(c));
                }
            }),
            Arc::new(move || f.flush()),
        )
    }

    /// The hook for [`crate::mailbox::Mailbox::with_journal`].
    pub fn mail_hooks(&self) -> (MailSaveFn, MailFlushFn) {
        let (s, f) = (self.shared.clone(), self.shared.clone());
        (Box::new(move |change| s.send(Record::Mail(change))), Arc::new(move || f.flush()))
    }

    /// Writes what was sent so far, stops the writer and waits for it.
    /// Later records are dropped. Blocks: call it off the async workers.
    pub fn close(mut self) {
        let _ = self.shared.tx.lock().unwrap_or_else(|e| e.into_inner()).1.send(Msg::Close);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn io_spawn(e: std::io::Error) -> StateError {
    StateError::Io { path: PathBuf::from("journal writer thread"), source: e }
}

/// The writer thread: drain, append, fsync once, publish.
fn write_loop(mut file: File, path: PathBuf, rx: &mpsc::Receiver<Msg>, synced: &watch::Sender<u64>, state: &StateDir) {
    let mut broken = false;
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut closing = false;
        let mut last = None;
        buf.clear();
        let mut next = Some(first);
        let mut drained = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(n, record) => {
                    encode(&record, &mut buf);
                    last = Some(n);
                }
                Msg::Close => closing = true,
            }
            drained += 1;
            if !closing && drained < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        // Nothing more is appended after a failed write (it may have left
        // part of a line): the run reports it (exit 3).
        if !buf.is_empty()
            && !broken
            && let Err(source) = file.write_all(&buf).and_then(|()| file.sync_data())
        {
            broken = true;
            state.failed("the journal", &StateError::Io { path: path.clone(), source });
        }
        if let Some(n) = last {
            synced.send_replace(n);
        }
        if closing {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    fn mail(to: &str, n: u64) -> Record {
        Record::Mail(MailChange::Queued {
            to: to.into(),
            sender: "s".into(),
            body: format!("m{n}"),
            summary: None,
            queued: n,
        })
    }

    fn start() -> Record {
        Record::Start { v: JOURNAL_VERSION, generation: 3 }
    }

    #[test]
    fn a_torn_last_record_is_ignored_with_a_note() {
        let path = Path::new("/state/t/journal.jsonl");
        let whole = lines(&[start(), mail("a", 1), mail("a", 2)]);
        for cut in [whole.len() - 1, whole.len() - 5, whole.len() - 30] {
            let replay = parse(path, &whole[..cut]).unwrap();
            assert_eq!(replay.records.len(), 1, "cut at {cut}");
            assert!(replay.notes[0].contains("ignored a torn last record at byte"), "{:?}", replay.notes);
        }
        // A whole last line whose checksum fails is torn too.
        let mut flipped = whole.clone();
        let n = flipped.len() - 3;
        flipped[n] ^= 1;
        let replay = parse(path, &flipped).unwrap();
        assert_eq!((replay.records.len(), replay.notes.len()), (1, 1));
        assert_eq!(parse(path, &whole).unwrap().records.len(), 2);
    }

    #[test]
    fn a_corrupt_record_in_the_middle_is_an_error_naming_the_file_and_offset() {
        let path = Path::new("/state/t/journal.jsonl");
        let whole = lines(&[start(), mail("a", 1), mail("a", 2)]);
        let second = lines(&[start()]).len();
        let mut bad = whole.clone();
        bad[second + 12] ^= 1;
        let e = parse(path, &bad).unwrap_err().to_string();
        assert_eq!(e, format!("/state/t/journal.jsonl: corrupt journal record at byte {second}: checksum mismatch"));
        // Intact lines that do not fit the snapshot are corrupt as well.
        let replay =
            parse(path, &lines(&[start(), Record::Mail(MailChange::Delivered { to: "a".into(), delivered: 1 })]))
                .unwrap();
        let e = apply(path, replay, None, (&mut MailboxState::new(), 3)).unwrap_err().to_string();
        assert!(e.contains(&format!("corrupt journal record at byte {second}: a delivery to `a`")), "{e}");
    }

    /// A line as `encode` writes it, from raw JSON.
    fn raw_line(json: &str) -> Vec<u8> {
        format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).into_bytes()
    }

    #[test]
    fn a_v1_journal_with_findings_as_objects_replays_and_a_newer_one_is_refused() {
        let path = Path::new("/state/t/journal.jsonl");
        let task = r#"{"r":"task","d":{"index":0,"id":"a","status":"completed","holder":null,"attempts":[],
            "report":{"summary":"1 marker","findings":[{"file":"f.rs","line":2,"rule":"todo","message":"m","severity":"note"}]},
            "failure":null}}"#
            .replace('\n', "");
        let v1 = [raw_line(r#"{"r":"start","d":{"v":1,"generation":3}}"#), raw_line(&task)].concat();
        let replay = parse(path, &v1).unwrap();
        let Record::Task(change) = &replay.records[0].1 else { panic!("a task record: {:?}", replay.records) };
        let report = change.report.as_deref().expect("the report");
        assert_eq!((report.findings[0].line, report.findings[0].rule.as_str()), (Some(2), "todo"));
        // Written again, the same change is v2's arrays, and reads back equal.
        let again = lines(&[start(), Record::Task(change.clone())]);
        assert!(String::from_utf8_lossy(&again).contains(r#"["f.rs",2,"todo","m","note"]"#));
        assert_eq!(parse(path, &again).unwrap().records[0].1, Record::Task(change.clone()));
        let v3 = raw_line(r#"{"r":"start","d":{"v":3,"generation":3}}"#);
        let e = parse(path, &v3).unwrap_err().to_string();
        assert!(e.contains("journal format v3, this build reads v1 to v2"), "{e}");
    }

    #[test]
    fn records_of_another_generation_are_not_applied() {
        let path = Path::new("j");
        let replay = parse(path, &lines(&[start(), mail("a", 1)])).unwrap();
        let mut older = MailboxState::new();
        apply(path, replay, None, (&mut older, 4)).unwrap();
        assert!(older.is_empty(), "the snapshot of generation 4 already holds them");
        let replay = parse(path, &lines(&[start(), mail("a", 1)])).unwrap();
        let mut same = MailboxState::new();
        apply(path, replay, None, (&mut same, 3)).unwrap();
        assert_eq!(same["a"].pending.len(), 1);
    }
}
