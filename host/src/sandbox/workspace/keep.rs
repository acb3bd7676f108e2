//! The "before" side of the report's diffs, kept as the run goes: a
//! private directory outside the root (owner-only, removed when the run is
//! over) where the workspace copies a file's contents just before its
//! first replacement in the run, and leaves an empty marker for each file
//! a task creates. The coordinator then diffs only the files named there
//! ([`crate::coordinator::changes`]) and reads nothing before the run: a
//! team that changes nothing costs nothing.
//!
//! `before/<path>` holds a replaced file's contents as they were when the
//! run first wrote it; `created/<path>` marks a file that did not exist.
//! Both are written once: a copy is made under a temp name and linked into
//! place, so the first write of a file wins (a later write, a retry of the
//! task, or a teammate process killed half-way through a copy never
//! changes what was kept). A copy that fails fails the write, naming why:
//! a change the report could not show is not made.

use std::path::{Path, PathBuf};

use std::io::Write as _;

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest as _, Sha256};

use super::overlay::{OverlayError, private_dir};
use super::walk;
use super::{FsError, printable};

/// Subdirectory of replaced files' contents before the run.
const BEFORE: &str = "before";
/// Subdirectory of markers of created files.
const CREATED: &str = "created";
/// Subdirectory of copies being made.
const COPYING: &str = "copying";
/// Subdirectory of the sha256 of replaced files too large to keep whole.
const DIGESTS: &str = "digests";

/// Largest file kept whole before its first write; a larger one is kept as
/// its sha256 only (the report then says that it changed, without a diff).
/// The report's diff limit is the same.
pub const KEEP_WHOLE_UP_TO: u64 = 1024 * 1024;

/// How a replaced file was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Its contents before the run, at this path.
    Whole(PathBuf),
    /// Only the sha256 of its contents (it was over [`KEEP_WHOLE_UP_TO`]).
    Digest([u8; 32]),
}

/// The keep directory of one run; removed on drop.
#[derive(Debug)]
pub struct Keep {
    path: PathBuf,
}

