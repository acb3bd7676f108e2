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
//! Model calls (the guests' `llm` import) need a `[models]` table of
//! aliases and, per teammate (and planner), the aliases it may use:
//!
//! ```toml
//! [models.fast]                    # the alias guests name
//! provider = "anthropic"           # anthropic | openai | scripted
//! model = "claude-haiku-4-5"
//! key_env = "ANTHROPIC_API_KEY"    # or key_file = "secrets/key" (never both)
//! base_url = "https://api.anthropic.com"   # optional
//! max_output_tokens = 1024         # optional
//! price = { input_per_mtok = 1.0, output_per_mtok = 5.0 }  # optional
//!
//! [llm]                            # optional, team-wide
//! budget = { tokens = 2000000, calls = 500, usd = 10.0 }
//! concurrency = 4                  # calls in flight per provider endpoint
//! call_timeout = "10m"
//! max_retries = 4
//!
//! [[teammate]]
//! name = "agent"
//! plugin = "agent.wasm"
//! models = ["fast"]                # allow-list; the first is the default
//! budget = { tokens = 200000, calls = 50 }
//! model = "fast"                   # agents: each task's alias, turn limit and
//! max_turns = 30                   # temperature, unless the task's `options:`
//! temperature = 0.2                # line sets them
//! ```
//!
//! A `scripted` alias (responses listed in a JSON file, `script = "..."`,
//! for tests and offline examples) is never a real model. Keys are read
//! only by [`Loaded::llm_config`], in the coordinator, into a
//! [`Secret`](crate::llm::Secret).
//!
//! Errors point at the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
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
    /// What the team is to achieve, in free text: the `[planner]` (a lead,
    /// world `lead`) plans the tasks from it with a model, beside any
    /// tasks listed here.
    #[serde(default)]
    pub goal: Option<String>,
    /// Model aliases teammates may name.
    #[serde(default)]
    pub models: BTreeMap<String, Spanned<ModelEntry>>,
    /// Team-wide model call settings.
    #[serde(default)]
    pub llm: Option<Spanned<LlmEntry>>,
    /// What a teammate's request for a file its task does not own gets:
    /// `deny` (the default), `grant-unowned` or `ask`.
    #[serde(default)]
    pub ownership_requests: crate::coordinator::steer::RequestPolicy,
    /// How long an `ask` request waits for a person before it is denied
    /// (default [`crate::coordinator::steer::DEFAULT_ASK_TIMEOUT`]).
    #[serde(default, with = "humantime_serde")]
    pub ask_timeout: Option<std::time::Duration>,
}

/// One model alias of `[models]`. It names where its key is (a variable or
/// a file), never the key itself, so it can be saved with a run's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// `anthropic`, `openai` (any OpenAI-compatible server) or `scripted`.
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// Endpoint; the provider's public API when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// A file holding the key (relative to the team file).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Largest output a call may ask for (and the default).
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// US dollars per million tokens, for the estimated cost and usd budgets.
    #[serde(default)]
    pub price: Option<crate::llm::Price>,
    /// Anthropic only: the pinned `anthropic-version`.
    #[serde(default)]
    pub anthropic_version: Option<crate::llm::AnthropicVersion>,
    /// Scripted only: the JSON file of responses (relative to the team file).
    #[serde(default)]
    pub script: Option<PathBuf>,
}

/// `[llm]`: team-wide model call settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmEntry {
    /// The whole team's budget.
    #[serde(default)]
    pub budget: Option<BudgetEntry>,
    /// Calls in flight per provider endpoint (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Longest a call may take, retries included (default 10 minutes).
    #[serde(default, with = "humantime_serde")]
    pub call_timeout: Option<Duration>,
    /// Retries of a failed call (429, 529, 5xx, dropped connections).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// A budget: `{ tokens = .., calls = .., usd = .. }`, each optional.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetEntry {
    /// Input + output tokens.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Calls sent.
    #[serde(default)]
    pub calls: Option<u64>,
    /// Estimated US dollars.
    #[serde(default)]
    pub usd: Option<f64>,
}

