//! The epoch ticker of a teammate engine, and the gate that lets it sleep
//! while no teammate can be executing.
//!
//! Epoch interruption is how a computing guest yields to the executor and
//! has its task deadline checked: a thread advances the engine's epoch every
//! [`EPOCH_TICK`](super::EPOCH_TICK). A team whose teammates all wait in
//! `mailbox.recv` has nothing to interrupt, and that thread would still wake
//! the process 100 times a second. So every teammate store holds an
//! [`EpochUse`], which counts it on the engine's [`EpochGate`] except while
//! it waits in `recv`; after [`IDLE_TICKS`] ticks with no store counted,
//! the ticker sleeps until one is counted again (checking at most every
//! [`IDLE_CHECK`] that its engine still exists).
//!
//! The gate errs on the side of ticking: a store is counted from its
//! creation (instantiation runs guest code) to its drop, and only the one
//! wait that can last long takes it off. Resuming after a short wait costs
//! two atomic operations; only the first resume after the ticker went to
//! sleep takes a lock to wake it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Consecutive ticks with no store counted before the ticker sleeps: a
/// round trip that parks a teammate for a moment does not pay a wake-up.
pub const IDLE_TICKS: u32 = 10;
/// How often a sleeping ticker checks that its engine still exists.
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Counts the stores of one engine that may be executing guest code.
#[derive(Debug, Default)]
pub struct EpochGate {
    /// Stores counted now.
    busy: AtomicUsize,
    /// The ticker is asleep (or about to be) and must be woken.
    sleeping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl EpochGate {
    /// A gate with nothing counted.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A gate that always counts one store: its ticker never sleeps.
    pub fn always_busy() -> Arc<Self> {
        Arc::new(Self { busy: AtomicUsize::new(1), ..Self::default() })
    }

    fn enter(&self) {
        // SeqCst on both sides: either this sees `sleeping`, or the ticker
        // sees the count before it waits (it re-checks after setting it).
        if self.busy.fetch_add(1, Ordering::SeqCst) == 0 && self.sleeping.load(Ordering::SeqCst) {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_one();
        }
    }

    fn leave(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stores counted now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Whether the ticker is asleep.
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
    }

    /// Waits (at most `check`) while nothing is counted.
    fn sleep_while_idle(&self, check: Duration) {
        let held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sleeping.store(true, Ordering::SeqCst);
        if self.busy.load(Ordering::SeqCst) == 0 {
            // A spurious or timed-out wake-up just goes round the loop again.
            let _ = self.wake.wait_timeout(held, check);
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Starts the ticker thread: `tick` advances the epoch and says whether the
/// engine still exists (the thread ends when it does not). `tick_every` is
/// the tick period, `check` how often a sleeping ticker calls `tick` anyway.
pub fn spawn_ticker(
    gate: Arc<EpochGate>,
    tick_every: Duration,
    check: Duration,
    mut tick: impl FnMut() -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("swarm-epoch".into()).spawn(move || {
        let mut idle = 0;
        while tick() {
            std::thread::sleep(tick_every);
            if gate.busy() > 0 {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle >= IDLE_TICKS {
                gate.sleep_while_idle(check);
                // Still idle after a timed-out check: back to sleep after
                // the next tick, not after ten.
                idle = if gate.busy() == 0 { IDLE_TICKS } else { 0 };
            }
        }
    })
}

/// One store's place on its engine's gate: counted from creation to drop,
/// except between [`EpochUse::pause`] and [`EpochUse::resume`].
#[derive(Debug)]
pub struct EpochUse {
    gate: Arc<EpochGate>,
    counted: bool,
}

impl EpochUse {
    /// Counts a new store on `gate`.
    pub fn new(gate: Arc<EpochGate>) -> Self {
        gate.enter();
        Self { gate, counted: true }
    }

    /// The store waits in the host and runs no guest code.
    pub fn pause(&mut self) {
        if std::mem::replace(&mut self.counted, false) {
            self.gate.leave();
        }
    }

    /// The store may run guest code again.
    pub fn resume(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            self.gate.enter();
        }
    }
}

impl Drop for EpochUse {
    fn drop(&mut self) {
        self.pause();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    /// Waits up to 10 s for `cond`.
    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    type Ticker = (Arc<AtomicU64>, Arc<AtomicBool>, std::thread::JoinHandle<()>);

    fn ticker(gate: &Arc<EpochGate>, check: Duration) -> Ticker {
        let (ticks, alive) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(true)));
        let (t, a) = (ticks.clone(), alive.clone());
        let thread = spawn_ticker(gate.clone(), Duration::from_millis(1), check, move || {
            t.fetch_add(1, Ordering::SeqCst);
            a.load(Ordering::SeqCst)
        })
        .unwrap();
        (ticks, alive, thread)
    }

    #[test]
    fn an_idle_ticker_sleeps_and_a_counted_store_wakes_it() {
        let gate = EpochGate::new();
        // An hour between checks: while asleep, it does not tick at all.
        let (ticks, alive, _thread) = ticker(&gate, Duration::from_secs(3600));
        wait_for("the idle ticker to sleep", || gate.is_sleeping());
        let asleep_at = ticks.load(Ordering::SeqCst);
        let mut store = EpochUse::new(gate.clone());
        wait_for("ticks after a store is counted", || ticks.load(Ordering::SeqCst) > asleep_at + 3);
        assert!(!gate.is_sleeping());
        // A store waiting in recv is not counted; the ticker sleeps again.
        store.pause();
        wait_for("the ticker to sleep again", || gate.is_sleeping());
        store.resume();
        let resumed_at = ticks.load(Ordering::SeqCst);
        wait_for("ticks after resume", || ticks.load(Ordering::SeqCst) > resumed_at + 3);
        alive.store(false, Ordering::SeqCst);
        drop(store);
    }

    #[test]
    fn pause_and_resume_count_once_and_drop_uncounts() {
        let gate = EpochGate::new();
        let mut a = EpochUse::new(gate.clone());
        let b = EpochUse::new(gate.clone());
        assert_eq!(gate.busy(), 2);
        a.pause();
        a.pause();
        assert_eq!(gate.busy(), 1);
        a.resume();
        a.resume();
        assert_eq!(gate.busy(), 2);
        drop(b);
        a.pause();
        drop(a);
        assert_eq!(gate.busy(), 0, "a paused store is not uncounted twice");
    }

    #[test]
    fn a_sleeping_ticker_still_ends_with_its_engine() {
        let gate = EpochGate::new();
        let (_ticks, alive, thread) = ticker(&gate, Duration::from_millis(5));
        wait_for("the idle ticker to sleep", || gate.is_sleeping());
        // It calls `tick` at least every `check` while asleep, and ends when
        // `tick` says the engine is gone.
        alive.store(false, Ordering::SeqCst);
        let ended = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            thread.join().unwrap();
            let _ = ended.0.send(());
        });
        ended.1.recv_timeout(Duration::from_secs(10)).expect("the ticker thread ended");
    }
}
