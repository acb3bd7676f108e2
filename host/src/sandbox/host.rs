//! The swarm imports (`mailbox`, `task-list`, `workspace`, `log`; `llm` is
//! in [`super::llm`]) as the host
//! implements them for one teammate, whether its team is in this process or
//! across the socket (the store's [`TeamPort`](crate::port::TeamPort) hides
//! which).
//!
//! Each import checks first (size caps, roster, ownership, deadline) and
//! returns `wasmtime::Result<Result<T, E>>`: the outer error traps the guest
//! (a limit it may not ignore), the inner one is an error the guest sees.
//! The sender of every message is the store's own teammate id: a guest
//! cannot forge its identity.

use std::future::Future;
use std::time::{Duration, Instant};

use super::bindings::swarm::teammate::{log, mailbox, task_list, types, workspace};
use super::workspace::{FsError, Holder, Written};
use super::{Held, LimitHit, TeammateState};
use crate::mailbox::{Incoming, SendError, TEAM_LEAD};
use crate::model::{Finding, Severity, TeammateMessage};
use crate::tasks::TaskReport;
use crate::team::{Beat, Liveness};

/// Longest task id or recipient a guest may name: longer is no id of this
/// team (ids come from the plan), and is refused here, before it reaches
/// the team or a socket frame.
pub const MAX_ID_BYTES: usize = 4096;

/// The first 64 characters of a guest-chosen id, for an error message.
fn truncated(id: &str) -> String {
    id.chars().take(64).collect()
}

fn not_held(task_id: &str, id: &str) -> String {
    format!("task `{}…` is not held by `{id}` (no task id is over {MAX_ID_BYTES} bytes)", truncated(task_id))
}

/// How often a busy teammate's calls into the host reach the roster.
const ALIVE_EVERY: Duration = Duration::from_millis(100);

impl TeammateState {
    /// Sends `msg` to the coordinator. The future owns its sender (not
    /// `&self`, which is not `Sync`), so host futures stay `Send`.
    fn emit(&self, msg: TeammateMessage) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.link.emit(msg)
    }

    fn beat(&self, beat: Beat) {
        self.link.beat(&self.id, beat);
    }

    /// Records in the roster that the teammate called into the host, at
    /// most every [`ALIVE_EVERY`]: the roster's lock is shared by the whole
    /// team, and a teammate scanning files calls in thousands of times a
    /// second.
    pub(super) fn alive(&mut self) {
        let now = Instant::now();
        if self.last_alive.is_none_or(|t| now.duration_since(t) >= ALIVE_EVERY) {
            self.last_alive = Some(now);
            self.beat(Beat::Alive);
        }
    }

    pub(super) fn deadline_hit(&self) -> Option<LimitHit> {
        let h = self.held.as_ref()?;
        (Instant::now() >= h.deadline).then(|| LimitHit::Deadline { task: h.id.clone(), deadline: h.deadline_len })
    }

    /// The held task as a file call needs it (no task: no files). Borrowed:
    /// a task may own thousands of files, and every file call asks.
    fn holder(&self) -> Holder<'_> {
        match &self.held {
            Some(h) => Holder { task: Some(&h.id), owned: &h.owned },
            None => Holder::none(),
        }
    }

    /// Reports a refused file operation to the coordinator, whatever the
    /// guest does with the error. Each one is charged to `events_per_sec`;
    /// past it nothing more is reported and the guest traps at its next
    /// epoch tick (see [`TeammateState::pending_hit`]).
    fn denied<T>(&mut self, operation: &str, result: &Result<T, FsError>) -> impl Future<Output = ()> + Send + 'static {
        let mut msg = match result {
            Err(FsError::Denied(why)) | Err(FsError::InvalidPath(why)) => Some(TeammateMessage::AccessDenied {
                from: self.id.clone(),
                task_id: self.held.as_ref().map(|h| h.id.clone()),
                operation: operation.to_string(),
                // The reason quotes the guest's path: kept to one log line's length.
                reason: why.chars().take(crate::sanitize::MAX_LINE_CHARS).collect(),
            }),
            _ => None,
        };
        if msg.is_some()
            && let Err(hit) = self.events.denial()
        {
            self.pending_hit.get_or_insert(hit);
            msg = None;
        }
        let link = self.link.clone();
        async move {
            if let Some(msg) = msg {
                link.emit(msg).await;
            }
        }
    }

    fn message_too_large(&self, body: &str, summary: Option<&str>) -> Option<u32> {
        let size = body.len() + summary.map_or(0, str::len);
        (size > self.limits.message_bytes()).then_some(self.limits.message_bytes() as u32)
    }

    /// Completes the held task `task_id` with its report (`complete` and
    /// `complete-rated` end here): the size check, the task list, the roster
    /// and the coordinator's event.
    async fn complete_task(
        &mut self,
        task_id: String,
        summary: String,
        findings: Vec<Finding>,
    ) -> wasmtime::Result<Result<(), task_list::TaskError>> {
        let size =
            summary.len() + findings.iter().map(|f| f.file.len() + f.rule.len() + f.message.len() + 16).sum::<usize>();
        if size > self.limits.report_bytes() {
            return Ok(Err(task_list::TaskError::TooLarge(self.limits.report_bytes() as u32)));
        }
        // A finding names a file the held task could read, or it is dropped
        // and reported like a refused read. (Completing a task not held is
        // refused below; its findings go nowhere.)
        let holds_it = self.held.as_ref().is_some_and(|h| h.id == task_id);
        let mut kept = Vec::with_capacity(findings.len());
        for f in findings.into_iter().filter(|_| holds_it) {
            match self.workspace.check_finding(&f.file, &self.holder()) {
                Ok(file) => kept.push(Finding { file, ..f }),
                Err(e) => self.denied("finding", &Err::<(), _>(e)).await,
            }
        }
        let findings = kept;
        let done = TaskReport { summary: summary.clone(), findings: findings.clone() };
        if task_id.len() > MAX_ID_BYTES {
            return Ok(Err(task_list::TaskError::NotHeld(not_held(&task_id, &self.id))));
        }
        if let Err(e) = self.link.complete(&self.id, task_id.clone(), done).await.map_err(wasmtime::Error::new)? {
            return Ok(Err(task_list::TaskError::NotHeld(e)));
        }
        self.held = None;
        self.beat(Beat::TaskCleared);
        self.emit(TeammateMessage::TaskCompleted { from: self.id.clone(), task_id, summary, findings }).await;
        Ok(Ok(()))
    }
}

