//! Retries, in the host only. One attempt's failure says whether it is worth
//! another ([`Retry`]); [`run`] repeats an attempt at most
//! `max_retries` times, sleeping what the provider asked (`retry-after`) or
//! a jittered exponential backoff, and never past the call's deadline.

use super::LlmError;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// Whether a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never (a bad request, a bad key, a spend cap).
    Never,
    /// After the wait the provider asked for.
    After(Duration),
    /// After a jittered backoff.
    Backoff,
}

/// One attempt's failure.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptError {
    /// What the caller sees if this is the last attempt.
    pub error: LlmError,
    /// Whether another attempt may follow.
    pub retry: Retry,
}

impl AttemptError {
    /// A failure not worth repeating.
    pub fn fatal(error: LlmError) -> Self {
        AttemptError { error, retry: Retry::Never }
    }
}

/// How many times and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled each retry.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Longest `retry-after` the host waits out itself; a longer one goes
    /// back to the teammate as `RateLimited` with the wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based): between half and
    /// all of `base * 2^retry`, capped at `backoff_max`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let full = self.backoff_base.saturating_mul(1u32 << retry.min(16)).min(self.backoff_max);
        let half = full / 2;
        let jitter_ns = (full - half).as_nanos() as u64;
        half + Duration::from_nanos(if jitter_ns == 0 { 0 } else { cheap_random() % (jitter_ns + 1) })
    }
}

/// A random number from the std hasher's per-process random keys: enough to
/// spread many teammates' retries apart, with no dependency.
fn cheap_random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// Runs `attempt` until it succeeds, fails for good, runs out of retries,
/// or the next wait would end after `deadline`. Returns the result and how
/// many attempts were made.
pub async fn run<T, F, Fut>(policy: &RetryPolicy, deadline: Instant, mut attempt: F) -> (Result<T, LlmError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut made = 0;
    loop {
        made += 1;
        let failure = match attempt().await {
            Ok(v) => return (Ok(v), made),
            Err(e) => e,
        };
        let retries_done = made - 1;
        let wait = match failure.retry {
            Retry::Never => return (Err(failure.error), made),
            _ if retries_done >= policy.max_retries => return (Err(failure.error), made),
            Retry::After(wait) if wait > policy.max_retry_after => return (Err(failure.error), made),
            Retry::After(wait) => wait,
            Retry::Backoff => policy.backoff(retries_done),
        };
        if Instant::now() + wait >= deadline {
            return (Err(failure.error), made);
        }
        tracing::debug!(attempt = made, wait_ms = wait.as_millis() as u64, error = %failure.error, "retrying model call");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_is_jittered_within_half_to_full_and_capped() {
        let p = policy();
        for retry in 0..6 {
            let full = Duration::from_millis(100 * (1 << retry)).min(Duration::from_millis(300));
            for _ in 0..20 {
                let b = p.backoff(retry);
                assert!(b >= full / 2 && b <= full, "retry {retry}: {b:?} not in [{:?}, {full:?}]", full / 2);
            }
        }
    }

    async fn count(p: RetryPolicy, fail: AttemptError, deadline: Duration) -> (Result<(), LlmError>, u32, Duration) {
        let n = AtomicU32::new(0);
        let start = Instant::now();
        let (r, made) = run(&p, start + deadline, || {
            n.fetch_add(1, Ordering::SeqCst);
            let fail = fail.clone();
            async move { Err::<(), _>(fail) }
        })
        .await;
        assert_eq!(made, n.load(Ordering::SeqCst));
        (r, made, start.elapsed())
    }

    const MS: Duration = Duration::from_millis(1);

    fn after(ms: u64) -> AttemptError {
        let wait = Duration::from_millis(ms);
        AttemptError { error: LlmError::rate_limited(Some(wait)), retry: Retry::After(wait) }
    }

    // Real (short) waits, measured: at least what was asked, with a generous
    // upper bound for a loaded machine.
    #[tokio::test]
    async fn retry_after_is_honoured_up_to_max_retries() {
        let (r, made, elapsed) = count(policy(), after(100), Duration::from_secs(60)).await;
        assert_eq!(made, 3);
        assert!(elapsed >= 200 * MS && elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(r.unwrap_err(), LlmError::RateLimited { retry_after_ms: Some(100) });
    }

    #[tokio::test]
    async fn never_is_not_retried_and_long_waits_go_back_to_the_caller() {
        let fatal = AttemptError::fatal(LlmError::InvalidRequest("x".into()));
        let (_, made, _) = count(policy(), fatal, Duration::from_secs(60)).await;
        assert_eq!(made, 1);
        // 30 s is more than max_retry_after (5 s): no wait at all.
        let (_, made, elapsed) = count(policy(), after(30_000), Duration::from_secs(60)).await;
        assert_eq!(made, 1);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    #[tokio::test]
    async fn no_wait_runs_past_the_deadline() {
        let fail = AttemptError { error: LlmError::Overloaded, retry: Retry::After(200 * MS) };
        let (r, made, elapsed) = count(policy(), fail, 300 * MS).await;
        // The second wait would end after the deadline, so it is not taken.
        assert_eq!(made, 2);
        assert!(elapsed >= 200 * MS && elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(r.unwrap_err(), LlmError::Overloaded);
    }

    #[tokio::test]
    async fn backoff_retries_then_succeeds() {
        let n = AtomicU32::new(0);
        let p = RetryPolicy { backoff_base: MS, backoff_max: 4 * MS, ..policy() };
        let (r, made) = run(&p, Instant::now() + Duration::from_secs(60), || {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move {
                if k < 2 { Err(AttemptError { error: LlmError::Overloaded, retry: Retry::Backoff }) } else { Ok(k) }
            }
        })
        .await;
        assert_eq!((r.unwrap(), made), (2, 3));
    }
}
