//! `ping`: a small teammate the integration tests use to exchange messages.
//!
//! - A task whose description starts with `send-to:<id>` sends
//!   `ping from <me>` to `<id>`, waits for `pong from <id>` and completes
//!   with the summary `got: pong from <id>` (it fails if no pong arrives
//!   within [`PONG_WAIT_MS`]).
//! - A task whose description is `echo` completes with its subject as the
//!   summary.
//! - A message whose body starts with `ping from <x>` is answered with
//!   `pong from <me>`, sent to `<x>`.
//!
//! While a task waits for its pong, other messages are not lost: pings are
//! answered at once (so two pings pinging each other do not deadlock), and
//! everything else is deferred to `on_message` after the task.

use swarm_guest_sdk::prelude::*;

/// How long a `send-to` task waits for each delivery before giving up.
pub const PONG_WAIT_MS: u32 = 30_000;

/// The teammate.
#[derive(Default)]
pub struct Ping {
    /// Messages handled that were not pings, for the log.
    others: u32,
}

impl Teammate for Ping {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let desc = task.description.trim();
        if let Some(rest) = desc.strip_prefix("send-to:") {
            let peer = rest.split_whitespace().next().unwrap_or_default();
            if peer.is_empty() {
                return Err("send-to: needs a teammate id".into());
            }
            ctx.send(peer, &format!("ping from {}", ctx.id()))
                .map_err(|e| format!("ping to {peer}: {}", e.describe()))?;
            let expected = format!("pong from {peer}");
            loop {
                let Some(msg) = ctx.recv(PONG_WAIT_MS) else {
                    return Err(format!("no pong from {peer} within {PONG_WAIT_MS} ms"));
                };
                if msg.body.trim() == expected {
                    return Ok(Report::new(format!("got: {expected}")));
                }
                if is_ping(&msg) {
                    self.on_message(ctx, &msg);
                } else {
                    ctx.defer(msg);
                }
            }
        }
        if desc == "echo" {
            return Ok(Report::new(task.subject.clone()));
        }
        Err(format!("unknown instruction {desc:?}: expected `send-to:<id>` or `echo`"))
    }

    fn on_message(&mut self, ctx: &mut Context, msg: &Message) {
        if let Some(from) = ping_sender(msg) {
            let pong = format!("pong from {}", ctx.id());
            if let Err(e) = ctx.send(from, &pong) {
                ctx.warn(&format!("could not answer {from}: {}", e.describe()));
            }
        } else {
            self.others += 1;
            ctx.debug(&format!("ignored message #{} from {}: {}", self.others, msg.sender, msg.body));
        }
    }
}

fn is_ping(msg: &Message) -> bool {
    ping_sender(msg).is_some()
}

/// `x` for a body `ping from x`.
fn ping_sender(msg: &Message) -> Option<&str> {
    let from = msg.body.strip_prefix("ping from ")?.split_whitespace().next()?;
    Some(from)
}

export_teammate!(Ping);