impl types::Host for TeammateState {}

fn send_error(e: SendError) -> mailbox::SendError {
    match e {
        SendError::UnknownRecipient(r) => mailbox::SendError::UnknownRecipient(r),
        SendError::InboxFull { recipient, .. } => mailbox::SendError::InboxFull(recipient),
    }
}

impl mailbox::Host for TeammateState {
    async fn recv(&mut self, timeout_ms: u32) -> wasmtime::Result<Option<mailbox::Incoming>> {
        if let Some(hit) = self.deadline_hit() {
            return Err(wasmtime::Error::new(hit));
        }
        let asked = Duration::from_millis(u64::from(timeout_ms));
        let mut wait = asked;
        if let Some(h) = &self.held {
            // A guest waiting in the host is still bound by its task deadline.
            wait = wait.min(h.deadline.saturating_duration_since(Instant::now()));
        }
        // The timer may wake a hair before the deadline instant; a wait the
        // deadline cut short is a deadline hit all the same.
        let cut_by_deadline = wait < asked;
        self.alive();
        // No guest code runs while this waits: the epoch ticker may sleep.
        self.epoch.pause();
        let got = self.link.recv(&self.id, wait).await;
        self.epoch.resume();
        // The wait is not idle computing.
        self.idle.resume(Instant::now());
        let got = got.map_err(wasmtime::Error::new)?;
        self.alive();
        Ok(match got {
            None => {
                if let Some(h) = self.held.as_ref().filter(|_| cut_by_deadline) {
                    let hit = LimitHit::Deadline { task: h.id.clone(), deadline: h.deadline_len };
                    return Err(wasmtime::Error::new(hit));
                }
                if let Some(hit) = self.deadline_hit() {
                    return Err(wasmtime::Error::new(hit));
                }
                None
            }
            Some(Incoming::Message { sender, body, summary }) => {
                Some(mailbox::Incoming::Message(mailbox::Message { sender, body, summary }))
            }
            Some(Incoming::Shutdown { request_id, reason }) => {
                self.events.shutdown_received(&request_id);
                self.beat(Beat::State { state: Liveness::Stopping });
                Some(mailbox::Incoming::Shutdown(mailbox::ShutdownRequest { request_id, reason }))
            }
            Some(Incoming::TasksAvailable) => Some(mailbox::Incoming::TasksAvailable),
        })
    }

    async fn send(
        &mut self,
        to: String,
        body: String,
        summary: Option<String>,
    ) -> wasmtime::Result<Result<(), mailbox::SendError>> {
        if let Some(limit) = self.message_too_large(&body, summary.as_deref()) {
            return Ok(Err(mailbox::SendError::TooLarge(limit)));
        }
        self.alive();
        if to == TEAM_LEAD {
            if self.lead_sent >= self.limits.inbox_len {
                return Ok(Err(mailbox::SendError::InboxFull(TEAM_LEAD.to_string())));
            }
            self.lead_sent += 1;
            self.emit(TeammateMessage::Message { from: self.id.clone(), to, body, summary }).await;
            return Ok(Ok(()));
        }
        if to.len() > MAX_ID_BYTES {
            return Ok(Err(send_error(SendError::UnknownRecipient(format!("{}…", truncated(&to))))));
        }
        Ok(self.link.send(&self.id, to, body, summary).await.map_err(wasmtime::Error::new)?.map_err(send_error))
    }

