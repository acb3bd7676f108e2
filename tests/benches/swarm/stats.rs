//! Percentiles, human units and the table every row prints.

use std::time::Duration;

/// p-th percentile (0..=100) of unsorted samples, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted samples.
pub fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50.0)
}

/// Median of `values` (sorted in place), e.g. of ratios.
pub fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `41.2 µs`, `3.10 ms`, `1.52 s`.
pub fn dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `figure / baseline`, e.g. `0.0004×`, `1.23×`, `830×`.
pub fn ratio(figure: f64, baseline: f64) -> String {
    let r = figure / baseline;
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.2e}×")
    }
}

/// One printed result.
pub struct Line {
    /// Issue row, e.g. `2 mailbox`.
    pub row: &'static str,
    /// What was measured.
    pub what: String,
    /// The figure with its unit.
    pub figure: String,
    /// `figure / floor` and the floor's name: the honest floor measured in
    /// the same run (the cheapest way to do the same thing), printed first.
    pub vs: String,
    /// `figure / the design replaced` (the 500 ms polled file inbox), where
    /// the row has one; empty otherwise.
    pub replaced: String,
    /// The target and whether it was met.
    pub target: String,
}

impl Line {
    /// A line without a target.
    pub fn new(row: &'static str, what: impl Into<String>, figure: impl Into<String>, vs: impl Into<String>) -> Self {
        Self {
            row,
            what: what.into(),
            figure: figure.into(),
            vs: vs.into(),
            replaced: String::new(),
            target: String::new(),
        }
    }

    /// Adds the ratio to the design replaced (second ratio column).
    pub fn replaced(mut self, vs: impl Into<String>) -> Self {
        self.replaced = vs.into();
        self
    }

    /// Adds a target and whether the figure meets it.
    pub fn target(mut self, target: &str, met: bool) -> Self {
        self.target = format!("{target}: {}", if met { "met" } else { "MISSED" });
        self
    }

    /// The table header.
    pub fn header() -> String {
        "| row | measured | figure | ratio to the floor (same run) | ratio to the design replaced (same run) | target |\n\
         |---|---|---|---|---|---|"
            .into()
    }

    /// The line as a markdown table row.
    pub fn render(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.row, self.what, self.figure, self.vs, self.replaced, self.target
        )
    }
}

/// The machine's CPU time counters from `/proc/stat` (clock ticks): all of
/// it, and the part the hypervisor gave to other guests (`steal`). A shared
/// virtual machine loses CPU to its neighbours, and a row that needs both
/// cores shows it; the rows print the stolen share so a noisy figure says so.
#[derive(Clone, Copy)]
pub struct CpuTime {
    total: u64,
    steal: u64,
}

impl CpuTime {
    /// Reads the counters now (zeros where `/proc/stat` is missing).
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        // user nice system idle iowait irq softirq steal (guest time is
        // already counted in user).
        let total = fields.iter().take(8).sum();
        Self { total, steal: fields.get(7).copied().unwrap_or(0) }
    }

    /// The share of CPU time stolen since `earlier`, in percent.
    pub fn stolen_since(&self, earlier: &CpuTime) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 { 0.0 } else { 100.0 * self.steal.saturating_sub(earlier.steal) as f64 / total as f64 }
    }
}
