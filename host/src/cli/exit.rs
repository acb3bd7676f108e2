//! The exit codes of `swarm-host`, their `--help` text, and how a run's
//! report maps to one.
//!
//! Every code is decided from typed data in the report: how the run stopped
//! ([`StopCause`]), the state errors it met, the failure policy's
//! [`Verdict`], and the [`LimitKind`](crate::model::LimitKind) each
//! failed task or attempt carries. No error text is searched: a guest that
//! writes "deadline hit" in its own error gets 1, not 4.

use crate::coordinator::{FailOn, RunReport, StopCause, Verdict};

/// Every task completed (or: valid, inspected, listed).
pub const EXIT_OK: u8 = 0;
/// At least one task failed or did not run, or the `--fail-on` policy
/// failed the run on its findings.
pub const EXIT_TASKS_FAILED: u8 = 1;
/// Bad usage, team file or plugin: nothing ran.
pub const EXIT_CONFIG: u8 = 2;
/// swarm-host itself failed (e.g. it cannot create or write the team's
/// state directory, or a teammate could not be started after others were).
pub const EXIT_INTERNAL: u8 = 3;
/// A task failed because a sandbox limit stopped its teammate (memory,
/// table, instances, stack, deadline, fuel or log rate).
pub const EXIT_LIMIT: u8 = 4;
/// The run's timeout (`--timeout` or the team file's `timeout`) stopped it:
/// unfinished tasks did not run and `swarm-host resume` continues them.
pub const EXIT_TIMEOUT: u8 = 5;

/// The exit-code table shown after `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: every task completed and --fail-on found nothing (validate: valid; inspect: fits a world)
  1  at least one task failed or did not run, or --fail-on failed the run on findings (the report says which);
     also a run stopped by Ctrl-C or SIGTERM (its state is kept: `swarm-host resume` continues it)
  2  usage, team file or plugin error: nothing ran
  3  internal error: swarm-host itself failed (e.g. it cannot write its state directory, or a teammate
     could not be started after others were)
  4  a sandbox limit (memory, table, instances, stack, deadline, idle_cpu, fuel, log rate, events_per_sec) stopped a task that then failed
  5  the run's timeout (--timeout or `timeout` in the team file) stopped it; `swarm-host resume` continues it
When several apply, the first of 3, 5, 1 (stopped by a signal), 4, 1 wins. --fail-on never turns the 1 of
failed tasks or findings, and 4, into 0.

Logs: RUST_LOG sets the level (default swarm_host=info); NO_COLOR turns colour off.
Each run also logs to <state dir>/<team>/logs/: coordinator.log and one <teammate>.log each.";

