//! The team file (`team.toml`): what a user writes to describe a run.
//!
//! ```toml
//! name = "self-audit"
//! root = ".."                      # relative to this file
//! read = "root"                    # or "owned"
//! exclude = ["target/**"]
//! max_attempts = 2
//!
//! [limits]                         # team-wide; any field of `Limits`
//! task_deadline = "30s"
//!
//! [[teammate]]
//! name = "todo-scan"
//! plugin = "../target/wasm32-wasip2/release/todo_scan.wasm"
//! instances = 2
//! limits = { memory_mib = 64 }     # per teammate, over the team-wide ones
//!
//! [[task]]
//! id = "host"
//! subject = "Scan the host crate"
//! owns = ["host/**/*.rs"]
//! owner = "todo-scan"              # optional: group or instance id
//! blocked_by = []
//! deadline = "20s"                 # optional
//! ```
//!
//! Errors point at the file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::sandbox::{Limits, ReadScope};

/// Largest team file read: a plan of [`super::plan::MAX_TASKS`] tasks with
/// long descriptions fits well within it.
pub const MAX_TEAM_FILE_BYTES: u64 = 16 << 20;

/// A parsed team file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFile {
    /// Team name (also names the state directory).
    pub name: String,
    /// Workspace root, relative to the team file.
    #[serde(default = "dot")]
    pub root: PathBuf,
    /// What teammates may read.
    #[serde(default)]
    pub read: ReadScope,
    /// Paths (globs) on the built-in read deny list that `read = "root"`
    /// may read all the same.
    #[serde(default)]
    pub read_allow: Vec<String>,
    /// Globs (relative to root) never owned by any task.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Attempts per task before it fails for good.
    #[serde(default = "two")]
    pub max_attempts: u32,
    /// Longest time the team may run before it is stopped gracefully (the
    /// same as `swarm-host run --timeout`, which overrides it).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<std::time::Duration>,
    /// Team-wide limits.
    #[serde(default)]
    pub limits: Limits,
    /// Teammate groups.
    #[serde(default, rename = "teammate")]
    pub teammates: Vec<Spanned<TeammateEntry>>,
    /// Tasks.
    #[serde(default, rename = "task")]
    pub tasks: Vec<Spanned<TaskEntry>>,
    /// A planner plugin that adds tasks by splitting the file tree.
    #[serde(default)]
    pub planner: Option<Spanned<PlannerEntry>>,
}

/// A planner plugin (world `planner`): splits the files matching `owns`
/// into at most `groups` tasks before anything spawns, and writes the
/// closing synthesis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerEntry {
    /// Path to the planner component, relative to the team file.
    pub plugin: PathBuf,
    /// How many tasks to ask for; defaults to the number of teammates.
    #[serde(default)]
    pub groups: Option<u32>,
    /// Subject template (the default planner fills `{n}`, `{first}`, `{last}`).
    #[serde(default)]
    pub subject: String,
    /// Globs (relative to root) of the files to split; defaults to all.
    #[serde(default)]
    pub owns: Vec<String>,
    /// Owner of every planned task that names none.
    #[serde(default)]
    pub owner: Option<String>,
}

fn dot() -> PathBuf {
    PathBuf::from(".")
}
fn two() -> u32 {
    2
}
fn one() -> u32 {
    1
}

/// A teammate group: one plugin, N instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeammateEntry {
    /// Group name; instances are `<name>-1`, `<name>-2`, ...
    pub name: String,
    /// Path to the plugin component, relative to the team file.
    pub plugin: PathBuf,
    /// How many instances.
    #[serde(default = "one")]
    pub instances: u32,
    /// Team view colour; defaults to a palette colour.
    #[serde(default)]
    pub color: Option<String>,
    /// Limits over the team-wide ones.
    #[serde(default)]
    pub limits: Option<Spanned<toml::Table>>,
}

