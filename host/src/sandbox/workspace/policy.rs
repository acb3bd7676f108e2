//! What a teammate may read, list, write and create, decided on the clean
//! relative path alone (the file system is then reached through the
//! no-follow walk of [`super::walk`]).
//!
//! In order, for every call:
//! 1. the coordinator's own files (the state directory with its `logs/`,
//!    the compiled-plugin cache) are out of reach, whatever the scope or
//!    `read_allow`;
//! 2. under `read = "root"`, a path with a component on the built-in deny
//!    list ([`DENY_LIST`]: `.git`, `.swarm` and common secret files, at any
//!    depth, with everything under them) is neither read nor listed unless
//!    a `read_allow` glob matches it; such a path is never created, and
//!    nothing under `.git` or `.swarm` is written. (Under `read = "owned"`
//!    a task reads the files its `owns` globs gave it, a secret-scanner's
//!    `id_rsa` included; `.git` and `.swarm` are never owned.)
//! 3. a path under an `exclude` glob is neither read, listed, written nor
//!    created;
//! 4. the read scope: `owned` reads only the held task's files, `root`
//!    anything left after 1-3;
//! 5. creation of a new file: see [`super::creation`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

use globset::{GlobSet, GlobSetBuilder};

use super::creation::{CreationRules, Refusal, glob};
use super::{FsError, ReadScope, printable};

/// Names that are never read or listed (unless `read_allow` names them)
/// and never written or created, at any depth; a directory of these names
/// hides everything under it. Globs over one path component.
pub const DENY_LIST: &[&str] = &[
    ".git",
    ".swarm",
    ".env*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".aws",
    ".ssh",
];

/// Of [`DENY_LIST`], the names that are never written or created whatever
/// a task owns: the repository and the coordinator's default state.
const NEVER_WRITTEN: &[&str] = &[".git", ".swarm"];

/// A workspace policy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A glob of the team file does not compile.
    #[error("{setting}: `{pattern}` is not a valid glob: {message}")]
    Glob {
        /// The team-file setting it came from (`read_allow`, `exclude`,
        /// `owns of task X`).
        setting: String,
        /// The pattern.
        pattern: String,
        /// globset's message.
        message: String,
    },
    /// The root could not be resolved to compare the protected paths with.
    #[error("cannot resolve the workspace root {path}: {source}")]
    Root {
        /// The root.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a policy is built from: the team file's settings, every task's
/// `owns` patterns and the coordinator's own directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySpec {
    /// Globs of deny-listed paths that may be read all the same.
    pub read_allow: Vec<String>,
    /// Globs never read, listed, written or created.
    pub exclude: Vec<String>,
    /// Every task's `owns` patterns, by task id (creation rules).
    pub creates: BTreeMap<String, Vec<String>>,
    /// Directories of the coordinator (state, logs, compiled-plugin cache),
    /// absolute or relative to the current directory; those under the root
    /// are out of every teammate's reach.
    pub protected: Vec<PathBuf>,
}

/// The rules of one run, shared by all its workspaces.
#[derive(Debug, Clone)]
pub struct Policy {
    scope: ReadScope,
    read_allow: GlobSet,
    /// The literal start of each `read_allow` pattern (up to its first glob
    /// character), to tell which deny-listed directories it can reach into.
    allow_prefixes: Vec<String>,
    exclude: GlobSet,
    /// Protected paths relative to the root (`""` = the whole root).
    protected: Vec<String>,
    creation: Arc<CreationRules>,
}

fn deny_set() -> &'static GlobSet {
    static SET: OnceLock<GlobSet> = OnceLock::new();
    SET.get_or_init(|| names(DENY_LIST))
}

fn never_written_set() -> &'static GlobSet {
    static SET: OnceLock<GlobSet> = OnceLock::new();
    SET.get_or_init(|| names(NEVER_WRITTEN))
}

fn names(patterns: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p).expect("built-in pattern"));
    }
    b.build().expect("built-in patterns")
}

fn globs(setting: &str, patterns: &[String]) -> Result<GlobSet, PolicyError> {
    let err = |pattern: &str, e: globset::Error| PolicyError::Glob {
        setting: setting.to_string(),
        pattern: pattern.to_string(),
        message: e.to_string(),
    };
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p).map_err(|e| err(p, e))?);
    }
    b.build().map_err(|e| err("", e))
}