impl Keep {
    /// Creates a fresh owner-only directory in the system temp directory,
    /// which must not be under `root`.
    pub fn create(root: &Path) -> Result<Self, OverlayError> {
        Ok(Self { path: private_dir(root, "swarm-before", "the report's diffs")? })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Files replaced in the run (relative, `/`-separated, sorted) and
    /// how each was kept.
    pub fn replaced(&self) -> Vec<(String, Kept)> {
        let whole = self.path.join(BEFORE);
        let mut out: Vec<(String, Kept)> = files_under(&whole)
            .into_iter()
            .map(|rel| {
                let at = whole.join(&rel);
                (rel, Kept::Whole(at))
            })
            .collect();
        let digests = self.path.join(DIGESTS);
        for rel in files_under(&digests) {
            match std::fs::read(digests.join(&rel)).map(<[u8; 32]>::try_from) {
                Ok(Ok(digest)) => out.push((rel, Kept::Digest(digest))),
                _ => {
                    tracing::warn!(file = %rel, "the kept digest of a large file is unreadable; left out of the diffs")
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Files created in the run (relative, `/`-separated, sorted).
    pub fn created(&self) -> Vec<String> {
        files_under(&self.path.join(CREATED))
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove the diffs' keep directory {}: {e}", self.path.display());
        }
    }
}

/// Keeps `rel` as it is under `root` before a write to it: its contents if
/// it is a file (its sha256 if it is over [`KEEP_WHOLE_UP_TO`]), a created
/// marker if nothing is there. Only the first call for a path keeps
/// anything: a file the run created or already wrote is kept already.
pub(super) fn before_write(root: &Dir, keep: &Dir, rel: &str) -> Result<(), FsError> {
    if kept(keep, rel) {
        return Ok(());
    }
    let (parts, name) = walk::split(rel);
    let source = match walk::open_dir(root, &parts, false) {
        Err(FsError::NotFound(_)) => None,
        Err(e) => return Err(e),
        Ok(dir) => match dir.symlink_metadata(name) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            _ => {
                // Not a FIFO (an open would block) nor a directory.
                walk::expect_file(&dir, name, rel)?;
                let file = dir
                    .open_with(name, OpenOptions::new().read(true).follow(FollowSymlinks::No))
                    .map_err(|e| walk::refused(&dir, name, rel, e))?;
                Some(file.into_std())
            }
        },
    };
    let Some(mut file) = source else { return created(keep, rel) };
    let len = file.metadata().map_err(|e| walk::io_error(rel, e))?.len();
    if len <= KEEP_WHOLE_UP_TO {
        return place(keep, BEFORE, rel, |out| std::io::copy(&mut file, out).map(drop));
    }
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| walk::io_error(rel, e))?;
    let digest: [u8; 32] = hasher.finalize().into();
    place(keep, DIGESTS, rel, |out| out.write_all(&digest))
}

/// Whether `rel` is kept already, in any form.
fn kept(keep: &Dir, rel: &str) -> bool {
    let (parts, name) = walk::split(rel);
    [BEFORE, DIGESTS, CREATED].into_iter().any(|side| {
        let mut path = vec![side];
        path.extend(&parts);
        walk::open_dir(keep, &path, false).is_ok_and(|dir| dir.symlink_metadata(name).is_ok())
    })
}

/// Marks `rel` as created in the run.
pub(super) fn created(keep: &Dir, rel: &str) -> Result<(), FsError> {
    place(keep, CREATED, rel, |_| Ok(()))
}

/// Writes `keep/<side>/<rel>` with `fill` unless it exists: under a temp
/// name in `keep/copying`, then linked into place (the first link wins).
fn place(
    keep: &Dir,
    side: &str,
    rel: &str,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), FsError> {
    let failed = |e: std::io::Error| {
        FsError::Io(format!("{}: cannot keep it for the report's diff, so it is not written: {e}", printable(rel)))
    };
    let (mut parts, name) = walk::split(rel);
    parts.insert(0, side);
    let dir = walk::open_dir(keep, &parts, true)?;
    if dir.symlink_metadata(name).is_ok() {
        return Ok(());
    }
    let copying = walk::open_dir(keep, &[COPYING], true)?;
    let tmp = walk::temp_name();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).follow(FollowSymlinks::No);
    let mut file = copying.open_with(&tmp, &options).map_err(failed)?.into_std();
    let linked = fill(&mut file).and_then(|()| file.sync_all()).and_then(|()| copying.hard_link(&tmp, &dir, name));
    let _ = copying.remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

/// Every regular file under `dir` (symlinks not followed), relative and
/// `/`-separated, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(parts?.join("/"))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use super::super::{Holder, Policy, PolicySpec, ReadScope, Workspace, Written};
    use super::*;

    fn workspace(root: &Path, keep: &Keep) -> Workspace {
        let creates: BTreeMap<String, Vec<String>> = [("t".to_string(), vec!["src/**".to_string()])].into();
        let spec = PolicySpec { creates, ..PolicySpec::default() };
        let policy = Arc::new(Policy::build(root, ReadScope::Owned, &spec).unwrap());
        Workspace::with_policy(Workspace::open_root(root).unwrap(), policy, 1024)
            .with_keep(Workspace::open_root(keep.path()).unwrap())
    }

    #[test]
    fn the_first_write_keeps_the_file_as_it_was_and_a_creation_leaves_a_marker() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("src")).unwrap();
        std::fs::write(r.join("src/a.rs"), "original\n").unwrap();
        std::fs::write(r.join("src/b.rs"), "untouched\n").unwrap();
        let keep = Keep::create(r).unwrap();
        let ws = workspace(r, &keep);
        let mine: BTreeSet<String> = ["src/a.rs", "src/b.rs", "src/missing.rs"].map(String::from).into();
        let me = Holder { task: Some("t"), owned: &mine };

