//! The port a guest's `llm` import calls ([`ModelPort`]), and the usage
//! book ([`UsageBook`]) that totals what each teammate and each task used.
//!
//! In the coordinator's process [`Models`](super::Models) implements the
//! port directly; a teammate in its own process (or on a worker) gets a port
//! that forwards the call to the coordinator, so the keys stay in one
//! process. The sandbox knows only this trait.

use super::models::BoxFuture;
use super::{LlmError, ModelRequest, ModelResponse, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One model call as a guest asks for it, with who asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall {
    /// The calling teammate's id (the sandbox's, never the guest's word).
    pub teammate: String,
    /// The task it holds, if any (for the per-task usage).
    pub task: Option<String>,
    /// The alias it names; `None` is its default.
    pub alias: Option<String>,
    /// The request.
    pub request: ModelRequest,
}

/// Where a guest's model calls go.
pub trait ModelPort: Send + Sync + std::fmt::Debug {
    /// Runs one call. Dropping the future cancels it.
    fn complete(&self, call: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>>;
}

/// A shared port, as a teammate's store holds it.
pub type SharedModelPort = Arc<dyn ModelPort>;

/// What some calls used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Calls answered.
    pub calls: u64,
    /// Input tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Estimated cost in US dollars (0 for aliases without a price).
    pub usd: f64,
}

impl UsageTotals {
    fn add(&mut self, usage: &Usage, usd: f64) {
        self.calls += 1;
        self.input_tokens += usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        self.output_tokens += usage.output_tokens;
        self.usd += usd;
    }
}

/// Usage of a run: in total, per teammate and per task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Every call.
    pub total: UsageTotals,
    /// By teammate id.
    pub teammates: BTreeMap<String, UsageTotals>,
    /// By task id (calls made while holding it).
    pub tasks: BTreeMap<String, UsageTotals>,
}

impl UsageReport {
    /// True when no call was answered.
    pub fn is_empty(&self) -> bool {
        self.total.calls == 0
    }
}

/// Totals usage as calls are answered.
#[derive(Debug, Default)]
pub struct UsageBook {
    // A plain mutex: held for a few map updates per call, never across an await.
    inner: Mutex<UsageReport>,
}

impl UsageBook {
    /// Adds one answered call.
    pub fn record(&self, teammate: &str, task: Option<&str>, usage: &Usage, usd: f64) {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.total.add(usage, usd);
        r.teammates.entry(teammate.to_string()).or_default().add(usage, usd);
        if let Some(task) = task {
            r.tasks.entry(task.to_string()).or_default().add(usage, usd);
        }
    }

    /// What has been used so far.
    pub fn report(&self) -> UsageReport {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_totalled_per_teammate_and_task() {
        let book = UsageBook::default();
        let u = Usage { input_tokens: 10, output_tokens: 5, cache_read_tokens: 2, cache_write_tokens: 0 };
        book.record("a-1", Some("t1"), &u, 0.5);
        book.record("a-1", None, &u, 0.25);
        book.record("b-1", Some("t1"), &u, 0.0);
        let r = book.report();
        assert_eq!(r.total, UsageTotals { calls: 3, input_tokens: 36, output_tokens: 15, usd: 0.75 });
        assert_eq!(r.teammates["a-1"].calls, 2);
        assert_eq!(r.teammates["b-1"].input_tokens, 12);
        assert_eq!(r.tasks["t1"], UsageTotals { calls: 2, input_tokens: 24, output_tokens: 10, usd: 0.5 });
        assert_eq!(r.tasks.len(), 1);
    }
}
