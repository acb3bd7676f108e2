//! Hard budgets for model calls: tokens, calls and US dollars, per teammate
//! and for the whole team. A call reserves its worst case before it is sent
//! ([`Ledger::reserve`]); a call whose worst case does not fit in every
//! budget that applies is refused and never leaves the host. When the
//! answer comes, the reservation is released and the provider's usage is
//! charged ([`Reservation::settle`]).

use super::LlmError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Input + output tokens (cache reads and writes included).
    pub tokens: Option<u64>,
    /// Calls sent to a provider.
    pub calls: Option<u64>,
    /// US dollars, from the aliases' [`Price`]s.
    pub usd: Option<f64>,
}

/// What is left; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetLeft {
    /// Tokens left.
    pub tokens: Option<u64>,
    /// Calls left.
    pub calls: Option<u64>,
    /// US dollars left.
    pub usd: Option<f64>,
}

/// An alias's price in US dollars per million tokens. Cache reads and
/// writes are charged as input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `input` and `output` tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input_per_mtok + output as f64 * self.output_per_mtok) / 1_000_000.0
    }
}

/// A call's worst case (reserved) or actual use (charged).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Cost {
    pub tokens: u64,
    pub usd: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    tokens: u64,
    calls: u64,
    usd: f64,
}

#[derive(Debug, Default)]
struct Account {
    limit: Budget,
    used: Spent,
    reserved: Spent,
}

impl Account {
    fn left(&self) -> BudgetLeft {
        let taken = |used: u64, reserved: u64| used.saturating_add(reserved);
        BudgetLeft {
            tokens: self.limit.tokens.map(|l| l.saturating_sub(taken(self.used.tokens, self.reserved.tokens))),
            calls: self.limit.calls.map(|l| l.saturating_sub(taken(self.used.calls, self.reserved.calls))),
            usd: self.limit.usd.map(|l| (l - self.used.usd - self.reserved.usd).max(0.0)),
        }
    }

    /// Why `cost` plus one call does not fit, if it does not.
    fn refuse(&self, scope: &str, cost: Cost) -> Option<String> {
        let left = self.left();
        if let Some(calls) = left.calls
            && calls < 1
        {
            let limit = self.limit.calls.unwrap_or(0);
            return Some(format!("{scope} calls budget ({limit}) is used up"));
        }
        if let Some(tokens) = left.tokens
            && tokens < cost.tokens
        {
            let limit = self.limit.tokens.unwrap_or(0);
            return Some(format!(
                "{scope} tokens budget ({limit}) has {tokens} left; this call may use up to {} \
                 (its output cap plus the input estimate)",
                cost.tokens
            ));
        }
        if let Some(usd) = left.usd
            && usd < cost.usd
        {
            let limit = self.limit.usd.unwrap_or(0.0);
            return Some(format!(
                "{scope} usd budget (${limit:.4}) has ${usd:.4} left; this call may cost up to ${:.4}",
                cost.usd
            ));
        }
        None
    }
}

fn min_left(a: BudgetLeft, b: BudgetLeft) -> BudgetLeft {
    fn m<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b < a { b } else { a }),
            (a, None) => a,
            (None, b) => b,
        }
    }
    BudgetLeft { tokens: m(a.tokens, b.tokens), calls: m(a.calls, b.calls), usd: m(a.usd, b.usd) }
}

// A std mutex, not tokio's: it guards a few additions and is never held
// across an await. One lock for the team and all teammates, so a
// reservation checks and takes from both budgets atomically.
#[derive(Debug)]
struct State {
    team: Account,
    teammates: BTreeMap<String, Account>,
}

/// Every budget of a team.
#[derive(Debug, Clone)]
pub(crate) struct Ledger(Arc<Mutex<State>>);