        assert_eq!(ws.write("src/a.rs", b"first\n", &me), Ok(Written::Replaced));
        assert_eq!(ws.write("src/a.rs", b"second\n", &me), Ok(Written::Replaced));
        assert_eq!(ws.write("src/gen/c.rs", b"c\n", &me), Ok(Written::Created("src/gen/c.rs".into())));
        // An owned file that did not exist is created by its first write.
        assert_eq!(ws.write("src/missing.rs", b"m\n", &me), Ok(Written::Replaced));

        // A file the run created, written again (the task owns it now), is
        // still only created.
        let mut now = mine.clone();
        now.insert("src/gen/c.rs".into());
        assert_eq!(ws.write("src/gen/c.rs", b"c2\n", &Holder { task: Some("t"), owned: &now }), Ok(Written::Replaced));

        let before = keep.path().join(BEFORE).join("src/a.rs");
        assert_eq!(keep.replaced(), [("src/a.rs".to_string(), Kept::Whole(before.clone()))], "kept once");
        assert_eq!(std::fs::read_to_string(before).unwrap(), "original\n");
        assert_eq!(keep.created(), ["src/gen/c.rs", "src/missing.rs"]);
        assert_eq!(std::fs::read_to_string(r.join("src/a.rs")).unwrap(), "second\n");
        let left: Vec<_> = std::fs::read_dir(keep.path().join(COPYING)).unwrap().collect();
        assert!(left.is_empty(), "no copy is left half-made: {left:?}");
    }

    #[test]
    fn a_partial_copy_from_a_killed_writer_is_never_taken_for_the_before() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.txt"), "original\n").unwrap();
        let keep = Keep::create(root.path()).unwrap();
        let dir = Workspace::open_root(keep.path()).unwrap();
        // A copy cut off half-way (its process was killed) stays under its
        // temp name; the next writer keeps the whole file.
        std::fs::create_dir_all(keep.path().join(COPYING)).unwrap();
        std::fs::write(keep.path().join(COPYING).join(walk::temp_name()), "orig").unwrap();
        before_write(&Workspace::open_root(root.path()).unwrap(), &dir, "a.txt").unwrap();
        let before = keep.path().join(BEFORE).join("a.txt");
        assert_eq!(std::fs::read_to_string(&before).unwrap(), "original\n");
        assert_eq!(keep.replaced(), [("a.txt".to_string(), Kept::Whole(before))], "the cut-off copy is not kept");
    }

    #[test]
    fn a_file_over_the_limit_is_kept_as_its_digest_and_a_later_write_keeps_nothing_more() {
        let root = tempfile::tempdir().unwrap();
        let big = vec![b'x'; KEEP_WHOLE_UP_TO as usize + 1];
        std::fs::write(root.path().join("big.txt"), &big).unwrap();
        let keep = Keep::create(root.path()).unwrap();
        let (r, dir) = (Workspace::open_root(root.path()).unwrap(), Workspace::open_root(keep.path()).unwrap());
        before_write(&r, &dir, "big.txt").unwrap();
        // The file is small now; its next write must not keep it again.
        std::fs::write(root.path().join("big.txt"), "small\n").unwrap();
        before_write(&r, &dir, "big.txt").unwrap();
        let digest: [u8; 32] = Sha256::digest(&big).into();
        assert_eq!(keep.replaced(), [("big.txt".to_string(), Kept::Digest(digest))]);
        assert!(!keep.path().join(BEFORE).join("big.txt").exists(), "not copied whole");
    }

    #[test]
    fn the_keep_directory_is_private_and_removed_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let keep = Keep::create(root.path()).unwrap();
        let path = keep.path().to_path_buf();
        assert!(!path.starts_with(root.path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        }
        drop(keep);
        assert!(!path.exists());
    }
}
