//! Teammate inboxes: bounded, recipient-checked, and event-driven.
//!
//! A message counts as delivered only when the recipient's `recv` returns it;
//! until then it sits in the inbox. A receiver waiting on an empty inbox is
//! parked on a [`Notify`]: no polling, no CPU while idle. Text messages are
//! bounded per inbox (a full inbox is an error to the sender, never silent
//! growth); control messages (shutdown requests, "tasks available") bypass
//! the bound so the team lead can always reach a teammate.
//!
//! Persistence is not this module's business: every text message queued or
//! delivered is handed, as a [`MailChange`], to the journal installed with
//! [`Mailbox::with_journal`], under the inbox's lock so that changes arrive
//! in order (that callback must not block); a sender that must know its
//! message is durable awaits [`Mailbox::flushed`]. [`Mailbox::snapshot`]
//! and [`Mailbox::restore`] trade the same plain data ([`MailboxState`]).
//! Control messages are not persisted: a resumed run derives them again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
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

/// Most messages to teammates [`Mailbox::traffic`] keeps for the report;
/// later ones are counted.
pub const MAX_TRAFFIC: usize = 10_000;

/// A message queued for a teammate (from a teammate or the lead), as the
/// report's timeline draws it: who to whom, when, and its summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Sender id, or [`TEAM_LEAD`].
    pub from: String,
    /// Recipient id.
    pub to: String,
    /// When it was queued, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Its summary (for a shutdown request: `shutdown request`).
    #[serde(default)]
    pub summary: Option<String>,
}

