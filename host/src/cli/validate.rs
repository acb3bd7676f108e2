//! `swarm-host validate <team.toml>`: everything `run` checks before it
//! spawns a teammate, without running the team. The plan (names, owners,
//! dependencies, cycles, paths, overlapping ownership, the plan limits, and
//! the planner's tasks), then every plugin compiled and linked against its
//! WIT world. Every problem is listed with its file and line, not just the
//! first, and so is every plan warning (a pattern that matches no file yet,
//! two tasks that could create one new file, a name that is not UTF-8).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::{CacheArgs, CliResult, EXIT_CONFIG, EXIT_OK, config_error};
use crate::coordinator::plan::build_with_planner;
use crate::coordinator::{ConfigError, Loaded, Plan};
use crate::sandbox::Limits;
use crate::sandbox::planner::Planner;

/// One problem, located.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// The team file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// One plugin and whether it fits its world.
#[derive(Debug, Serialize)]
pub struct PluginCheck {
    /// The plugin path, as resolved from the team file.
    pub path: PathBuf,
    /// `teammate`, `planner` or `lead`.
    pub world: &'static str,
    /// Teammate groups (or `[planner]`) using it.
    pub used_by: Vec<String>,
    /// Why it does not load, if it does not.
    pub error: Option<String>,
}

/// The outcome of `validate`.
#[derive(Debug, Serialize)]
pub struct Validation {
    /// Format version.
    pub v: u32,
    /// The team file.
    pub file: PathBuf,
    /// True if there is no problem.
    pub valid: bool,
    /// Every problem.
    pub problems: Vec<Problem>,
    /// Non-fatal observations.
    pub warnings: Vec<String>,
    /// Every plugin checked.
    pub plugins: Vec<PluginCheck>,
    /// The validated plan, when there is one.
    pub plan: Option<Plan>,
}

/// Collects problems without repeating one found by two checks.
#[derive(Default)]
struct Problems {
    seen: BTreeSet<String>,
    list: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, e: ConfigError) {
        if self.seen.insert(e.to_string()) {
            self.list.push(Problem { file: e.file, line: e.line, message: e.message });
        }
    }
}

