//! Files as one blob: the workspace snapshot a worker runs a task against,
//! and the writes it returns. The format is a magic line, then per file
//! its `/`-separated relative path and its bytes, each length-prefixed
//! (little-endian `u32` and `u64`); paths are cleaned on unpacking exactly
//! as a guest's path is ([`clean_path`]): no `..`, no absolute path.
//!
//! The snapshot holds what a teammate of the run could read and nothing
//! else: files the run's policy lets a task read (with `read = "owned"`,
//! the tasks' own files; with `read = "root"`, the tree but the deny list,
//! `exclude` and the coordinator's files). Symlinks are left out; so are
//! files with more than one hard link under `read = "owned"`, which a
//! local read refuses too.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;

use crate::sandbox::ReadScope;
use crate::sandbox::workspace::{Policy, clean_path};

const MAGIC: &[u8] = b"swarm-tree 1\n";

/// Files: relative path and contents.
pub type Files = Vec<(String, Vec<u8>)>;

/// Why files could not be packed, read or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The blob is not a packed tree.
    #[error("not a packed file tree: {0}")]
    Format(String),
    /// A packed path is not a clean relative path.
    #[error("packed path refused: {0}")]
    Path(String),
    /// More than `limit` bytes.
    #[error("the files come to more than {limit} bytes (the object store's blob limit)")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// An I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Packs `files`; refused when over `limit` bytes.
pub fn pack(files: &[(String, Vec<u8>)], limit: usize) -> Result<Vec<u8>, TreeError> {
    let mut out = MAGIC.to_vec();
    for (path, bytes) in files {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
        if out.len() > limit {
            return Err(TreeError::TooLarge { limit });
        }
    }
    Ok(out)
}

/// The next `n` bytes of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], TreeError> {
    if rest.len() < n {
        return Err(TreeError::Format("truncated".into()));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// Unpacks a blob made by [`pack`]; every path is cleaned.
pub fn unpack(blob: &[u8]) -> Result<Files, TreeError> {
    let mut rest = blob.strip_prefix(MAGIC).ok_or_else(|| TreeError::Format("no magic line".into()))?;
    let mut files = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().expect("4 bytes")) as usize;
        let path =
            String::from_utf8(take(&mut rest, len)?.to_vec()).map_err(|_| TreeError::Path("not UTF-8".into()))?;
        let clean = clean_path(&path).map_err(|e| TreeError::Path(e.to_string()))?;
        if clean.as_os_str().is_empty() {
            return Err(TreeError::Path(format!("`{path}` names no file")));
        }
        let size = u64::from_le_bytes(take(&mut rest, 8)?.try_into().expect("8 bytes"));
        let size = usize::try_from(size).map_err(|_| TreeError::Format("file size overflows".into()))?;
        files.push((path, take(&mut rest, size)?.to_vec()));
    }
    Ok(files)
}

/// The files under `root` a task of the run may read under `policy`
/// (`owned`: every task's files), sorted by path; at most `limit` bytes.
pub fn snapshot(root: &Path, policy: &Policy, owned: &BTreeSet<String>, limit: usize) -> Result<Files, TreeError> {
    let io = |path: &Path, source| TreeError::Io { path: path.display().to_string(), source };
    let rel_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    };
    let mut files = Vec::new();
    let mut total = 0usize;
    let walk = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let walk = walk.filter_entry(|e| {
        e.depth() == 0
            || !e.file_type().is_dir()
            || rel_of(e.path()).is_some_and(|r| policy.check_list(&r, owned).is_ok())
    });
    for entry in walk {
        let entry = entry.map_err(|e| TreeError::Io {
            path: e.path().map_or_else(|| root.display().to_string(), |p| p.display().to_string()),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk failed")),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(rel) = rel_of(entry.path()) else { continue };
        if policy.check_read(&rel, owned).is_err() {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| io(entry.path(), e.into_io_error().unwrap_or_else(|| std::io::Error::other("stat"))))?;
        #[cfg(unix)]
        if policy.scope() == ReadScope::Owned && std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
            continue;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::fs::File::open(entry.path())
            .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| io(entry.path(), e))?;
        total += bytes.len() + rel.len() + 12;
        if total > limit {
            return Err(TreeError::TooLarge { limit });
        }
        files.push((rel, bytes));
    }
    Ok(files)
}

/// Writes `files` under the directory `dir` (which must exist).
pub fn materialize(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), TreeError> {
    for (path, bytes) in files {
        let clean = clean_path(path).map_err(|e| TreeError::Path(e.to_string()))?;
        let target = dir.join(clean);
        let io = |source| TreeError::Io { path: path.clone(), source };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&target, bytes).map_err(io)?;
    }
    Ok(())
}

/// Every regular file under `dir`, sorted by path (what a task wrote to
/// its overlay).
pub fn collect(dir: &Path) -> Result<Files, TreeError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| TreeError::Io {
            path: dir.display().to_string(),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk failed")),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("under dir");
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        let Some(parts) = parts else { continue };
        let bytes = std::fs::read(entry.path())
            .map_err(|source| TreeError::Io { path: entry.path().display().to_string(), source })?;
        files.push((parts.join("/"), bytes));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_files_come_back_and_bad_paths_are_refused() {
        let files = vec![("a/b.txt".to_string(), b"hi".to_vec()), ("c".to_string(), vec![0, 1, 2])];
        let blob = pack(&files, 1 << 20).unwrap();
        assert_eq!(unpack(&blob).unwrap(), files);
        let evil = pack(&[("../etc/passwd".to_string(), b"x".to_vec())], 1 << 20).unwrap();
        assert!(matches!(unpack(&evil), Err(TreeError::Path(_))));
        let abs = pack(&[("/etc/passwd".to_string(), b"x".to_vec())], 1 << 20).unwrap();
        assert!(matches!(unpack(&abs), Err(TreeError::Path(_))));
        assert!(matches!(unpack(b"nope"), Err(TreeError::Format(_))));
        assert!(matches!(unpack(&blob[..blob.len() - 1]), Err(TreeError::Format(_))), "a truncated blob");
        assert!(matches!(pack(&files, 8), Err(TreeError::TooLarge { limit: 8 })));
    }

    #[test]
    fn the_snapshot_leaves_out_what_no_task_may_read() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("src")).unwrap();
        std::fs::write(root.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(root.path().join(".env"), "KEY=1").unwrap();
        std::fs::create_dir_all(root.path().join(".git")).unwrap();
        std::fs::write(root.path().join(".git/config"), "x").unwrap();
        let policy = Policy::build(root.path(), ReadScope::Root, &Default::default()).unwrap();
        let files = snapshot(root.path(), &policy, &BTreeSet::new(), 1 << 20).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["src/a.rs"]);
        let owned_only = Policy::build(root.path(), ReadScope::Owned, &Default::default()).unwrap();
        assert!(snapshot(root.path(), &owned_only, &BTreeSet::new(), 1 << 20).unwrap().is_empty());
    }
}