/// `path` made absolute and free of symlinks and `..` as far as it exists
/// (a cache directory may not exist yet), the rest resolved lexically.
fn resolve(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in abs.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

/// Each ancestor of `rel` and `rel` itself: `a`, `a/b`, `a/b/c`.
fn prefixes(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(|(i, _)| &rel[..i]).chain(std::iter::once(rel).filter(|r| !r.is_empty()))
}

impl Policy {
    /// Only the read scope: nothing protected, no deny exceptions, no
    /// exclusions, no task may create files.
    pub fn new(scope: ReadScope) -> Self {
        Self {
            scope,
            read_allow: GlobSet::empty(),
            allow_prefixes: Vec::new(),
            exclude: GlobSet::empty(),
            protected: Vec::new(),
            creation: Arc::new(CreationRules::default()),
        }
    }

    /// The policy of a run over `root`.
    pub fn build(root: &Path, scope: ReadScope, spec: &PolicySpec) -> Result<Self, PolicyError> {
        let root = root.canonicalize().map_err(|source| PolicyError::Root { path: root.to_path_buf(), source })?;
        let mut protected = Vec::new();
        for dir in &spec.protected {
            let dir = resolve(dir);
            if let Ok(rel) = dir.strip_prefix(&root) {
                let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                protected.push(parts.join("/"));
            } else if root.starts_with(&dir) {
                // The root lies inside the coordinator's files: none of it
                // is reachable.
                protected.push(String::new());
            }
        }
        let allow_prefixes = spec
            .read_allow
            .iter()
            .map(|p| {
                let p = p.trim_start_matches("./");
                p[..p.find(['*', '?', '[', '{', '\\']).unwrap_or(p.len())].to_string()
            })
            .collect();
        Ok(Self {
            scope,
            read_allow: globs("read_allow", &spec.read_allow)?,
            allow_prefixes,
            exclude: globs("exclude", &spec.exclude)?,
            protected,
            creation: Arc::new(CreationRules::new(&spec.creates)?),
        })
    }

    /// The read scope.
    pub fn scope(&self) -> ReadScope {
        self.scope
    }

    /// The creation rules.
    pub fn creation(&self) -> &Arc<CreationRules> {
        &self.creation
    }

    /// Whether `rel` is, or is under, one of the coordinator's directories.
    fn protected(&self, rel: &str) -> bool {
        self.protected
            .iter()
            .any(|p| p.is_empty() || rel == p || rel.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('/')))
    }

    /// The deny-list entry that some component of `rel` matches.
    fn deny_entry(rel: &str, set: &GlobSet, list: &'static [&'static str]) -> Option<&'static str> {
        rel.split('/').find_map(|name| set.matches(name).first().map(|&i| list[i]))
    }

    fn excluded(&self, rel: &str) -> bool {
        !self.exclude.is_empty() && prefixes(rel).any(|p| self.exclude.is_match(p))
    }

    /// Whether a `read_allow` pattern may match something under the
    /// deny-listed directory `dir` (judged by its literal start).
    fn allow_reaches_under(&self, dir: &str) -> bool {
        let under = format!("{dir}/");
        self.read_allow.is_match(dir)
            || self
                .allow_prefixes
                .iter()
                .any(|p| !p.is_empty() && (p.starts_with(&under) || under.starts_with(p.as_str())))
    }

    /// Refuses what no teammate may see: protected, deny-listed under
    /// `read = "root"` (unless allowed), excluded. `is_dir` lets a deny-listed directory through if
    /// `read_allow` reaches into it.
    fn check_hidden(&self, rel: &str, is_dir: bool) -> Result<(), FsError> {
        if self.protected(rel) {
            return Err(FsError::Denied(format!(
                "{}: the coordinator's own files (state directory, logs, compiled-plugin cache) are out of every \
                 teammate's reach",
                printable(rel)
            )));
        }
        if self.scope == ReadScope::Root
            && let Some(entry) = Self::deny_entry(rel, deny_set(), DENY_LIST)
            && !self.read_allow.is_match(rel)
            && !(is_dir && self.allow_reaches_under(rel))
        {
            return Err(FsError::Denied(format!(
                "{}: on the built-in read deny list (`{entry}`); name it in the team file's `read_allow` to expose it",
                printable(rel)
            )));
        }
        if self.excluded(rel) {
            return Err(FsError::Denied(format!("{}: excluded by the team file's `exclude`", printable(rel))));
        }
        Ok(())
    }

    /// Whether the held task (owning `owned`) may read the file `rel`.
    pub fn check_read(&self, rel: &str, owned: &BTreeSet<String>) -> Result<(), FsError> {
        self.check_hidden(rel, false)?;
        match self.scope {
            ReadScope::Root => Ok(()),
            ReadScope::Owned if owned.contains(rel) => Ok(()),
            ReadScope::Owned => Err(FsError::Denied(format!(
                "{}: reads are limited to the held task's files (read = \"owned\")",
                printable(rel)
            ))),
        }
    }

    /// Whether the directory `rel` may be listed (`""` = the root).
    pub fn check_list(&self, rel: &str, owned: &BTreeSet<String>) -> Result<(), FsError> {
        if rel.is_empty() {
            return if self.protected("") {
                Err(FsError::Denied("the workspace root lies inside the coordinator's own files".into()))
            } else {
                Ok(())
            };
        }
        self.check_hidden(rel, true)?;
        if self.scope == ReadScope::Owned && !holds_under(owned, rel) {
            return Err(FsError::Denied(format!(
                "{}: holds none of the held task's files (read = \"owned\")",
                printable(rel)
            )));
        }
        Ok(())
    }

    /// Whether a listing shows the entry `rel`.
    pub fn visible(&self, rel: &str, is_dir: bool, owned: &BTreeSet<String>) -> bool {
        if self.check_hidden(rel, is_dir).is_err() {
            return false;
        }
        match self.scope {
            ReadScope::Root => true,
            ReadScope::Owned if is_dir => holds_under(owned, rel),
            ReadScope::Owned => owned.contains(rel),
        }
    }

    /// Whether an owned file `rel` may be written: never one of the
    /// coordinator's files, nor under `.git` or `.swarm`.
    pub fn check_write(&self, rel: &str) -> Result<(), FsError> {
        if self.protected(rel) {
            return self.check_hidden(rel, false);
        }
        if let Some(entry) = Self::deny_entry(rel, never_written_set(), NEVER_WRITTEN) {
            return Err(FsError::Denied(format!("{}: `{entry}` is never written by a teammate", printable(rel))));
        }
        Ok(())
    }

    /// Whether the file `rel` may be asked for (`ownership.request-file`):
    /// one a teammate could write if its task owned it, not excluded and
    /// not on the built-in deny list.
    pub fn check_request(&self, rel: &str) -> Result<(), FsError> {
        self.check_write(rel)?;
        if let Some(entry) = Self::deny_entry(rel, deny_set(), DENY_LIST) {
            return Err(FsError::Denied(format!("{}: on the built-in deny list (`{entry}`)", printable(rel))));
        }
        if self.excluded(rel) {
            return Err(FsError::Denied(format!("{}: excluded by the team file's `exclude`", printable(rel))));
        }
        Ok(())
    }

    /// Whether the held task `task` may create the new file `rel` (it does
    /// not own it; whether it exists is the caller's to find out).
    pub fn check_create(&self, rel: &str, task: Option<&str>) -> Result<(), FsError> {
        let not_owned = |why: String| FsError::Denied(format!("{}: not owned by the held task; {why}", printable(rel)));
        let Some(task) = task else {
            return Err(not_owned("no task is held".into()));
        };
        self.check_write(rel)?;
        if let Some(entry) = Self::deny_entry(rel, deny_set(), DENY_LIST) {
            return Err(not_owned(format!("a new file on the built-in deny list (`{entry}`) is never created")));
        }
        if self.excluded(rel) {
            return Err(not_owned("it is excluded by the team file's `exclude`".into()));
        }
        match self.creation.check(rel, task) {
            Ok(()) => Ok(()),
            Err(Refusal::NotMatched) => {
                Err(not_owned(format!("a new file must match one of the `owns` patterns of task `{task}`")))
            }
            Err(Refusal::Shared { mine, others }) => {
                let others: Vec<String> = others.iter().map(|(t, p)| format!("`{t}` ({})", quoted(p))).collect();
                Err(not_owned(format!(
                    "task `{task}` ({}) and task {} could all own it; a new file must match the `owns` of one task \
                     only",
                    quoted(&mine),
                    others.join(", ")
                )))
            }
        }
    }
}

