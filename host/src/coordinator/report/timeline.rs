//! Who ran what, when: the run's timeline derived from the report (each
//! attempt's claim time and duration, each message's arrival), one lane per
//! teammate with a bar per attempt and the lane's idle time. Times are
//! milliseconds since the run started. Attempts without a claim time (state
//! written before times were kept) are counted, not placed.

use serde::Serialize;

use super::RunReport;
use crate::model::LimitKind;
use crate::tasks::{Attempt, Status};

/// The whole timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The run's wall time, in milliseconds (a bar may end later if the
    /// run's clock and an attempt's disagree by a few milliseconds).
    pub span_ms: u64,
    /// One lane per teammate: the roster's order, then anyone else who ran
    /// an attempt.
    pub lanes: Vec<Lane>,
    /// Messages to the team lead, in arrival order.
    pub messages: Vec<TimedMessage>,
    /// Messages to teammates (from a teammate or the lead), in the order
    /// they were sent.
    pub sends: Vec<TimedSend>,
    /// Attempts that could not be placed (no claim time).
    pub untimed: usize,
}

/// One teammate's lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lane {
    /// Teammate id.
    pub teammate: String,
    /// Its attempts, by start time.
    pub bars: Vec<Bar>,
    /// Time spent holding a task.
    pub busy_ms: u64,
    /// The rest of the run: time holding no task.
    pub idle_ms: u64,
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// The task's position in [`RunReport::tasks`].
    pub task: usize,
    /// Which attempt at it (1 is the first; more is a retry).
    pub attempt: usize,
    /// Claim time.
    pub start_ms: u64,
    /// End time (the run's end for an attempt that never ended).
    pub end_ms: u64,
    /// How it ended.
    pub outcome: BarOutcome,
    /// The sandbox limit that ended it, when one did.
    pub limit: Option<LimitKind>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BarOutcome {
    /// The task completed.
    Completed,
    /// The attempt failed (the task may have been retried).
    Failed,
    /// The run stopped while it ran.
    Interrupted,
    /// It had not ended when the report was written.
    Unfinished,
}

/// A message to the team lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimedMessage {
    /// Sender.
    pub from: String,
    /// Its position in [`RunReport::messages`].
    pub index: usize,
    /// Arrival time.
    pub at_ms: u64,
}

/// A message to a teammate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimedSend {
    /// Sender (a teammate or `team-lead`).
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Its position in [`RunReport::traffic`].
    pub index: usize,
    /// When it was sent.
    pub at_ms: u64,
}

fn outcome_of(a: &Attempt, task: Status, last: bool) -> BarOutcome {
    if a.interrupted {
        BarOutcome::Interrupted
    } else if a.error.is_some() || a.limit.is_some() {
        BarOutcome::Failed
    } else if a.ended_seq.is_some() || (last && task == Status::Completed) {
        BarOutcome::Completed
    } else {
        BarOutcome::Unfinished
    }
}

