//! Plan before spawn: turn a team file into the complete, validated plan
//! (teammate instances, tasks with their owned files expanded against the
//! real file tree, dependencies) before anything runs.
//!
//! Validation collects every problem, each naming the offending tasks,
//! teammates or files and the team-file line: duplicate ids, unknown owners
//! and dependencies, dependency cycles, owned paths outside the root, and two
//! tasks owning the same file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::config::{ConfigError, Loaded};
use crate::sandbox::{Limits, ReadScope};
use crate::tasks::TaskSpec;

/// Colours handed out to teammates in order.
pub const PALETTE: &[&str] = &["blue", "green", "magenta", "cyan", "yellow", "red"];

/// Directories never walked when expanding globs.
const ALWAYS_SKIPPED: &[&str] = &[".git", ".swarm"];

/// Most instances one teammate group may ask for.
pub const MAX_INSTANCES: u32 = 10_000;

/// One teammate instance to spawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedTeammate {
    /// Instance id, e.g. `todo-scan-1`.
    pub id: String,
    /// Group (team file teammate name).
    pub group: String,
    /// Team view colour.
    pub color: String,
    /// Plugin path, resolved.
    pub plugin: PathBuf,
    /// Limits in force.
    pub limits: Limits,
}

/// The whole run, validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Team name.
    pub team: String,
    /// Workspace root, resolved.
    pub root: PathBuf,
    /// What teammates may read.
    pub read: ReadScope,
    /// Paths (globs) that `read = "root"` exposes although they are on the
    /// built-in deny list (`.git/`, secrets); empty by default.
    #[serde(default)]
    pub read_allow: Vec<String>,
    /// Globs never owned, read or created by any task.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Team-wide limits.
    pub limits: Limits,
    /// Teammates in spawn order.
    pub teammates: Vec<PlannedTeammate>,
    /// Tasks in plan order.
    pub tasks: Vec<TaskSpec>,
    /// Non-fatal observations (e.g. a task owning no file).
    pub warnings: Vec<String>,
    /// The team file's `timeout` for the whole run, if any.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<std::time::Duration>,
}

/// Everything wrong with a team file, each problem located.
#[derive(Debug, thiserror::Error)]
#[error("the team file has {} problem{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct PlanError(pub Vec<ConfigError>);

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s != crate::mailbox::TEAM_LEAD
}

/// A glob that stays inside the root: relative, no `..`.
fn check_glob(pattern: &str) -> Result<Glob, String> {
    let p = Path::new(pattern);
    if p.is_absolute() || pattern.starts_with('/') {
        return Err(format!("`{pattern}` is absolute; owned paths are relative to the root"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("`{pattern}` leads outside the root (`..`)"));
    }
    GlobBuilder::new(pattern.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))
}

/// Every regular file under `root` not excluded, as `/`-separated relative
/// paths. Symlinks are not followed (and never owned).
pub fn walk_files(root: &Path, exclude: &GlobSet) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let entries = walker.filter_entry(|e| {
        if e.depth() == 0 {
            return true;
        }
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let skipped_dir = e.file_type().is_dir() && ALWAYS_SKIPPED.contains(&e.file_name().to_string_lossy().as_ref());
        !skipped_dir && !exclude.is_match(rel)
    });
    for entry in entries {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
    Ok(out)
}

