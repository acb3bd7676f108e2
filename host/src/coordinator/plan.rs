//! Plan before spawn: turn a team file into the complete, validated plan
//! (teammate instances, tasks with their owned files expanded against the
//! real file tree, dependencies) before anything runs.
//!
//! Validation collects every problem, each naming the offending tasks,
//! teammates or files and the team-file line: duplicate ids, unknown owners
//! and dependencies, dependency cycles, owned paths outside the root, two
//! tasks owning the same file, and a plan over one of the [`limits`]. A plan
//! of any shape, from a team file or a planner, gets a plan or a refusal in
//! time linear in its size: nothing recurses ([`graph`]) and files are
//! matched against every task at once ([`owns`]).

pub mod file;
mod graph;
pub mod lead;
pub mod limits;
pub mod owns;
pub mod runtime;
mod walk;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::config::{ConfigError, Loaded};
use crate::sandbox::{Limits, ReadScope};
use crate::tasks::TaskSpec;
pub use limits::*;
use owns::{Index, Owned, check_glob};
pub use walk::{ALWAYS_SKIPPED, Walk, walk_files};

/// Colours handed out to teammates in order.
pub const PALETTE: &[&str] = &["blue", "green", "magenta", "cyan", "yellow", "red"];

/// Most instances one teammate group may ask for.
pub const MAX_INSTANCES: u32 = 10_000;
/// Most teammate instances in one team, all groups together.
pub const MAX_TEAMMATES: u64 = 10_000;
/// Most problems listed; the rest are counted in one last line.
pub const MAX_PROBLEMS: usize = 100;

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
    /// Words added to the `options:` line of every task it claims
    /// (`model=`, `max-turns=`, `temperature=` from its team-file entry;
    /// a task's own options win): see [`crate::options_line`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
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
    /// Non-fatal observations (e.g. a glob matching no file yet, a file
    /// skipped for its name), at most [`MAX_WARNINGS`] and a count.
    pub warnings: Vec<String>,
    /// The team file's `timeout` for the whole run, if any.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<std::time::Duration>,
    /// The team file's `ownership_requests` policy.
    #[serde(default)]
    pub ownership_requests: super::steer::RequestPolicy,
    /// The team file's `ask_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub ask_timeout: Option<std::time::Duration>,
    /// A lead's proposals, in order, when a lead planned from a goal: each
    /// rejected one with its problems, the last one the plan validated
    /// from ([`lead::Proposal`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<lead::Proposal>,
}

/// Everything wrong with a team file, each problem located.
#[derive(Debug, thiserror::Error)]
#[error("the team file has {} problem{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct PlanError(pub Vec<ConfigError>);

/// `s` for an error or warning line: in backticks, control characters
/// escaped, cut after 100 characters.
pub(crate) fn shown(s: &str) -> String {
    format!("`{}`", plain(s))
}