    async fn broadcast(
        &mut self,
        body: String,
        summary: Option<String>,
    ) -> wasmtime::Result<Result<(), mailbox::SendError>> {
        if let Some(limit) = self.message_too_large(&body, summary.as_deref()) {
            return Ok(Err(mailbox::SendError::TooLarge(limit)));
        }
        self.alive();
        Ok(self.link.broadcast(&self.id, body, summary).await.map_err(wasmtime::Error::new)?.map_err(send_error))
    }

    async fn idle(&mut self) -> wasmtime::Result<()> {
        // Once per stretch of idleness: a loop of `idle` calls is one event
        // (and computing in that loop is charged to idle_cpu).
        if self.events.idle() {
            self.beat(Beat::Idle);
            self.emit(TeammateMessage::IdleNotification { from: self.id.clone(), reason: None }).await;
        }
        Ok(())
    }

    async fn respond_shutdown(
        &mut self,
        request_id: String,
        approve: bool,
        reason: Option<String>,
    ) -> wasmtime::Result<()> {
        // Only a request this teammate received is answered, once: forged
        // or repeated answers never reach the coordinator.
        if !self.events.shutdown_answer(&request_id) {
            return Ok(());
        }
        let reason = reason.map(|r| r.chars().take(self.limits.message_bytes()).collect());
        self.beat(Beat::State { state: if approve { Liveness::Stopping } else { Liveness::Idle } });
        self.emit(TeammateMessage::ShutdownResponse { request_id, from: self.id.clone(), approve, reason }).await;
        Ok(())
    }

    async fn roster(&mut self) -> wasmtime::Result<Vec<String>> {
        self.link.roster(&self.id).await.map_err(wasmtime::Error::new)
    }
}

impl task_list::Host for TeammateState {
    async fn claim(&mut self) -> wasmtime::Result<Option<types::Task>> {
        if let Some(hit) = self.deadline_hit() {
            return Err(wasmtime::Error::new(hit));
        }
        let Some(claimed) = self.link.claim(&self.id, &self.group).await.map_err(wasmtime::Error::new)? else {
            self.alive();
            return Ok(None);
        };
        let (spec, dependencies) = (claimed.spec, claimed.dependencies);
        // Holding a task, the guest is bounded by its deadline; the idle
        // sum starts over.
        self.idle.claimed(Instant::now());
        self.events.claimed();
        if self.held.as_ref().is_none_or(|h| h.id != spec.id) {
            let deadline_len = spec.deadline.unwrap_or(self.limits.task_deadline);
            self.held = Some(Held {
                id: spec.id.clone(),
                owned: spec.owned_files.clone(),
                deadline: Instant::now() + deadline_len,
                deadline_len,
                dependencies,
            });
        }
        self.beat(Beat::Working { task: spec.id.clone() });
        Ok(Some(types::Task {
            id: spec.id,
            subject: spec.subject,
            description: spec.description,
            owned_files: spec.owned_files.into_iter().collect(),
            attempt: claimed.attempt,
        }))
    }

    async fn dependency_results(
        &mut self,
        task_id: String,
    ) -> wasmtime::Result<Result<Vec<types::DependencyResult>, task_list::TaskError>> {
        self.alive();
        let Some(held) = self.held.as_ref().filter(|h| h.id == task_id) else {
            return Ok(Err(task_list::TaskError::NotHeld(not_held(&task_id, &self.id))));
        };
        let severity = |s: Severity| match s {
            Severity::Note => types::Severity::Note,
            Severity::Warning => types::Severity::Warning,
            Severity::Error => types::Severity::Error,
        };
        Ok(Ok(held
            .dependencies
            .iter()
            .map(|d| types::DependencyResult {
                task_id: d.task_id.clone(),
                subject: d.subject.clone(),
                summary: d.summary.clone(),
                findings: d
                    .findings
                    .iter()
                    .map(|f| types::RatedFinding {
                        file: f.file.clone(),
                        line: f.line,
                        rule: f.rule.clone(),
                        message: f.message.clone(),
                        severity: severity(f.severity),
                    })
                    .collect(),
                omitted_findings: d.omitted_findings,
            })
            .collect()))
    }

