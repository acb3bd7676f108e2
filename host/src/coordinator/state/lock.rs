//! One coordinator per team: an exclusive `flock` on `<state>/<team>/lock`,
//! held for the coordinator's lifetime ([`TeamLock`]). The kernel drops it
//! when the process ends, however it ends (`kill -9` included), so whether
//! a team is running is whether its lock is held, on Linux and macOS alike,
//! with no process ids involved.
//!
//! `status` asks with a shared lock that it releases at once; a `run` or
//! `resume` that starts in that same instant is refused and can be retried.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use super::{StateDir, StateError};

/// The lock file's name in the team's state directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock of a team; dropping it releases the team.
#[derive(Debug)]
pub struct TeamLock {
    _file: File,
    path: PathBuf,
}

impl TeamLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl StateDir {
    /// Takes the team's lock, or fails naming the team and the lock file if
    /// another coordinator holds it.
    pub fn lock(&self) -> Result<TeamLock, StateError> {
        let path = self.path().join(LOCK_FILE);
        let io = |source| StateError::Io { path: path.clone(), source };
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(TeamLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(StateError::Locked { team: self.team(), path }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// True if a coordinator holds the team's lock right now.
    pub fn is_running(&self) -> Result<bool, StateError> {
        let path = self.path().join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(source)) => Err(StateError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_coordinator_is_refused_and_the_team_is_free_once_the_first_lets_go() {
        let base = tempfile::tempdir().unwrap();
        let state = StateDir::create(base.path(), "t").unwrap();
        assert!(!state.is_running().unwrap(), "never run");
        let held = state.lock().unwrap();
        assert!(state.is_running().unwrap());
        // Another open file description, as another process would have.
        let e = StateDir::create(base.path(), "t").unwrap().lock().unwrap_err().to_string();
        assert!(e.contains("team `t`") && e.contains(&held.path().display().to_string()), "{e}");
        assert!(state.is_running().unwrap(), "a refused coordinator does not release it");
        drop(held);
        assert!(!state.is_running().unwrap(), "the holder is gone");
        state.lock().unwrap();
    }
}