/// The messages queued so far, the first [`MAX_TRAFFIC`], and how many
/// more there were.
#[derive(Debug, Default)]
struct Traffic {
    sent: Vec<Sent>,
    dropped: u64,
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

/// One change to the text messages of an inbox, with the inbox's cursor
/// after it. [`MailChange::apply`] replays it onto a [`MailboxState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mail", rename_all = "snake_case")]
pub enum MailChange {
    /// A text message was queued for `to`.
    Queued {
        /// The recipient.
        to: String,
        /// The sender.
        sender: String,
        /// The text.
        body: String,
        /// Its summary.
        summary: Option<String>,
        /// The inbox's `queued` cursor after it.
        queued: u64,
    },
    /// The oldest text message of `to` was delivered.
    Delivered {
        /// The recipient.
        to: String,
        /// The inbox's `delivered` cursor after it.
        delivered: u64,
    },
}

impl MailChange {
    /// Replays the change onto `state`. A delivery from an inbox with no
    /// text message waiting is an error saying so.
    pub fn apply(self, state: &mut MailboxState) -> Result<(), String> {
        match self {
            Self::Queued { to, sender, body, summary, queued } => {
                let inbox = state.entry(to).or_default();
                inbox.pending.push((sender, body, summary));
                inbox.queued = queued;
            }
            Self::Delivered { to, delivered } => {
                let inbox = state.entry(to.clone()).or_default();
                if inbox.pending.is_empty() {
                    return Err(format!("a delivery to `{to}`, whose inbox has no message waiting"));
                }
                inbox.pending.remove(0);
                inbox.delivered = delivered;
            }
        }
        Ok(())
    }
}

/// Receives every [`MailChange`], under the inbox's lock; must not block.
pub type MailSaveFn = Box<dyn Fn(MailChange) + Send + Sync>;

/// Resolves once every change handed to the [`MailSaveFn`] so far is
/// durable.
pub type MailFlushFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

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
pub struct Mailbox {
    inboxes: HashMap<String, Inbox>,
    order: Vec<String>,
    /// Times any `recv` returned (a message or a timeout): every return
    /// resumes a suspended teammate, so this counts wake-ups.
    recv_returns: AtomicU64,
    save: Option<MailSaveFn>,
    flush: Option<MailFlushFn>,
    /// For the report. A std mutex: held to push one entry, never across
    /// an await.
    traffic: std::sync::Mutex<Traffic>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("inboxes", &self.order).finish_non_exhaustive()
    }
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
        Self { inboxes, order, recv_returns: AtomicU64::new(0), save: None, flush: None, traffic: Default::default() }
    }

    /// Hands every text message queued or delivered from now on to `save`,
    /// and lets [`Mailbox::flushed`] wait on `flush`.
    pub fn with_journal(mut self, save: MailSaveFn, flush: MailFlushFn) -> Self {
        self.save = Some(save);
        self.flush = Some(flush);
        self
    }

    /// Resolves once every message queued or delivered so far is durable
    /// (at once without a journal).
    pub async fn flushed(&self) {
        if let Some(flush) = &self.flush {
            flush().await;
        }
    }

    fn saved(&self, change: impl FnOnce() -> MailChange) {
        if let Some(save) = &self.save {
            save(change());
        }
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

    /// Every message queued for a teammate so far (the first
    /// [`MAX_TRAFFIC`]), and how many more there were.
    pub fn traffic(&self) -> (Vec<Sent>, u64) {
        let t = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        (t.sent.clone(), t.dropped)
    }

    fn record(&self, from: &str, to: &str, summary: Option<&str>) {
        let mut t = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        if t.sent.len() < MAX_TRAFFIC {
            let sent = Sent {
                from: from.to_string(),
                to: to.to_string(),
                at_unix_ms: crate::tasks::unix_ms(),
                summary: summary.map(str::to_string),
            };
            t.sent.push(sent);
        } else {
            t.dropped += 1;
        }
    }

    /// Queues `msg` for `to`. Text messages respect the inbox bound;
    /// a `TasksAvailable` already queued is not queued twice. Text messages
    /// and shutdown requests are recorded for the report ([`Mailbox::traffic`]).
    pub fn send(&self, to: &str, msg: Incoming) -> Result<(), SendError> {
        let inbox = self.inbox(to)?;
        {
            let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            match msg {
                Incoming::Message { .. } if q.len() >= inbox.limit => {
                    return Err(SendError::InboxFull { recipient: to.to_string(), limit: inbox.limit });
                }
                Incoming::TasksAvailable if q.contains(&Incoming::TasksAvailable) => return Ok(()),
                Incoming::Message { sender, body, summary } => {
                    let queued = inbox.queued.fetch_add(1, Ordering::Relaxed) + 1;
                    // Under the inbox's lock: the journal sees this inbox's
                    // changes in the order they happen.
                    self.saved(|| MailChange::Queued {
                        to: to.to_string(),
                        sender: sender.clone(),
                        body: body.clone(),
                        summary: summary.clone(),
                        queued,
                    });
                    self.record(&sender, to, summary.as_deref());
                    q.push_back(Incoming::Message { sender, body, summary });
                }
                Incoming::Shutdown { .. } => {
                    inbox.queued.fetch_add(1, Ordering::Relaxed);
                    self.record(TEAM_LEAD, to, Some("shutdown request"));
                    q.push_back(msg);
                }
                _ => {
                    inbox.queued.fetch_add(1, Ordering::Relaxed);
                    q.push_back(msg);
                }
            }
        }
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
        let got = self.wait_next(id, inbox, timeout).await;
        self.recv_returns.fetch_add(1, Ordering::Relaxed);
        got
    }

    async fn wait_next(&self, id: &str, inbox: &Inbox, timeout: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking the queue so a send between
            // the check and the wait is not missed.
            let notified = inbox.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(msg) = q.pop_front() {
                    let delivered = inbox.delivered.fetch_add(1, Ordering::Relaxed) + 1;
                    if matches!(msg, Incoming::Message { .. }) {
                        self.saved(|| MailChange::Delivered { to: id.to_string(), delivered });
                    }
                    return Some(msg);
                }
            }
            if timeout.is_zero() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Cursors and undelivered text messages of every inbox, for the state
    /// directory.
    pub fn snapshot(&self) -> MailboxState {
        self.inboxes
            .iter()
            .map(|(id, inbox)| {
                let q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
                let pending = pending_texts(q.iter());
                let state = InboxState {
                    queued: inbox.queued.load(Ordering::Relaxed),
                    delivered: inbox.delivered.load(Ordering::Relaxed),
                    pending,
                };
                (id.clone(), state)
            })
            .collect()
    }

    /// Re-queues the undelivered text messages of a saved snapshot (on
    /// resume, before a journal is installed), ignoring inboxes no longer
    /// on the roster.
    pub fn restore(&self, saved: &MailboxState) {
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

/// The persisted form of undelivered inbox entries: text messages only
/// (control messages are derived again on resume).
fn pending_texts<'a>(items: impl IntoIterator<Item = &'a Incoming>) -> Vec<(String, String, Option<String>)> {
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
    use std::sync::Arc;

    fn text(body: &str) -> Incoming {
        Incoming::Message { sender: "a".into(), body: body.into(), summary: None }
    }

    #[test]
    fn messages_and_shutdown_requests_are_recorded_for_the_report_and_wakeups_are_not() {
        let mb = Mailbox::new([("a", 4), ("b", 1)]);
        let before = crate::tasks::unix_ms();
        let hint = Incoming::Message { sender: "a".into(), body: "x".into(), summary: Some("hint".into()) };
        mb.send("b", hint).unwrap();
        assert!(mb.send("b", text("refused: the inbox is full")).is_err());
        mb.send("a", Incoming::TasksAvailable).unwrap();
        mb.send("a", Incoming::Shutdown { request_id: "r".into(), reason: "done".into() }).unwrap();
        let (sent, dropped) = mb.traffic();
        let seen: Vec<_> = sent.iter().map(|s| (s.from.as_str(), s.to.as_str(), s.summary.as_deref())).collect();
        assert_eq!(seen, [("a", "b", Some("hint")), (TEAM_LEAD, "a", Some("shutdown request"))]);
        assert!(sent.iter().all(|s| s.at_unix_ms >= before));
        assert_eq!(dropped, 0);
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
    async fn replaying_the_changes_of_texts_gives_the_snapshot() {
        let replica = Arc::new(Mutex::new(MailboxState::new()));
        let r = replica.clone();
        let mb = Mailbox::new([("a", 4), ("b", 4)])
            .with_journal(Box::new(move |c| c.apply(&mut r.lock().unwrap()).unwrap()), Arc::new(|| Box::pin(async {})));
        mb.send("a", text("1")).unwrap();
        mb.send("a", Incoming::TasksAvailable).unwrap();
        mb.send("a", text("2")).unwrap();
        mb.broadcast("b", &text("3")).unwrap();
        assert_eq!(mb.recv("a", Duration::ZERO).await, Some(text("1")));
        assert_eq!(mb.recv("a", Duration::ZERO).await, Some(Incoming::TasksAvailable));
        let snap = mb.snapshot();
        assert_eq!(snap["a"].pending, [("a".to_string(), "2".to_string(), None), ("a".into(), "3".into(), None)]);
        let replayed = replica.lock().unwrap().clone();
        assert_eq!(replayed["a"].pending, snap["a"].pending);
        assert_eq!((replayed["a"].queued, replayed["a"].delivered), (4, 1), "the cursors after the last text");
        let e = MailChange::Delivered { to: "b".into(), delivered: 1 }.apply(&mut MailboxState::new()).unwrap_err();
        assert_eq!(e, "a delivery to `b`, whose inbox has no message waiting");
    }

    #[tokio::test]
    async fn tasks_available_is_not_queued_twice() {
        let mb = Mailbox::new([("a", 4)]);
        mb.send("a", Incoming::TasksAvailable).unwrap();
        mb.send("a", Incoming::TasksAvailable).unwrap();
        assert_eq!(mb.pending("a"), 1);
    }
}
