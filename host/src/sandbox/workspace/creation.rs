//! Who may create a file that does not exist yet.
//!
//! Every task's `owns` patterns (its `TaskSpec::creates`) go into one
//! [`GlobSet`], built once per run and shared by every workspace of the run.
//! A new path may be created by the held task only if it matches one of the
//! held task's patterns and no other task's: a path two tasks could own is
//! refused, naming both, so ownership stays disjoint for files that did not
//! exist when the plan was made. All tasks count, finished or not: a task
//! that ran earlier may still be retried or resumed.

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::PolicyError;

/// The `owns` patterns of every task of a run, in one matcher.
#[derive(Debug, Clone)]
pub struct CreationRules {
    set: GlobSet,
    /// For each glob of `set`, in order: (task id, pattern).
    origin: Vec<(String, String)>,
}

/// Why a creation was refused by the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The path matches none of the held task's patterns.
    NotMatched,
    /// The path matches the held task's patterns and those of other tasks.
    Shared {
        /// The held task's patterns that match.
        mine: Vec<String>,
        /// The other tasks that could own it, with their matching patterns.
        others: BTreeMap<String, Vec<String>>,
    },
}

impl Default for CreationRules {
    fn default() -> Self {
        Self { set: GlobSet::empty(), origin: Vec::new() }
    }
}

/// Compiles one pattern the way the plan does (`*` stops at `/`).
pub(super) fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern.trim_start_matches("./")).literal_separator(true).build()
}

impl CreationRules {
    /// Rules from each task's patterns (task id → its `owns` patterns).
    pub fn new(creates: &BTreeMap<String, Vec<String>>) -> Result<Self, PolicyError> {
        let mut builder = GlobSetBuilder::new();
        let mut origin = Vec::new();
        for (task, patterns) in creates {
            for pattern in patterns {
                let g = glob(pattern).map_err(|e| PolicyError::Glob {
                    setting: format!("owns of task `{task}`"),
                    pattern: pattern.clone(),
                    message: e.to_string(),
                })?;
                builder.add(g);
                origin.push((task.clone(), pattern.clone()));
            }
        }
        let set = builder.build().map_err(|e| PolicyError::Glob {
            setting: "owns".into(),
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self { set, origin })
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.origin.len()
    }

    /// True when no task has a pattern.
    pub fn is_empty(&self) -> bool {
        self.origin.is_empty()
    }

    /// The tasks whose patterns match `rel`, each with its matching patterns.
    pub fn owners(&self, rel: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in self.set.matches(rel) {
            let (task, pattern) = &self.origin[i];
            out.entry(task.clone()).or_default().push(pattern.clone());
        }
        out
    }

    /// Whether `task` alone may create `rel`.
    pub fn check(&self, rel: &str, task: &str) -> Result<(), Refusal> {
        let mut owners = self.owners(rel);
        let Some(mine) = owners.remove(task) else {
            return Err(Refusal::NotMatched);
        };
        if owners.is_empty() { Ok(()) } else { Err(Refusal::Shared { mine, others: owners }) }
    }

    /// The tasks with at least one pattern.
    pub fn tasks(&self) -> BTreeSet<&str> {
        self.origin.iter().map(|(t, _)| t.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(tasks: &[(&str, &[&str])]) -> CreationRules {
        let map = tasks.iter().map(|(t, p)| (t.to_string(), p.iter().map(|s| s.to_string()).collect())).collect();
        CreationRules::new(&map).unwrap()
    }

    #[test]
    fn a_path_one_task_alone_matches_is_creatable_by_that_task_only() {
        let r = rules(&[("parser", &["src/parser/**"]), ("docs", &["docs/*.md"])]);
        assert_eq!(r.check("src/parser/lexer.rs", "parser"), Ok(()));
        assert_eq!(r.check("src/parser/lexer.rs", "docs"), Err(Refusal::NotMatched));
        assert_eq!(r.check("docs/a.md", "docs"), Ok(()));
        // `*` does not cross `/`, as in the plan.
        assert_eq!(r.check("docs/sub/a.md", "docs"), Err(Refusal::NotMatched));
    }

    #[test]
    fn a_path_two_tasks_could_own_is_refused_naming_both() {
        let r = rules(&[("a", &["src/**/*.rs"]), ("b", &["src/gen/**"])]);
        match r.check("src/gen/x.rs", "a") {
            Err(Refusal::Shared { mine, others }) => {
                assert_eq!(mine, ["src/**/*.rs"]);
                assert_eq!(others.keys().collect::<Vec<_>>(), ["b"]);
                assert_eq!(others["b"], ["src/gen/**"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.check("src/gen/x.rs", "b"), Err(Refusal::Shared { .. })));
        assert_eq!(r.check("src/lib.rs", "a"), Ok(()));
    }

    #[test]
    fn a_bad_pattern_names_its_task() {
        let map = BTreeMap::from([("t".to_string(), vec!["src/[".to_string()])]);
        let e = CreationRules::new(&map).unwrap_err().to_string();
        assert!(e.contains("owns of task `t`") && e.contains("src/["), "{e}");
    }
}
