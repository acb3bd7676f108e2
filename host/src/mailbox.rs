//! Teammate inboxes: bounded, recipient-checked, and event-driven.
//!
//! A message counts as delivered only when the recipient's `recv` returns it;
//! until then it sits in the inbox. A receiver waiting on an empty inbox is
//! parked on a [`Notify`]: no polling, no CPU while idle. Text messages are
//! bounded per inbox (a full inbox is an error to the sender, never silent
//! growth); control messages (shutdown requests, "tasks available") bypass
//! the bound so the team lead can always reach a teammate.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The id the coordinator uses as a sender and recipient.
pub const TEAM_LEAD: &str = "team-lead";

/// Something waiting in an inbox (mirrors the WIT `incoming` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Message {
        /// Sender id, or [`TEAM_LEAD`].
        sender: String,
        /// The text.
        body: String,
        /// Optional short summary.
        summary: Option<String>,
    },
    /// The team lead asks the teammate to stop.
    Shutdown {
        /// Echoed in the response.
        request_id: String,
        /// Why.
        reason: String,
    },
    /// Claimable tasks exist again.
    TasksAvailable,
}

/// Why a send was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such teammate on the roster.
    #[error("unknown recipient `{0}` (not on the team roster)")]
    UnknownRecipient(String),
    /// The recipient's inbox holds `inbox_len` messages already.
    #[error("inbox of `{recipient}` is full (inbox_len = {limit})")]
    InboxFull {
        /// The recipient.
        recipient: String,
        /// Its inbox bound.
        limit: usize,
    },
}

/// Mutex rather than a lock-free queue: inbox operations are short, never
/// held across an await, and we need "check bound + push" to be atomic.
#[derive(Debug, Default)]
struct Inbox {
    queue: Mutex<VecDeque<Incoming>>,
    notify: Notify,
    limit: usize,
    /// Messages ever queued / delivered: the inbox's cursors.
    queued: AtomicU64,
    delivered: AtomicU64,
}

/// All inboxes of one team. The roster is fixed when the team is planned.
#[derive(Debug)]
pub struct Mailbox {
    inboxes: HashMap<String, Inbox>,
    order: Vec<String>,
    /// Times any `recv` returned (a message or a timeout): every return
    /// resumes a suspended teammate, so this counts wake-ups.
    recv_returns: AtomicU64,
}