fn quoted(patterns: &[String]) -> String {
    patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}

/// Whether the sorted `owned` holds a file under the directory `rel`: the
/// first entry at or after `rel/` is under it if any is.
fn holds_under(owned: &BTreeSet<String>, rel: &str) -> bool {
    let under = format!("{rel}/");
    owned.range(under.clone()..).next().is_some_and(|o| o.starts_with(&under))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(read_allow: &[&str], exclude: &[&str]) -> PolicySpec {
        PolicySpec {
            read_allow: read_allow.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..PolicySpec::default()
        }
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn the_deny_list_applies_at_any_depth_and_below_denied_directories() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::build(dir.path(), ReadScope::Root, &PolicySpec::default()).unwrap();
        for denied in [
            ".git/config",
            "sub/.git/HEAD",
            ".swarm/t/tasks.json",
            ".env",
            "app/.env.production",
            "certs/server.pem",
            "tls/a.key",
            "home/id_rsa",
            "home/id_ed25519.pub",
            ".npmrc",
            "py/.pypirc",
            ".netrc",
            ".aws/credentials",
            "x/.ssh/config",
        ] {
            assert!(
                matches!(p.check_read(denied, &none()), Err(FsError::Denied(m)) if m.contains("read_allow")),
                "{denied}"
            );
        }
        for fine in ["src/a.rs", "environment.md", "keys/readme.md", "docs/git.md", "a.keys"] {
            assert_eq!(p.check_read(fine, &none()), Ok(()), "{fine}");
        }
    }

    #[test]
    fn under_owned_a_task_reads_the_secret_files_it_owns_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::build(dir.path(), ReadScope::Owned, &PolicySpec::default()).unwrap();
        let owned: BTreeSet<String> = ["conf/id_rsa".to_string()].into();
        assert_eq!(p.check_read("conf/id_rsa", &owned), Ok(()));
        assert!(p.check_read("conf/.env", &owned).is_err());
        assert!(p.check_create("conf/server.key", Some("t")).is_err(), "secrets are never created");
    }

    #[test]
    fn read_allow_exposes_what_it_names_and_the_directories_leading_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::build(dir.path(), ReadScope::Root, &spec(&[".git/config", "**/.env.example"], &[])).unwrap();
        assert_eq!(p.check_read(".git/config", &none()), Ok(()));
        assert_eq!(p.check_read("app/.env.example", &none()), Ok(()));
        assert!(p.check_read(".git/HEAD", &none()).is_err());
        assert!(p.check_read(".env", &none()).is_err());
        assert_eq!(p.check_list(".git", &none()), Ok(()));
        assert!(p.check_list(".git/objects", &none()).is_err());
        assert!(p.check_list(".ssh", &none()).is_err());
        assert!(p.visible(".git", true, &none()));
        assert!(!p.visible(".git/HEAD", false, &none()));
        assert!(p.visible(".git/config", false, &none()));
        // Allowed to read is not allowed to write.
        assert!(p.check_write(".git/config").is_err());
    }

    #[test]
    fn protected_directories_are_out_of_reach_whatever_the_scope_or_read_allow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("state/t/logs")).unwrap();
        let spec = PolicySpec {
            read_allow: vec!["**".into()],
            // The cache does not exist yet, and is named through a `..`.
            protected: vec![root.join("state/t"), root.join("sub/../cache")],
            ..PolicySpec::default()
        };
        let p = Policy::build(root, ReadScope::Root, &spec).unwrap();
        let owned: BTreeSet<String> = ["state/t/tasks.json".to_string()].into();
        for rel in ["state/t", "state/t/logs/x.log", "cache/abc", "cache"] {
            assert!(matches!(p.check_read(rel, &owned), Err(FsError::Denied(m)) if m.contains("coordinator")), "{rel}");
            assert!(p.check_list(rel, &owned).is_err(), "{rel}");
            assert!(p.check_write(rel).is_err(), "{rel}");
            assert!(p.check_create(rel, Some("t")).is_err(), "{rel}");
            assert!(!p.visible(rel, true, &owned), "{rel}");
        }
        assert!(p.visible("state", true, &owned));
        assert_eq!(p.check_read("state/other", &owned), Ok(()));
        assert_eq!(p.check_read("cached", &owned), Ok(()));
        // A root inside the state directory: nothing is reachable.
        let inner = Policy::build(&root.join("state/t/logs"), ReadScope::Root, &spec).unwrap();
        assert!(inner.check_list("", &owned).is_err());
        assert!(inner.check_read("x.log", &owned).is_err());
    }

    #[test]
    fn excluded_paths_are_neither_read_nor_created() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(&[], &["target/**"]);
        s.creates.insert("t".into(), vec!["**".into()]);
        let p = Policy::build(dir.path(), ReadScope::Root, &s).unwrap();
        assert!(p.check_read("target/debug/x", &none()).is_err());
        assert!(p.check_create("target/new.rs", Some("t")).is_err());
        assert_eq!(p.check_create("src/new.rs", Some("t")), Ok(()));
        assert!(p.check_create(".env", Some("t")).is_err(), "deny-listed names are never created");
        assert!(p.check_create(".git/hooks/pre-commit", Some("t")).is_err());
        assert!(p.check_create("src/new.rs", None).is_err(), "no task, no creation");
    }

    #[test]
    fn bad_globs_name_their_setting() {
        let dir = tempfile::tempdir().unwrap();
        let e = Policy::build(dir.path(), ReadScope::Root, &spec(&["a/[b"], &[])).unwrap_err().to_string();
        assert!(e.starts_with("read_allow: `a/[b`"), "{e}");
    }
}
