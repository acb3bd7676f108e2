//! The workspace capability: file access for one teammate, on a cap-std
//! directory handle for the team root, never on ambient paths.
//!
//! Writes go only to files the held task owns; reads go to the task's own
//! files or, if the team file says so, anywhere under the root read-only.
//! Paths must be relative, without `..`, NUL bytes or over-long components;
//! symlinks are never followed (cap-std already refuses any that lead out of
//! the root; we also refuse those that stay inside, so ownership checks on
//! the path text cannot be bypassed through a link).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// What a teammate may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadScope {
    /// Only the files of the held task.
    Owned,
    /// Anything under the root, read-only.
    #[default]
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

/// A teammate's view of the team root.
#[derive(Debug)]
pub struct Workspace {
    root: Dir,
    scope: ReadScope,
    max_file: u64,
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

/// Renders a guest-supplied string safely for error messages.
fn printable(raw: &str) -> String {
    let mut s: String = raw.chars().take(200).flat_map(char::escape_debug).collect();
    if raw.chars().count() > 200 {
        s.push('…');
    }
    format!("\"{s}\"")
}

fn rel_string(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

fn io_error(path: &Path, e: std::io::Error) -> FsError {
    let p = rel_string(path);
    match e.kind() {
        std::io::ErrorKind::NotFound => FsError::NotFound(p),
        std::io::ErrorKind::PermissionDenied => FsError::Denied(format!("{p}: {e}")),
        _ => FsError::Io(format!("{p}: {e}")),
    }
}

impl Workspace {
    /// A workspace over `root` (already opened as a capability).
    pub fn new(root: Dir, scope: ReadScope, max_file: u64) -> Self {
        Self { root, scope, max_file }
    }

    /// Opens `path` as the root directory capability.
    pub fn open_root(path: &Path) -> std::io::Result<Dir> {
        Dir::open_ambient_dir(path, cap_std::ambient_authority())
    }

    /// Refuses `path` if it or any of its ancestors is a symlink.
    fn refuse_symlinks(&self, path: &Path) -> Result<(), FsError> {
        let mut prefix = PathBuf::new();
        for part in path.components() {
            prefix.push(part);
            match self.root.symlink_metadata(&prefix) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(FsError::Denied(format!("{}: symlinks are not followed", rel_string(&prefix))));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(&prefix, e)),
            }
        }
        Ok(())
    }

    fn may_read(&self, path: &Path, owned: &BTreeSet<String>) -> Result<(), FsError> {
        match self.scope {
            ReadScope::Root => Ok(()),
            ReadScope::Owned if owned.contains(&rel_string(path)) => Ok(()),
            ReadScope::Owned => Err(FsError::Denied(format!(
                "{}: reads are limited to the held task's files (read = \"owned\")",
                rel_string(path)
            ))),
        }
    }

