//! File operations on the root capability that never follow a symlink.
//!
//! A path is walked one component at a time: each directory is opened with
//! `open_dir_nofollow` from the handle of its parent, the file itself with
//! `FollowSymlinks::No`. A symlink anywhere on the path makes the very call
//! that would have followed it fail, so there is no check-then-use window.
//! (After such a failure, the entry is looked at only to word the error.)
//!
//! A replacing write goes to a temp file with a random name, created
//! exclusively (`create_new`) and without following symlinks in the target's
//! directory handle, written, given the target's mode, fsynced, renamed over
//! the target within that handle, and the directory fsynced; the temp file
//! is removed on any failure. A new file is created exclusively in place, so
//! it can never replace another file.

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use super::{FsError, printable};

/// Prefix of the temp files of replacing writes; listings hide them.
pub(super) const TEMP_PREFIX: &str = ".swarm-tmp-";

/// Temp names tried before a write gives up (each collision is a file a
/// guest could not have predicted).
const TEMP_TRIES: u32 = 16;

/// One entry of a listing, as found on disk.
pub(super) struct Found {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// An existing file (or an owned one that was missing) was replaced.
    Replaced,
    /// A new file was created under the creation rules; the path is the
    /// clean relative path, which the held task owns from now on.
    Created(String),
}

pub(super) fn io_error(rel: &str, e: std::io::Error) -> FsError {
    match e.kind() {
        std::io::ErrorKind::NotFound => FsError::NotFound(rel.to_string()),
        std::io::ErrorKind::PermissionDenied => FsError::Denied(format!("{}: {e}", printable(rel))),
        _ => FsError::Io(format!("{}: {e}", printable(rel))),
    }
}

/// The error for a failed open of `name` in `dir` (`rel` is its whole
/// path): a symlink is named as such.
pub(super) fn refused(dir: &Dir, name: &str, rel: &str, e: std::io::Error) -> FsError {
    match dir.symlink_metadata(name) {
        Ok(m) if m.file_type().is_symlink() => {
            FsError::Denied(format!("{}: is a symlink; symlinks are not followed", printable(rel)))
        }
        _ => io_error(rel, e),
    }
}

/// Splits `a/b/c` into (`["a", "b"]`, `"c"`).
pub(super) fn split(rel: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let name = parts.pop().unwrap_or("");
    (parts, name)
}

/// Opens the directory `parts` under `root` without following symlinks,
/// creating missing directories one by one if `create`.
pub(super) fn open_dir(root: &Dir, parts: &[&str], create: bool) -> Result<Dir, FsError> {
    let mut current = root.try_clone().map_err(|e| io_error("", e))?;
    for (i, part) in parts.iter().enumerate() {
        let shown = parts[..=i].join("/");
        let next = match current.open_dir_nofollow(part) {
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                match current.create_dir(part) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: opened below, without
                    // following it if it is a symlink.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(refused(&current, part, &shown, e)),
                }
                current.open_dir_nofollow(part)
            }
            other => other,
        };
        current = match next {
            Ok(dir) => dir,
            Err(e) => {
                return Err(match current.symlink_metadata(part) {
                    Ok(m) if !m.is_dir() && !m.file_type().is_symlink() => {
                        FsError::InvalidPath(format!("{}: is not a directory", printable(&shown)))
                    }
                    _ => refused(&current, part, &shown, e),
                });
            }
        };
    }
    Ok(current)
}

