//! Running the helper programs of the pane launchers (`tmux`, `osascript`)
//! with a deadline: a helper that hangs (a wedged tmux server, an AppleScript
//! dialog nobody answers) is killed at the deadline and the launcher gets an
//! error naming the program, the command and the timeout, so a stuck helper
//! can never hang a run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a helper program did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot run {program}: {source}", program = .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It did not finish in time and was killed.
    #[error(
        "{program} {what} did not finish within {} ({setting}); it was killed",
        humantime::format_duration(*.after),
        program = .program.display()
    )]
    Timeout {
        /// The program.
        program: PathBuf,
        /// The command it was asked to run, e.g. `split-window`.
        what: String,
        /// The timeout.
        after: Duration,
        /// The setting that holds the timeout.
        setting: &'static str,
    },
    /// It finished and said no (tmux: "no space for new pane", an unknown
    /// target, ...).
    #[error("{program} {what} failed ({status}): {stderr}", program = .program.display())]
    Failed {
        /// The program.
        program: PathBuf,
        /// The command it was asked to run.
        what: String,
        /// Its exit status.
        status: String,
        /// Its error output, trimmed.
        stderr: String,
    },
}

/// A helper program and how long each call may take.
#[derive(Debug, Clone)]
pub struct Helper {
    /// The program (looked up on `PATH` when it has no slash).
    pub program: PathBuf,
    /// Longest a call may take.
    pub timeout: Duration,
    /// The name of the timeout in error messages.
    pub setting: &'static str,
}

impl Helper {
    /// A helper running `program`, `timeout` per call.
    pub fn new(program: impl AsRef<Path>, timeout: Duration, setting: &'static str) -> Self {
        Self { program: program.as_ref().to_path_buf(), timeout, setting }
    }

    /// Runs the program with `args` (stdin empty) and returns its stdout.
    /// `what` names the command in errors (e.g. `split-window`).
    pub async fn run<S: AsRef<OsStr>>(&self, args: &[S], what: &str) -> Result<String, CommandError> {
        let command = tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(std::process::Stdio::null())
            // Dropping the unfinished call (at the timeout) kills the child.
            .kill_on_drop(true)
            .output();
        let out = match tokio::time::timeout(self.timeout, command).await {
            Err(_) => {
                return Err(CommandError::Timeout {
                    program: self.program.clone(),
                    what: what.to_string(),
                    after: self.timeout,
                    setting: self.setting,
                });
            }
            Ok(Err(source)) => return Err(CommandError::Spawn { program: self.program.clone(), source }),
            Ok(Ok(out)) => out,
        };
        if !out.status.success() {
            return Err(CommandError::Failed {
                program: self.program.clone(),
                what: what.to_string(),
                status: out.status.to_string(),
                stderr: crate::sanitize::line(String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// True once process `pid` has exited (gone, or a zombie nobody reaped yet).
    fn exited(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state follows the parenthesised command name.
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn a_helper_that_hangs_is_killed_at_the_timeout_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // Writes its pid, then never answers.
        let script = format!("echo $$ > {}; exec sleep 1000", pid_file.display());
        let helper = Helper::new("sh", Duration::from_millis(300), "the tmux command timeout");
        let started = Instant::now();
        let err = helper.run(&["-c", &script], "split-window").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "returned at the timeout");
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "sh split-window did not finish within 300ms (the tmux command timeout); it was killed"
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        // Killed with SIGKILL at the drop: gone within moments (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !exited(&pid) {
            assert!(Instant::now() < deadline, "the hung helper {pid} was not killed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[tokio::test]
    async fn a_refusal_and_a_missing_program_are_typed() {
        let helper = Helper::new("sh", Duration::from_secs(30), "t");
        let err = helper.run(&["-c", "echo 'no space for new pane' >&2; exit 1"], "split-window").await.unwrap_err();
        assert!(matches!(err, CommandError::Failed { ref stderr, .. } if stderr == "no space for new pane"), "{err}");
        assert_eq!(helper.run(&["-c", "echo hi"], "echo").await.unwrap(), "hi\n");
        let missing = Helper::new("/nonexistent/tmux", Duration::from_secs(30), "t");
        let err = missing.run(&["-V"], "-V").await.unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }), "{err}");
    }
}
