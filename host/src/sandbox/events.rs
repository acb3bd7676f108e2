//! What a teammate's imports tell the coordinator, bounded at the source.
//!
//! Most coordinator events a guest can cause are bounded by its tasks: a
//! claim, a completion, a failure happen once per task. The others a guest
//! could repeat in a loop: refused file operations, progress, `idle`,
//! answers to shutdown requests. [`EventGate`] decides, per teammate, which
//! of those become an event:
//!
//! - `idle` is told once per stretch of idleness (until the next claim);
//! - an answer to a shutdown request is sent only for a request the teammate
//!   received and has not answered yet;
//! - progress is sent when it starts a task or reaches a new whole
//!   percentage of the same total (at most 101 events a task, free); a
//!   change of total or a step back is sent but charged to `events_per_sec`,
//!   a repeat of the same percentage is dropped;
//! - every refused file operation is sent and charged to `events_per_sec`.
//!
//! Past `events_per_sec` the teammate is stopped with
//! [`LimitHit::EventRate`]. Dropped events are counted.

use std::collections::VecDeque;

use super::limits::{LimitHit, RateBudget};

/// Shutdown requests remembered until answered. The coordinator sends one
/// per stop; more waiting at once means the oldest is stale.
const PENDING_SHUTDOWNS: usize = 4;

/// Progress last sent: for which task, of which total, at which percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    task: Option<String>,
    total: u32,
    percent: u32,
}

/// The per-teammate gate between guest calls and coordinator events.
#[derive(Debug)]
pub struct EventGate {
    budget: RateBudget,
    said_idle: bool,
    progress: Option<Sent>,
    shutdowns: VecDeque<String>,
    dropped: u64,
}

impl EventGate {
    /// A gate charging `events_per_sec`.
    pub fn new(events_per_sec: u32) -> Self {
        Self {
            budget: RateBudget::events(events_per_sec),
            said_idle: false,
            progress: None,
            shutdowns: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Events the gate dropped as repeats.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The guest says it is idle: `true` if the coordinator should hear it
    /// (the first time since the teammate started or last claimed a task).
    pub fn idle(&mut self) -> bool {
        let first = !std::mem::replace(&mut self.said_idle, true);
        self.dropped += u64::from(!first);
        first
    }

    /// The teammate claimed a task: its next `idle` is news again.
    pub fn claimed(&mut self) {
        self.said_idle = false;
    }

    /// The teammate received shutdown request `id`.
    pub fn shutdown_received(&mut self, id: &str) {
        if self.shutdowns.len() == PENDING_SHUTDOWNS {
            self.shutdowns.pop_front();
        }
        self.shutdowns.push_back(id.to_string());
    }

    /// The guest answers shutdown request `id`: `true` if that request is
    /// waiting for its answer (it is then answered).
    pub fn shutdown_answer(&mut self, id: &str) -> bool {
        match self.shutdowns.iter().position(|r| r == id) {
            Some(i) => {
                self.shutdowns.remove(i);
                true
            }
            None => {
                self.dropped += 1;
                false
            }
        }
    }

    /// The guest reports `done` of `total` on `task`: `Ok(true)` if the
    /// coordinator should hear it, `Err` once changes that are not a new
    /// percentage exceed `events_per_sec`.
    pub fn progress(&mut self, task: Option<&str>, done: u32, total: u32) -> Result<bool, LimitHit> {
        let percent = if done >= total { 100 } else { (u64::from(done) * 100 / u64::from(total)) as u32 };
        let now = Sent { task: task.map(str::to_string), total, percent };
        let send = match &self.progress {
            Some(last) if last.task == now.task && last.total == total => {
                if percent > last.percent {
                    true
                } else if percent == last.percent {
                    self.dropped += 1;
                    false
                } else {
                    self.budget.take()?;
                    true
                }
            }
            Some(last) if last.task == now.task => {
                self.budget.take()?;
                true
            }
            // The first progress of a task (or of no task) is free.
            _ => true,
        };
        if send {
            self.progress = Some(now);
        }
        Ok(send)
    }

    /// A file operation was refused: charged to `events_per_sec`.
    pub fn denial(&mut self) -> Result<(), LimitHit> {
        self.budget.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_told_once_per_stretch_of_idleness() {
        let mut g = EventGate::new(10);
        assert!(g.idle());
        assert!((0..1000).all(|_| !g.idle()), "a loop of idle calls is one event");
        g.claimed();
        assert!(g.idle(), "idle again after a task");
        assert_eq!(g.dropped(), 1000);
    }

    #[test]
    fn only_a_received_shutdown_request_is_answered_once() {
        let mut g = EventGate::new(10);
        assert!(!g.shutdown_answer("made-up"), "no request, no answer");
        g.shutdown_received("shutdown-a-1");
        assert!((0..1000).all(|i| !g.shutdown_answer(&format!("forged-{i}"))));
        assert!(g.shutdown_answer("shutdown-a-1"));
        assert!(!g.shutdown_answer("shutdown-a-1"), "answered once");
        for i in 0..10 {
            g.shutdown_received(&format!("r{i}"));
        }
        assert!(!g.shutdown_answer("r0"), "only the last few requests are remembered");
        assert!(g.shutdown_answer("r9"));
    }

    #[test]
    fn progress_is_coalesced_to_whole_percentages_per_task() {
        let mut g = EventGate::new(1);
        let sent = (0..=20_000).filter(|&d| g.progress(Some("t"), d, 20_000).unwrap()).count();
        // 0, then each of the 100 percentage steps (the last is 20,000 itself).
        assert_eq!(sent, 101);
        // Small totals: every step; the first progress of a task is free.
        assert_eq!((0..=3).filter(|&d| g.progress(Some("u"), d, 3).unwrap()).count(), 4);
        assert!(g.progress(None, 0, 0).unwrap(), "no task, nothing to do: done");
        // Repeats are dropped without charge.
        assert!((0..1000).all(|_| !g.progress(None, 0, 0).unwrap()));
    }

    #[test]
    fn progress_that_jumps_between_totals_is_charged_and_stopped() {
        let mut g = EventGate::new(5);
        assert!(g.progress(Some("t"), 0, 1).unwrap(), "first: free");
        let mut sent = 0;
        let hit = loop {
            match g.progress(Some("t"), 0, if sent % 2 == 0 { 2 } else { 1 }) {
                Ok(true) => sent += 1,
                Ok(false) => panic!("a new total is news"),
                Err(hit) => break hit,
            }
        };
        assert_eq!(sent, 5, "the burst of events_per_sec = 5");
        assert_eq!(hit, LimitHit::EventRate(5));
        // Going backwards on the same total is charged too.
        let mut g = EventGate::new(1);
        assert!(g.progress(Some("t"), 5, 10).unwrap());
        assert!(g.progress(Some("t"), 1, 10).unwrap());
        assert!(g.progress(Some("t"), 0, 10).is_err());
    }

    #[test]
    fn every_denial_is_charged() {
        let mut g = EventGate::new(3);
        for _ in 0..3 {
            g.denial().unwrap();
        }
        assert_eq!(g.denial(), Err(LimitHit::EventRate(3)));
    }
}
