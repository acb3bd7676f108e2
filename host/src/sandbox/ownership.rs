//! The `ownership` import (since `swarm:teammate@0.1.3`): a teammate asks
//! for a file its held task does not own. The sandbox checks the path
//! first (clean, an existing regular file the policy would let a task
//! write); the coordinator decides through the store's port (the team file's
//! policy, or a person), and a granted file joins the held task's files at
//! once, so the next write to it succeeds.
//!
//! The wait is bounded like every wait of a task: by the held task's
//! deadline (a trap when it passes, as in `mailbox.recv`).

use super::TeammateState;
use super::bindings::swarm::teammate::ownership;

/// Longest reason passed on (bytes); longer is cut.
pub const MAX_REASON_BYTES: usize = 2048;

impl ownership::Host for TeammateState {
    async fn request_file(&mut self, path: String, reason: String) -> wasmtime::Result<Result<(), String>> {
        if let Some(hit) = self.deadline_hit() {
            return Err(wasmtime::Error::new(hit));
        }
        self.alive();
        if self.held.is_none() {
            return Ok(Err("no task is held: a file is asked for the held task".to_string()));
        }
        let rel = match self.workspace.check_request(&path) {
            Ok(rel) => rel,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut reason = reason;
        if reason.len() > MAX_REASON_BYTES {
            let mut cut = MAX_REASON_BYTES;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        let deadline = self.held.as_ref().map(|h| h.deadline);
        let link = self.link.clone();
        let (id, asked) = (self.id.clone(), rel.clone());
        let decided = link.request_file(&id, asked, reason);
        let decided = match deadline {
            Some(at) => match tokio::time::timeout_at(at.into(), decided).await {
                Ok(d) => d,
                Err(_) => {
                    return Err(wasmtime::Error::new(self.deadline_hit().unwrap_or(super::LimitHit::Deadline {
                        task: self.held.as_ref().map_or_else(String::new, |h| h.id.clone()),
                        deadline: self.held.as_ref().map_or_else(Default::default, |h| h.deadline_len),
                    })));
                }
            },
            None => decided.await,
        };
        let decided = decided.map_err(wasmtime::Error::new)?;
        if decided.is_ok()
            && let Some(held) = self.held.as_mut()
        {
            held.owned.insert(rel);
        }
        self.alive();
        Ok(decided)
    }
}
