//! The workspace capability: file access for one teammate, on a cap-std
//! directory handle for the team root, never on ambient paths.
//!
//! Every call first cleans the guest's path (relative, no `..`, no NUL
//! byte, no backslash, bounded length), then asks the run's [`Policy`]
//! (decided on the clean path alone), then reaches the file system through
//! the no-follow walk of [`walk`]: every component is opened from its
//! parent's handle without following a symlink, in the same call that
//! would have followed it.
//!
//! - **Writes** go only to files the held task owns, and never to the
//!   coordinator's files, `.git` or `.swarm`. A replacing write goes to a
//!   temp file with a random name, created exclusively, fsynced and renamed
//!   over the target in the same directory handle; the target keeps its
//!   permission bits. A target that is a symlink or has more than one hard
//!   link (writing through it would change a file elsewhere) is refused.
//! - **Creation**: a path that does not exist may be created by the held
//!   task only if it matches one of the held task's `owns` patterns and no
//!   other task's pattern in the plan (every creation is checked at run time
//!   against all tasks' patterns; a path more than one task could own is
//!   refused, naming the tasks). Deny-listed and excluded paths are never
//!   created. Parent directories are created one by one without following
//!   symlinks; the new file is created exclusively (it never replaces
//!   anything) and belongs to the held task for the rest of the attempt.
//! - **Reads and listings**: `read = "owned"` (the default) reads only the
//!   held task's files (whatever their names: the team file gave them to
//!   it) and refuses a file with more than one hard link;
//!   `read = "root"` reads any regular file under the root except the
//!   built-in deny list ([`DENY_LIST`]: `.git`, `.swarm` and common secret
//!   files, at any depth) unless `read_allow` names it. The coordinator's
//!   own files (state directory, logs, compiled-plugin cache) are out of
//!   reach whatever the scope or `read_allow`; `exclude`d paths too.
//!   Listings show only regular files and directories a read or a listing
//!   could reach; symlinks and names that are not UTF-8 are left out.
//! - **Dry run** ([`overlay`]): with an overlay, writes land in a private
//!   directory outside the root after the same checks against the root;
//!   reads and listings see the overlay over the root.
//! - **Diffs** ([`keep`]): with a keep directory, the first write of a file
//!   in the run first copies the file as it was there (or marks it created),
//!   so the coordinator diffs only what changed.

mod creation;
mod keep;
mod overlay;
mod policy;
mod walk;

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

pub use creation::{CreationRules, Refusal};
pub use keep::{KEEP_WHOLE_UP_TO, Keep, Kept, files_under};
pub use overlay::{Overlay, OverlayError};
pub use policy::{DENY_LIST, Policy, PolicyError, PolicySpec};
pub use walk::Written;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// What a teammate may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadScope {
    /// Only the files of the held task.
    #[default]
    Owned,
    /// Anything under the root, read-only, but the deny list, the
    /// coordinator's files and `exclude`.
    Root,
}

/// Why a file operation was refused (mirrors the WIT `fs-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// Outside what the teammate may touch.
    #[error("denied: {0}")]
    Denied(String),
    /// No such file or directory.
    #[error("not found: {0}")]
    NotFound(String),
    /// Malformed path.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// Over the file size limit (bytes).
    #[error("file is over the file_mib limit of {0} bytes")]
    TooLarge(u64),
    /// Other I/O error.
    #[error("i/o error: {0}")]
    Io(String),
}

/// One directory entry, path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Path relative to the root, `/`-separated.
    pub path: String,
    /// True for a directory.
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u64,
}

/// The task a teammate holds, as a file call needs it.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// The held task's id; `None` without a task.
    pub task: Option<&'a str>,
    /// The files it owns (planned and created), relative, `/`-separated.
    pub owned: &'a BTreeSet<String>,
}

impl Holder<'_> {
    /// No task held.
    pub fn none() -> Holder<'static> {
        static NONE: BTreeSet<String> = BTreeSet::new();
        Holder { task: None, owned: &NONE }
    }
}

