//! A team's model settings without its keys: the `[models]` aliases (each
//! naming where its key is, a variable or a file, never the key), who may
//! use which alias with what budget, and the `[llm]` settings.
//!
//! [`Loaded::llm_config`](super::Loaded::llm_config) builds them from the
//! team file; the state directory keeps them (`models.json`), so that
//! `swarm-host resume` calls the same models. Keys are read only when a
//! run (fresh or resumed) starts, by [`ModelSettings::config`], from the
//! environment or key file of that moment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::{LlmEntry, ModelEntry};
use crate::llm::{AliasConfig, Budget, CallLimits, LlmConfig, Mode, ProviderKind, Secret, TeammateModels};

/// What one teammate instance (or the planner) may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allowed {
    /// Aliases it may name; the first is its default.
    pub allow: Vec<String>,
    /// Its own budget.
    #[serde(default)]
    pub budget: Budget,
}

/// The model settings of a run, without keys. Paths (`key_file`,
/// `script`) are absolute, so they mean the same from any working
/// directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSettings {
    /// Aliases by name.
    pub aliases: BTreeMap<String, ModelEntry>,
    /// Teammate instances (and the planner) by id.
    pub teammates: BTreeMap<String, Allowed>,
    /// Team-wide settings.
    #[serde(default)]
    pub llm: LlmEntry,
}

/// Why settings cannot become a configuration; `alias` names the alias
/// at fault, when one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The alias at fault.
    pub alias: Option<String>,
    /// What is wrong, naming the setting.
    pub message: String,
}

/// An alias is 1 to 64 letters, digits, `-`, `_` or `.`.
fn valid_alias(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The key of an alias, read now: from its variable or its file; `None`
/// for an alias that names neither (a local server that wants none).
fn read_key(m: &ModelEntry) -> Result<Option<Secret>, String> {
    match (&m.key_env, &m.key_file) {
        (Some(_), Some(_)) => Err("set key_env or key_file, not both".into()),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
            _ => Err(format!("key_env = {var:?}, but the environment variable {var} is not set (or empty)")),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
            Ok(_) => Err(format!("key_file {} is empty", path.display())),
            Err(e) => Err(format!("cannot read key_file {}: {e}", path.display())),
        },
        (None, None) => Ok(None),
    }
}

fn provider_of(m: &ModelEntry) -> Result<ProviderKind, String> {
    match (m.provider.as_str(), &m.script) {
        ("anthropic", None) => Ok(ProviderKind::Anthropic),
        ("openai", None) => Ok(ProviderKind::OpenAi),
        ("scripted", Some(script)) => Ok(ProviderKind::Scripted(script.clone())),
        ("scripted", None) => Err("provider \"scripted\" needs script = \"<file>.json\"".into()),
        ("anthropic" | "openai", Some(_)) => Err("script is only for provider \"scripted\"".into()),
        (other, _) => Err(format!(
            "unknown provider {other:?}: use \"anthropic\", \"openai\" (any OpenAI-compatible server) or \"scripted\""
        )),
    }
}

impl ModelSettings {
    /// The model service's configuration in `mode`: every alias with its
    /// key read now (except in replay mode, which needs none).
    pub fn config(&self, mode: Mode) -> Result<LlmConfig, SettingsError> {
        let replaying = matches!(mode, Mode::Replay(_));
        let mut aliases = BTreeMap::new();
        for (name, m) in &self.aliases {
            let err =
                |msg: String| SettingsError { alias: Some(name.clone()), message: format!("[models.{name}]: {msg}") };
            if !valid_alias(name) {
                return Err(err("an alias is 1 to 64 letters, digits, '-', '_' or '.'".into()));
            }
            let provider = provider_of(m).map_err(err)?;
            let key = if replaying && !(m.key_env.is_some() && m.key_file.is_some()) {
                None
            } else {
                read_key(m).map_err(err)?
            };
            let mut alias = AliasConfig::new(provider, m.model.clone());
            alias.base_url = m.base_url.clone();
            alias.key = key;
            alias.max_output_tokens = m.max_output_tokens;
            alias.price = m.price;
            alias.anthropic_version = m.anthropic_version;
            aliases.insert(name.clone(), alias);
        }
        let teammates = self
            .teammates
            .iter()
            .map(|(id, a)| {
                let models =
                    TeammateModels { allow: a.allow.clone(), default: a.allow.first().cloned(), budget: a.budget };
                (id.clone(), models)
            })
            .collect();
        let mut limits = CallLimits::default();
        if let Some(n) = self.llm.concurrency {
            limits.concurrency_per_provider = n;
        }
        if let Some(t) = self.llm.call_timeout {
            limits.timeout = t;
        }
        if let Some(n) = self.llm.max_retries {
            limits.retry.max_retries = n;
        }
        Ok(LlmConfig {
            aliases,
            teammates,
            team_budget: self.llm.budget.map(Into::into).unwrap_or_default(),
            limits,
            mode,
        })
    }

    /// `path` made absolute against `dir` (as it was, if that fails).
    pub(super) fn absolute(dir: &std::path::Path, path: &std::path::Path) -> PathBuf {
        let joined = dir.join(path);
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key_env: Option<&str>) -> ModelEntry {
        ModelEntry {
            provider: "openai".into(),
            model: "m".into(),
            base_url: Some("http://127.0.0.1:1/v1".into()),
            key_env: key_env.map(Into::into),
            key_file: None,
            max_output_tokens: Some(100),
            price: None,
            anthropic_version: None,
            script: None,
        }
    }

    #[test]
    fn settings_name_where_the_key_is_and_the_key_is_read_when_a_run_starts() {
        let var = "SWARM_TEST_MODEL_SETTINGS_KEY_NEVER_SET";
        let mut settings = ModelSettings {
            aliases: BTreeMap::from([("fast".to_string(), entry(Some(var)))]),
            teammates: BTreeMap::from([(
                "a-1".to_string(),
                Allowed { allow: vec!["fast".into()], budget: Budget { calls: Some(2), ..Budget::default() } },
            )]),
            llm: LlmEntry::default(),
        };
        let e = settings.config(Mode::Live).unwrap_err();
        assert_eq!(e.alias.as_deref(), Some("fast"));
        assert!(e.message.contains(&format!("the environment variable {var} is not set")), "{e:?}");
        assert!(settings.config(Mode::Replay("r".into())).is_ok(), "a replay needs no key");

        // A key file is read when the configuration is made, not before.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let alias = settings.aliases.get_mut("fast").unwrap();
        (alias.key_env, alias.key_file) = (None, Some(file.clone()));
        assert!(settings.config(Mode::Live).unwrap_err().message.contains("cannot read key_file"));
        std::fs::write(&file, "sk-secret-value-42\n").unwrap();
        let config = settings.config(Mode::Live).unwrap();
        assert_eq!(config.aliases["fast"].key.as_ref().map(Secret::expose), Some("sk-secret-value-42"));
        assert_eq!(config.teammates["a-1"].default.as_deref(), Some("fast"));
        assert_eq!(config.teammates["a-1"].budget.calls, Some(2));
        let saved = serde_json::to_string(&settings).unwrap();
        assert!(saved.contains("key_file") && !saved.contains("sk-secret-value-42"), "{saved}");
    }
}