    async fn complete(
        &mut self,
        task_id: String,
        report: types::Report,
    ) -> wasmtime::Result<Result<(), task_list::TaskError>> {
        // A guest of swarm:teammate@0.1.0 names no severity: `warning`.
        let findings = report
            .findings
            .into_iter()
            .map(|f| types::RatedFinding {
                file: f.file,
                line: f.line,
                rule: f.rule,
                message: f.message,
                severity: types::Severity::Warning,
            })
            .collect();
        self.complete_rated(task_id, types::RatedReport { summary: report.summary, findings }).await
    }

    async fn complete_rated(
        &mut self,
        task_id: String,
        report: types::RatedReport,
    ) -> wasmtime::Result<Result<(), task_list::TaskError>> {
        let findings = report
            .findings
            .into_iter()
            .map(|f| Finding {
                file: f.file,
                line: f.line,
                rule: f.rule,
                message: f.message,
                severity: match f.severity {
                    types::Severity::Note => Severity::Note,
                    types::Severity::Warning => Severity::Warning,
                    types::Severity::Error => Severity::Error,
                },
            })
            .collect();
        self.complete_task(task_id, report.summary, findings).await
    }

    async fn fail(&mut self, task_id: String, reason: String) -> wasmtime::Result<Result<(), task_list::TaskError>> {
        let reason: String = reason.chars().take(self.limits.message_bytes()).collect();
        if task_id.len() > MAX_ID_BYTES {
            return Ok(Err(task_list::TaskError::NotHeld(not_held(&task_id, &self.id))));
        }
        if let Err(e) = self.link.fail(&self.id, task_id.clone(), reason.clone()).await.map_err(wasmtime::Error::new)? {
            return Ok(Err(task_list::TaskError::NotHeld(e)));
        }
        self.held = None;
        self.beat(Beat::TaskCleared);
        self.emit(TeammateMessage::Error { from: self.id.clone(), task_id: Some(task_id), message: reason }).await;
        Ok(Ok(()))
    }
}

fn fs_error(e: FsError) -> workspace::FsError {
    match e {
        FsError::Denied(m) => workspace::FsError::Denied(m),
        FsError::NotFound(m) => workspace::FsError::NotFound(m),
        FsError::InvalidPath(m) => workspace::FsError::InvalidPath(m),
        FsError::TooLarge(n) => workspace::FsError::TooLarge(n),
        FsError::Io(m) => workspace::FsError::Io(m),
    }
}

impl workspace::Host for TeammateState {
    async fn read(&mut self, path: String) -> wasmtime::Result<Result<Vec<u8>, workspace::FsError>> {
        self.alive();
        let result = self.workspace.read(&path, &self.holder());
        self.denied("read", &result).await;
        Ok(result.map_err(fs_error))
    }

    async fn write(&mut self, path: String, contents: Vec<u8>) -> wasmtime::Result<Result<(), workspace::FsError>> {
        self.alive();
        let result = self.workspace.write(&path, &contents, &self.holder());
        self.denied("write", &result).await;
        // A file the task created is its own for the rest of the attempt.
        if let (Ok(Written::Created(rel)), Some(held)) = (&result, self.held.as_mut()) {
            held.owned.insert(rel.clone());
        }
        Ok(result.map(|_| ()).map_err(fs_error))
    }

    async fn list_dir(
        &mut self,
        path: String,
    ) -> wasmtime::Result<Result<Vec<workspace::DirEntry>, workspace::FsError>> {
        self.alive();
        let result = self.workspace.list(&path, &self.holder());
        self.denied("list", &result).await;
        Ok(result
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|e| workspace::DirEntry { path: e.path, is_dir: e.is_dir, size: e.size })
                    .collect()
            })
            .map_err(fs_error))
    }
}

impl log::Host for TeammateState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        // A flood of log lines stops the teammate (log_lines_per_sec).
        self.limiter.log_line().map_err(wasmtime::Error::new)?;
        self.alive();
        use log::Level;
        super::guest_log!(teammate = &self.id, Level, level, &message, &mut self.last_panic);
        Ok(())
    }

    async fn progress(&mut self, done: u32, total: u32) -> wasmtime::Result<()> {
        // The roster and the coordinator hear of it when a task's progress
        // starts or reaches a new whole percentage: at most about 100 times
        // per task, not once per file through the roster's lock, the event
        // loop (and, for a teammate process, the socket). Other changes are
        // charged to events_per_sec (see `EventGate::progress`).
        self.alive();
        let task_id = self.held.as_ref().map(|h| h.id.clone());
        if self.events.progress(task_id.as_deref(), done, total).map_err(wasmtime::Error::new)? {
            self.beat(Beat::Progress { done, total });
            self.emit(TeammateMessage::Progress { from: self.id.clone(), task_id, done, total }).await;
        }
        Ok(())
    }
}
