//! The exit codes of `swarm-host`, their `--help` text, and how a run's
//! report maps to one.

use crate::coordinator::RunReport;
use crate::sandbox::LimitHit;
use crate::tasks::Status;

/// Every task completed (or: valid, inspected, listed).
pub const EXIT_OK: u8 = 0;
/// At least one task failed or did not run.
pub const EXIT_TASKS_FAILED: u8 = 1;
/// Bad usage, team file or plugin: nothing ran.
pub const EXIT_CONFIG: u8 = 2;
/// swarm-host itself failed (e.g. it cannot create or write the team's
/// state directory).
pub const EXIT_INTERNAL: u8 = 3;
/// A task failed because a sandbox limit stopped its teammate (memory,
/// table, instances, stack, deadline, fuel or log rate).
pub const EXIT_LIMIT: u8 = 4;

/// The exit-code table shown after `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: every task completed (validate: valid; inspect: fits a world)
  1  at least one task failed or did not run (the report says which and why)
  2  usage, team file or plugin error: nothing ran
  3  internal error: swarm-host itself failed (e.g. it cannot write its state directory)
  4  a sandbox limit (memory, table, instances, stack, deadline, fuel, log rate) stopped a task that then failed

Logs: RUST_LOG sets the level (default swarm_host=info); NO_COLOR turns colour off.
Each run also logs to <state dir>/<team>/logs/: coordinator.log and one <teammate>.log each.";

/// The words every [`LimitHit`] message carries: `"<what> limit hit: ..."`
/// or `"deadline hit: ..."`. The unit test below renders every variant, so a
/// reworded limit message fails it rather than going unnoticed.
const LIMIT_MARKERS: &[&str] = &[" limit hit: ", "deadline hit: "];

/// True if `text` (a task error or a teammate's exit) names a sandbox limit.
pub fn names_a_limit(text: &str) -> bool {
    LIMIT_MARKERS.iter().any(|m| text.contains(m))
}

/// The exit code of a finished run: 0 if every task completed; 4 if some
/// task failed and a limit was hit (a failed task's error or a teammate's
/// exit names one); else 1.
///
/// The report keeps errors as text, so the limit is recognised by the words
/// of [`LimitHit`]'s messages.
pub fn of_report(report: &RunReport) -> u8 {
    if report.success() {
        return EXIT_OK;
    }
    let failed = report.tasks.iter().filter(|t| t.status != Status::Completed);
    let failed_on_limit = failed
        .flat_map(|t| t.error.iter().chain(t.attempts.iter().filter_map(|a| a.error.as_ref())))
        .chain(report.teammates.iter().filter_map(|m| m.exit.as_ref()))
        .any(|text| names_a_limit(text));
    if failed_on_limit { EXIT_LIMIT } else { EXIT_TASKS_FAILED }
}

/// [`names_a_limit`] for a limit the host raised itself.
pub fn is_limit(hit: &LimitHit) -> bool {
    names_a_limit(&hit.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_limit_message_is_recognised() {
        let hits = [
            LimitHit::Memory { limit_mib: 1, requested: 2 },
            LimitHit::Table { limit: 1, requested: 2 },
            LimitHit::Deadline { task: "t".into(), deadline: Duration::from_millis(300) },
            LimitHit::Stack(64),
            LimitHit::Instances { limit: 1, what: "instance count too high at 2".into() },
            LimitHit::Fuel(1000),
            LimitHit::LogRate(50),
        ];
        for hit in &hits {
            assert!(is_limit(hit), "{hit}");
            assert!(names_a_limit(&format!("trapped: {hit}")), "{hit}");
        }
        assert!(!names_a_limit("run returned an error: deliberate panic"));
        assert!(!names_a_limit("plugin p.wasm is 9 bytes, over the plugin_mib limit of 1 MiB"));
    }
}
