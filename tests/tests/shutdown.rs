//! Shutdown: graceful (request, answer, exit), forced (rejected or ignored
//! past the grace period, then killed), and interrupts (Ctrl-C once: graceful,
//! twice: kill), with the roster saying exited only once a teammate is gone.

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, task, teammate};
use swarm_host::coordinator::state::StateDir;
use swarm_host::coordinator::{Interrupt, Loaded, Plan, Restored, RunOptions, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_host::tasks::Status;
use swarm_host::team::Liveness;

fn plan(fx: &Fixture, body: &str) -> Plan {
    Plan::build(&Loaded::read(&fx.team(body)).unwrap()).unwrap()
}

#[test]
fn graceful_shutdown_ends_with_every_teammate_exited() {
    let fx = Fixture::new(&[]);
    let report = fx.run(&format!("{}{}", teammate("counter", swarm_tests::COUNTER, 3, ""), task("a", "count", "")));
    assert!(report.success());
    for m in &report.teammates {
        assert_eq!(m.state, Liveness::Exited, "{m:?}");
        assert_eq!(m.exit.as_deref(), Some("finished"));
    }
}

#[test]
fn a_teammate_that_rejects_shutdown_is_killed_after_the_grace_period() {
    let fx = Fixture::new(&[]);
    let p = plan(
        &fx,
        &format!(
            "{}{}",
            teammate("counter", swarm_tests::COUNTER, 1, ""),
            task("a", "count", "description = \"stubborn\"")
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let options = RunOptions { shutdown_grace: Duration::from_millis(300), ..RunOptions::default() };
        tokio::time::timeout(Duration::from_secs(60), run_in_process(&p, &Sandbox::new(), options))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(report.totals.completed, 1);
    let m = &report.teammates[0];
    assert_eq!(m.state, Liveness::Dead);
    assert_eq!(m.exit.as_deref(), Some("killed: no exit within the 300ms shutdown grace period"));
}

#[test]
fn one_interrupt_stops_gracefully_and_resume_finishes_the_rest() {
    let fx = Fixture::new(&[]);
    let p = plan(
        &fx,
        &format!(
            "{}{}{}",
            teammate("counter", swarm_tests::COUNTER, 1, ""),
            task("quick", "count", ""),
            task("slow", "count", "description = \"wait:600000\"\nblocked_by = [\"quick\"]"),
        ),
    );
    let base = fx.dir.path().join("state");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let (tx, interrupts) = tokio::sync::mpsc::channel(2);
        let state = StateDir::create(&base, "test").unwrap();
        let options = RunOptions {
            shutdown_grace: Duration::from_millis(200),
            interrupts,
            state: Some(state.clone()),
            ..RunOptions::default()
        };
        let run = tokio::spawn({
            let p = p.clone();
            async move { run_in_process(&p, &Sandbox::new(), options).await }
        });
        // Interrupt once `slow` is being worked on.
        let waiting = Instant::now();
        while !state.read_tasks().is_ok_and(|t| t[1].status == Status::InProgress) {
            assert!(waiting.elapsed() < Duration::from_secs(60), "slow never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send(Interrupt::CtrlC).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), run).await.unwrap().unwrap().unwrap()
    });
    assert_eq!(report.interrupted.as_deref(), Some("interrupted by the user"));
    assert_eq!(report.tasks[0].status, Status::Completed);
    assert_eq!(report.tasks[1].status, Status::Pending, "put back, not failed: {:?}", report.tasks[1]);
    assert!(!report.success());

    // Resume without the wait: drop it from the saved task's description.
    let state = StateDir::open(&base, "test").unwrap();
    let saved = state.read_plan().unwrap();
    let mut restored = Restored::load(&state, &saved).unwrap();
    restored.tasks[1].spec.description = String::new();
    assert_eq!(restored.resumes, 1);
    let resumed = rt.block_on(async {
        let options = RunOptions { state: Some(state.clone()), restored: Some(restored), ..RunOptions::default() };
        run_in_process(&saved, &Sandbox::new(), options).await.unwrap()
    });
    assert!(resumed.success(), "{}", resumed.to_text(5));
    assert_eq!(resumed.tasks[0].attempts.len(), 1, "completed work is not rerun");
    assert!(resumed.tasks[1].attempts[0].interrupted);
    assert_eq!(state.read_run().unwrap().resumes, 1);
}

#[test]
fn a_second_interrupt_kills_at_once() {
    let fx = Fixture::new(&[]);
    let p = plan(
        &fx,
        &format!(
            "{}{}",
            teammate("counter", swarm_tests::COUNTER, 2, ""),
            task("slow", "count", "description = \"wait:600000\"")
        ),
    );
    let base = fx.dir.path().join("state");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (report, took) = rt.block_on(async {
        let (tx, interrupts) = tokio::sync::mpsc::channel(2);
        let state = StateDir::create(&base, "test").unwrap();
        // A grace period far longer than the test may take: only the second
        // interrupt can end this run in time.
        let options = RunOptions {
            shutdown_grace: Duration::from_secs(600),
            interrupts,
            state: Some(state.clone()),
            ..RunOptions::default()
        };
        let started = Instant::now();
        let run = tokio::spawn({
            let p = p.clone();
            async move { run_in_process(&p, &Sandbox::new(), options).await }
        });
        // Interrupt once `slow` is held: its teammate waits inside the task
        // and cannot answer the shutdown request.
        while !state.read_tasks().is_ok_and(|t| t[0].status == Status::InProgress) {
            assert!(started.elapsed() < Duration::from_secs(60), "slow never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send(Interrupt::CtrlC).await.unwrap();
        tx.send(Interrupt::CtrlC).await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap().unwrap().unwrap();
        (report, started.elapsed())
    });
    assert!(took < Duration::from_secs(120));
    let holder = report.tasks[0].teammate.clone().unwrap();
    let m = report.teammates.iter().find(|m| m.id == holder).unwrap();
    assert_eq!(m.state, Liveness::Dead, "{m:?}");
    assert_eq!(m.exit.as_deref(), Some("killed: killed by a second interrupt"));
    assert!(report.teammates.iter().all(|m| matches!(m.state, Liveness::Dead | Liveness::Exited)));
    assert_eq!(report.tasks[0].status, Status::Pending, "left for resume");
}