/// Refuses anything but a regular file at `name` before it is opened: a
/// FIFO in the repository would block an open forever. (Whether it is a
/// symlink is decided by the no-follow open itself.)
pub(super) fn expect_file(dir: &Dir, name: &str, rel: &str) -> Result<(), FsError> {
    match dir.symlink_metadata(name) {
        Ok(m) if m.is_dir() => Err(FsError::InvalidPath(format!("{}: is a directory", printable(rel)))),
        Ok(m) if !m.is_file() && !m.file_type().is_symlink() => {
            Err(FsError::InvalidPath(format!("{}: is not a regular file", printable(rel))))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(refused(dir, name, rel, e)),
    }
}

/// Hard links of an open file (1 where the platform does not say).
fn links(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::nlink(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

pub(super) fn refuse_links(meta: &std::fs::Metadata, rel: &str, doing: &str) -> Result<(), FsError> {
    let n = links(meta);
    if n > 1 {
        return Err(FsError::Denied(format!(
            "{}: has {n} hard links; {doing} through it would reach a file elsewhere",
            printable(rel)
        )));
    }
    Ok(())
}

/// Reads the regular file `rel`, at most `max` bytes; with `no_links`, a
/// file with more than one hard link is refused.
pub(super) fn read(root: &Dir, rel: &str, max: u64, no_links: bool) -> Result<Vec<u8>, FsError> {
    let (parts, name) = split(rel);
    if name.is_empty() {
        return Err(FsError::InvalidPath(format!("{}: is a directory", printable(rel))));
    }
    let dir = open_dir(root, &parts, false)?;
    expect_file(&dir, name, rel)?;
    let file = dir
        .open_with(name, OpenOptions::new().read(true).follow(FollowSymlinks::No))
        .map_err(|e| refused(&dir, name, rel, e))?
        .into_std();
    let meta = file.metadata().map_err(|e| io_error(rel, e))?;
    if !meta.is_file() {
        return Err(FsError::InvalidPath(format!("{}: is not a regular file", printable(rel))));
    }
    if no_links {
        refuse_links(&meta, rel, "reading")?;
    }
    if meta.len() > max {
        return Err(FsError::TooLarge(max));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows between stat and read.
    file.take(max + 1).read_to_end(&mut buf).map_err(|e| io_error(rel, e))?;
    if buf.len() as u64 > max {
        return Err(FsError::TooLarge(max));
    }
    Ok(buf)
}

/// Lists the directory `rel` (`""` = the root): regular files and
/// directories with UTF-8 names; symlinks, other file types, names that are
/// not UTF-8 and write temp files are left out.
pub(super) fn list(root: &Dir, rel: &str) -> Result<Vec<Found>, FsError> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let dir = open_dir(root, &parts, false)?;
    let mut out = Vec::new();
    for entry in dir.entries().map_err(|e| io_error(rel, e))? {
        let entry = entry.map_err(|e| io_error(rel, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::debug!(dir = %printable(rel), "a file name that is not UTF-8 is left out of a listing");
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        // Neither call follows a symlink.
        let kind = entry.file_type().map_err(|e| io_error(rel, e))?;
        if !kind.is_dir() && !kind.is_file() {
            continue;
        }
        let size = if kind.is_dir() { 0 } else { entry.metadata().map_err(|e| io_error(rel, e))?.len() };
        out.push(Found { name, is_dir: kind.is_dir(), size });
    }
    Ok(out)
}

/// A name no guest can predict: SipHash under the process's random keys
/// (std's `RandomState`) of a counter and the time.
pub(super) fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("{TEMP_PREFIX}{:016x}", h.finish())
}

/// Fsyncs the directory `dir` (its own handle may be `O_PATH`, which
/// cannot be synced: this opens it again for reading).
fn sync_dir(dir: &Dir, rel: &str) -> Result<(), FsError> {
    let handle = dir.open(".").map_err(|e| io_error(rel, e))?.into_std();
    handle.sync_all().map_err(|e| io_error(rel, e))
}

/// Writes `contents` to `file`, gives it `mode`, and fsyncs it.
fn fill(file: &mut std::fs::File, contents: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    file.write_all(contents)?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.sync_all()
}

/// Replaces the file `rel` (owned by the held task) with `contents`, or
/// writes it if it is missing; parent directories are created as needed.
/// A target that is a symlink, not a regular file, or has more than one
/// hard link is refused. The target's permission bits (not set-id bits)
/// are kept.
pub(super) fn replace(root: &Dir, rel: &str, contents: &[u8]) -> Result<Written, FsError> {
    let (parts, name) = split(rel);
    if name.is_empty() {
        return Err(FsError::InvalidPath(format!("{}: is a directory", printable(rel))));
    }
    let dir = open_dir(root, &parts, true)?;
    let mode = match dir.symlink_metadata(name) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => {
            expect_file(&dir, name, rel)?;
            let target = dir
                .open_with(name, OpenOptions::new().read(true).follow(FollowSymlinks::No))
                .map_err(|e| refused(&dir, name, rel, e))?
                .into_std();
            let meta = target.metadata().map_err(|e| io_error(rel, e))?;
            if !meta.is_file() {
                return Err(FsError::InvalidPath(format!("{}: is not a regular file", printable(rel))));
            }
            refuse_links(&meta, rel, "writing")?;
            permission_bits(&meta)
        }
    };
    let (tmp, mut file) = create_temp(&dir, rel)?;
    let placed =
        fill(&mut file, contents, mode).and_then(|()| dir.rename(&tmp, &dir, name)).map_err(|e| io_error(rel, e));
    if let Err(e) = placed {
        let _ = dir.remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir, rel)?;
    Ok(Written::Replaced)
}

#[cfg(unix)]
fn permission_bits(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn permission_bits(_: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Creates a temp file with a fresh random name in `dir`, exclusively and
/// without following symlinks.
fn create_temp(dir: &Dir, rel: &str) -> Result<(String, std::fs::File), FsError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).follow(FollowSymlinks::No);
    for _ in 0..TEMP_TRIES {
        let name = temp_name();
        match dir.open_with(&name, &options) {
            Ok(f) => return Ok((name, f.into_std())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(rel, e)),
        }
    }
    Err(FsError::Io(format!("{}: no free temp file name after {TEMP_TRIES} tries", printable(rel))))
}

/// Creates the new file `rel` with `contents`, exclusively: if anything
/// (a file, a directory, a symlink) is already there, nothing is written.
/// Parent directories are created one by one without following symlinks.
pub(super) fn create(root: &Dir, rel: &str, contents: &[u8]) -> Result<Written, FsError> {
    let (parts, name) = split(rel);
    if name.is_empty() {
        return Err(FsError::InvalidPath(format!("{}: is a directory", printable(rel))));
    }
    let dir = open_dir(root, &parts, true)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).follow(FollowSymlinks::No);
    let mut file = match dir.open_with(name, &options) {
        Ok(f) => f.into_std(),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(FsError::Denied(format!(
                "{}: exists and is not owned by the held task (only new files may be created)",
                printable(rel)
            )));
        }
        Err(e) => return Err(refused(&dir, name, rel, e)),
    };
    if let Err(e) = fill(&mut file, contents, None) {
        drop(file);
        let _ = dir.remove_file(name);
        return Err(io_error(rel, e));
    }
    sync_dir(&dir, rel)?;
    Ok(Written::Created(rel.to_string()))
}