    /// Reads a whole file.
    pub fn read(&self, raw: &str, owned: &BTreeSet<String>) -> Result<Vec<u8>, FsError> {
        let path = clean_path(raw)?;
        self.may_read(&path, owned)?;
        self.refuse_symlinks(&path)?;
        let file = self.root.open(&path).map_err(|e| io_error(&path, e))?;
        let meta = file.metadata().map_err(|e| io_error(&path, e))?;
        if meta.is_dir() {
            return Err(FsError::InvalidPath(format!("{}: is a directory", rel_string(&path))));
        }
        if meta.len() > self.max_file {
            return Err(FsError::TooLarge(self.max_file));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        // `take` guards against a file that grows between stat and read.
        file.take(self.max_file + 1).read_to_end(&mut buf).map_err(|e| io_error(&path, e))?;
        if buf.len() as u64 > self.max_file {
            return Err(FsError::TooLarge(self.max_file));
        }
        Ok(buf)
    }

    /// Writes a whole file the held task owns, atomically (temp file in the
    /// same directory, then rename), creating parent directories.
    pub fn write(&self, raw: &str, contents: &[u8], owned: &BTreeSet<String>) -> Result<(), FsError> {
        let path = clean_path(raw)?;
        let rel = rel_string(&path);
        if !owned.contains(&rel) {
            return Err(FsError::Denied(format!("{}: not owned by the held task", printable(raw))));
        }
        if contents.len() as u64 > self.max_file {
            return Err(FsError::TooLarge(self.max_file));
        }
        self.refuse_symlinks(&path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.root.create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.swarm-tmp"));
        self.root.write(&tmp, contents).map_err(|e| io_error(&path, e))?;
        self.root.rename(&tmp, &self.root, &path).map_err(|e| {
            let _ = self.root.remove_file(&tmp);
            io_error(&path, e)
        })
    }

    /// Lists a directory. With `read = "owned"`, only the held task's files
    /// and the directories leading to them are shown.
    pub fn list(&self, raw: &str, owned: &BTreeSet<String>) -> Result<Vec<DirEntry>, FsError> {
        let path = clean_path(raw)?;
        self.refuse_symlinks(&path)?;
        let prefix = rel_string(&path);
        let visible = |rel: &str, is_dir: bool| match self.scope {
            ReadScope::Root => true,
            // The owned set is sorted: the first entry at or after `rel/`
            // is under `rel/` if any is.
            ReadScope::Owned if is_dir => {
                let under = format!("{rel}/");
                owned.range(under.clone()..).next().is_some_and(|o| o.starts_with(&under))
            }
            ReadScope::Owned => owned.contains(rel),
        };
        if self.scope == ReadScope::Owned && !prefix.is_empty() && !visible(&prefix, true) {
            return Err(FsError::Denied(format!("{prefix}: holds none of the held task's files")));
        }
        let entries = if prefix.is_empty() { self.root.entries() } else { self.root.read_dir(&path) }
            .map_err(|e| io_error(&path, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let meta = entry.metadata().map_err(|e| io_error(&path, e))?;
            let is_dir = meta.is_dir();
            if visible(&rel, is_dir) {
                out.push(DirEntry { path: rel, is_dir, size: if is_dir { 0 } else { meta.len() } });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
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

    fn owned(files: &[&str]) -> BTreeSet<String> {
        files.iter().map(|s| s.to_string()).collect()
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
        ws.write("src/a.rs", b"new", &mine).unwrap();
        ws.write("new/dir/c.rs", b"c", &mine).unwrap();
        assert_eq!(std::fs::read(root.path().join("src/a.rs")).unwrap(), b"new");
        assert!(matches!(ws.write("src/b.rs", b"x", &mine), Err(FsError::Denied(_))));
        assert_eq!(std::fs::read(root.path().join("src/b.rs")).unwrap(), b"b");
        assert!(matches!(ws.write("src/a.rs", &[0; 2000], &mine), Err(FsError::TooLarge(1024))));
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("src")).unwrap().collect();
        assert_eq!(leftovers.len(), 4, "no temp files left behind");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_inside_and_out() {
        let (_o, _root, ws) = setup(ReadScope::Root);
        let mine = owned(&["src/out", "src/link"]);
        assert!(matches!(ws.read("src/out", &mine), Err(FsError::Denied(_))));
        assert!(matches!(ws.read("src/link", &mine), Err(FsError::Denied(_))));
        assert!(matches!(ws.write("src/link", b"x", &mine), Err(FsError::Denied(_))));
    }

    #[test]
    fn owned_scope_limits_reads_and_listing() {
        let (_o, _root, ws) = setup(ReadScope::Owned);
        let mine = owned(&["src/a.rs"]);
        assert_eq!(ws.read("src/a.rs", &mine).unwrap(), b"a");
        assert!(matches!(ws.read("src/b.rs", &mine), Err(FsError::Denied(_))));
        let listed: Vec<_> = ws.list("src", &mine).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["src/a.rs"]);
        let top: Vec<_> = ws.list("", &mine).unwrap().into_iter().map(|e| e.path).collect();
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
        let mut top: Vec<_> = ws.list("", &mine).unwrap().into_iter().map(|e| e.path).collect();
        top.sort();
        assert_eq!(top, ["src-a", "src2"]);
        assert!(matches!(ws.list("src", &mine), Err(FsError::Denied(_))));
    }

    #[test]
    fn root_scope_reads_anything_under_root() {
        let (_o, _root, ws) = setup(ReadScope::Root);
        assert_eq!(ws.read("src/b.rs", &owned(&[])).unwrap(), b"b");
        assert!(matches!(ws.read("missing", &owned(&[])), Err(FsError::NotFound(_))));
    }
}