/// [`shown`] without the backticks.
fn plain(s: &str) -> String {
    const KEPT: usize = 100;
    match s.char_indices().nth(KEPT) {
        Some((cut, _)) => format!("{}…", crate::sanitize::line(&s[..cut])),
        None => crate::sanitize::line(s),
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s != crate::mailbox::TEAM_LEAD
}

fn id_rule() -> String {
    format!("1-{MAX_ID_LEN} of [A-Za-z0-9._-] (max_id_len = {MAX_ID_LEN})")
}

/// Most turns `max_turns` may set.
pub const MAX_AGENT_TURNS: u32 = 10_000;

/// The options words of a teammate entry's `model`, `max_turns` and
/// `temperature`; a bad value is a problem at its line.
fn agent_options(loaded: &Loaded, t: &super::config::TeammateEntry, problems: &mut Vec<ConfigError>) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(m) = &t.model {
        if t.models.iter().any(|a| a.get_ref() == m.get_ref()) {
            words.push(format!("model={}", m.get_ref()));
        } else {
            let allowed: Vec<&str> = t.models.iter().map(|a| a.get_ref().as_str()).collect();
            problems.push(loaded.error_at(
                Some(m.span().start),
                format!(
                    "teammate {}: model = {} is not one of its models ({})",
                    shown(&t.name),
                    shown(m.get_ref()),
                    if allowed.is_empty() {
                        "it has none: add `models = [...]`".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
    }
    if let Some(n) = &t.max_turns {
        if (1..=MAX_AGENT_TURNS).contains(n.get_ref()) {
            words.push(format!("max-turns={}", n.get_ref()));
        } else {
            problems.push(loaded.error_at(
                Some(n.span().start),
                format!("teammate {}: max_turns must be 1..={MAX_AGENT_TURNS}, not {}", shown(&t.name), n.get_ref()),
            ));
        }
    }
    if let Some(x) = &t.temperature {
        if (0.0..=2.0).contains(x.get_ref()) {
            words.push(format!("temperature={}", x.get_ref()));
        } else {
            problems.push(loaded.error_at(
                Some(x.span().start),
                format!("teammate {}: temperature must be between 0 and 2, not {}", shown(&t.name), x.get_ref()),
            ));
        }
    }
    words
}

/// Cuts `list` to `max` entries and adds one saying how many more there were.
fn capped<T>(mut list: Vec<T>, max: usize, more: impl FnOnce(usize) -> T) -> Vec<T> {
    if list.len() > max {
        let n = list.len() - max;
        list.truncate(max);
        list.push(more(n));
    }
    list
}

/// The exclusions of a team file as one set; `Err` names the bad pattern.
fn exclusions(patterns: &[String]) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        set.add(check_glob(pattern).map_err(|e| format!("exclude: {e}"))?);
    }
    set.build().map_err(|e| format!("exclude: {}", crate::sanitize::line(&e.to_string())))
}

/// Runs the team file's planner plugin, if any, and validates the whole plan
/// (team-file tasks and planned tasks together) before anything spawns.
/// Returns the loaded planner too, for the closing synthesis. With
/// `models`, the planner's `plan` may call the team's models (its
/// `[planner]` allow-list and budget apply); without, its calls are
/// answered `model-not-allowed`.
///
/// The planner is as untrusted as a teammate: it is asked for at most
/// `groups` tasks (refused if it returns more), and every path it plans must
/// be one the `[planner]` table's `owns` covers and no exclusion removes.
pub async fn build_with_planner(
    loaded: &Loaded,
    cache_dir: Option<&Path>,
    models: Option<crate::llm::SharedModelPort>,
) -> Result<(Plan, Option<crate::sandbox::planner::Planner>), PlanError> {
    use crate::sandbox::planner::{PlanInput, Planner};
    let Some(entry) = &loaded.team.planner else {
        if loaded.team.goal.is_some() {
            return Err(PlanError(vec![loaded.error_at(
                None,
                "goal: a goal is planned by a lead: add a [planner] table whose plugin is a lead (world `lead`), e.g. plugins/lead",
            )]));
        }
        return Plan::build(loaded).map(|p| (p, None));
    };
    let span = entry.span();
    let at = Some(span.start);
    let fail = |message: String| PlanError(vec![loaded.error_at(at, message)]);
    let p = entry.get_ref();
    // Settings of the other kind of planner would be silently ignored.
    let ignored: Vec<&str> = if loaded.team.goal.is_some() {
        [("subject", !p.subject.is_empty())].into_iter().filter(|(_, set)| *set).map(|(k, _)| k).collect()
    } else {
        [("replan_rounds", p.replan_rounds.is_some()), ("read_kib", p.read_kib.is_some())]
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| k)
            .collect()
    };
    if let Some(key) = ignored.first() {
        let why = if loaded.team.goal.is_some() {
            "a goal is planned by a lead, which takes no subject template"
        } else {
            "only a lead planning the team's `goal` uses it"
        };
        return Err(fail(format!("[planner] {key}: {why}")));
    }
    let root = loaded.dir.join(&loaded.team.root).canonicalize().map_err(|e| fail(format!("root: {e}")))?;
    let exclude = exclusions(&loaded.team.exclude).map_err(fail)?;
    let mut wanted = GlobSetBuilder::new();
    for pattern in if p.owns.is_empty() { vec!["**".to_string()] } else { p.owns.clone() } {
        wanted.add(check_glob(&pattern).map_err(|e| fail(format!("planner owns: {e}")))?);
    }
    let wanted = wanted.build().map_err(|e| fail(format!("planner owns: {e}")))?;
    // Non-UTF-8 names are skipped here too; `Plan::build` walks the same
    // tree again and warns about them once.
    let files: Vec<String> = walk_files(&root, &exclude)
        .map_err(|e| fail(format!("cannot walk root: {e}")))?
        .files
        .into_iter()
        .filter(|f| wanted.is_match(f.as_str()))
        .collect();
    let teammates: Vec<String> = loaded.team.teammates.iter().map(|t| t.get_ref().name.clone()).collect();
    let instances = loaded.team.teammates.iter().fold(0u32, |sum, t| sum.saturating_add(t.get_ref().instances));
    let groups = p.groups.unwrap_or(instances.clamp(1, MAX_TASKS as u32));
    if groups == 0 || groups as usize > MAX_TASKS {
        return Err(fail(format!("[planner] groups = {groups} must be 1..={MAX_TASKS} (max_tasks = {MAX_TASKS})")));
    }
    let input = PlanInput { team: loaded.team.name.clone(), files, groups, subject: p.subject.clone(), teammates };
    let (path, limits, cache) =
        (loaded.dir.join(&p.plugin), loaded.team.limits.clone(), cache_dir.map(Path::to_path_buf));
    let planner = tokio::task::spawn_blocking(move || Planner::load_with_cache(&path, &limits, cache.as_deref()))
        .await
        .map_err(|e| fail(format!("planner load: {e}")))?
        .map_err(|e| fail(e.to_string()))?;
    let planner = match models {
        Some(m) => planner.with_models(m),
        None => planner,
    };
    if let Some(goal) = &loaded.team.goal {
        let scope = lead::Scope { entry, root: &root, files: &input.files, wanted: &wanted, exclude: &exclude };
        return lead::plan(loaded, planner, goal, scope).await;
    }
    let planned = planner.plan(input).await.map_err(|e| {
        let limit = e.limit().map(crate::sandbox::LimitHit::kind);
        PlanError(vec![ConfigError { limit, ..loaded.error_at(at, e.to_string()) }])
    })?;
    tracing::info!(tasks = planned.len(), "planner {} planned the work", planner.path().display());
    let mut outside = Vec::new();
    let mut with_tasks = loaded.clone();
    for t in planned {
        for f in t.owns.iter().filter(|f| !wanted.is_match(f.as_str()) || exclude.is_match(f.as_str())) {
            outside.push(loaded.error_at(
                at,
                format!(
                    "planned task {} owns {}, which the [planner] owns patterns do not cover or an exclusion removes",
                    shown(&t.id),
                    shown(f)
                ),
            ));
        }
        let task = super::config::TaskEntry {
            id: Some(t.id),
            subject: t.subject,
            description: t.description,
            // Planned paths are exact: escape them so they match (and may
            // create) that path and nothing else.
            owns: t.owns.iter().map(|f| owns::escape(f)).collect(),
            owner: t.owner.or_else(|| p.owner.clone()),
            blocked_by: t.blocked_by,
            deadline: None,
            max_attempts: None,
        };
        // Problems in planned tasks point at the [planner] table.
        with_tasks.team.tasks.push(toml::Spanned::new(span.clone(), task));
    }
    match Plan::build(&with_tasks) {
        Ok(plan) if outside.is_empty() => Ok((plan, Some(planner))),
        Ok(_) => {
            Err(PlanError(capped(outside, MAX_PROBLEMS, |n| loaded.error_at(at, format!("and {n} more problems")))))
        }
        Err(PlanError(mut problems)) => {
            outside.append(&mut problems);
            Err(PlanError(capped(outside, MAX_PROBLEMS, |n| loaded.error_at(at, format!("and {n} more problems")))))
        }
    }
}

impl Plan {
    /// Builds and validates the plan of a loaded team file.
    pub fn build(loaded: &Loaded) -> Result<Self, PlanError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        match Self::build_into(loaded, &mut problems, &mut warnings) {
            Some(mut plan) if problems.is_empty() => {
                plan.warnings = capped(warnings, MAX_WARNINGS, |n| format!("and {n} more warnings"));
                Ok(plan)
            }
            _ => Err(PlanError(capped(problems, MAX_PROBLEMS, |n| {
                loaded.error_at(None, format!("and {n} more problems (at most {MAX_PROBLEMS} are listed)"))
            }))),
        }
    }

    /// The plan, with every problem and warning found on the way pushed
    /// (the plan is only used if there is no problem). `None` after a plan
    /// over [`MAX_TASKS`] or [`MAX_GLOBS`]: the checks after those would be
    /// slow for nothing.
    fn build_into(loaded: &Loaded, problems: &mut Vec<ConfigError>, warnings: &mut Vec<String>) -> Option<Plan> {
        let team = &loaded.team;

        if !valid_id(&team.name) {
            problems.push(loaded.error_at(None, format!("team name {} must be {}", shown(&team.name), id_rule())));
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
        let total: u64 = team.teammates.iter().map(|t| u64::from(t.get_ref().instances)).sum();
        if total > MAX_TEAMMATES {
            problems.push(loaded.error_at(
                None,
                format!("the team asks for {total} teammate instances, over max_teammates = {MAX_TEAMMATES}"),
            ));
        }
        for (gi, entry) in team.teammates.iter().enumerate() {
            let t = entry.get_ref();
            let at = Some(entry.span().start);
            if !valid_id(&t.name) {
                problems.push(loaded.error_at(at, format!("teammate name {} must be {}", shown(&t.name), id_rule())));
            }
            if !groups.insert(t.name.clone()) {
                problems.push(loaded.error_at(at, format!("teammate {} is defined twice", shown(&t.name))));
            }
            if t.instances == 0 || t.instances > MAX_INSTANCES {
                problems.push(loaded.error_at(
                    at,
                    format!("teammate {}: instances must be 1..={MAX_INSTANCES}, not {}", shown(&t.name), t.instances),
                ));
            }
            let limits = match loaded.limits_of(entry) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if total > MAX_TEAMMATES {
                continue;
            }
            let options = agent_options(loaded, t, problems);
            let plugin = loaded.dir.join(&t.plugin);
            for i in 1..=t.instances.min(MAX_INSTANCES) {
                teammates.push(PlannedTeammate {
                    id: format!("{}-{i}", t.name),
                    group: t.name.clone(),
                    color: t.color.clone().unwrap_or_else(|| PALETTE[(gi + i as usize - 1) % PALETTE.len()].into()),
                    plugin: plugin.clone(),
                    limits: limits.clone(),
                    options: options.clone(),
                });
            }
        }
        if teammates.is_empty() && !team.tasks.is_empty() && total <= MAX_TEAMMATES {
            problems.push(loaded.error_at(None, "the team has tasks but no [[teammate]] to run them"));
        }
        let instance_ids: BTreeSet<&str> = teammates.iter().map(|t| t.id.as_str()).collect();
        for id in &instance_ids {
            if groups.contains(*id) {
                problems.push(loaded.error_at(None, format!("teammate name `{id}` collides with an instance id")));
            }
        }

        // Exclusions and the file tree.
        let exclude = exclusions(&team.exclude).unwrap_or_else(|e| {
            problems.push(loaded.error_at(None, e));
            GlobSet::empty()
        });
        let files = if root.is_dir() {
            walk_files(&root, &exclude).unwrap_or_else(|e| {
                problems.push(loaded.error_at(None, format!("cannot walk root {}: {e}", root.display())));
                Walk::default()
            })
        } else {
            Walk::default()
        };
        warnings.extend(files.warnings());
        let files = files.files;

        // Tasks: their fields first, all patterns parsed.
        if let Some(e) = task_count_problem(team.tasks.len()) {
            problems.push(loaded.error_at(team.tasks.get(MAX_TASKS).map(|t| t.span().start), e));
            return None;
        }
        let mut tasks = Vec::with_capacity(team.tasks.len());
        let mut task_at: HashMap<String, usize> = HashMap::with_capacity(team.tasks.len());
        let mut patterns = Vec::new();
        for (n, entry) in team.tasks.iter().enumerate() {
            let t = entry.get_ref();
            let at = entry.span().start;
            let id = t.id.clone().unwrap_or_else(|| format!("t{}", n + 1));
            if !valid_id(&id) {
                problems.push(loaded.error_at(Some(at), format!("task id {} must be {}", shown(&id), id_rule())));
            }
            if task_at.insert(id.clone(), at).is_some() {
                problems.push(loaded.error_at(Some(at), format!("task id {} is used twice", shown(&id))));
            }
            for e in task_problems(&id, &t.subject, &t.description, &t.owns, &t.blocked_by) {
                problems.push(loaded.error_at(Some(at), e));
            }
            if let Some(owner) = &t.owner
                && !groups.contains(owner)
                && !instance_ids.contains(owner.as_str())
            {
                problems.push(loaded.error_at(
                    Some(at),
                    format!("task {}: owner {} is not a teammate (known: {})", shown(&id), shown(owner), list(&groups)),
                ));
            }
            if t.max_attempts == Some(0) {
                problems
                    .push(loaded.error_at(Some(at), format!("task {}: max_attempts must be at least 1", shown(&id))));
            }
            if t.owns.len() <= MAX_OWNS {
                for pattern in &t.owns {
                    match Owned::parse(n, pattern) {
                        Ok(p) => patterns.push(p),
                        Err(e) => problems.push(loaded.error_at(Some(at), format!("task {}: {e}", shown(&id)))),
                    }
                }
            }
            tasks.push(TaskSpec {
                id,
                subject: t.subject.clone(),
                description: t.description.clone(),
                owned_files: BTreeSet::new(),
                owner: t.owner.clone(),
                blocked_by: t.blocked_by.clone(),
                deadline: t.deadline,
                max_attempts: t.max_attempts.unwrap_or(team.max_attempts),
                creates: t.owns.iter().map(|p| owns::normal(p).to_string()).collect(),
            });
        }
        let globs = patterns.iter().filter(|p| p.literal.is_none()).count();
        if globs > MAX_GLOBS {
            problems.push(loaded.error_at(
                None,
                format!("the tasks have {globs} owns globs (patterns with a wildcard), over max_globs = {MAX_GLOBS}; list paths literally or use fewer, wider globs"),
            ));
            return None;
        }

        // Ownership: every file matched once against every task's patterns.
        let index = match Index::new(patterns) {
            Ok(index) => index,
            Err(e) => {
                problems.push(loaded.error_at(None, e));
                return None;
            }
        };
        let mut matched = vec![false; index.patterns.len()];
        // Per pair of tasks: how many files both own, and the first few.
        let mut overlaps: BTreeMap<(usize, usize), (usize, Vec<String>)> = BTreeMap::new();
        let mut hits = Vec::new();
        let mut owners = Vec::new();
        for f in &files {
            hits.clear();
            index.matches(f, &mut hits);
            owners.clear();
            for &k in &hits {
                matched[k] = true;
                owners.push(index.patterns[k].task);
            }
            owners.sort_unstable();
            owners.dedup();
            for &task in &owners {
                tasks[task].owned_files.insert(f.clone());
            }
            for &other in owners.iter().skip(1) {
                let (count, some) = overlaps.entry((owners[0], other)).or_default();
                *count += 1;
                if some.len() < 5 {
                    some.push(f.clone());
                }
            }
        }
        // Two tasks that could create one file first: the warnings are capped.
        let (pairs, more) = owns::creation_overlaps(&index, &matched, MAX_WARNINGS);
        for (a, b) in pairs {
            let (a, b) = (&index.patterns[a], &index.patterns[b]);
            warnings.push(format!(
                "tasks {} and {} could both create the same new file: {} and {} can match one path that does not exist yet; \
                 the workspace refuses to create such a path for either task",
                shown(&tasks[a.task].id),
                shown(&tasks[b.task].id),
                shown(&a.text),
                shown(&b.text),
            ));
        }
        if more > 0 {
            warnings.push(format!("and {more} more pairs of patterns that could both create one new file"));
        }
        // Then what each pattern that matches no file grants.
        for p in index.patterns.iter().zip(&matched).filter(|(_, m)| !**m).map(|(p, _)| p) {
            let id = shown(&tasks[p.task].id);
            warnings.push(match &p.literal {
                Some(path) => {
                    format!("task {id} owns {}, which does not exist yet: the task may create it", shown(path))
                }
                None => format!(
                    "task {id}: {} matches no file under the root yet: the task may create files that match it",
                    shown(&p.text)
                ),
            });
        }
        for ((a, b), (count, some)) in &overlaps {
            let more = if *count > some.len() { format!(" and {} more", count - some.len()) } else { String::new() };
            let (a, b) = (&tasks[*a].id, &tasks[*b].id);
            problems.push(loaded.error_at(
                task_at.get(b).copied(),
                format!("tasks {} and {} both own {count} file(s): {}{more}", shown(a), shown(b), some.join(", ")),
            ));
        }

        // Dependencies.
        for t in &tasks {
            for dep in t.blocked_by.iter().filter(|d| !task_at.contains_key(*d)) {
                problems.push(loaded.error_at(
                    task_at.get(&t.id).copied(),
                    format!("task {} is blocked by unknown task {}", shown(&t.id), shown(dep)),
                ));
            }
        }
        match graph::shape(&tasks) {
            graph::Shape::Cycle(cycle) => problems.push(loaded.error_at(
                task_at.get(&cycle[0]).copied(),
                format!("dependency cycle: {}", cycle.iter().map(|id| plain(id)).collect::<Vec<_>>().join(" → ")),
            )),
            graph::Shape::Acyclic { depth, deepest: Some(end) } if depth > MAX_DEPENDENCY_DEPTH => {
                let id = &tasks[end].id;
                problems.push(loaded.error_at(
                    task_at.get(id).copied(),
                    format!(
                        "task {} ends a blocked_by chain of {depth} tasks, over max_dependency_depth = {MAX_DEPENDENCY_DEPTH}",
                        shown(id)
                    ),
                ));
            }
            graph::Shape::Acyclic { .. } => {}
        }

        Some(Plan {
            team: team.name.clone(),
            root,
            read: team.read,
            read_allow: team.read_allow.clone(),
            exclude: team.exclude.clone(),
            timeout: team.timeout,
            proposals: Vec::new(),
            limits: team.limits.clone(),
            teammates,
            tasks,
            warnings: Vec::new(),
            ownership_requests: team.ownership_requests,
            ask_timeout: team.ask_timeout,
        })
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "none".into() } else { set.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ") }
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
    fn a_teammates_agent_options_are_checked_at_their_lines_and_carried_by_each_instance() {
        let dir = tree();
        let e =
            plan(dir.path(), "models = [\"fast\"]\nmodel = \"slow\"\nmax_turns = 0\ntemperature = 2.5\n").unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].contains("team.toml:9: ") && lines[0].contains("model = `slow` is not one of its models (fast)")
        );
        assert!(lines[1].contains("team.toml:10: ") && lines[1].contains("max_turns must be 1..=10000, not 0"));
        assert!(
            lines[2].contains("team.toml:11: ") && lines[2].contains("temperature must be between 0 and 2, not 2.5")
        );
        let src = "name = \"t\"\n[[teammate]]\nname = \"a\"\nplugin = \"p.wasm\"\nmax_turn = 3\n";
        let e = Loaded::parse(Path::new("team.toml"), src.into()).unwrap_err().to_string();
        assert!(e.starts_with("team.toml:5: unknown field `max_turn`"), "{e}");

        let p = plan(dir.path(), "models = [\"fast\"]\nmodel = \"fast\"\nmax_turns = 7\ntemperature = 0.5\n").unwrap();
        for t in &p.teammates {
            assert_eq!(t.options, ["model=fast", "max-turns=7", "temperature=0.5"], "{}", t.id);
        }
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
    fn owns_patterns_that_match_no_file_are_what_the_task_may_create() {
        let dir = tree();
        let p =
            plan(dir.path(), "[[task]]\nid = \"a\"\nsubject = \"s\"\nowns = [\"./src/new.rs\", \"gen/**\"]\n").unwrap();
        assert_eq!(p.tasks[0].creates, ["src/new.rs", "gen/**"]);
        assert!(p.tasks[0].owned_files.is_empty());
        assert_eq!(
            p.warnings,
            [
                "task `a` owns `src/new.rs`, which does not exist yet: the task may create it",
                "task `a`: `gen/**` matches no file under the root yet: the task may create files that match it",
            ]
        );
        for owns in [".git/hooks/pre-commit", "sub/.swarm/x/**"] {
            let e =
                plan(dir.path(), &format!("[[task]]\nid = \"g\"\nsubject = \"s\"\nowns = [{owns:?}]\n")).unwrap_err();
            assert!(e.to_string().contains("which no task may own or create files in"), "{e}");
        }
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
