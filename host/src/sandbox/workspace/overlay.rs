//! The `--dry-run` overlay: a private directory outside the root (created
//! owner-only, removed when the run is over) where every write of a dry
//! run lands instead of the root, which no teammate call then changes.
//!
//! Reads look in the overlay first, then in the root, so a teammate sees
//! its own changes; listings merge both. A write is first checked against
//! the root exactly as a real write would be (a symlink, a file with more
//! than one hard link, a new file's path that exists: refused alike), then
//! made in the overlay with the same no-follow walk, so a dry run refuses
//! what a real run refuses and nothing more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use super::walk::{self, Found, Written};
use super::{FsError, printable};

/// Why a run's private directory (the `--dry-run` overlay, the diffs'
/// [`super::Keep`]) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The temp directory is under the root: the directory would be visible
    /// (and writable) to teammates.
    #[error(
        "the temp directory {tmp} is under the workspace root; set TMPDIR to a directory outside the root for {purpose}"
    )]
    UnderRoot {
        /// The temp directory.
        tmp: PathBuf,
        /// What the directory was for.
        purpose: &'static str,
    },
    /// The directory could not be created or opened.
    #[error("cannot create the directory for {purpose} in {path}: {source}")]
    Io {
        /// What the directory was for.
        purpose: &'static str,
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The overlay directory of one dry run; removed on drop.
#[derive(Debug)]
pub struct Overlay {
    path: PathBuf,
}

impl Overlay {
    /// Creates a fresh owner-only directory in the system temp directory,
    /// which must not be under `root`.
    pub fn create(root: &Path) -> Result<Self, OverlayError> {
        Ok(Self { path: private_dir(root, "swarm-dry-run", "--dry-run")? })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove the --dry-run overlay {}: {e}", self.path.display());
        }
    }
}

/// A fresh owner-only directory named `<prefix><random>` in the system temp
/// directory, which must not be under `root` (teammates would reach it);
/// `purpose` names it in errors.
pub(super) fn private_dir(root: &Path, prefix: &str, purpose: &'static str) -> Result<PathBuf, OverlayError> {
    let tmp = std::env::temp_dir();
    let io = |path: &Path, source| OverlayError::Io { purpose, path: path.to_path_buf(), source };
    let (real_tmp, real_root) = (tmp.canonicalize().map_err(|e| io(&tmp, e))?, root.canonicalize());
    if real_root.is_ok_and(|r| real_tmp.starts_with(r)) {
        return Err(OverlayError::UnderRoot { tmp, purpose });
    }
    let path = real_tmp.join(format!("{prefix}{}", walk::temp_name()));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&path).map_err(|e| io(&path, e))?;
    Ok(path)
}

/// Reads `rel` from the overlay if it has it, else from the root.
pub(super) fn read(root: &Dir, overlay: &Dir, rel: &str, max: u64, no_links: bool) -> Result<Vec<u8>, FsError> {
    match walk::read(overlay, rel, max, no_links) {
        Err(FsError::NotFound(_)) => walk::read(root, rel, max, no_links),
        other => other,
    }
}

/// Replaces the owned file `rel`: checked against the root as a real
/// replace would be, written in the overlay.
pub(super) fn replace(root: &Dir, overlay: &Dir, rel: &str, contents: &[u8]) -> Result<Written, FsError> {
    let (parts, name) = walk::split(rel);
    match walk::open_dir(root, &parts, false) {
        // A parent missing in the root: the file is new in the overlay.
        Err(FsError::NotFound(_)) => {}
        Err(e) => return Err(e),
        Ok(dir) => match dir.symlink_metadata(name) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => {
                walk::expect_file(&dir, name, rel)?;
                let target = dir
                    .open_with(name, OpenOptions::new().read(true).follow(FollowSymlinks::No))
                    .map_err(|e| walk::refused(&dir, name, rel, e))?
                    .into_std();
                let meta = target.metadata().map_err(|e| walk::io_error(rel, e))?;
                if !meta.is_file() {
                    return Err(FsError::InvalidPath(format!("{}: is not a regular file", printable(rel))));
                }
                walk::refuse_links(&meta, rel, "writing")?;
            }
        },
    }
    walk::replace(overlay, rel, contents)
}

/// Creates the new file `rel` in the overlay if nothing is at its path in
/// the root (no parent on the way is a symlink) nor in the overlay.
pub(super) fn create(root: &Dir, overlay: &Dir, rel: &str, contents: &[u8]) -> Result<Written, FsError> {
    let (parts, name) = walk::split(rel);
    match walk::open_dir(root, &parts, false) {
        Err(FsError::NotFound(_)) => {}
        Err(e) => return Err(e),
        Ok(dir) => {
            if dir.symlink_metadata(name).is_ok() {
                return Err(FsError::Denied(format!(
                    "{}: exists and is not owned by the held task (only new files may be created)",
                    printable(rel)
                )));
            }
        }
    }
    walk::create(overlay, rel, contents)
}

