//! Plugin pins: `team.json` keeps every plugin's absolute path and sha256,
//! so that `resume` runs the plugins the run started with, from any working
//! directory, and refuses a plugin that changed since
//! ([`StateError::PluginChanged`]) unless told to run it anyway.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{StateDir, StateError};
use crate::coordinator::Plan;

/// One plugin as the run started with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginPin {
    /// Absolute path.
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub sha256: String,
}

/// `team.json`: the plan, with a pin per teammate group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The plan, its plugin paths absolute.
    #[serde(flatten)]
    pub plan: Plan,
    /// Teammate group → its plugin; empty in a `team.json` written before
    /// plugins were pinned.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginPin>,
}

impl SavedPlan {
    /// Pins the plugins of `plan`: the sha256 of the bytes this process
    /// loaded from each (see [`crate::sandbox::loaded_digest`]), else of the
    /// file, read once.
    pub fn of(plan: &Plan) -> Result<Self, StateError> {
        let mut plan = plan.clone();
        let mut plugins = BTreeMap::new();
        for t in &mut plan.teammates {
            t.plugin =
                std::path::absolute(&t.plugin).map_err(|source| StateError::Io { path: t.plugin.clone(), source })?;
            if !plugins.contains_key(&t.group) {
                let sha256 = match crate::sandbox::loaded_digest(&t.plugin) {
                    Some(digest) => hex(&digest),
                    None => sha256_of(&t.plugin)?,
                };
                plugins.insert(t.group.clone(), PluginPin { path: t.plugin.clone(), sha256 });
            }
        }
        Ok(Self { plan, plugins })
    }
}

/// The sha256 of a file, hex.
pub fn sha256_of(path: &Path) -> Result<String, StateError> {
    let io = |source| StateError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl StateDir {
    /// Checks every pinned plugin against its file now. A changed one is an
    /// error naming it, or with `allow_changed` a warning line; so is a
    /// `team.json` without pins (written by an older swarm-host).
    pub fn check_plugins(&self, allow_changed: bool) -> Result<Vec<String>, StateError> {
        let saved: SavedPlan = self.read("team.json", "plan")?;
        if saved.plugins.is_empty() {
            return Ok(vec!["team.json pins no plugin (written by an older swarm-host): plugins not checked".into()]);
        }
        let mut warnings = Vec::new();
        for (group, pin) in saved.plugins {
            let now = sha256_of(&pin.path)?;
            if now != pin.sha256 {
                let e = StateError::PluginChanged { group, path: pin.path, was: pin.sha256, now };
                if !allow_changed {
                    return Err(e);
                }
                warnings.push(format!("{e} (allowed by --allow-changed-plugins)"));
            }
        }
        Ok(warnings)
    }
}