impl Mailbox {
    /// One inbox per `(teammate id, inbox bound)`.
    pub fn new<'a>(roster: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut inboxes = HashMap::new();
        let mut order = Vec::new();
        for (id, limit) in roster {
            order.push(id.to_string());
            inboxes.insert(id.to_string(), Inbox { limit, ..Inbox::default() });
        }
        Self { inboxes, order, recv_returns: AtomicU64::new(0) }
    }

    /// How many times `recv` has returned, over all inboxes: the wake-ups
    /// of waiting teammates (an idle team should add none).
    pub fn recv_returns(&self) -> u64 {
        self.recv_returns.load(Ordering::Relaxed)
    }

    /// Teammate ids in roster order.
    pub fn roster(&self) -> &[String] {
        &self.order
    }

    fn inbox(&self, id: &str) -> Result<&Inbox, SendError> {
        self.inboxes.get(id).ok_or_else(|| SendError::UnknownRecipient(id.to_string()))
    }

    /// Queues `msg` for `to`. Text messages respect the inbox bound;
    /// a `TasksAvailable` already queued is not queued twice.
    pub fn send(&self, to: &str, msg: Incoming) -> Result<(), SendError> {
        let inbox = self.inbox(to)?;
        {
            let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            match msg {
                Incoming::Message { .. } if q.len() >= inbox.limit => {
                    return Err(SendError::InboxFull { recipient: to.to_string(), limit: inbox.limit });
                }
                Incoming::TasksAvailable if q.contains(&Incoming::TasksAvailable) => return Ok(()),
                _ => q.push_back(msg),
            }
        }
        inbox.queued.fetch_add(1, Ordering::Relaxed);
        inbox.notify.notify_one();
        Ok(())
    }

    /// Sends `msg` to everyone on the roster except `from`. Delivers to every
    /// inbox with room and returns the first refusal, if any.
    pub fn broadcast(&self, from: &str, msg: &Incoming) -> Result<(), SendError> {
        let mut first_err = None;
        for id in self.order.iter().filter(|id| *id != from) {
            if let Err(e) = self.send(id, msg.clone()) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Takes the next message for `id`, waiting up to `timeout` for one.
    /// `None` on timeout (or for an id not on the roster).
    pub async fn recv(&self, id: &str, timeout: Duration) -> Option<Incoming> {
        let inbox = self.inboxes.get(id)?;
        let got = self.wait_next(inbox, timeout).await;
        self.recv_returns.fetch_add(1, Ordering::Relaxed);
        got
    }

    async fn wait_next(&self, inbox: &Inbox, timeout: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking the queue so a send between
            // the check and the wait is not missed.
            let notified = inbox.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(msg) = inbox.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                inbox.delivered.fetch_add(1, Ordering::Relaxed);
                return Some(msg);
            }
            if timeout.is_zero() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Cursors and undelivered text messages of every inbox, for the state
    /// directory.
    pub fn snapshot(&self) -> crate::state::MailboxState {
        self.inboxes
            .iter()
            .map(|(id, inbox)| {
                let q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
                let pending = crate::state::pending_texts(q.iter());
                let state = crate::state::InboxState {
                    queued: inbox.queued.load(Ordering::Relaxed),
                    delivered: inbox.delivered.load(Ordering::Relaxed),
                    pending,
                };
                (id.clone(), state)
            })
            .collect()
    }

    /// Re-queues the undelivered text messages of a saved snapshot (on
    /// resume), ignoring inboxes no longer on the roster.
    pub fn restore(&self, saved: &crate::state::MailboxState) {
        for (id, state) in saved {
            for (sender, body, summary) in &state.pending {
                let msg = Incoming::Message { sender: sender.clone(), body: body.clone(), summary: summary.clone() };
                let _ = self.send(id, msg);
            }
        }
    }

    /// Messages waiting for `id`.
    pub fn pending(&self, id: &str) -> usize {
        self.inboxes.get(id).map_or(0, |i| i.queue.lock().unwrap_or_else(|e| e.into_inner()).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(body: &str) -> Incoming {
        Incoming::Message { sender: "a".into(), body: body.into(), summary: None }
    }

    #[tokio::test]
    async fn unknown_recipient_is_an_error() {
        let mb = Mailbox::new([("a", 4)]);
        assert_eq!(mb.send("b", text("x")), Err(SendError::UnknownRecipient("b".into())));
    }

    #[tokio::test]
    async fn full_inbox_pushes_back_but_control_messages_pass() {
        let mb = Mailbox::new([("a", 2)]);
        mb.send("a", text("1")).unwrap();
        mb.send("a", text("2")).unwrap();
        assert_eq!(mb.send("a", text("3")), Err(SendError::InboxFull { recipient: "a".into(), limit: 2 }));
        mb.send("a", Incoming::Shutdown { request_id: "r".into(), reason: "done".into() }).unwrap();
        assert_eq!(mb.pending("a"), 3);
        assert_eq!(mb.recv("a", Duration::ZERO).await, Some(text("1")));
    }

    #[tokio::test]
    async fn recv_waits_for_a_send_and_times_out_otherwise() {
        let mb = Arc::new(Mailbox::new([("a", 4)]));
        assert_eq!(mb.recv("a", Duration::from_millis(20)).await, None);
        let waiter = tokio::spawn({
            let mb = mb.clone();
            async move { mb.recv("a", Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        mb.send("a", text("hi")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(got, Some(text("hi")));
        assert_eq!(mb.pending("a"), 0);
        assert_eq!(mb.recv_returns(), 2, "one timeout and one delivery");
    }

    #[tokio::test]
    async fn broadcast_reaches_everyone_but_the_sender() {
        let mb = Mailbox::new([("a", 4), ("b", 4), ("c", 4)]);
        mb.broadcast("a", &text("all")).unwrap();
        assert_eq!((mb.pending("a"), mb.pending("b"), mb.pending("c")), (0, 1, 1));
    }

    #[tokio::test]
    async fn tasks_available_is_not_queued_twice() {
        let mb = Mailbox::new([("a", 4)]);
        mb.send("a", Incoming::TasksAvailable).unwrap();
        mb.send("a", Incoming::TasksAvailable).unwrap();
        assert_eq!(mb.pending("a"), 1);
    }
}
