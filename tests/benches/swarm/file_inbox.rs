//! The baseline mailbox: the design existing agent-team runtimes use today.
//! Every agent has an inbox file holding a JSON array of messages; a sender
//! locks it, reads it, appends and rewrites it; a receiver polls its own
//! file every [`POLL`], takes the unread messages and marks them read (the
//! file is never trimmed). Built here only to be measured against.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// The poll interval of the design we replace.
pub const POLL: Duration = Duration::from_millis(500);

/// A directory of inbox files.
#[derive(Clone)]
pub struct FileMailbox {
    dir: PathBuf,
}

impl FileMailbox {
    /// Inboxes under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    fn locked(&self, who: &str) -> (File, PathBuf) {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(format!("{who}.lock")))
            .expect("open lock file");
        lock.lock().expect("lock the inbox");
        (lock, self.dir.join(format!("{who}.json")))
    }

    fn read(path: &Path) -> Vec<Value> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("inbox is a JSON array"),
            Err(_) => Vec::new(),
        }
    }

    /// Appends a message to `to`'s inbox.
    pub fn send(&self, to: &str, from: &str, text: &str) {
        let (_lock, path) = self.locked(to);
        let mut all = Self::read(&path);
        all.push(json!({ "from": from, "text": text, "read": false }));
        std::fs::write(&path, serde_json::to_vec(&all).unwrap()).expect("write inbox");
    }

    /// Takes the unread messages of `who` (sender, text), marking them read.
    pub fn take_unread(&self, who: &str) -> Vec<(String, String)> {
        let (_lock, path) = self.locked(who);
        let mut all = Self::read(&path);
        let mut out = Vec::new();
        for m in all.iter_mut().filter(|m| m["read"] == false) {
            out.push((m["from"].as_str().unwrap().to_string(), m["text"].as_str().unwrap().to_string()));
            m["read"] = true.into();
        }
        if !out.is_empty() {
            std::fs::write(&path, serde_json::to_vec(&all).unwrap()).expect("write inbox");
        }
        out
    }
}

/// A polling teammate: every [`POLL`] it takes its unread messages and
/// answers each `ping` with a `pong` to its sender.
pub struct Poller {
    stop: Arc<AtomicBool>,
    /// Polls done so far: each is a wake-up of an otherwise idle agent.
    pub polls: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Poller {
    /// Starts teammate `me`.
    pub fn start(mailbox: FileMailbox, me: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), polls.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(POLL);
                p.fetch_add(1, Ordering::Relaxed);
                for (from, _) in mailbox.take_unread(&me) {
                    mailbox.send(&from, &me, "pong");
                }
            }
        });
        Self { stop, polls, thread }
    }

    /// Stops the poller (within one poll interval).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("poller thread");
    }
}