/// A task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    /// Stable id; defaults to `t<n>`.
    #[serde(default)]
    pub id: Option<String>,
    /// One line.
    pub subject: String,
    /// Longer instructions.
    #[serde(default)]
    pub description: String,
    /// Globs (relative to root) of the files the task owns.
    #[serde(default)]
    pub owns: Vec<String>,
    /// Teammate group or instance allowed to run it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Tasks that must complete first.
    #[serde(default)]
    pub blocked_by: Vec<String>,
    /// Deadline of one attempt.
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// Attempts before failing for good; defaults to the team's.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// A team file error, located.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The team file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The sandbox limit that stopped a planner plugin, when one did (the
    /// exit code is then 4, decided from this, not from the message).
    pub limit: Option<crate::model::LimitKind>,
}

/// A loaded team file with what is needed to locate errors in it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parsed file.
    pub team: TeamFile,
    /// Its path.
    pub path: PathBuf,
    /// Its directory (relative paths in it resolve against this).
    pub dir: PathBuf,
    source: String,
}

impl Loaded {
    /// Reads and parses `path`.
    /// Reads at most [`MAX_TEAM_FILE_BYTES`] of it: a larger file is refused
    /// before it is parsed.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let error = |message: String| ConfigError { file: path.to_path_buf(), line: None, message, limit: None };
        let file = std::fs::File::open(path).map_err(|e| error(format!("cannot read team file: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_TEAM_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| error(format!("cannot read team file: {e}")))?;
        if bytes.len() as u64 > MAX_TEAM_FILE_BYTES {
            return Err(error(format!(
                "the team file is over {MAX_TEAM_FILE_BYTES} bytes (max_team_file_bytes = {} MiB)",
                MAX_TEAM_FILE_BYTES >> 20
            )));
        }
        let source = String::from_utf8(bytes).map_err(|e| error(format!("cannot read team file: not UTF-8: {e}")))?;
        Self::parse(path, source)
    }

    /// Parses `source` as if read from `path`.
    pub fn parse(path: &Path, source: String) -> Result<Self, ConfigError> {
        let team: TeamFile = toml::from_str(&source).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(&source, s.start)),
            message: e.message().to_string(),
            limit: None,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        Ok(Self { team, path: path.to_path_buf(), dir, source })
    }

    /// An error at byte offset `at` of the file.
    pub fn error_at(&self, at: Option<usize>, message: impl Into<String>) -> ConfigError {
        let line = at.map(|a| line_of(&self.source, a));
        ConfigError { file: self.path.clone(), line, message: message.into(), limit: None }
    }

    /// The limits of a teammate group: its own table over the team-wide ones.
    pub fn limits_of(&self, entry: &Spanned<TeammateEntry>) -> Result<Limits, ConfigError> {
        let Some(own) = &entry.get_ref().limits else {
            return Ok(self.team.limits.clone());
        };
        let mut merged = toml::Table::try_from(&self.team.limits).map_err(|e| self.error_at(None, e.to_string()))?;
        merged.extend(own.get_ref().clone());
        Limits::deserialize(merged).map_err(|e| {
            self.error_at(
                Some(own.span().start),
                format!("limits of teammate `{}`: {}", entry.get_ref().name, e.message()),
            )
        })
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Loaded, ConfigError> {
        Loaded::parse(Path::new("team.toml"), s.to_string())
    }

    #[test]
    fn errors_point_at_the_line() {
        let e = parse("name = \"t\"\n\n[[task]]\nsubject = \"x\"\nowns = 3\n").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().starts_with("team.toml:5: "), "{e}");
        let e = parse("name = \"t\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn teammate_limits_override_team_limits() {
        let l = parse(
            "name = \"t\"\n[limits]\nmemory_mib = 8\ninbox_len = 3\n[[teammate]]\nname = \"a\"\nplugin = \"a.wasm\"\nlimits = { memory_mib = 4 }\n",
        )
        .unwrap();
        let limits = l.limits_of(&l.team.teammates[0]).unwrap();
        assert_eq!((limits.memory_mib, limits.inbox_len), (4, 3));
    }

    #[test]
    fn bad_teammate_limits_name_teammate_and_line() {
        let l = parse("name = \"t\"\n[[teammate]]\nname = \"a\"\nplugin = \"a.wasm\"\nlimits = { memroy_mib = 4 }\n")
            .unwrap();
        let e = l.limits_of(&l.team.teammates[0]).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("teammate `a`") && e.message.contains("memroy_mib"), "{e}");
    }
}
