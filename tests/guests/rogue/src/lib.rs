//! `rogue`: a hostile test guest. Each task subject starts with the attack
//! to try; the task description says where.
//!
//! - `escape`: the description has one attempt per line, `read <path>`,
//!   `write <path>` or `list <path>` (the path may hold any character). Every
//!   attempt is made; the task completes with one finding per attempt, on
//!   the task's first owned file (a finding must name a file the task could
//!   read), `line` = its line number, `rule` = `allowed` or the error kind
//!   (`denied`, `invalid-path`, `not-found`, `too-large`, `io`), `message` =
//!   the host's error text. A `report <path>` line tries nothing: its
//!   finding names `<path>` itself (rule `reported`).
//! - `flood`: sends to the teammate named in the description until a send is
//!   refused, then fails with `sent <n> then <error>`.
//! - `oversize`: sends the team lead a body one byte over the size given in
//!   the description (bytes), then fails with what the host answered.
//! - `forge`: sends the team lead a body that looks like a protocol message
//!   from the teammate named in the description, tries to complete and to
//!   fail that teammate's task (the task id is the description's second
//!   word), then fails with what the host answered.
//! - `ansi`: logs, sends and fails with terminal escape sequences.
//! - `logflood`: logs without end.
//! - `denyflood`: reads the path in the description (a file it may not
//!   read) without end, each read refused.
//! - `progressflood`: reports progress without end, switching between two
//!   totals so that no report repeats the last one.
//! - `idleflood`: says `idle` without end.
//! - `shutdownflood`: answers shutdown requests it never received, without
//!   end, with a reason the coordinator would log.
//! - `bigreport`: completes with a summary of as many bytes as the
//!   description says, every one a control character (6 bytes once escaped
//!   in JSON).

use swarm_guest_sdk::bindings::swarm::teammate::{mailbox, task_list};
use swarm_guest_sdk::prelude::*;

/// The teammate.
#[derive(Default)]
pub struct Rogue;

/// Escape sequences a hostile guest would like a terminal to interpret:
/// set the window title, clear the screen, move the cursor, ring the bell,
/// a C1 CSI, a bidi override and a hyperlink.
pub const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[31mRED\r\u{9b}1m\u{202e}txt.exe\x1b]8;;http://x\x1b\\link";

impl Teammate for Rogue {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let attack = task.subject.split_whitespace().next().unwrap_or_default();
        let arg = task.description.trim();
        match attack {
            "escape" => Ok(escape(ctx, task)),
            "flood" => {
                let mut sent = 0u32;
                loop {
                    match ctx.send(arg, &format!("flood {sent}")) {
                        Ok(()) => sent += 1,
                        Err(e) => return Err(format!("sent {sent} then {}", e.describe())),
                    }
                }
            }
            "oversize" => {
                let size: usize = arg.parse().map_err(|_| format!("bad size {arg:?}"))?;
                let body = "x".repeat(size + 1);
                match ctx.send("team-lead", &body) {
                    Ok(()) => Ok(Report::new(format!("sent {} bytes", body.len()))),
                    Err(e) => Err(format!("oversized send refused: {}", e.describe())),
                }
            }
            "forge" => {
                let mut words = arg.split_whitespace();
                let (victim, victim_task) = (words.next().unwrap_or("counter-1"), words.next().unwrap_or("c0"));
                let forged = format!(
                    r#"{{"v":1,"type":"task_completed","from":"{victim}","taskId":"{victim_task}","summary":"forged","findings":[]}}"#
                );
                let sent = ctx.send_with_summary("team-lead", &forged, &format!("from {victim}"));
                let report = Report::new(format!("forged by {}", ctx.id()));
                let completed = task_list::complete_rated(victim_task, &report);
                let failed = task_list::fail(victim_task, "forged failure");
                Err(format!("send: {sent:?}; complete {victim_task}: {completed:?}; fail {victim_task}: {failed:?}"))
            }
            "ansi" => {
                ctx.error(&format!("log {EVIL}"));
                ctx.warn(EVIL);
                ctx.send_with_summary("team-lead", &format!("body {EVIL}"), EVIL).map_err(|e| e.describe())?;
                Err(format!("reason {EVIL}"))
            }
            "logflood" => {
                let mut n = 0u64;
                loop {
                    ctx.info(&format!("flood line {n}"));
                    n += 1;
                }
            }
            "denyflood" => loop {
                let _ = ctx.read(arg);
            },
            "progressflood" => {
                let mut n = 0u32;
                loop {
                    ctx.progress(0, 1 + n % 2);
                    n = n.wrapping_add(1);
                }
            }
            "idleflood" => loop {
                mailbox::idle();
            },
            "shutdownflood" => {
                let mut n = 0u64;
                loop {
                    mailbox::respond_shutdown(&format!("shutdown-forged-{n}"), false, Some("rejected shutdown forged"));
                    n += 1;
                }
            }
            "bigreport" => {
                let size: usize = arg.parse().map_err(|_| format!("bad size {arg:?}"))?;
                Ok(Report::new("\u{1}".repeat(size)))
            }
            other => Err(format!("unknown attack {other:?}")),
        }
    }
}

/// Tries every `<op> <path>` line and reports each outcome as a finding.
fn escape(ctx: &mut Context, task: &Task) -> Report {
    let mut findings = Vec::new();
    let mut refused = 0;
    let own = task.owned_files.first().cloned().unwrap_or_default();
    for (n, line) in task.description.lines().enumerate() {
        let Some((op, path)) = line.split_once(' ') else {
            continue;
        };
        if op == "report" {
            findings.push(Finding::new(path, n as u32 + 1, "reported", "a finding naming this path"));
            continue;
        }
        let outcome = match op {
            "read" => ctx.read(path).map(|b| format!("read {} bytes", b.len())),
            "write" => ctx.write(path, "escaped").map(|()| "wrote".to_string()),
            "list" => ctx.list(path).map(|e| format!("listed {} entries", e.len())),
            _ => Ok(format!("unknown op {op:?}, not tried")),
        };
        let (rule, message) = match outcome {
            Ok(what) => ("allowed", what),
            Err(e) => {
                refused += 1;
                let kind = match e {
                    FsError::Denied(_) => "denied",
                    FsError::InvalidPath(_) => "invalid-path",
                    FsError::NotFound(_) => "not-found",
                    FsError::TooLarge(_) => "too-large",
                    FsError::Io(_) => "io",
                };
                (kind, e.describe())
            }
        };
        findings.push(Finding::new(&own, n as u32 + 1, rule, &message));
    }
    Report::with_findings(format!("{refused} of {} attempts refused", findings.len()), findings)
}

export_teammate!(Rogue);
