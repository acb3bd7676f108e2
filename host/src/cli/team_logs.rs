//! One log file per teammate: a `tracing` layer that writes every event of
//! a run to `<state dir>/<team>/logs/coordinator.log`, and each event with a
//! `teammate` field also to `logs/<teammate>.log`. A guest's own log lines
//! (target [`GUEST_LOG_TARGET`]) go to its teammate's file only: a guest
//! logging at its full rate cannot fill the coordinator's log and push out
//! the coordinator's later lines.
//!
//! Lines are `<RFC 3339 time> <LEVEL> <message> <field>=<value>...`, each
//! sanitised ([`crate::sanitize::line`]): a teammate cannot forge a line
//! break or an escape sequence in a file someone will `cat`. File names are
//! reduced to `[A-Za-z0-9._-]` and never start with a dot. Each file stops
//! at [`MAX_LOG_BYTES`] with a last line saying the limit was hit.
//!
//! Nothing is written until [`TeamLogs::open`] names the directory; a fresh
//! `run` starts the files over, `resume` appends to them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::sandbox::GUEST_LOG_TARGET;

/// Largest log file, in bytes; later lines are dropped (stderr still has them).
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// The file every event goes to.
pub const COORDINATOR_LOG: &str = "coordinator.log";

/// The team log files. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct TeamLogs {
    // A std mutex: events are written from many threads, each write is short
    // and never awaits.
    inner: Arc<Mutex<Option<Files>>>,
    cap: u64,
}

impl Default for TeamLogs {
    fn default() -> Self {
        Self { inner: Arc::default(), cap: MAX_LOG_BYTES }
    }
}

#[derive(Debug)]
struct Files {
    dir: PathBuf,
    open: HashMap<String, LogFile>,
}

#[derive(Debug)]
struct LogFile {
    file: File,
    written: u64,
    full: bool,
}

/// The log directory of a team's state directory.
pub fn dir_of(state: &Path) -> PathBuf {
    state.join("logs")
}

/// A safe file name for a teammate id.
pub fn file_name(teammate: &str) -> String {
    let mut name: String = teammate
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    format!("{name}.log")
}

impl TeamLogs {
    /// Starts writing under `dir`, created with the first line (so a run
    /// with logging off leaves no empty directory). `fresh` removes the
    /// `*.log` files of an earlier run first.
    pub fn open(&self, dir: &Path, fresh: bool) -> std::io::Result<()> {
        if fresh && dir.is_dir() {
            for entry in std::fs::read_dir(dir)?.flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") && entry.file_type()?.is_file() {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Files { dir: dir.to_path_buf(), open: HashMap::new() });
        Ok(())
    }

    /// Flushes and closes every file; later events are not written.
    pub fn close(&self) {
        if let Some(mut files) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            for f in files.open.values_mut() {
                let _ = f.file.flush();
            }
        }
    }

    fn write(&self, targets: &[String], line: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(files) = guard.as_mut() else { return };
        for name in targets {
            if !files.open.contains_key(name) {
                if files.open.is_empty() && std::fs::create_dir_all(&files.dir).is_err() {
                    return;
                }
                let path = files.dir.join(name);
                let Ok(file) = File::options().create(true).append(true).open(&path) else { continue };
                let written = file.metadata().map(|m| m.len()).unwrap_or(0);
                files.open.insert(name.clone(), LogFile { file, written, full: false });
            }
            let Some(f) = files.open.get_mut(name) else { continue };
            if f.full {
                continue;
            }
            let bytes = line.len() as u64 + 1;
            let text = if f.written + bytes > self.cap {
                f.full = true;
                format!("log file limit hit: {name} reached {} bytes; later lines are only on stderr\n", self.cap)
            } else {
                format!("{line}\n")
            };
            if f.file.write_all(text.as_bytes()).is_ok() {
                f.written += text.len() as u64;
            }
        }
    }
}