impl Ledger {
    pub fn new(team: Budget, teammates: impl IntoIterator<Item = (String, Budget)>) -> Self {
        let teammates = teammates.into_iter().map(|(n, b)| (n, Account { limit: b, ..Account::default() })).collect();
        Ledger(Arc::new(Mutex::new(State { team: Account { limit: team, ..Account::default() }, teammates })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent numbers (plain
        // additions), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `teammate` has left: the smaller of its own budget and the team's.
    pub fn left(&self, teammate: &str) -> BudgetLeft {
        let s = self.lock();
        let own = s.teammates.get(teammate).map(Account::left).unwrap_or_default();
        min_left(own, s.team.left())
    }

    /// Reserves `worst` and one call for `teammate`, or says which budget
    /// cannot cover it.
    pub fn reserve(&self, teammate: &str, worst: Cost) -> Result<Reservation, LlmError> {
        let mut s = self.lock();
        let refused = match s.teammates.get(teammate) {
            Some(own) => own.refuse(&format!("teammate '{teammate}'"), worst),
            None => Some(format!("teammate '{teammate}' has no budget")),
        }
        .or_else(|| s.team.refuse("team", worst));
        if let Some(reason) = refused {
            let own = s.teammates.get(teammate).map(Account::left).unwrap_or_default();
            return Err(LlmError::BudgetExhausted { reason, left: min_left(own, s.team.left()) });
        }
        let State { team, teammates } = &mut *s;
        for acc in [team, teammates.get_mut(teammate).expect("checked above")] {
            acc.reserved.tokens += worst.tokens;
            acc.reserved.calls += 1;
            acc.reserved.usd += worst.usd;
        }
        Ok(Reservation { ledger: self.clone(), teammate: teammate.to_string(), worst, sent: false, settled: false })
    }
}

/// A call's reserved worst case. Dropped unsettled (the call failed or was
/// cancelled), it releases the reservation and charges one call if the
/// call was sent.
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Ledger,
    teammate: String,
    worst: Cost,
    sent: bool,
    settled: bool,
}

impl Reservation {
    /// The call is about to leave the host: it counts against `calls`
    /// whatever happens next.
    pub fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// Releases the reservation and charges `actual` and one call.
    pub fn settle(mut self, actual: Cost) -> BudgetLeft {
        self.sent = true;
        self.finish(actual);
        self.settled = true;
        self.ledger.left(&self.teammate)
    }

    fn finish(&self, actual: Cost) {
        let mut s = self.ledger.lock();
        let State { team, teammates } = &mut *s;
        let Some(own) = teammates.get_mut(&self.teammate) else { return };
        for acc in [team, own] {
            acc.reserved.tokens -= self.worst.tokens;
            acc.reserved.calls -= 1;
            acc.reserved.usd = (acc.reserved.usd - self.worst.usd).max(0.0);
            acc.used.tokens = acc.used.tokens.saturating_add(actual.tokens);
            acc.used.calls += u64::from(self.sent);
            acc.used.usd += actual.usd;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.finish(Cost::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(own: Budget, team: Budget) -> Ledger {
        Ledger::new(team, [("a".to_string(), own), ("b".to_string(), Budget::default())])
    }

    #[test]
    fn a_call_whose_output_cap_does_not_fit_is_refused() {
        let l = ledger(Budget { tokens: Some(1000), ..Budget::default() }, Budget::default());
        let err = l.reserve("a", Cost { tokens: 1001, usd: 0.0 }).unwrap_err();
        match err {
            LlmError::BudgetExhausted { reason, left } => {
                assert!(reason.contains("teammate 'a' tokens budget (1000) has 1000 left"), "{reason}");
                assert_eq!(left.tokens, Some(1000));
            }
            other => panic!("{other:?}"),
        }
        assert!(l.reserve("a", Cost { tokens: 1000, usd: 0.0 }).is_ok());
    }

    #[test]
    fn usage_is_charged_and_the_reservation_released() {
        let l = ledger(Budget { tokens: Some(1000), calls: Some(3), usd: Some(1.0) }, Budget::default());
        let r = l.reserve("a", Cost { tokens: 600, usd: 0.5 }).unwrap();
        assert_eq!(l.left("a"), BudgetLeft { tokens: Some(400), calls: Some(2), usd: Some(0.5) });
        // A second call cannot reserve 600 while the first holds 600.
        assert!(l.reserve("a", Cost { tokens: 600, usd: 0.0 }).is_err());
        let left = r.settle(Cost { tokens: 150, usd: 0.25 });
        assert_eq!(left, BudgetLeft { tokens: Some(850), calls: Some(2), usd: Some(0.75) });
    }

    #[test]
    fn a_dropped_reservation_charges_a_call_only_if_sent() {
        let l = ledger(Budget { tokens: Some(100), calls: Some(2), usd: None }, Budget::default());
        drop(l.reserve("a", Cost { tokens: 100, usd: 0.0 }).unwrap());
        assert_eq!(l.left("a").calls, Some(2));
        let mut r = l.reserve("a", Cost { tokens: 100, usd: 0.0 }).unwrap();
        r.mark_sent();
        drop(r);
        assert_eq!(l.left("a"), BudgetLeft { tokens: Some(100), calls: Some(1), usd: None });
    }

    #[test]
    fn the_team_budget_binds_every_teammate() {
        let l = ledger(Budget::default(), Budget { calls: Some(2), ..Budget::default() });
        l.reserve("a", Cost::default()).unwrap().settle(Cost::default());
        l.reserve("b", Cost::default()).unwrap().settle(Cost::default());
        let err = l.reserve("a", Cost::default()).unwrap_err();
        assert!(err.to_string().contains("team calls budget (2) is used up"), "{err}");
        assert_eq!(l.left("b").calls, Some(0));
    }

    #[test]
    fn usage_beyond_the_reservation_exhausts_the_budget() {
        let l = ledger(Budget { tokens: Some(100), ..Budget::default() }, Budget::default());
        l.reserve("a", Cost { tokens: 50, usd: 0.0 }).unwrap().settle(Cost { tokens: 120, usd: 0.0 });
        assert_eq!(l.left("a").tokens, Some(0));
        assert!(matches!(l.reserve("a", Cost { tokens: 1, usd: 0.0 }), Err(LlmError::BudgetExhausted { .. })));
    }

    #[test]
    fn an_unknown_teammate_has_no_budget() {
        let l = ledger(Budget::default(), Budget::default());
        let err = l.reserve("zed", Cost::default()).unwrap_err();
        assert!(err.to_string().contains("teammate 'zed' has no budget"), "{err}");
    }

    #[test]
    fn price_cost() {
        let p = Price { input_per_mtok: 3.0, output_per_mtok: 15.0 };
        assert!((p.cost(1_000_000, 100_000) - 4.5).abs() < 1e-9);
    }
}