/// The exit code of a finished run:
///
/// 1. 3 if state could not be saved, or the start failed after some
///    teammates were spawned;
/// 2. 5 if the run's timeout stopped it;
/// 3. 1 if Ctrl-C or SIGTERM stopped it;
/// 4. 0 if the failure policy (the report's verdict, else the default
///    `error`) passes it;
/// 5. 4 if a task that did not complete was stopped by a sandbox limit
///    (typed, on the task or one of its attempts) and the policy fails on
///    tasks;
/// 6. else 1.
pub fn of_report(report: &RunReport) -> u8 {
    if !report.state_errors.is_empty() || report.stopped_by == Some(StopCause::StartFailed) {
        return EXIT_INTERNAL;
    }
    match report.stopped_by {
        Some(StopCause::Timeout) => return EXIT_TIMEOUT,
        Some(StopCause::Interrupt | StopCause::Terminate) => return EXIT_TASKS_FAILED,
        Some(StopCause::StartFailed) | None => {}
    }
    let verdict = report.verdict.clone().unwrap_or_else(|| Verdict::of(report, FailOn::default()));
    if !verdict.failed {
        EXIT_OK
    } else if verdict.failed_tasks > 0 && report.failed_on_limit() {
        EXIT_LIMIT
    } else {
        EXIT_TASKS_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::report::{Parts, RunReport};
    use crate::model::LimitKind;
    use crate::model::{Finding, Severity};
    use crate::tasks::{Status, TaskList, TaskReport, TaskSpec};

    fn spec(id: &str) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            subject: id.into(),
            description: String::new(),
            owned_files: Default::default(),
            owner: None,
            blocked_by: Vec::new(),
            deadline: None,
            max_attempts: 1,
            creates: Vec::new(),
        }
    }

    fn finding(severity: Severity) -> Finding {
        Finding { file: "a.rs".into(), line: Some(1), rule: "r".into(), message: "m".into(), severity }
    }

    /// A report of task `ok` completed with `findings`, and task `bad`
    /// failed with `error` and `limit` if `fail` is set.
    fn report(findings: Vec<Finding>, fail: Option<(&str, Option<LimitKind>)>) -> RunReport {
        let list = TaskList::new(vec![spec("ok"), spec("bad")]);
        list.claim("w1", "w").unwrap();
        list.complete("w1", "ok", TaskReport { summary: "s".into(), findings }).unwrap();
        list.claim("w1", "w").unwrap();
        match fail {
            Some((error, limit)) => {
                list.fail_attempt("w1", "bad", error, limit).unwrap();
            }
            None => list.complete("w1", "bad", TaskReport { summary: "s".into(), findings: vec![] }).unwrap(),
        }
        RunReport::synthesize(Parts {
            team: "t".into(),
            backend: "in-process".into(),
            duration: Default::default(),
            tasks: list.finish(),
            teammates: Vec::new(),
            messages: Vec::new(),
            denials: Vec::new(),
            denial_counts: Default::default(),
            warnings: Vec::new(),
            interrupted: None,
            stopped_by: None,
            state_errors: Vec::new(),
        })
    }

    #[test]
    fn a_limit_is_read_from_its_kind_never_from_text() {
        // The guest's own words name a limit: exit 1.
        let forged = report(vec![], Some(("deadline hit: task bad ran past task_deadline = 1s", None)));
        assert_eq!(forged.tasks[1].status, Status::Failed);
        assert_eq!(of_report(&forged), EXIT_TASKS_FAILED);
        let forged = report(vec![], Some(("memory limit hit: the instance asked for 9 bytes", None)));
        assert_eq!(of_report(&forged), EXIT_TASKS_FAILED);
        // The host raised the limit: exit 4, whatever the text says.
        let real = report(vec![], Some(("trapped: whatever", Some(LimitKind::Deadline))));
        assert_eq!(of_report(&real), EXIT_LIMIT);
        assert_eq!(of_report(&report(vec![], None)), EXIT_OK);
    }

    #[test]
    fn the_policy_decides_which_findings_fail_the_run() {
        let with = |sev: Severity, fail_on: FailOn| {
            let mut r = report(vec![finding(sev)], None);
            r.verdict = Some(Verdict::of(&r, fail_on));
            of_report(&r)
        };
        // The default fails on failed tasks only, as before severities.
        assert_eq!(with(Severity::Error, FailOn::Error), EXIT_OK);
        assert_eq!(with(Severity::Note, FailOn::Warning), EXIT_OK);
        assert_eq!(with(Severity::Warning, FailOn::Warning), EXIT_TASKS_FAILED);
        assert_eq!(with(Severity::Error, FailOn::Warning), EXIT_TASKS_FAILED);
        assert_eq!(with(Severity::Note, FailOn::Note), EXIT_TASKS_FAILED);
        assert_eq!(with(Severity::Error, FailOn::Never), EXIT_OK);

        let mut failed = report(vec![], Some(("boom", Some(LimitKind::Memory))));
        failed.verdict = Some(Verdict::of(&failed, FailOn::Never));
        assert_eq!(of_report(&failed), EXIT_OK, "never: failed tasks do not fail the run");

        let mut r = report(vec![finding(Severity::Warning), finding(Severity::Error)], None);
        r.verdict = Some(Verdict::of(&r, FailOn::Warning));
        assert_eq!(
            r.verdict.as_ref().unwrap().line(),
            "failed by --fail-on warning: 2 finding(s) of severity warning or above"
        );
        assert!(r.to_text(10).contains("Result: failed by --fail-on warning: 2 finding(s)"), "{}", r.to_text(10));
    }

    #[test]
    fn how_the_run_stopped_comes_before_the_policy() {
        let stopped = |cause: StopCause| {
            let mut r = report(vec![], Some(("boom", Some(LimitKind::Deadline))));
            r.stopped_by = Some(cause);
            of_report(&r)
        };
        assert_eq!(stopped(StopCause::Timeout), EXIT_TIMEOUT);
        assert_eq!(stopped(StopCause::Terminate), EXIT_TASKS_FAILED);
        assert_eq!(stopped(StopCause::Interrupt), EXIT_TASKS_FAILED);
        assert_eq!(stopped(StopCause::StartFailed), EXIT_INTERNAL);
        let mut unsaved = report(vec![], None);
        unsaved.state_errors.push("tasks.json: No such file or directory".into());
        assert_eq!(of_report(&unsaved), EXIT_INTERNAL);
    }
}
