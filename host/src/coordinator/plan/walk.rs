//! The file tree of a plan: every regular file under the root that no
//! exclusion and no built-in skip removes, as `/`-separated relative paths.
//!
//! Ownership is decided on these strings, so a name that is not UTF-8 is
//! never turned into one: a lossy conversion would hand a task a path that
//! names another file, or none. Such files (and directories, with all they
//! hold) are skipped and named, escaped, in [`Walk::skipped`].

use std::path::Path;

use globset::GlobSet;

/// Directories never walked when expanding globs.
pub const ALWAYS_SKIPPED: &[&str] = &[".git", ".swarm"];

/// What a walk of the root found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Every regular file, relative to the root, `/`-separated, sorted by
    /// name per directory.
    pub files: Vec<String>,
    /// Files and directories skipped because their path is not UTF-8, each
    /// shown with its invalid bytes escaped (`"dir/\xFF.rs"`).
    pub skipped: Vec<String>,
}

impl Walk {
    /// One plan warning per skipped path.
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.skipped.iter().map(|p| {
            format!("{p} is skipped: its name is not UTF-8, so no task owns it and no teammate can read or write it")
        })
    }
}

/// Walks `root` without following symlinks (a symlink is never owned).
pub fn walk_files(root: &Path, exclude: &GlobSet) -> std::io::Result<Walk> {
    let mut walk = Walk::default();
    let skipped = &mut walk.skipped;
    let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
    let entries = walker.filter_entry(|e| {
        if e.depth() == 0 {
            return true;
        }
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let skipped_dir = e.file_type().is_dir() && ALWAYS_SKIPPED.iter().any(|s| e.file_name() == *s);
        if skipped_dir || exclude.is_match(rel) {
            return false;
        }
        if rel.to_str().is_none() {
            if e.file_type().is_dir() || e.file_type().is_file() {
                // `Path`'s Debug form escapes invalid bytes and control characters.
                skipped.push(format!("{rel:?}"));
            }
            return false;
        }
        true
    });
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            // Every path left is UTF-8 (the filter above skipped the rest).
            if let Some(parts) = rel.components().map(|c| c.as_os_str().to_str()).collect::<Option<Vec<_>>>() {
                files.push(parts.join("/"));
            }
        }
    }
    walk.files = files;
    Ok(walk)
}