/// Runs the team file's planner plugin, if any, and validates the whole plan
/// (team-file tasks and planned tasks together) before anything spawns.
/// Returns the loaded planner too, for the closing synthesis.
pub async fn build_with_planner(
    loaded: &Loaded,
    cache_dir: Option<&Path>,
) -> Result<(Plan, Option<crate::sandbox::planner::Planner>), PlanError> {
    use crate::sandbox::planner::{PlanInput, Planner};
    let Some(entry) = &loaded.team.planner else {
        return Plan::build(loaded).map(|p| (p, None));
    };
    let span = entry.span();
    let at = Some(span.start);
    let fail = |message: String| PlanError(vec![loaded.error_at(at, message)]);
    let p = entry.get_ref();
    let root = loaded.dir.join(&loaded.team.root).canonicalize().map_err(|e| fail(format!("root: {e}")))?;
    let mut exclude = GlobSetBuilder::new();
    for pattern in &loaded.team.exclude {
        exclude.add(check_glob(pattern).map_err(|e| fail(format!("exclude: {e}")))?);
    }
    let exclude = exclude.build().map_err(|e| fail(e.to_string()))?;
    let mut wanted = GlobSetBuilder::new();
    for pattern in if p.owns.is_empty() { vec!["**".to_string()] } else { p.owns.clone() } {
        wanted.add(check_glob(&pattern).map_err(|e| fail(format!("planner owns: {e}")))?);
    }
    let wanted = wanted.build().map_err(|e| fail(e.to_string()))?;
    let files: Vec<String> = walk_files(&root, &exclude)
        .map_err(|e| fail(format!("cannot walk root: {e}")))?
        .into_iter()
        .filter(|f| wanted.is_match(f.as_str()))
        .collect();
    let teammates: Vec<String> = loaded.team.teammates.iter().map(|t| t.get_ref().name.clone()).collect();
    let instances: u32 = loaded.team.teammates.iter().map(|t| t.get_ref().instances).sum();
    let input = PlanInput {
        team: loaded.team.name.clone(),
        files,
        groups: p.groups.unwrap_or(instances.max(1)),
        subject: p.subject.clone(),
        teammates,
    };
    let (path, limits, cache) =
        (loaded.dir.join(&p.plugin), loaded.team.limits.clone(), cache_dir.map(Path::to_path_buf));
    let planner = tokio::task::spawn_blocking(move || Planner::load_with_cache(&path, &limits, cache.as_deref()))
        .await
        .map_err(|e| fail(format!("planner load: {e}")))?
        .map_err(|e| fail(e.to_string()))?;
    let planned = planner.plan(input).await.map_err(|e| {
        let limit = e.limit().map(crate::sandbox::LimitHit::kind);
        PlanError(vec![ConfigError { limit, ..loaded.error_at(at, e.to_string()) }])
    })?;
    tracing::info!(tasks = planned.len(), "planner {} planned the work", planner.path().display());
    let mut with_tasks = loaded.clone();
    for t in planned {
        let task = super::config::TaskEntry {
            id: Some(t.id),
            subject: t.subject,
            description: t.description,
            // Planned paths are exact: escape them so they match literally.
            owns: t.owns.iter().map(|f| globset::escape(f)).collect(),
            owner: t.owner.or_else(|| p.owner.clone()),
            blocked_by: t.blocked_by,
            deadline: None,
            max_attempts: None,
        };
        // Problems in planned tasks point at the [planner] table.
        with_tasks.team.tasks.push(toml::Spanned::new(span.clone(), task));
    }
    Plan::build(&with_tasks).map(|plan| (plan, Some(planner)))
}

