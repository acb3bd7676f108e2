//! A teammate's request for a file its held task does not own
//! (`ownership.request-file`), decided by the team file's policy:
//!
//! - `deny`: refused, naming the setting;
//! - `grant-unowned`: the task list moves the file to the held task if no
//!   unfinished task owns it (checked and moved under its lock: a file a
//!   running task owns is never granted);
//! - `ask`: the request waits for a person (`swarm-host answer`, `attach`)
//!   for at most `ask_timeout`, then is denied; a person's grant still goes
//!   through the same move, so it cannot take a running task's file.
//!
//! Every decision is said on the attach feed, logged and kept for the
//! report; a grant is journaled (the task's spec) before the teammate hears
//! of it, so a resume sees it.

use super::{FileDecision, Pending, RequestPolicy, Steering, lock};
use crate::team::FileRequest;

impl Steering {
    /// Decides `req`: at once for `deny` and `grant-unowned`, in a task of
    /// its own for `ask` (the run loop does not wait).
    pub fn on_file_request(&self, req: FileRequest) {
        let id = self.next_id();
        let FileRequest { from, task, path, reason, answer } = req;
        let reason = crate::sanitize::line(&reason);
        let mut decision = FileDecision {
            id: id.clone(),
            teammate: from,
            task,
            path,
            reason,
            granted: false,
            decided_by: String::new(),
        };
        match self.inner.policy {
            RequestPolicy::Deny => {
                decision.decided_by = "the policy: ownership_requests = \"deny\"".into();
                let _ = answer.send(Err(
                    "denied: the team file's ownership_requests = \"deny\"; ask the team lead with send_message".into(),
                ));
                self.decided(decision);
            }
            RequestPolicy::GrantUnowned => {
                let moved = self.inner.team.tasks.grant(&decision.teammate, &decision.path);
                decision.granted = moved.is_ok();
                decision.decided_by = match &moved {
                    Ok(_) => "the policy: ownership_requests = \"grant-unowned\"".into(),
                    Err(why) => format!("the policy: ownership_requests = \"grant-unowned\" ({why})"),
                };
                let _ = answer.send(moved.map(drop).map_err(|why| format!("denied: {why}")));
                self.decided(decision);
            }
            RequestPolicy::Ask => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let line = format!(
                    "ask {id}: {} (task {}) asks for {}: {} — answer with `swarm-host answer {} {id} grant|deny`",
                    decision.teammate, decision.task, decision.path, decision.reason, self.inner.team.name
                );
                lock(&self.inner.pending).insert(id.clone(), Pending { line: line.clone(), answer: tx });
                self.say(line);
                let (steering, timeout) = (self.clone(), self.inner.ask_timeout);
                tokio::spawn(async move {
                    let person = tokio::time::timeout(timeout, rx).await;
                    lock(&steering.inner.pending).remove(&id);
                    let outcome = match person {
                        Ok(Ok(true)) => match steering.inner.team.tasks.grant(&decision.teammate, &decision.path) {
                            Ok(_) => Ok("a person".to_string()),
                            Err(why) => Err(format!("a person granted it, but {why}")),
                        },
                        Ok(Ok(false)) => Err("a person".to_string()),
                        Ok(Err(_)) => Err("the run ending before a person answered".to_string()),
                        Err(_) => Err(format!(
                            "the timeout: nobody answered within ask_timeout = {}",
                            humantime::format_duration(timeout)
                        )),
                    };
                    decision.granted = outcome.is_ok();
                    let _ = answer.send(match &outcome {
                        Ok(_) => Ok(()),
                        Err(by) => Err(format!("denied by {by}")),
                    });
                    decision.decided_by = outcome.unwrap_or_else(|by| by);
                    steering.decided(decision);
                });
            }
        }
    }

    /// Denies every request still waiting for a person: the run is over
    /// (each is decided as ended by the run, not by a person).
    pub fn deny_pending(&self) {
        drop(std::mem::take(&mut *lock(&self.inner.pending)));
    }
}