/// The entries of directory `rel` in the root and the overlay (the
/// overlay's size wins); not found only if neither has it.
pub(super) fn list(root: &Dir, overlay: &Dir, rel: &str) -> Result<Vec<Found>, FsError> {
    let below = walk::list(root, rel);
    let above = walk::list(overlay, rel);
    let (below, above) = match (below, above) {
        (Err(e @ FsError::NotFound(_)), Err(FsError::NotFound(_))) => return Err(e),
        (Err(FsError::NotFound(_)), above) => (Vec::new(), above?),
        (below, Err(FsError::NotFound(_))) => (below?, Vec::new()),
        (below, above) => (below?, above?),
    };
    let mut merged: BTreeMap<String, Found> = below.into_iter().map(|f| (f.name.clone(), f)).collect();
    for f in above {
        merged.insert(f.name.clone(), f);
    }
    Ok(merged.into_values().collect())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use super::super::{Holder, Policy, PolicySpec, ReadScope, Workspace};
    use super::*;

    /// The attacks of the workspace tests, on a dry run: refused alike,
    /// and nothing under the root or outside it changes.
    #[cfg(unix)]
    #[test]
    fn a_dry_run_refuses_what_a_real_run_refuses_and_changes_nothing_under_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("src")).unwrap();
        std::fs::write(r.join("src/a.rs"), "a").unwrap();
        std::fs::write(r.join("src/b.rs"), "b").unwrap();
        std::fs::write(r.join("src/old.rs"), "old").unwrap();
        std::fs::hard_link(r.join("src/b.rs"), r.join("src/twin.rs")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), r.join("src/out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("src/up")).unwrap();
        let creates: BTreeMap<String, Vec<String>> = [("t".to_string(), vec!["src/**".to_string()])].into();
        let spec = PolicySpec { creates, ..PolicySpec::default() };
        let policy = Arc::new(Policy::build(r, ReadScope::Owned, &spec).unwrap());
        let overlay = Overlay::create(r).unwrap();
        let ws = Workspace::with_policy(Workspace::open_root(r).unwrap(), policy, 1024)
            .with_overlay(Workspace::open_root(overlay.path()).unwrap());
        let mine: BTreeSet<String> = ["src/a.rs", "src/twin.rs", "src/out"].map(String::from).into();
        let me = Holder { task: Some("t"), owned: &mine };

        assert_eq!(ws.write("src/a.rs", b"new", &me), Ok(Written::Replaced));
        assert_eq!(ws.read("src/a.rs", &me).unwrap(), b"new", "a read sees the overlay");
        assert_eq!(ws.write("src/gen/c.rs", b"c", &me), Ok(Written::Created("src/gen/c.rs".into())));
        let e = ws.write("src/twin.rs", b"x", &me).unwrap_err();
        assert!(matches!(&e, FsError::Denied(m) if m.contains("hard links")), "{e}");
        assert!(matches!(ws.write("src/out", b"x", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        assert!(matches!(ws.write("src/up/new.rs", b"x", &me), Err(FsError::Denied(m)) if m.contains("symlink")));
        let e = ws.write("src/old.rs", b"x", &me).unwrap_err();
        assert!(matches!(&e, FsError::Denied(m) if m.contains("exists")), "{e}");
        // The sandbox adds a created file to the held task's files.
        let mut now = mine.clone();
        now.insert("src/gen/c.rs".into());
        let me = Holder { task: Some("t"), owned: &now };
        let listed: Vec<String> = ws.list("src", &me).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["src/a.rs", "src/gen", "src/twin.rs"], "owned files and the new directory");
        let listed: Vec<String> = ws.list("src/gen", &me).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["src/gen/c.rs"], "a directory only the overlay has");

        assert_eq!(std::fs::read(r.join("src/a.rs")).unwrap(), b"a");
        assert!(!r.join("src/gen").exists());
        assert_eq!(std::fs::read(r.join("src/b.rs")).unwrap(), b"b");
        assert_eq!(std::fs::read(outside.path().join("secret")).unwrap(), b"s3cret");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read(overlay.path().join("src/gen/c.rs")).unwrap(), b"c");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(overlay.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "the overlay is the owner's alone");
        }
    }

    #[test]
    fn an_overlay_under_the_root_is_refused() {
        let tmp = std::env::temp_dir();
        assert!(matches!(Overlay::create(&tmp), Err(OverlayError::UnderRoot { .. })));
    }
}