/// Checks a team file and its plugins; see the module doc.
pub async fn check(team: &Path, cache: &CacheArgs) -> Validation {
    let mut problems = Problems::default();
    let loaded = match Loaded::read(team) {
        Ok(l) => l,
        Err(e) => {
            problems.add(e);
            return Validation {
                v: 1,
                file: team.to_path_buf(),
                valid: false,
                problems: problems.list,
                warnings: Vec::new(),
                plugins: Vec::new(),
                plan: None,
            };
        }
    };
    let cache_dir = cache.dir();
    let mut plan = Plan::build(&loaded).map_err(|e| e.0.into_iter().for_each(|p| problems.add(p))).ok();
    // `[models]`: aliases, allow-lists, budgets, and that every key can be read.
    if let Err(e) = loaded.llm_config(crate::llm::Mode::Live) {
        problems.add(e);
    }
    let mut plugins = Vec::new();

    if let Some(entry) = &loaded.team.planner {
        let path = loaded.dir.join(&entry.get_ref().plugin);
        let (owned, limits, dir) = (path.clone(), loaded.team.limits.clone(), cache_dir.clone());
        let load = tokio::task::spawn_blocking(move || Planner::load_with_cache(&owned, &limits, dir.as_deref()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let is_lead = load.as_ref().is_ok_and(Planner::is_lead);
        let load = load.map(drop);
        if let Err(why) = &load {
            problems.add(loaded.error_at(Some(entry.span().start), why.clone()));
        } else if loaded.team.goal.is_some() {
            // A goal is planned by a model: validating spends no tokens, so
            // the lead is checked to be a lead, and its plan is left to
            // `swarm-host plan`.
            if !is_lead {
                problems.add(loaded.error_at(
                    Some(entry.span().start),
                    "[planner]: the team has a goal, so its plugin must be a lead (world `lead`, e.g. plugins/lead), not a planner",
                ));
            }
        } else if is_lead {
            problems.add(loaded.error_at(
                Some(entry.span().start),
                "[planner]: the plugin is a lead (world `lead`), which plans from a goal: add `goal = \"...\"` to the team file",
            ));
        } else {
            // Run the planner as `run` would, and validate its tasks with the
            // team file's; without model access: validating spends no tokens.
            match build_with_planner(&loaded, cache_dir.as_deref(), None).await {
                Ok((with_planned, _)) => plan = Some(with_planned),
                Err(e) => {
                    plan = None;
                    e.0.into_iter().for_each(|p| problems.add(p));
                }
            }
        }
        let world = if is_lead { "lead" } else { "planner" };
        plugins.push(PluginCheck { path, world, used_by: vec!["[planner]".into()], error: load.err() });
    }

    let sandbox = Arc::new(cache.sandbox());
    for entry in &loaded.team.teammates {
        let t = entry.get_ref();
        let path = loaded.dir.join(&t.plugin);
        let limits = loaded.limits_of(entry).unwrap_or_else(|_| Limits::default());
        if let Some(known) = plugins.iter_mut().find(|p| p.path == path && p.world == "teammate") {
            known.used_by.push(t.name.clone());
            continue;
        }
        let (sb, owned) = (sandbox.clone(), path.clone());
        let error = match tokio::task::spawn_blocking(move || sb.load(&owned, &limits).map(drop)).await {
            Ok(loaded) => loaded.err().map(|e| e.to_string()),
            Err(e) => Some(format!("plugin {} could not be checked: {e}", path.display())),
        };
        if let Some(why) = &error {
            problems.add(loaded.error_at(Some(entry.span().start), format!("teammate `{}`: {why}", t.name)));
        }
        plugins.push(PluginCheck { path, world: "teammate", used_by: vec![t.name.clone()], error });
    }

    let warnings = plan.as_ref().map(|p| p.warnings.clone()).unwrap_or_default();
    let valid = problems.list.is_empty();
    Validation {
        v: 1,
        file: team.to_path_buf(),
        valid,
        problems: problems.list,
        warnings,
        plugins,
        plan: if valid { plan } else { None },
    }
}

/// `swarm-host validate <team.toml> [--json]`.
pub async fn validate(team: &Path, json: bool, cache: &CacheArgs) -> CliResult {
    let v = check(team, cache).await;
    let code = if v.valid { EXIT_OK } else { EXIT_CONFIG };
    if json {
        println!("{}", serde_json::to_string_pretty(&v).map_err(config_error)?);
        return Ok(code);
    }
    let s = crate::sanitize::line;
    if let Some(plan) = &v.plan {
        let owned: usize = plan.tasks.iter().map(|t| t.owned_files.len()).sum();
        println!(
            "{}: team {} — {} task(s), {} teammate(s), {owned} owned file(s)",
            team.display(),
            s(&plan.team),
            plan.tasks.len(),
            plan.teammates.len()
        );
    }
    for p in &v.plugins {
        let fit = match &p.error {
            None => format!("fits the {} world", p.world),
            Some(_) => format!("does NOT fit the {} world", p.world),
        };
        println!("  plugin {} ({}): {fit}", p.path.display(), s(&p.used_by.join(", ")));
    }
    for w in &v.warnings {
        println!("  warning: {}", s(w));
    }
    if v.valid {
        println!("{}: valid", team.display());
        return Ok(EXIT_OK);
    }
    let n = v.problems.len();
    let lines: Vec<String> = v
        .problems
        .iter()
        .map(|p| {
            let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            format!("  {}{at}: {}", p.file.display(), p.message)
        })
        .collect();
    Err((
        EXIT_CONFIG,
        format!("{} has {n} problem{}:\n{}", team.display(), if n == 1 { "" } else { "s" }, lines.join("\n")),
    ))
}