/// The fields of one event.
#[derive(Default)]
struct Fields {
    message: String,
    teammate: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "teammate" => {
                let _ = write!(self.rest, " teammate={value}");
                self.teammate = Some(value);
            }
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for TeamLogs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let line =
            crate::sanitize::line(&format!("{now} {:>5} {}{}", event.metadata().level(), fields.message, fields.rest));
        let mut targets = Vec::with_capacity(2);
        match &fields.teammate {
            Some(teammate) if event.metadata().target() == GUEST_LOG_TARGET => targets.push(file_name(teammate)),
            Some(teammate) => targets.extend([COORDINATOR_LOG.to_string(), file_name(teammate)]),
            None => targets.push(COORDINATOR_LOG.to_string()),
        }
        self.write(&targets, &line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_go_to_the_coordinator_log_and_their_teammate_log() {
        let dir = tempfile::tempdir().unwrap();
        let logs = TeamLogs::default();
        let subscriber = tracing_subscriber::registry().with(logs.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before open: not written");
            logs.open(dir.path(), true).unwrap();
            tracing::info!(teammate = "scan-1", task = "src", "completed: 2 findings");
            tracing::warn!(teammate = "scan-2", "evil\x1b[2J\nline");
            tracing::info!("team started");
            logs.close();
            tracing::info!("after close: not written");
        });
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let coordinator = read(COORDINATOR_LOG);
        assert_eq!(coordinator.lines().count(), 3, "{coordinator}");
        assert!(coordinator.contains("INFO completed: 2 findings teammate=scan-1 task=src"), "{coordinator}");
        assert!(!coordinator.contains("not written"), "{coordinator}");
        let one = read("scan-1.log");
        assert_eq!(one.lines().count(), 1, "{one}");
        assert!(one.contains("completed: 2 findings"), "{one}");
        let two = read("scan-2.log");
        assert_eq!(two.lines().count(), 1, "a forged newline stays on its line: {two}");
        assert!(!two.contains('\x1b') && two.contains("evil\\u{1b}[2J\\u{a}line"), "{two}");
    }

    #[test]
    fn a_guest_filling_its_log_leaves_the_coordinator_log_room_for_later_lines() {
        let dir = tempfile::tempdir().unwrap();
        let logs = TeamLogs { cap: 10_000, ..TeamLogs::default() };
        let subscriber = tracing_subscriber::registry().with(logs.clone());
        tracing::subscriber::with_default(subscriber, || {
            logs.open(dir.path(), true).unwrap();
            for n in 0..1000 {
                tracing::info!(target: "swarm_host::guest", teammate = "flood-1", "flood line {n}");
            }
            tracing::info!(teammate = "scan-1", task = "src", "completed: 2 findings");
            logs.close();
        });
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let coordinator = read(COORDINATOR_LOG);
        assert!(coordinator.contains("completed: 2 findings"), "{coordinator}");
        assert!(!coordinator.contains("flood line"), "{coordinator}");
        let flood = read("flood-1.log");
        assert!(flood.contains("flood line 0") && flood.contains("log file limit hit"), "{flood}");
    }

    #[test]
    fn the_directory_appears_with_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let logs_dir = dir.path().join("logs");
        let logs = TeamLogs::default();
        logs.open(&logs_dir, true).unwrap();
        assert!(!logs_dir.exists(), "nothing logged, no directory");
        logs.write(&[COORDINATOR_LOG.to_string()], "first");
        assert_eq!(std::fs::read_to_string(logs_dir.join(COORDINATOR_LOG)).unwrap(), "first\n");
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_name("scan-1"), "scan-1.log");
        assert_eq!(file_name("../x"), "_.._x.log");
        assert_eq!(file_name(".."), "_...log");
        assert_eq!(file_name(""), "_.log");
        assert_eq!(file_name("a/b\\c"), "a_b_c.log");
    }

    #[test]
    fn a_fresh_run_starts_the_files_over_and_a_resume_appends() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old-1.log"), "old\n").unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let logs = TeamLogs::default();
        logs.open(dir.path(), false).unwrap();
        assert!(dir.path().join("old-1.log").exists(), "resume keeps earlier logs");
        logs.open(dir.path(), true).unwrap();
        assert!(!dir.path().join("old-1.log").exists(), "a fresh run removes them");
        assert!(dir.path().join("keep.txt").exists(), "only *.log files are removed");
    }

    #[test]
    fn a_full_file_says_so_once_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let logs = TeamLogs { cap: 1000, ..TeamLogs::default() };
        logs.open(dir.path(), true).unwrap();
        let target = [COORDINATOR_LOG.to_string()];
        for _ in 0..30 {
            logs.write(&target, &"x".repeat(99));
        }
        logs.close();
        let text = std::fs::read_to_string(dir.path().join(COORDINATOR_LOG)).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with('x')).count(), 10, "{text}");
        assert_eq!(text.matches("log file limit hit").count(), 1);
        assert!(text.ends_with("later lines are only on stderr\n"));
    }
}