/// A teammate's view of the team root.
#[derive(Debug)]
pub struct Workspace {
    root: Dir,
    policy: Arc<Policy>,
    max_file: u64,
    /// Where writes land instead of the root (`--dry-run`).
    overlay: Option<Dir>,
    /// Where files are kept as they were before their first write ([`keep`]).
    keep: Option<Dir>,
}

/// Checks and normalises a guest-supplied relative path. `""` and `.` mean
/// the root itself (returned as an empty path).
pub fn clean_path(raw: &str) -> Result<PathBuf, FsError> {
    let invalid = |why: &str| FsError::InvalidPath(format!("{}: {why}", printable(raw)));
    if raw.len() > MAX_PATH_BYTES {
        return Err(invalid(&format!("longer than {MAX_PATH_BYTES} bytes")));
    }
    if raw.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if raw.contains('\\') {
        return Err(invalid("contains a backslash; use `/`"));
    }
    let mut out = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => {
                if part.len() > MAX_COMPONENT_BYTES {
                    return Err(invalid(&format!("a component is longer than {MAX_COMPONENT_BYTES} bytes")));
                }
                out.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("`..` is not allowed")),
            Component::RootDir | Component::Prefix(_) => return Err(invalid("absolute paths are not allowed")),
        }
    }
    Ok(out)
}

