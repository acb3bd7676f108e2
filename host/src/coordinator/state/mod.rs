//! Crash-safe team state under `<state dir>/<team>/`.
//!
//! Every snapshot file is versioned JSON (`{"v":1,"kind":"tasks",...}`)
//! written atomically: a temp file in the same directory, fsync, rename
//! over the old file, fsync the directory (`state/file.rs`: a large one is encoded
//! and written side by side). A `kill -9` at any instant leaves
//! either the old or the new version of each file, never a torn one. What
//! changes during a run goes to an append-only journal instead, one record
//! per change, fsynced per batch by a writer thread ([`journal`] describes
//! the format, the crash-safety contract, compaction and replay).
//!
//! | file | kind | written |
//! | --- | --- | --- |
//! | `team.json` | the validated plan, absolute plugin paths and their sha256 | once, before anything spawns |
//! | `tasks.json` | the task list (status, attempts, reports): a snapshot | at the start of a run (fresh or resumed) |
//! | `mailbox.json` | per-inbox cursors and undelivered messages: a snapshot | with `tasks.json` |
//! | `journal.jsonl` | every task change and text message since the snapshots | appended as they happen |
//! | `roster.json` | teammates and their liveness (for `status` only; its rename is not synced, so after a power loss it may be the previous version) | when a teammate's state or task changes; for heartbeats alone at most once a second |
//! | `run.json` | coordinator pid, start, whether it finished | at start and at the end |
//! | `report.json` | the final report | at the end |
//! | `models.json` | the team's model settings: aliases, allow-lists, budgets, where each key is (a variable's name, a file's path), never a key ([`ModelSettings`]) | with `team.json`, if the team has `[models]` |
//! | `lock` | empty; `flock`ed by the running coordinator ([`lock`]) | at start |
//!
//! The task list and mailbox are read back as the snapshot plus the journal
//! ([`StateDir::load`]). A write that fails during a run is not only
//! logged: [`StateDir::failed`] records it, the run's report lists it
//! (`state_errors`) and `swarm-host run` exits 3, because a run whose state
//! was not saved cannot be resumed safely.

mod file;
pub mod journal;
pub mod lock;
pub mod pins;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::coordinator::Plan;
use crate::coordinator::model_settings::ModelSettings;
use crate::coordinator::report::RunReport;
use crate::mailbox::MailboxState;
use crate::tasks::TaskState;
use crate::team::Member;
use file::WriteError;
pub use file::write_atomic;
use journal::{JOURNAL_FILE, Journal};

/// Distinct failed saves a run keeps for its report.
pub const MAX_STATE_FAILURES: usize = 32;

