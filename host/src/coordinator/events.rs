//! The coordinator's book of the events a guest can cause at will: refused
//! file operations, progress, idle notices, shutdown answers and requests.
//!
//! The sandbox already bounds them at the source (`sandbox::events`), but
//! the coordinator keeps its own memory and log bounded whatever reaches it:
//! per teammate it counts every event by kind, keeps the first
//! [`DENIAL_SAMPLES`] refused operations for the report, and logs the first
//! [`LOGGED_PER_KIND`] events of each kind, then one line saying that the
//! rest are only counted. So a flood costs a counter increment per event,
//! never a log line or a report entry, and the coordinator's log keeps room
//! for the honest events that come later.

use std::collections::{BTreeMap, HashMap};

use super::report::Denial;

/// Refused file operations kept per teammate for the report.
pub const DENIAL_SAMPLES: usize = 50;
/// Log lines per teammate and kind of event; later events are counted.
pub const LOGGED_PER_KIND: u64 = 20;

/// The kinds of event a guest can repeat at will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A refused file operation.
    Denial,
    /// A progress update.
    Progress,
    /// An idle notification.
    Idle,
    /// An answer to a shutdown request.
    ShutdownAnswer,
    /// A teammate asking to be shut down.
    ShutdownRequest,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Denial, Kind::Progress, Kind::Idle, Kind::ShutdownAnswer, Kind::ShutdownRequest];

    fn index(self) -> usize {
        self as usize
    }

    /// How the kind is named in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Denial => "refused file operations",
            Kind::Progress => "progress updates",
            Kind::Idle => "idle notifications",
            Kind::ShutdownAnswer => "shutdown answers",
            Kind::ShutdownRequest => "shutdown requests",
        }
    }
}

/// Whether the event just counted gets a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Yes.
    Line,
    /// Yes, and it is the last one of its kind: say that later ones are
    /// only counted.
    LastLine,
    /// No: counted only.
    Counted,
}

#[derive(Debug, Default)]
struct Book {
    counts: [u64; Kind::ALL.len()],
    denials: Vec<Denial>,
}

/// Counts and samples per teammate.
#[derive(Debug, Default)]
pub struct EventBook {
    books: HashMap<String, Book>,
}

impl EventBook {
    /// Counts one event of `kind` from `teammate`.
    pub fn count(&mut self, teammate: &str, kind: Kind) -> Log {
        let book = match self.books.get_mut(teammate) {
            Some(book) => book,
            None => self.books.entry(teammate.to_string()).or_default(),
        };
        let n = &mut book.counts[kind.index()];
        *n += 1;
        match *n {
            n if n < LOGGED_PER_KIND => Log::Line,
            LOGGED_PER_KIND => Log::LastLine,
            _ => Log::Counted,
        }
    }

    /// Counts a refused file operation and keeps it if it is among the
    /// teammate's first [`DENIAL_SAMPLES`].
    pub fn denial(&mut self, denial: Denial) -> Log {
        let log = self.count(&denial.teammate, Kind::Denial);
        if let Some(book) = self.books.get_mut(&denial.teammate)
            && book.denials.len() < DENIAL_SAMPLES
        {
            book.denials.push(denial);
        }
        log
    }

    /// Events of `kind` counted from `teammate`.
    pub fn counted(&self, teammate: &str, kind: Kind) -> u64 {
        self.books.get(teammate).map_or(0, |b| b.counts[kind.index()])
    }

    /// Per teammate, the kinds whose events were not all logged, with
    /// their counts (for one closing log line each).
    pub fn unlogged(&self) -> Vec<(String, Vec<(Kind, u64)>)> {
        let mut out: Vec<(String, Vec<(Kind, u64)>)> = self
            .books
            .iter()
            .map(|(id, b)| {
                let kinds = Kind::ALL.iter().map(|&k| (k, b.counts[k.index()])).filter(|(_, n)| *n > LOGGED_PER_KIND);
                (id.clone(), kinds.collect::<Vec<_>>())
            })
            .filter(|(_, kinds)| !kinds.is_empty())
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The kept denials (by teammate id, each in arrival order) and the
    /// number of denials per teammate.
    pub fn into_denials(self) -> (Vec<Denial>, BTreeMap<String, u64>) {
        let mut books: Vec<(String, Book)> = self.books.into_iter().collect();
        books.sort_by(|a, b| a.0.cmp(&b.0));
        let mut samples = Vec::new();
        let mut counts = BTreeMap::new();
        for (id, book) in books {
            let n = book.counts[Kind::Denial.index()];
            if n > 0 {
                counts.insert(id, n);
            }
            samples.extend(book.denials);
        }
        (samples, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(who: &str, n: usize) -> Denial {
        Denial { teammate: who.into(), task: None, operation: "read".into(), reason: format!("secret {n}") }
    }

    #[test]
    fn a_flood_is_counted_with_a_bounded_log_and_bounded_samples() {
        let mut book = EventBook::default();
        let logs: Vec<Log> = (0..100_000).map(|n| book.denial(denial("bad-1", n))).collect();
        let lines = logs.iter().filter(|l| **l != Log::Counted).count() as u64;
        assert_eq!(lines, LOGGED_PER_KIND);
        assert_eq!(logs[LOGGED_PER_KIND as usize - 1], Log::LastLine);
        // An honest teammate's first events are still logged.
        assert_eq!(book.denial(denial("good-1", 0)), Log::Line);
        assert_eq!(book.count("bad-1", Kind::Idle), Log::Line, "each kind has its own lines");
        assert_eq!(book.counted("bad-1", Kind::Denial), 100_000);
        assert_eq!(book.unlogged(), vec![("bad-1".to_string(), vec![(Kind::Denial, 100_000)])]);
        let (samples, counts) = book.into_denials();
        assert_eq!(samples.len(), DENIAL_SAMPLES + 1);
        assert_eq!(samples[0].reason, "secret 0", "the first ones are kept");
        assert_eq!(counts, BTreeMap::from([("bad-1".to_string(), 100_000), ("good-1".to_string(), 1)]));
    }
}