/// [`clean_path`] as a `/`-separated string (`""` for the root).
fn clean(raw: &str) -> Result<String, FsError> {
    let path = clean_path(raw)?;
    Ok(path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/"))
}

/// Renders a guest-supplied string safely for error messages.
fn printable(raw: &str) -> String {
    let mut s: String = raw.chars().take(200).flat_map(char::escape_debug).collect();
    if raw.chars().count() > 200 {
        s.push('…');
    }
    format!("\"{s}\"")
}

impl Workspace {
    /// A workspace over `root` with only a read scope: nothing protected,
    /// no deny-list exceptions, no creation of new files.
    pub fn new(root: Dir, scope: ReadScope, max_file: u64) -> Self {
        Self::with_policy(root, Arc::new(Policy::new(scope)), max_file)
    }

    /// A workspace over `root` under the run's `policy`.
    pub fn with_policy(root: Dir, policy: Arc<Policy>, max_file: u64) -> Self {
        Self { root, policy, max_file, overlay: None, keep: None }
    }

    /// This workspace with its writes going to `overlay` instead of the
    /// root, and its reads and listings seeing them (see [`overlay`]).
    pub fn with_overlay(mut self, overlay: Dir) -> Self {
        self.overlay = Some(overlay);
        self
    }

    /// This workspace keeping every file as it was before its first write
    /// in `keep` (see [`keep`]).
    pub fn with_keep(mut self, keep: Dir) -> Self {
        self.keep = Some(keep);
        self
    }

    /// Opens `path` as the root directory capability.
    pub fn open_root(path: &Path) -> std::io::Result<Dir> {
        Dir::open_ambient_dir(path, cap_std::ambient_authority())
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Reads a whole file.
    pub fn read(&self, raw: &str, holder: &Holder<'_>) -> Result<Vec<u8>, FsError> {
        let rel = clean(raw)?;
        if rel.is_empty() {
            return Err(FsError::InvalidPath(format!("{}: is a directory", printable(raw))));
        }
        self.policy.check_read(&rel, holder.owned)?;
        let no_links = self.policy.scope() == ReadScope::Owned;
        match &self.overlay {
            Some(overlay) => overlay::read(&self.root, overlay, &rel, self.max_file, no_links),
            None => walk::read(&self.root, &rel, self.max_file, no_links),
        }
    }

    /// Writes a whole file: replaces one the held task owns, or creates a
    /// new one its `owns` patterns alone cover (see the module doc). On
    /// [`Written::Created`], the caller adds the path to the held task's
    /// files.
    pub fn write(&self, raw: &str, contents: &[u8], holder: &Holder<'_>) -> Result<Written, FsError> {
        let rel = clean(raw)?;
        if rel.is_empty() {
            return Err(FsError::InvalidPath(format!("{}: is a directory", printable(raw))));
        }
        if contents.len() as u64 > self.max_file {
            return Err(FsError::TooLarge(self.max_file));
        }
        if holder.owned.contains(&rel) {
            self.policy.check_write(&rel)?;
            if let Some(keep) = &self.keep {
                keep::before_write(&self.root, keep, &rel)?;
            }
            return match &self.overlay {
                Some(overlay) => overlay::replace(&self.root, overlay, &rel, contents),
                None => walk::replace(&self.root, &rel, contents),
            };
        }
        self.policy.check_create(&rel, holder.task)?;
        let created = match &self.overlay {
            Some(overlay) => overlay::create(&self.root, overlay, &rel, contents)?,
            None => walk::create(&self.root, &rel, contents)?,
        };
        if let Some(keep) = &self.keep {
            keep::created(keep, &rel)?;
        }
        Ok(created)
    }

    /// Checks a file asked for with `ownership.request-file`: a clean path
    /// to an existing regular file (no symlink) the policy lets a teammate
    /// write once its task owns it. Returns the clean path.
    pub fn check_request(&self, raw: &str) -> Result<String, FsError> {
        let rel = clean(raw)?;
        if rel.is_empty() {
            return Err(FsError::InvalidPath(format!("{}: is a directory", printable(raw))));
        }
        self.policy.check_request(&rel)?;
        match self.root.symlink_metadata(&rel) {
            Ok(m) if m.is_file() => Ok(rel),
            Ok(_) => Err(FsError::Denied(format!("{}: not a regular file", printable(raw)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(FsError::NotFound(format!("{}: only an existing file may be asked for", printable(raw))))
            }
            Err(e) => Err(FsError::Io(e.to_string())),
        }
    }

    /// Lists a directory. With `read = "owned"`, only the held task's files
    /// and the directories leading to them are shown; in any scope, only
    /// what the policy lets a teammate see.
    pub fn list(&self, raw: &str, holder: &Holder<'_>) -> Result<Vec<DirEntry>, FsError> {
        let rel = clean(raw)?;
        self.policy.check_list(&rel, holder.owned)?;
        let found = match &self.overlay {
            Some(overlay) => overlay::list(&self.root, overlay, &rel)?,
            None => walk::list(&self.root, &rel)?,
        };
        let mut out: Vec<DirEntry> = found
            .into_iter()
            .filter_map(|f| {
                let path = if rel.is_empty() { f.name } else { format!("{rel}/{}", f.name) };
                self.policy.visible(&path, f.is_dir, holder.owned).then_some(DirEntry {
                    path,
                    is_dir: f.is_dir,
                    size: f.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Checks the `file` of a finding: it must be a path the held task
    /// could read under the policy (clean, in scope, not denied). Returns
    /// the clean path to report.
    pub fn check_finding(&self, file: &str, holder: &Holder<'_>) -> Result<String, FsError> {
        let rel = clean(file)?;
        if rel.is_empty() {
            return Err(FsError::InvalidPath(format!("{}: a finding must name a file", printable(file))));
        }
        self.policy.check_read(&rel, holder.owned).map(|()| rel)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn setup(scope: ReadScope) -> (tempfile::TempDir, tempfile::TempDir, Workspace) {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("src")).unwrap();
        std::fs::write(root.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(root.path().join("src/b.rs"), "b").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("src/out")).unwrap();
            std::os::unix::fs::symlink("b.rs", root.path().join("src/link")).unwrap();
        }
        let ws = Workspace::new(Workspace::open_root(root.path()).unwrap(), scope, 1024);
        (outside, root, ws)
    }

    /// A workspace over `root` under a policy built from `spec`.
    fn with_spec(root: &Path, scope: ReadScope, spec: &PolicySpec) -> Workspace {
        let policy = Arc::new(Policy::build(root, scope, spec).unwrap());
        Workspace::with_policy(Workspace::open_root(root).unwrap(), policy, 1024)
    }

    fn owned(files: &[&str]) -> BTreeSet<String> {
        files.iter().map(|s| s.to_string()).collect()
    }

    fn holder<'a>(task: &'a str, owned: &'a BTreeSet<String>) -> Holder<'a> {
        Holder { task: Some(task), owned }
    }

    fn creates(tasks: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        tasks.iter().map(|(t, p)| (t.to_string(), p.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_default_read_scope_is_owned() {
        assert_eq!(ReadScope::default(), ReadScope::Owned);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["../x", "/etc/passwd", "src/../../x", "a\0b", "a\\b"] {
            assert!(matches!(clean_path(bad), Err(FsError::InvalidPath(_))), "{bad}");
        }
        assert!(matches!(clean_path(&"a/".repeat(3000)), Err(FsError::InvalidPath(m)) if m.contains("4096")));
        assert!(matches!(clean_path(&"a".repeat(300)), Err(FsError::InvalidPath(m)) if m.contains("255")));
        assert_eq!(clean_path("./src//a.rs").unwrap(), PathBuf::from("src/a.rs"));
    }

    #[test]
    fn writes_only_owned_files_atomically() {
        let (_o, root, ws) = setup(ReadScope::Root);
        let mine = owned(&["src/a.rs", "new/dir/c.rs"]);
        let me = holder("t", &mine);
        assert_eq!(ws.write("src/a.rs", b"new", &me), Ok(Written::Replaced));
        ws.write("new/dir/c.rs", b"c", &me).unwrap();
        assert_eq!(std::fs::read(root.path().join("src/a.rs")).unwrap(), b"new");
        assert!(matches!(ws.write("src/b.rs", b"x", &me), Err(FsError::Denied(_))));
        assert_eq!(std::fs::read(root.path().join("src/b.rs")).unwrap(), b"b");
        assert!(matches!(ws.write("src/a.rs", &[0; 2000], &me), Err(FsError::TooLarge(1024))));
        assert_eq!(names(&root.path().join("src")), ["a.rs", "b.rs", "link", "out"], "no temp files left behind");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_inside_and_out() {
        let (_o, _root, ws) = setup(ReadScope::Root);
        let mine = owned(&["src/out", "src/link"]);
        let me = holder("t", &mine);
        assert!(matches!(ws.read("src/out", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert!(matches!(ws.read("src/link", &me), Err(FsError::Denied(_))));
        assert!(matches!(ws.write("src/link", b"x", &me), Err(FsError::Denied(_))));
        assert!(ws.list("src", &me).unwrap().iter().all(|e| e.path != "src/link"), "symlinks are not listed");
    }

    /// The attack of issue 12: a planted `sub/.c.txt.swarm-tmp -> ../b.txt`
    /// made a write of `sub/c.txt` overwrite `b.txt` (the temp name was
    /// fixed and opened following symlinks), and a plain file of that name
    /// was renamed away.
    #[cfg(unix)]
    #[test]
    fn a_planted_temp_file_symlink_is_never_written_through() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("sub")).unwrap();
        std::fs::create_dir_all(r.join(".git")).unwrap();
        std::fs::write(r.join("sub/c.txt"), "c").unwrap();
        std::fs::write(r.join("sub/d.txt"), "d").unwrap();
        std::fs::write(r.join("b.txt"), "theirs").unwrap();
        std::fs::write(r.join(".git/config"), "[core]").unwrap();
        std::os::unix::fs::symlink("../b.txt", r.join("sub/.c.txt.swarm-tmp")).unwrap();
        std::os::unix::fs::symlink("../.git/config", r.join("sub/.d.txt.swarm-tmp")).unwrap();
        std::fs::write(r.join("sub/.e.txt.swarm-tmp"), "another task's file").unwrap();
        std::fs::write(r.join("sub/e.txt"), "e").unwrap();
        let ws = Workspace::new(Workspace::open_root(r).unwrap(), ReadScope::Owned, 1024);
        let mine = owned(&["sub/c.txt", "sub/d.txt", "sub/e.txt"]);
        for f in ["sub/c.txt", "sub/d.txt", "sub/e.txt"] {
            ws.write(f, b"mine", &holder("t", &mine)).unwrap();
            assert_eq!(std::fs::read(r.join(f)).unwrap(), b"mine");
        }
        assert_eq!(std::fs::read(r.join("b.txt")).unwrap(), b"theirs");
        assert_eq!(std::fs::read(r.join(".git/config")).unwrap(), b"[core]");
        assert_eq!(std::fs::read(r.join("sub/.e.txt.swarm-tmp")).unwrap(), b"another task's file");
        assert_eq!(std::fs::read_link(r.join("sub/.c.txt.swarm-tmp")).unwrap(), Path::new("../b.txt"));
        let left = names(&r.join("sub"));
        assert!(left.iter().all(|n| !n.starts_with(walk::TEMP_PREFIX)), "temp files left: {left:?}");
    }

    #[test]
    fn temp_names_are_fresh_and_unpredictable() {
        let a = walk::temp_name();
        let b = walk::temp_name();
        assert_ne!(a, b);
        assert!(a.starts_with(walk::TEMP_PREFIX) && a.len() == walk::TEMP_PREFIX.len() + 16, "{a}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_parent_directory_is_refused_for_every_operation() {
        let (outside, root, _) = setup(ReadScope::Root);
        std::os::unix::fs::symlink(outside.path(), root.path().join("src/up")).unwrap();
        let spec = PolicySpec { creates: creates(&[("t", &["src/**"])]), ..PolicySpec::default() };
        let ws = with_spec(root.path(), ReadScope::Root, &spec);
        let mine = owned(&["src/up/secret"]);
        let me = holder("t", &mine);
        assert!(matches!(ws.read("src/up/secret", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert!(matches!(ws.write("src/up/secret", b"x", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert!(matches!(ws.write("src/up/new.rs", b"x", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert!(matches!(ws.list("src/up", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert_eq!(names(outside.path()), ["secret"]);
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s3cret");
    }

    #[cfg(unix)]
    #[test]
    fn a_write_keeps_the_targets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let (_o, root, ws) = setup(ReadScope::Owned);
        let script = root.path().join("src/run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mine = owned(&["src/run.sh"]);
        ws.write("src/run.sh", b"#!/bin/sh\necho hi\n", &holder("t", &mine)).unwrap();
        assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(std::fs::read(&script).unwrap(), b"#!/bin/sh\necho hi\n");
    }

    #[cfg(unix)]
    #[test]
    fn hard_linked_files_are_refused_for_writes_and_owned_reads() {
        let (outside, root, ws) = setup(ReadScope::Owned);
        std::fs::hard_link(root.path().join("src/b.rs"), root.path().join("src/twin.rs")).unwrap();
        let mine = owned(&["src/twin.rs", "src/a.rs"]);
        let me = holder("t", &mine);
        let e = ws.write("src/twin.rs", b"x", &me).unwrap_err();
        assert!(matches!(&e, FsError::Denied(m) if m.contains("2 hard links") && m.contains("elsewhere")), "{e}");
        assert_eq!(std::fs::read(root.path().join("src/b.rs")).unwrap(), b"b");
        assert!(matches!(ws.read("src/twin.rs", &me), Err(FsError::Denied(m)) if m.contains("hard links")));
        assert_eq!(ws.read("src/a.rs", &me).unwrap(), b"a");
        // `root` reads what any teammate may read anyway.
        let wide = Workspace::new(Workspace::open_root(root.path()).unwrap(), ReadScope::Root, 1024);
        assert_eq!(wide.read("src/twin.rs", &me).unwrap(), b"b");
        drop(outside);
    }

    #[test]
    fn owned_scope_limits_reads_and_listing() {
        let (_o, _root, ws) = setup(ReadScope::Owned);
        let mine = owned(&["src/a.rs"]);
        let me = holder("t", &mine);
        assert_eq!(ws.read("src/a.rs", &me).unwrap(), b"a");
        assert!(matches!(ws.read("src/b.rs", &me), Err(FsError::Denied(_))));
        let listed: Vec<_> = ws.list("src", &me).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["src/a.rs"]);
        let top: Vec<_> = ws.list("", &me).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(top, ["src"]);
    }

    #[test]
    fn owned_scope_shows_a_directory_only_when_an_owned_file_is_under_it() {
        let (_o, root, ws) = setup(ReadScope::Owned);
        for dir in ["src-a", "src2"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join("x.rs"), "x").unwrap();
        }
        // `src-a/..` sorts before `src/` and `src2/..` after it: neither
        // makes `src` visible.
        let mine = owned(&["src-a/x.rs", "src2/x.rs"]);
        let me = holder("t", &mine);
        let mut top: Vec<_> = ws.list("", &me).unwrap().into_iter().map(|e| e.path).collect();
        top.sort();
        assert_eq!(top, ["src-a", "src2"]);
        assert!(matches!(ws.list("src", &me), Err(FsError::Denied(_))));
    }

    #[test]
    fn root_scope_reads_anything_under_root_but_the_deny_list() {
        let (_o, root, ws) = setup(ReadScope::Root);
        let none = Holder::none();
        assert_eq!(ws.read("src/b.rs", &none).unwrap(), b"b");
        assert!(matches!(ws.read("missing", &none), Err(FsError::NotFound(_))));
        std::fs::create_dir_all(root.path().join(".git")).unwrap();
        std::fs::write(root.path().join(".git/config"), "[remote]").unwrap();
        std::fs::write(root.path().join(".env"), "TOKEN=x").unwrap();
        std::fs::write(root.path().join("src/server.key"), "k").unwrap();
        for denied in [".git/config", ".env", "src/server.key"] {
            assert!(matches!(ws.read(denied, &none), Err(FsError::Denied(m)) if m.contains("read_allow")), "{denied}");
        }
        assert!(matches!(ws.list(".git", &none), Err(FsError::Denied(_))));
        let top: Vec<_> = ws.list("", &none).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(top, ["src"], ".git and .env are not listed");
        let src: Vec<_> = ws.list("src", &none).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(src, ["src/a.rs", "src/b.rs"], "neither the key nor symlinks are listed");
        let spec = PolicySpec { read_allow: vec![".git/config".into(), ".env".into()], ..PolicySpec::default() };
        let allowed = with_spec(root.path(), ReadScope::Root, &spec);
        assert_eq!(allowed.read(".git/config", &none).unwrap(), b"[remote]");
        assert_eq!(allowed.read(".env", &none).unwrap(), b"TOKEN=x");
        let git: Vec<_> = allowed.list(".git", &none).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(git, [".git/config"]);
    }

    #[test]
    fn the_coordinators_files_are_out_of_reach() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("state/team/logs")).unwrap();
        std::fs::write(r.join("state/team/tasks.json"), "{}").unwrap();
        std::fs::write(r.join("state/team/logs/a.log"), "log").unwrap();
        std::fs::create_dir_all(r.join("cache")).unwrap();
        std::fs::write(r.join("cache/x.bin"), "code").unwrap();
        let spec = PolicySpec {
            read_allow: vec!["**".into()],
            protected: vec![r.join("state/team"), r.join("cache")],
            creates: creates(&[("t", &["**"])]),
            ..PolicySpec::default()
        };
        let ws = with_spec(r, ReadScope::Root, &spec);
        let mine = owned(&["state/team/tasks.json", "cache/x.bin"]);
        let me = holder("t", &mine);
        for f in ["state/team/tasks.json", "state/team/logs/a.log", "cache/x.bin"] {
            assert!(matches!(ws.read(f, &me), Err(FsError::Denied(m)) if m.contains("coordinator")), "{f}");
        }
        for f in ["state/team/tasks.json", "cache/x.bin", "state/team/new.json", "cache/new"] {
            assert!(matches!(ws.write(f, b"x", &me), Err(FsError::Denied(m)) if m.contains("coordinator")), "{f}");
        }
        assert!(matches!(ws.list("state/team", &me), Err(FsError::Denied(_))));
        assert!(matches!(ws.list("cache", &me), Err(FsError::Denied(_))));
        let top: Vec<_> = ws.list("", &me).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(top, ["state"]);
        assert!(ws.list("state", &me).unwrap().is_empty());
        assert_eq!(std::fs::read(r.join("state/team/tasks.json")).unwrap(), b"{}");
        assert_eq!(names(&r.join("state/team")), ["logs", "tasks.json"]);
    }

    #[test]
    fn a_new_file_one_tasks_patterns_alone_cover_is_created_and_owned() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("src/parser")).unwrap();
        std::fs::write(r.join("src/parser/mod.rs"), "mod").unwrap();
        let spec = PolicySpec {
            creates: creates(&[("parser", &["src/parser/**"]), ("gen", &["src/**/gen_*.rs"])]),
            ..PolicySpec::default()
        };
        let ws = with_spec(r, ReadScope::Owned, &spec);
        let mine = owned(&["src/parser/mod.rs"]);
        let me = holder("parser", &mine);
        assert_eq!(
            ws.write("src/parser/lexer/token.rs", b"tok", &me),
            Ok(Written::Created("src/parser/lexer/token.rs".into()))
        );
        assert_eq!(std::fs::read(r.join("src/parser/lexer/token.rs")).unwrap(), b"tok");
        // Two tasks could own it: refused, naming both.
        let e = ws.write("src/parser/gen_x.rs", b"x", &me).unwrap_err();
        assert!(matches!(&e, FsError::Denied(m) if m.contains("`parser`") && m.contains("`gen`")), "{e}");
        assert!(!r.join("src/parser/gen_x.rs").exists());
        // Another task's area, and an existing file it does not own.
        assert!(matches!(ws.write("src/main.rs", b"x", &me), Err(FsError::Denied(m)) if m.contains("`owns`")));
        std::fs::write(r.join("src/parser/old.rs"), "old").unwrap();
        let e = ws.write("src/parser/old.rs", b"x", &me).unwrap_err();
        assert!(matches!(&e, FsError::Denied(m) if m.contains("exists")), "{e}");
        assert_eq!(std::fs::read(r.join("src/parser/old.rs")).unwrap(), b"old");
        // Without a task, nothing is created.
        assert!(ws.write("src/parser/y.rs", b"y", &Holder::none()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn creation_never_goes_through_a_symlink_or_replaces_one() {
        let (outside, root, _) = setup(ReadScope::Owned);
        let r = root.path();
        std::os::unix::fs::symlink(outside.path().join("planted"), r.join("src/dangling")).unwrap();
        let spec = PolicySpec { creates: creates(&[("t", &["src/**"])]), ..PolicySpec::default() };
        let ws = with_spec(r, ReadScope::Owned, &spec);
        let mine = owned(&[]);
        assert!(matches!(ws.write("src/dangling", b"x", &holder("t", &mine)), Err(FsError::Denied(_))));
        assert!(matches!(ws.write("src/out", b"x", &holder("t", &mine)), Err(FsError::Denied(_))));
        assert!(!outside.path().join("planted").exists());
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s3cret");
    }

    #[test]
    fn a_finding_must_name_a_file_the_task_could_read() {
        let (_o, root, _) = setup(ReadScope::Owned);
        let spec = PolicySpec { protected: vec![root.path().join(".swarm")], ..PolicySpec::default() };
        let ws = with_spec(root.path(), ReadScope::Owned, &spec);
        let mine = owned(&["src/a.rs"]);
        let me = holder("t", &mine);
        assert_eq!(ws.check_finding("./src//a.rs", &me), Ok("src/a.rs".to_string()));
        for bad in ["src/b.rs", "../x", "/etc/passwd", "", ".git/config", ".swarm/t/tasks.json"] {
            assert!(ws.check_finding(bad, &me).is_err(), "{bad}");
        }
        let wide = with_spec(root.path(), ReadScope::Root, &spec);
        assert_eq!(wide.check_finding("src/b.rs", &me), Ok("src/b.rs".to_string()));
        assert!(wide.check_finding(".env", &me).is_err());
    }
}