impl Plan {
    /// Builds and validates the plan of a loaded team file.
    pub fn build(loaded: &Loaded) -> Result<Self, PlanError> {
        let team = &loaded.team;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();

        if !valid_id(&team.name) {
            problems.push(loaded.error_at(None, format!("team name `{}` must be 1-64 of [A-Za-z0-9._-]", team.name)));
        }
        if team.max_attempts == 0 {
            problems.push(loaded.error_at(None, "max_attempts must be at least 1"));
        }
        let root = loaded.dir.join(&team.root);
        let root = match root.canonicalize() {
            Ok(r) if r.is_dir() => r,
            Ok(r) => {
                problems.push(loaded.error_at(None, format!("root {} is not a directory", r.display())));
                r
            }
            Err(e) => {
                problems.push(loaded.error_at(None, format!("root {}: {e}", root.display())));
                root
            }
        };

        // Teammates.
        let mut teammates = Vec::new();
        let mut groups = BTreeSet::new();
        for (gi, entry) in team.teammates.iter().enumerate() {
            let t = entry.get_ref();
            let at = Some(entry.span().start);
            if !valid_id(&t.name) {
                problems
                    .push(loaded.error_at(at, format!("teammate name `{}` must be 1-64 of [A-Za-z0-9._-]", t.name)));
            }
            if !groups.insert(t.name.clone()) {
                problems.push(loaded.error_at(at, format!("teammate `{}` is defined twice", t.name)));
            }
            if t.instances == 0 || t.instances > MAX_INSTANCES {
                problems.push(loaded.error_at(
                    at,
                    format!("teammate `{}`: instances must be 1..={MAX_INSTANCES}, not {}", t.name, t.instances),
                ));
            }
            let limits = match loaded.limits_of(entry) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let plugin = loaded.dir.join(&t.plugin);
            for i in 1..=t.instances.min(MAX_INSTANCES) {
                teammates.push(PlannedTeammate {
                    id: format!("{}-{i}", t.name),
                    group: t.name.clone(),
                    color: t.color.clone().unwrap_or_else(|| PALETTE[(gi + i as usize - 1) % PALETTE.len()].into()),
                    plugin: plugin.clone(),
                    limits: limits.clone(),
                });
            }
        }
        if teammates.is_empty() && !team.tasks.is_empty() {
            problems.push(loaded.error_at(None, "the team has tasks but no [[teammate]] to run them"));
        }
        let instance_ids: BTreeSet<&str> = teammates.iter().map(|t| t.id.as_str()).collect();
        for id in &instance_ids {
            if groups.contains(*id) {
                problems.push(loaded.error_at(None, format!("teammate name `{id}` collides with an instance id")));
            }
        }

        // Exclusions and the file tree.
        let mut exclude = GlobSetBuilder::new();
        for pattern in &team.exclude {
            match check_glob(pattern) {
                Ok(g) => {
                    exclude.add(g);
                }
                Err(e) => problems.push(loaded.error_at(None, format!("exclude: {e}"))),
            }
        }
        let exclude = exclude.build().unwrap_or_else(|_| GlobSet::empty());
        let files = if root.is_dir() {
            walk_files(&root, &exclude).unwrap_or_else(|e| {
                problems.push(loaded.error_at(None, format!("cannot walk root {}: {e}", root.display())));
                Vec::new()
            })
        } else {
            Vec::new()
        };

        // Tasks.
        let mut tasks = Vec::new();
        let mut task_at: HashMap<String, usize> = HashMap::new();
        let mut owner_of: BTreeMap<String, String> = BTreeMap::new();
        let mut overlaps: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (n, entry) in team.tasks.iter().enumerate() {
            let t = entry.get_ref();
            let at = entry.span().start;
            let id = t.id.clone().unwrap_or_else(|| format!("t{}", n + 1));
            if !valid_id(&id) {
                problems.push(loaded.error_at(Some(at), format!("task id `{id}` must be 1-64 of [A-Za-z0-9._-]")));
            }
            if task_at.insert(id.clone(), at).is_some() {
                problems.push(loaded.error_at(Some(at), format!("task id `{id}` is used twice")));
            }
            if let Some(owner) = &t.owner
                && !groups.contains(owner)
                && !instance_ids.contains(owner.as_str())
            {
                problems.push(loaded.error_at(
                    Some(at),
                    format!("task `{id}`: owner `{owner}` is not a teammate (known: {})", list(&groups)),
                ));
            }
            if t.max_attempts == Some(0) {
                problems.push(loaded.error_at(Some(at), format!("task `{id}`: max_attempts must be at least 1")));
            }
            let mut set = GlobSetBuilder::new();
            for pattern in &t.owns {
                match check_glob(pattern) {
                    Ok(g) => {
                        set.add(g);
                    }
                    Err(e) => problems.push(loaded.error_at(Some(at), format!("task `{id}`: {e}"))),
                }
            }
            let set = set.build().unwrap_or_else(|_| GlobSet::empty());
            let owned: BTreeSet<String> = files.iter().filter(|f| set.is_match(f.as_str())).cloned().collect();
            for f in &owned {
                if let Some(prev) = owner_of.insert(f.clone(), id.clone()) {
                    overlaps.entry((prev, id.clone())).or_default().push(f.clone());
                }
            }
            if owned.is_empty() && !t.owns.is_empty() {
                warnings.push(format!("task `{id}` owns no file: {:?} match nothing under the root", t.owns));
            }
            tasks.push(TaskSpec {
                id,
                subject: t.subject.clone(),
                description: t.description.clone(),
                owned_files: owned,
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
                deadline: t.deadline,
                max_attempts: t.max_attempts.unwrap_or(team.max_attempts),
                creates: t.owns.iter().map(|p| p.trim_start_matches("./").to_string()).collect(),
            });
        }
        for ((a, b), files) in &overlaps {
            let shown: Vec<_> = files.iter().take(5).map(String::as_str).collect();
            let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
            problems.push(loaded.error_at(
                task_at.get(b).copied(),
                format!("tasks `{a}` and `{b}` both own {} file(s): {}{more}", files.len(), shown.join(", ")),
            ));
        }
        for t in &tasks {
            for dep in &t.blocked_by {
                if !task_at.contains_key(dep) {
                    problems.push(loaded.error_at(
                        task_at.get(&t.id).copied(),
                        format!("task `{}` is blocked by unknown task `{dep}`", t.id),
                    ));
                }
            }
        }
        if let Some(cycle) = find_cycle(&tasks) {
            problems.push(
                loaded.error_at(task_at.get(&cycle[0]).copied(), format!("dependency cycle: {}", cycle.join(" → "))),
            );
        }

        if !problems.is_empty() {
            return Err(PlanError(problems));
        }
        Ok(Plan {
            team: team.name.clone(),
            root,
            read: team.read,
            read_allow: team.read_allow.clone(),
            exclude: team.exclude.clone(),
            timeout: team.timeout,
            limits: team.limits.clone(),
            teammates,
            tasks,
            warnings,
        })
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ") }
}

/// A dependency cycle, as the ids along it (first repeated at the end).
fn find_cycle(tasks: &[TaskSpec]) -> Option<Vec<String>> {
    let deps: HashMap<&str, &[String]> = tasks.iter().map(|t| (t.id.as_str(), t.blocked_by.as_slice())).collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        deps: &HashMap<&'a str, &'a [String]>,
        mark: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match mark.get(id) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == id).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        mark.insert(id, 1);
        stack.push(id);
        for dep in deps.get(id).copied().unwrap_or_default() {
            if deps.contains_key(dep.as_str())
                && let Some(c) = visit(dep, deps, mark, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        mark.insert(id, 2);
        None
    }
    let mut stack = Vec::new();
    tasks.iter().find_map(|t| visit(&t.id, &deps, &mut mark, &mut stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in ["src/a.rs", "src/b.rs", "docs/x.md", "target/junk.rs"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        dir
    }

    fn plan(dir: &Path, body: &str) -> Result<Plan, PlanError> {
        let src = format!(
            "name = \"t\"\nroot = \".\"\nexclude = [\"target/**\"]\n[[teammate]]\nname = \"scan\"\nplugin = \"p.wasm\"\ninstances = 2\n{body}"
        );
        Plan::build(&Loaded::parse(&dir.join("team.toml"), src).unwrap())
    }

    #[test]
    fn expands_globs_against_the_real_tree() {
        let dir = tree();
        let p = plan(dir.path(), "[[task]]\nsubject = \"s\"\nowns = [\"**/*.rs\"]\n").unwrap();
        assert_eq!(p.tasks[0].owned_files.iter().collect::<Vec<_>>(), ["src/a.rs", "src/b.rs"]);
        assert_eq!(p.teammates.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["scan-1", "scan-2"]);
    }

    #[test]
    fn overlapping_ownership_is_rejected_with_both_tasks_and_the_file() {
        let dir = tree();
        let e = plan(
            dir.path(),
            "[[task]]\nid = \"one\"\nsubject = \"s\"\nowns = [\"src/*.rs\"]\n[[task]]\nid = \"two\"\nsubject = \"s\"\nowns = [\"src/a.*\"]\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("tasks `one` and `two` both own 1 file(s): src/a.rs"), "{msg}");
        assert!(msg.contains("team.toml:12"), "{msg}");
    }

    #[test]
    fn rejects_escapes_unknown_owners_unknown_deps_and_cycles() {
        let dir = tree();
        let e = plan(
            dir.path(),
            "[[task]]\nid = \"a\"\nsubject = \"s\"\nowns = [\"../x\", \"/etc/passwd\"]\nowner = \"nobody\"\nblocked_by = [\"b\", \"ghost\"]\n\
             [[task]]\nid = \"b\"\nsubject = \"s\"\nblocked_by = [\"a\"]\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        for want in [
            "`../x` leads outside the root",
            "`/etc/passwd` is absolute",
            "owner `nobody` is not a teammate",
            "unknown task `ghost`",
            "dependency cycle: a → b → a",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
    }
}