impl RunReport {
    /// The run's timeline (empty lanes if the report has no start time).
    pub fn timeline(&self) -> Timeline {
        let span_ms = self.duration.as_millis() as u64;
        let mut lanes: Vec<Lane> = self
            .teammates
            .iter()
            .map(|m| Lane { teammate: m.id.clone(), bars: Vec::new(), busy_ms: 0, idle_ms: 0 })
            .collect();
        let mut untimed = 0;
        for (task, t) in self.tasks.iter().enumerate() {
            for (i, a) in t.attempts.iter().enumerate() {
                let (Some(origin), Some(claimed)) = (self.started_unix_ms, a.claimed_unix_ms) else {
                    untimed += 1;
                    continue;
                };
                let start_ms = claimed.saturating_sub(origin);
                let end_ms = match a.duration {
                    Some(d) => start_ms + d.as_millis() as u64,
                    None => span_ms.max(start_ms),
                };
                let bar = Bar {
                    task,
                    attempt: i + 1,
                    start_ms,
                    end_ms,
                    outcome: outcome_of(a, t.status, i + 1 == t.attempts.len()),
                    limit: a.limit,
                };
                match lanes.iter_mut().find(|l| l.teammate == a.teammate) {
                    Some(lane) => lane.bars.push(bar),
                    None => lanes.push(Lane { teammate: a.teammate.clone(), bars: vec![bar], busy_ms: 0, idle_ms: 0 }),
                }
            }
        }
        for lane in &mut lanes {
            lane.bars.sort_by_key(|b| (b.start_ms, b.task));
            lane.busy_ms = lane.bars.iter().map(|b| b.end_ms - b.start_ms).sum();
            lane.idle_ms = span_ms.saturating_sub(lane.busy_ms);
        }
        let messages = self
            .messages
            .iter()
            .enumerate()
            .filter_map(|(index, m)| {
                let at_ms = m.at_unix_ms?.saturating_sub(self.started_unix_ms?);
                Some(TimedMessage { from: m.from.clone(), index, at_ms })
            })
            .collect();
        let sends = match self.started_unix_ms {
            Some(origin) => self
                .traffic
                .iter()
                .enumerate()
                .map(|(index, m)| TimedSend {
                    from: m.from.clone(),
                    to: m.to.clone(),
                    index,
                    at_ms: m.at_unix_ms.saturating_sub(origin),
                })
                .collect(),
            None => Vec::new(),
        };
        Timeline { span_ms, lanes, messages, sends, untimed }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::LeadMessage;
    use super::super::fixtures::report;
    use super::*;

    fn attempt(who: &str, claimed: Option<u64>, ms: Option<u64>, error: Option<&str>) -> Attempt {
        Attempt {
            teammate: who.into(),
            error: error.map(Into::into),
            claimed_seq: 0,
            ended_seq: ms.map(|_| 1),
            duration: ms.map(Duration::from_millis),
            interrupted: false,
            limit: None,
            claimed_unix_ms: claimed,
        }
    }

    #[test]
    fn attempts_become_bars_in_their_teammates_lanes_with_idle_time() {
        let mut r = report();
        r.started_unix_ms = Some(1_000_000);
        r.duration = Duration::from_millis(1000);
        r.tasks[0].attempts = vec![attempt("a", Some(1_000_100), Some(200), None)];
        // The failed task: a deadline, then a retry elsewhere that never ended.
        let mut first = attempt("a", Some(1_000_400), Some(100), Some("deadline"));
        first.limit = Some(LimitKind::Deadline);
        r.tasks[2].attempts = vec![first, attempt("b", Some(1_000_600), None, None)];
        r.tasks[1].attempts = vec![attempt("a", None, Some(5), None)];
        r.messages = vec![LeadMessage { from: "b".into(), body: "hi".into(), at_unix_ms: Some(1_000_700) }];
        let sent = |from: &str, to: &str, at| crate::mailbox::Sent {
            from: from.into(),
            to: to.into(),
            at_unix_ms: at,
            summary: None,
        };
        r.traffic = vec![sent("a", "b", 1_000_150), sent("team-lead", "a", 1_000_800)];
        let tl = r.timeline();
        assert_eq!(tl.span_ms, 1000);
        assert_eq!(tl.untimed, 1, "the attempt without a claim time");
        let names: Vec<&str> = tl.lanes.iter().map(|l| l.teammate.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &tl.lanes[0];
        assert_eq!(a.bars.len(), 2);
        assert_eq!((a.bars[0].task, a.bars[0].start_ms, a.bars[0].end_ms), (0, 100, 300));
        assert_eq!(a.bars[0].outcome, BarOutcome::Completed);
        assert_eq!(
            (a.bars[1].attempt, a.bars[1].outcome, a.bars[1].limit),
            (1, BarOutcome::Failed, Some(LimitKind::Deadline))
        );
        assert_eq!((a.busy_ms, a.idle_ms), (300, 700));
        let b = &tl.lanes[1].bars[0];
        assert_eq!((b.task, b.attempt, b.start_ms, b.end_ms, b.outcome), (2, 2, 600, 1000, BarOutcome::Unfinished));
        assert_eq!(tl.messages, vec![TimedMessage { from: "b".into(), index: 0, at_ms: 700 }]);
        let sends: Vec<_> = tl.sends.iter().map(|s| (s.from.as_str(), s.to.as_str(), s.index, s.at_ms)).collect();
        assert_eq!(sends, [("a", "b", 0, 150), ("team-lead", "a", 1, 800)]);
    }
}
