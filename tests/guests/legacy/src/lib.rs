//! `legacy`: a teammate built against `swarm:teammate@0.1.0` (the copy of
//! that WIT in `wit/`, kept unchanged), with `wit-bindgen` and without the
//! SDK, as a guest compiled before 0.1.1 was. It claims every task it can,
//! then waits; it approves a shutdown. By task subject:
//!
//! - `fail`: fails the task with the task's description as the reason;
//! - `quit`: returns `err(<description>)` from `run` while holding the task;
//! - anything else: completes it with the old `complete` call and one
//!   unrated finding (`legacy.txt:1 legacy-rule`).
//!
//! The tests check that a host of a later 0.1.x still loads it, that its
//! findings arrive with severity `warning`, and that `plugins inspect`
//! accepts it; `fail` and `quit` let a guest write whatever error text it
//! likes (e.g. words of a limit message) where the host reports it.

#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ world: "teammate", path: "wit" });
}

use bindings::swarm::teammate::mailbox::{self, Incoming};
use bindings::swarm::teammate::task_list;
use bindings::swarm::teammate::types::{Finding, Identity, Report};

/// The teammate.
pub struct Legacy;

impl bindings::Guest for Legacy {
    fn run(_me: Identity) -> Result<(), String> {
        loop {
            while let Some(task) = task_list::claim() {
                if task.subject.contains("quit") {
                    return Err(task.description);
                }
                if task.subject.contains("fail") {
                    task_list::fail(&task.id, &task.description).map_err(|e| format!("fail {}: {e:?}", task.id))?;
                    continue;
                }
                let finding = Finding {
                    file: "legacy.txt".into(),
                    line: Some(1),
                    rule: "legacy-rule".into(),
                    message: format!("seen in task {}", task.id),
                };
                let report = Report { summary: format!("legacy did {}", task.id), findings: vec![finding] };
                task_list::complete(&task.id, &report).map_err(|e| format!("complete {}: {e:?}", task.id))?;
            }
            mailbox::idle();
            if let Some(Incoming::Shutdown(request)) = mailbox::recv(u32::MAX) {
                mailbox::respond_shutdown(&request.request_id, true, None);
                return Ok(());
            }
        }
    }
}

// The generated export glue is `unsafe` (the canonical ABI entry points).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
const _: () = {
    bindings::export!(Legacy with_types_in bindings);
};