impl From<BudgetEntry> for crate::llm::Budget {
    fn from(b: BudgetEntry) -> Self {
        crate::llm::Budget { tokens: b.tokens, calls: b.calls, usd: b.usd }
    }
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
    /// Model aliases it may use; the first is its default.
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
    /// Its model budget.
    #[serde(default)]
    pub budget: Option<BudgetEntry>,
    /// A lead only: how many times a rejected plan goes back to it, with
    /// every problem listed, before the run stops (default 3).
    #[serde(default)]
    pub replan_rounds: Option<u32>,
    /// A lead only: how many KiB of files it may read while planning
    /// (with the team's `read = "root"`; default 256).
    #[serde(default)]
    pub read_kib: Option<u32>,
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
    /// Model aliases each instance may use; the first is its default.
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
    /// Each instance's model budget.
    #[serde(default)]
    pub budget: Option<BudgetEntry>,
    /// For agents: the model alias each task uses unless its options line
    /// names one (one of `models`).
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    /// For agents: the turn limit of each task unless its options line
    /// sets `max-turns`.
    #[serde(default)]
    pub max_turns: Option<Spanned<u32>>,
    /// For agents: the sampling temperature (0 to 2) unless a task's
    /// options line sets `temperature`.
    #[serde(default)]
    pub temperature: Option<Spanned<f64>>,
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

/// Where model answers come from in a run (`--llm-record`, `--llm-replay`).
pub use crate::llm::Mode as LlmMode;

impl Loaded {
    /// True if the team file sets up model calls (`[models]`).
    pub fn has_models(&self) -> bool {
        !self.team.models.is_empty()
    }

    /// The model service's configuration: aliases with their keys, each
    /// teammate instance's (and the planner's) allow-list and budget, the
    /// team's budget and limits. Keys are read here (from `key_env` or
    /// `key_file`) except in replay mode, which needs none. Unknown
    /// aliases, missing key variables and bad settings are errors with the
    /// line. `None` when the file has no `[models]` and no teammate names one.
    pub fn llm_config(&self, mode: LlmMode) -> Result<Option<crate::llm::LlmConfig>, ConfigError> {
        let Some(settings) = self.model_settings()? else {
            return Ok(None);
        };
        let config = settings.config(mode).map_err(|e| {
            let at = e.alias.as_ref().and_then(|a| self.team.models.get(a)).map(|m| m.span().start);
            self.error_at(at, e.message)
        })?;
        // The service's own checks (a price for usd budgets, URLs, the
        // scripted files), located at `[llm]` or the first alias.
        let llm = self.team.llm.as_ref();
        let at = llm.map(|l| l.span().start).or_else(|| self.team.models.values().next().map(|m| m.span().start));
        crate::llm::Models::check(&config).map_err(|e| self.error_at(at, e.to_string()))?;
        Ok(Some(config))
    }

