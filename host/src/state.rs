//! Crash-safe team state under `<state dir>/<team>/`.
//!
//! Every file is versioned JSON (`{"v":1,"kind":"tasks","data":...}`) and
//! every write is atomic: a temp file in the same directory, fsync, rename
//! over the old file, fsync the directory. A `kill -9` at any instant leaves
//! either the old or the new version of each file, never a torn one.
//!
//! | file | kind | written |
//! | --- | --- | --- |
//! | `team.json` | the validated plan | once, before anything spawns |
//! | `tasks.json` | the task list (status, attempts, reports) | on every claim, completion, failure |
//! | `roster.json` | teammates and their liveness | as coordinator events arrive (coalesced) |
//! | `mailbox.json` | per-inbox cursors and undelivered messages | with `roster.json` |
//! | `run.json` | coordinator pid, start, whether it finished | at start and at the end |
//! | `report.json` | the final report | at the end |
//!
//! A write that fails during a run is not only logged: [`StateDir::failed`]
//! records it, the run's report lists it (`state_errors`) and `swarm-host
//! run` exits 3, because a run whose state was not saved cannot be resumed
//! safely.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::coordinator::Plan;
use crate::coordinator::report::RunReport;
use crate::mailbox::Incoming;
use crate::tasks::TaskState;
use crate::team::Member;

/// Distinct failed saves a run keeps for its report.
pub const MAX_STATE_FAILURES: usize = 32;

/// Format version of every state file.
pub const STATE_VERSION: u32 = 1;

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No state for that team.
    #[error("no state for team `{team}` in {dir} (run it first with `swarm-host run`)")]
    NoSuchTeam {
        /// The team.
        team: String,
        /// The state directory searched.
        dir: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file does not parse, or is of another version or kind.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl StateError {
    /// True if the file does not exist (as opposed to unreadable or corrupt).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A state file that may not have been written yet: `None` if it does not
/// exist; an unreadable or corrupt one stays an error naming the file.
pub fn if_present<T>(read: Result<T, StateError>) -> Result<Option<T>, StateError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    kind: String,
    data: T,
}

/// The coordinator's own record of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Coordinator process id.
    pub pid: u32,
    /// Start, seconds since the Unix epoch.
    pub started: f64,
    /// True once the run ended (normally or interrupted), false while it
    /// runs or if the coordinator died.
    pub finished: bool,
    /// How many times the run was resumed.
    pub resumes: u32,
}

impl RunInfo {
    /// True if the coordinator process recorded here still exists.
    pub fn coordinator_alive(&self) -> bool {
        Path::new("/proc").join(self.pid.to_string()).exists()
    }
}

/// One inbox's cursors and undelivered text messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxState {
    /// Messages ever queued.
    pub queued: u64,
    /// Messages ever delivered (taken by `recv`).
    pub delivered: u64,
    /// Text messages waiting, oldest first: (sender, body, summary).
    pub pending: Vec<(String, String, Option<String>)>,
}