/// The model settings' file.
pub const MODELS_FILE: &str = "models.json";

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
    /// Another coordinator holds the team's lock.
    #[error("team `{team}` is already being run by another coordinator (it holds the lock {path})")]
    Locked {
        /// The team.
        team: String,
        /// The lock file.
        path: PathBuf,
    },
    /// A plugin changed since the run started.
    #[error(
        "the plugin of `{group}` changed since the run started: {path} had sha256 {was}, now {now}; \
         resume with --allow-changed-plugins to run it anyway"
    )]
    PluginChanged {
        /// The teammate group.
        group: String,
        /// The plugin file.
        path: PathBuf,
        /// Its sha256 when the run started.
        was: String,
        /// Its sha256 now.
        now: String,
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
    /// The snapshot's generation (see [`journal`]); 0 in files without one.
    #[serde(default, skip_serializing_if = "is_zero")]
    generation: u64,
    data: T,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The task list and mailbox as saved: the snapshots plus the journal.
#[derive(Debug, Default)]
pub struct Saved {
    /// The task list; `None` if no snapshot was written yet.
    pub tasks: Option<Vec<TaskState>>,
    /// Every inbox (empty if none was saved yet).
    pub mailbox: MailboxState,
    /// The newest generation of the snapshots and journal.
    pub generation: u64,
    /// What replay ignored (a torn last journal record), one line each.
    pub notes: Vec<String>,
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

/// The state directory of one team. Clones share the record of failed
/// writes.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    failures: Arc<Mutex<Vec<String>>>,
    /// The open journal, while a run writes one.
    journal: Arc<Mutex<Option<Journal>>>,
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
        Ok(Self { dir, failures: Default::default(), journal: Default::default() })
    }

    /// Opens the existing state of `team` under `base`.
    pub fn open(base: &Path, team: &str) -> Result<Self, StateError> {
        let dir = base.join(team);
        if !dir.join("team.json").is_file() {
            return Err(StateError::NoSuchTeam { team: team.to_string(), dir: base.to_path_buf() });
        }
        Ok(Self { dir, failures: Default::default(), journal: Default::default() })
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

    /// The team's name (the directory's).
    pub fn team(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
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
        self.write_gen(name, kind, 0, data)
    }

    fn write_gen<T: Serialize>(&self, name: &str, kind: &str, generation: u64, data: &T) -> Result<(), StateError> {
        self.write_env(name, kind, generation, data, true)
    }

    fn write_env<T: Serialize>(
        &self,
        name: &str,
        kind: &str,
        generation: u64,
        data: &T,
        durable_rename: bool,
    ) -> Result<(), StateError> {
        let env = Envelope { v: STATE_VERSION, kind: kind.to_string(), generation, data };
        file::write_json(&self.dir, name, &env, durable_rename).map_err(|e| match e {
            WriteError::Encode(e) => {
                StateError::Invalid { path: self.dir.join(name), message: format!("cannot encode: {e}") }
            }
            WriteError::Io(source) => StateError::Io { path: self.dir.join(name), source },
        })
    }

    fn read<T: DeserializeOwned>(&self, name: &str, kind: &str) -> Result<T, StateError> {
        self.read_gen(name, kind).map(|(_, data)| data)
    }

    fn read_gen<T: DeserializeOwned>(&self, name: &str, kind: &str) -> Result<(u64, T), StateError> {
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
        Ok((env.generation, env.data))
    }

    /// Reads `team.json`.
    pub fn read_plan(&self) -> Result<Plan, StateError> {
        self.read::<pins::SavedPlan>("team.json", "plan").map(|p| p.plan)
    }

    /// Starts the state of a fresh run of `plan`: removes what an earlier
    /// run of the team left (its snapshots and journal: they belong to
    /// another plan), then writes `team.json` with absolute plugin paths and
    /// each plugin's sha256.
    pub fn start_fresh(&self, plan: &Plan) -> Result<(), StateError> {
        for name in [JOURNAL_FILE, "tasks.json", "mailbox.json", "report.json"] {
            // Only files: anything else in their place makes the first
            // save fail, which the run reports.
            if !std::fs::symlink_metadata(self.dir.join(name)).is_ok_and(|m| m.is_file()) {
                continue;
            }
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StateError::Io { path: self.dir.join(name), source }),
            }
        }
        self.write("team.json", "plan", &pins::SavedPlan::of(plan)?)
    }

    /// The task list and mailbox as saved: each snapshot plus the journal
    /// records of its generation. A torn last journal record is noted and
    /// ignored; a corrupt file is an error naming it.
    pub fn load(&self) -> Result<Saved, StateError> {
        let tasks = if_present(self.read_gen::<Vec<TaskState>>("tasks.json", "tasks"))?;
        let (mailbox_gen, mut mailbox) =
            if_present(self.read_gen::<MailboxState>("mailbox.json", "mailbox"))?.unwrap_or_default();
        let path = self.dir.join(JOURNAL_FILE);
        let replay = if_present(journal::read(&path))?.unwrap_or_default();
        let (tasks_gen, mut tasks) = match tasks {
            Some((g, t)) => (g, Some(t)),
            None => (0, None),
        };
        let generation = tasks_gen.max(mailbox_gen).max(replay.generation.unwrap_or(0));
        let notes = replay.notes.clone();
        journal::apply(&path, replay, tasks.as_mut().map(|t| (t, tasks_gen)), (&mut mailbox, mailbox_gen))?;
        Ok(Saved { tasks, mailbox, generation, notes })
    }

    /// The saved task list (snapshot plus journal).
    pub fn read_tasks(&self) -> Result<Vec<TaskState>, StateError> {
        let path = self.dir.join("tasks.json");
        let not_found = || std::io::Error::new(std::io::ErrorKind::NotFound, "no task list saved yet");
        self.load()?.tasks.ok_or_else(|| StateError::Io { path, source: not_found() })
    }

    /// The saved inboxes (snapshot plus journal).
    pub fn read_mailbox(&self) -> Result<MailboxState, StateError> {
        Ok(self.load()?.mailbox)
    }

    /// Compacts: writes `tasks` and `mailbox` as snapshots of generation
    /// `after + 1`, then starts an empty journal of that generation and its
    /// writer; the journal is kept here until [`StateDir::close_journal`].
    /// Blocking I/O: a run calls it before its teammates start.
    pub fn start_journal(&self, tasks: &[TaskState], mailbox: &MailboxState, after: u64) -> Result<(), StateError> {
        let generation = after + 1;
        self.write_gen("tasks.json", "tasks", generation, &tasks)?;
        self.write_gen("mailbox.json", "mailbox", generation, mailbox)?;
        let journal = Journal::create(self, generation)?;
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) = Some(journal);
        Ok(())
    }

    /// Runs `f` on the open journal, if any.
    pub fn with_journal<R>(&self, f: impl FnOnce(&Journal) -> R) -> Option<R> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(f)
    }

    /// Stops the journal's writer once it wrote what it was sent.
    /// Blocking: call it off the async workers.
    pub fn close_journal(&self) -> Option<u64> {
        let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let generation = journal.generation();
        journal.close();
        Some(generation)
    }

    /// Writes `models.json`, or removes an earlier run's when the team has
    /// no models.
    pub fn write_models(&self, settings: Option<&ModelSettings>) -> Result<(), StateError> {
        match settings {
            Some(s) => self.write(MODELS_FILE, "models", s),
            None => match std::fs::remove_file(self.dir.join(MODELS_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StateError::Io { path: self.dir.join(MODELS_FILE), source: e })
                }
                _ => Ok(()),
            },
        }
    }
    /// Reads `models.json`: `None` if the team has no models.
    pub fn read_models(&self) -> Result<Option<ModelSettings>, StateError> {
        if_present(self.read(MODELS_FILE, "models"))
    }
    /// Writes `roster.json`, whole but without syncing the rename: only
    /// `status` reads it (resume respawns the roster from the plan), and
    /// after a power loss the previous roster is as good. Its saves are
    /// frequent and the last one is on the run's closing path.
    pub fn write_roster(&self, members: &[Member]) -> Result<(), StateError> {
        self.write_env("roster.json", "roster", 0, &members, false)
    }
    /// Reads `roster.json`.
    pub fn read_roster(&self) -> Result<Vec<Member>, StateError> {
        self.read("roster.json", "roster")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::Loaded;
    use crate::coordinator::run::team_of;
    use crate::tasks::TaskReport;
    use std::io::Write as _;
    use std::time::Duration;

    /// A plan of two teammates (`scan`, with the plugin file `p.wasm`) and
    /// three tasks, in a temp dir.
    fn plan() -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.wasm"), b"plugin v1").unwrap();
        let src = "name = \"t\"\nroot = \".\"\n[[teammate]]\nname = \"scan\"\nplugin = \"p.wasm\"\ninstances = 2\n\
                   [[task]]\nid = \"a\"\nsubject = \"s\"\n[[task]]\nid = \"b\"\nsubject = \"s\"\nblocked_by = [\"a\"]\n\
                   [[task]]\nid = \"c\"\nsubject = \"s\"\n";
        let plan = Plan::build(&Loaded::parse(&dir.path().join("team.toml"), src.into()).unwrap()).unwrap();
        (dir, plan)
    }

    fn json<T: Serialize>(t: &T) -> serde_json::Value {
        serde_json::to_value(t).unwrap()
    }

    async fn within_seconds<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(30), f).await.expect("finished within 30 s")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replaying_the_journal_gives_the_list_in_memory_and_a_torn_tail_is_ignored() {
        let (dir, plan) = plan();
        let state = StateDir::create(&dir.path().join("state"), "t").unwrap();
        state.start_fresh(&plan).unwrap();
        let (team, _events) = team_of(&plan, None, Some(&state));
        let report = TaskReport { summary: "ok".into(), findings: vec![] };
        team.tasks.claim("scan-1", "scan").unwrap();
        team.tasks.claim("scan-2", "scan").unwrap();
        team.tasks.complete("scan-1", "a", report.clone()).unwrap();
        team.tasks.fail("scan-2", "c", "boom").unwrap();
        team.tasks.claim("scan-2", "scan").unwrap();
        within_seconds(team.tasks.flushed()).await;
        assert_eq!(json(&state.read_tasks().unwrap()), json(&team.tasks.snapshot()));
        assert!(state.failures().is_empty(), "{:?}", state.failures());

        // A record cut short by a kill -9 is ignored, with a note.
        let journal = state.path().join(journal::JOURNAL_FILE);
        let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"0badf00d {\"r\":\"task\",\"d\":{\"ind").unwrap();
        let saved = state.load().unwrap();
        assert_eq!(json(&saved.tasks.unwrap()), json(&team.tasks.snapshot()));
        assert!(saved.notes[0].contains("journal.jsonl: ignored a torn last record at byte"), "{:?}", saved.notes);

        // The next run compacts: full snapshots, an empty journal, and
        // the torn record is gone with it.
        let tasks = team.tasks.snapshot();
        tokio::task::spawn_blocking({
            let (state, mailbox) = (state.clone(), team.mailbox.snapshot());
            move || {
                let generation = state.close_journal().expect("an open journal");
                state.start_journal(&tasks, &mailbox, generation).unwrap();
                state.close_journal();
            }
        })
        .await
        .unwrap();
        let saved = state.load().unwrap();
        assert_eq!(json(&saved.tasks.unwrap()), json(&team.tasks.snapshot()));
        assert!(saved.notes.is_empty());
        assert_eq!(journal::read(&journal).unwrap().records.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_is_on_disk_when_its_send_returns() {
        let (dir, plan) = plan();
        let state = StateDir::create(&dir.path().join("state"), "t").unwrap();
        state.start_fresh(&plan).unwrap();
        let (team, _events) = team_of(&plan, None, Some(&state));
        // What an in-process teammate's send and a socket teammate's (the
        // coordinator answers it with the same call) both run.
        let sent = team.send_from("scan-1", "scan-2", "look at b.rs".into(), Some("hint".into()));
        within_seconds(sent).await.unwrap();
        // Nothing else happened: the journal alone has it.
        let pending = &state.read_mailbox().unwrap()["scan-2"].pending;
        assert_eq!(pending, &[("scan-1".to_string(), "look at b.rs".to_string(), Some("hint".to_string()))]);
        // Delivered, it is gone from the saved inbox too.
        team.mailbox.recv("scan-2", Duration::ZERO).await.unwrap();
        within_seconds(team.mailbox.flushed()).await;
        assert!(state.read_mailbox().unwrap()["scan-2"].pending.is_empty());
    }

    #[test]
    fn a_changed_plugin_stops_resume_unless_allowed() {
        let (dir, plan) = plan();
        let state = StateDir::create(&dir.path().join("state"), "t").unwrap();
        state.start_fresh(&plan).unwrap();
        let saved = state.read_plan().unwrap();
        assert!(saved.teammates[0].plugin.is_absolute(), "{:?}", saved.teammates[0].plugin);
        assert!(state.check_plugins(false).unwrap().is_empty(), "unchanged");
        std::fs::write(dir.path().join("p.wasm"), b"plugin v2").unwrap();
        let e = state.check_plugins(false).unwrap_err().to_string();
        let path = saved.teammates[0].plugin.display().to_string();
        assert!(e.contains("the plugin of `scan` changed since the run started") && e.contains(&path), "{e}");
        assert!(e.contains("--allow-changed-plugins"), "{e}");
        let warnings = state.check_plugins(true).unwrap();
        assert!(warnings[0].contains("allowed by --allow-changed-plugins"), "{warnings:?}");
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