    /// The team file's model settings without keys (what a run's state
    /// keeps for `resume`): its aliases with absolute paths, each teammate
    /// instance's (and the planner's) allow-list and budget, `[llm]`. An
    /// alias a teammate names that `[models]` does not define is an error
    /// with the line. `None` when the file has no `[models]` and no
    /// teammate names one.
    pub fn model_settings(&self) -> Result<Option<super::model_settings::ModelSettings>, ConfigError> {
        use super::model_settings::{Allowed, ModelSettings};
        let team = &self.team;
        let names_models = team.teammates.iter().any(|t| !t.get_ref().models.is_empty())
            || team.planner.as_ref().is_some_and(|p| !p.get_ref().models.is_empty());
        if team.models.is_empty() && !names_models {
            return Ok(None);
        }
        let aliases = team
            .models
            .iter()
            .map(|(name, entry)| {
                let mut m = entry.get_ref().clone();
                m.key_file = m.key_file.map(|f| ModelSettings::absolute(&self.dir, &f));
                m.script = m.script.map(|f| ModelSettings::absolute(&self.dir, &f));
                (name.clone(), m)
            })
            .collect();
        let allow_list = |list: &[Spanned<String>], who: &str| -> Result<Vec<String>, ConfigError> {
            list.iter()
                .map(|a| {
                    if team.models.contains_key(a.get_ref()) {
                        Ok(a.get_ref().clone())
                    } else {
                        let known: Vec<&str> = team.models.keys().map(String::as_str).collect();
                        Err(self.error_at(
                            Some(a.span().start),
                            format!(
                                "{who} names model alias {:?}, which [models] does not define (defined: {})",
                                a.get_ref(),
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ),
                        ))
                    }
                })
                .collect()
        };
        let mut teammates = BTreeMap::new();
        for entry in &team.teammates {
            let t = entry.get_ref();
            let allow = allow_list(&t.models, &format!("teammate `{}`", t.name))?;
            if allow.is_empty() {
                continue;
            }
            for k in 1..=t.instances {
                let budget = t.budget.map(Into::into).unwrap_or_default();
                teammates.insert(format!("{}-{k}", t.name), Allowed { allow: allow.clone(), budget });
            }
        }
        if let Some(p) = &team.planner {
            let allow = allow_list(&p.get_ref().models, "[planner]")?;
            if !allow.is_empty() {
                let id = crate::sandbox::planner::PLANNER_ID.to_string();
                if teammates.contains_key(&id) {
                    return Err(self.error_at(
                        Some(p.span().start),
                        format!("a teammate instance is named `{id}`, the id the planner's model calls use"),
                    ));
                }
                let budget = p.get_ref().budget.map(Into::into).unwrap_or_default();
                teammates.insert(id, Allowed { allow, budget });
            }
        }
        let llm = team.llm.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default();
        Ok(Some(ModelSettings { aliases, teammates, llm }))
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

    fn models_team(models: &str, teammate_extra: &str) -> String {
        format!(
            "name = \"t\"\n{models}\n[[teammate]]\nname = \"a\"\nplugin = \"a.wasm\"\ninstances = 2\n{teammate_extra}"
        )
    }

    #[test]
    fn an_unknown_alias_is_an_error_at_its_line() {
        let l = parse(&models_team(
            "[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\n",
            "models = [\n  \"fast\",\n  \"slow\",\n]\n",
        ))
        .unwrap();
        let e = l.llm_config(LlmMode::Live).unwrap_err();
        assert_eq!(e.line, Some(12), "{e}");
        assert!(e.message.contains("\"slow\"") && e.message.contains("defined: fast"), "{e}");
    }

    #[test]
    fn a_missing_key_variable_is_an_error_at_the_alias_unless_replaying() {
        let var = "SWARM_TEST_KEY_THAT_IS_NEVER_SET";
        let l = parse(&models_team(
            &format!("[models.fast]\nprovider = \"anthropic\"\nmodel = \"m\"\nkey_env = \"{var}\"\n"),
            "models = [\"fast\"]\n",
        ))
        .unwrap();
        let e = l.llm_config(LlmMode::Live).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains(var) && e.message.contains("not set"), "{e}");
        assert!(l.llm_config(LlmMode::Replay("c".into())).unwrap().is_some());
    }

    #[test]
    fn unknown_fields_of_an_alias_or_a_budget_name_the_field_and_line() {
        let e = parse(&models_team("[models.fast]\nprovider = \"openai\"\nmodle = \"m\"\n", "")).unwrap_err();
        assert!(e.message.contains("modle") && e.line == Some(4), "{e}");
        let e = parse(&models_team("", "budget = { tokns = 3 }\n")).unwrap_err();
        assert!(e.message.contains("tokns") && e.line == Some(7), "{e}");
    }

    #[test]
    fn each_instance_gets_the_allow_list_default_and_budget_and_keys_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "sk-from-file\n").unwrap();
        let src = models_team(
            "[models.fast]\nprovider = \"openai\"\nmodel = \"m\"\nkey_file = \"key\"\n\
             [models.big]\nprovider = \"openai\"\nmodel = \"n\"\n[llm]\nconcurrency = 9\ncall_timeout = \"3s\"\n\
             budget = { calls = 7 }\n",
            "models = [\"big\", \"fast\"]\nbudget = { tokens = 100 }\n",
        );
        let l = Loaded::parse(&dir.path().join("team.toml"), src).unwrap();
        let c = l.llm_config(LlmMode::Live).unwrap().unwrap();
        assert_eq!(c.aliases["fast"].key.as_ref().map(|k| k.expose().to_string()), Some("sk-from-file".into()));
        assert!(c.aliases["big"].key.is_none());
        for id in ["a-1", "a-2"] {
            let t = &c.teammates[id];
            assert_eq!((t.allow.clone(), t.default.as_deref()), (vec!["big".into(), "fast".into()], Some("big")));
            assert_eq!(t.budget.tokens, Some(100));
        }
        assert_eq!(c.teammates.len(), 2);
        assert_eq!((c.limits.concurrency_per_provider, c.limits.timeout), (9, Duration::from_secs(3)));
        assert_eq!(c.team_budget.calls, Some(7));
    }

    #[test]
    fn a_team_file_without_models_has_no_model_config() {
        assert!(parse(&models_team("", "")).unwrap().llm_config(LlmMode::Live).unwrap().is_none());
    }
}