/// Every inbox, by teammate id.
pub type MailboxState = BTreeMap<String, InboxState>;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `dir/name` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The state directory of one team. Clones share the record of failed
/// writes.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl StateDir {
    /// Creates (or reuses) `base/team`, owner-only.
    pub fn create(base: &Path, team: &str) -> Result<Self, StateError> {
        let dir = base.join(team);
        let io = |source| StateError::Io { path: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(Self { dir, failures: Default::default() })
    }

    /// Opens the existing state of `team` under `base`.
    pub fn open(base: &Path, team: &str) -> Result<Self, StateError> {
        let dir = base.join(team);
        if !dir.join("team.json").is_file() {
            return Err(StateError::NoSuchTeam { team: team.to_string(), dir: base.to_path_buf() });
        }
        Ok(Self { dir, failures: Default::default() })
    }

    /// Teams with state under `base`, sorted.
    pub fn list(base: &Path) -> Vec<String> {
        let mut teams: Vec<String> = std::fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("team.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        teams.sort();
        teams
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Records that saving `what` (e.g. `the task list`) failed with `e`
    /// during a run: logged, and kept for [`StateDir::failures`]. Repeats of
    /// the same failure are kept once, and at most [`MAX_STATE_FAILURES`]
    /// distinct ones.
    pub fn failed(&self, what: &str, e: &StateError) {
        let line = format!("cannot save {what}: {e}");
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < MAX_STATE_FAILURES && !failures.contains(&line) {
            tracing::error!("{line}");
            failures.push(line);
        }
    }

    /// Every failed save recorded with [`StateDir::failed`], in order.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write<T: Serialize>(&self, name: &str, kind: &str, data: &T) -> Result<(), StateError> {
        let env = Envelope { v: STATE_VERSION, kind: kind.to_string(), data };
        let bytes = serde_json::to_vec_pretty(&env)
            .map_err(|e| StateError::Invalid { path: self.dir.join(name), message: format!("cannot encode: {e}") })?;
        write_atomic(&self.dir, name, &bytes).map_err(|source| StateError::Io { path: self.dir.join(name), source })
    }

    fn read<T: DeserializeOwned>(&self, name: &str, kind: &str) -> Result<T, StateError> {
        let path = self.dir.join(name);
        let bytes = std::fs::read(&path).map_err(|source| StateError::Io { path: path.clone(), source })?;
        let invalid = |message: String| StateError::Invalid { path: path.clone(), message };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(STATE_VERSION) => {}
            Some(v) => return Err(invalid(format!("state format v{v}, this build reads v{STATE_VERSION}"))),
            None => return Err(invalid("missing the `v` version field".into())),
        }
        if value.get("kind").and_then(serde_json::Value::as_str) != Some(kind) {
            return Err(invalid(format!("expected a `{kind}` file")));
        }
        let env: Envelope<T> = serde_json::from_value(value).map_err(|e| invalid(format!("{e}")))?;
        Ok(env.data)
    }

    /// Writes `team.json`.
    pub fn write_plan(&self, plan: &Plan) -> Result<(), StateError> {
        self.write("team.json", "plan", plan)
    }
    /// Reads `team.json`.
    pub fn read_plan(&self) -> Result<Plan, StateError> {
        self.read("team.json", "plan")
    }
    /// Writes `tasks.json`.
    pub fn write_tasks(&self, tasks: &[TaskState]) -> Result<(), StateError> {
        self.write("tasks.json", "tasks", &tasks)
    }
    /// Reads `tasks.json`.
    pub fn read_tasks(&self) -> Result<Vec<TaskState>, StateError> {
        self.read("tasks.json", "tasks")
    }
    /// Writes `roster.json`.
    pub fn write_roster(&self, members: &[Member]) -> Result<(), StateError> {
        self.write("roster.json", "roster", &members)
    }
    /// Reads `roster.json`.
    pub fn read_roster(&self) -> Result<Vec<Member>, StateError> {
        self.read("roster.json", "roster")
    }
    /// Writes `mailbox.json`.
    pub fn write_mailbox(&self, mailbox: &MailboxState) -> Result<(), StateError> {
        self.write("mailbox.json", "mailbox", mailbox)
    }
    /// Reads `mailbox.json`.
    pub fn read_mailbox(&self) -> Result<MailboxState, StateError> {
        self.read("mailbox.json", "mailbox")
    }
    /// Writes `run.json`.
    pub fn write_run(&self, run: &RunInfo) -> Result<(), StateError> {
        self.write("run.json", "run", run)
    }
    /// Reads `run.json`.
    pub fn read_run(&self) -> Result<RunInfo, StateError> {
        self.read("run.json", "run")
    }
    /// Writes `report.json`.
    pub fn write_report(&self, report: &RunReport) -> Result<(), StateError> {
        self.write("report.json", "report", report)
    }
    /// Reads `report.json`.
    pub fn read_report(&self) -> Result<RunReport, StateError> {
        self.read("report.json", "report")
    }
}

/// Converts undelivered inbox entries to their persisted form (text
/// messages only: control messages are re-derived on resume).
pub fn pending_texts<'a>(items: impl IntoIterator<Item = &'a Incoming>) -> Vec<(String, String, Option<String>)> {
    items
        .into_iter()
        .filter_map(|m| match m {
            Incoming::Message { sender, body, summary } => Some((sender.clone(), body.clone(), summary.clone())),
            _ => None,
        })
        .collect()
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
    fn reads_check_version_and_kind() {
        let base = tempfile::tempdir().unwrap();
        let state = StateDir::create(base.path(), "t").unwrap();
        let run = RunInfo { pid: 1, started: 0.0, finished: false, resumes: 0 };
        state.write_run(&run).unwrap();
        assert!(!state.read_run().unwrap().finished);
        std::fs::write(state.path().join("run.json"), r#"{"v":2,"kind":"run","data":{}}"#).unwrap();
        let e = state.read_run().unwrap_err().to_string();
        assert!(e.contains("state format v2, this build reads v1"), "{e}");
        std::fs::write(state.path().join("run.json"), r#"{"v":1,"kind":"tasks","data":[]}"#).unwrap();
        assert!(state.read_run().unwrap_err().to_string().contains("expected a `run` file"));
        std::fs::write(state.path().join("run.json"), "{\"v\":1,").unwrap();
        assert!(state.read_run().unwrap_err().to_string().contains("not valid JSON"));
    }

    #[cfg(unix)]
    #[test]
    fn the_state_dir_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let state = StateDir::create(base.path(), "t").unwrap();
        let mode = std::fs::metadata(state.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
