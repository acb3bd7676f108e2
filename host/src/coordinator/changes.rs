//! What each task changed, computed by the coordinator from the tree
//! itself (a guest cannot lie about it): before any teammate starts,
//! [`Baseline::capture`] records the contents of every file a task owns
//! and the names of the files its `owns` patterns could create; after the
//! run, [`Baseline::changes`] diffs them against the tree as it is then
//! (the root, or the `--dry-run` overlay over it). Ownership is disjoint,
//! so a changed file was changed by the one task that owns it.
//!
//! Memory is bounded: a file over [`MAX_DIFF_FILE`] bytes, a binary file
//! (a NUL byte, or not UTF-8) and every file once [`MAX_BASELINE`] bytes
//! are held keep only a sha256; when one changes, the report says so with
//! a note instead of a diff, and [`patch`] leaves it out (naming it).
//!
//! Each file's diff is in `git diff` form (`diff --git`, `new file mode`
//! for created files, `\ No newline at end of file` where it applies), so
//! [`patch`] is the concatenation of all of them and `git apply` takes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use similar::TextDiff;

use super::report::{FileDiff, RunReport};
use crate::sandbox::workspace::{Overlay, Policy};
use crate::tasks::TaskSpec;

/// Largest file diffed, in bytes (before or after): larger ones are noted.
pub const MAX_DIFF_FILE: u64 = 1024 * 1024;
/// Most bytes of file contents the baseline holds across the run.
pub const MAX_BASELINE: u64 = 64 * 1024 * 1024;
/// Longest time spent finding a minimal diff of one file; past it the diff
/// is still correct, only less minimal.
const DIFF_TIMEOUT: Duration = Duration::from_secs(1);

/// A file before the run.
#[derive(Debug)]
enum Before {
    /// Did not exist.
    Missing,
    /// Its text, held for the diff.
    Text(String),
    /// Only its digest: why it is not held.
    Digest([u8; 32], Unheld),
}

/// Why a file's contents are not held or diffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unheld {
    Binary,
    TooLarge,
    OverBudget,
}

impl Unheld {
    fn note(self) -> String {
        match self {
            Unheld::Binary => "binary file changed; not diffed".into(),
            Unheld::TooLarge => format!("changed; over the diff limit of {MAX_DIFF_FILE} bytes, not diffed"),
            Unheld::OverBudget => {
                format!("changed; the run's diff baseline of {MAX_BASELINE} bytes was spent, not diffed")
            }
        }
    }
}

/// The tree before the run, as far as the tasks can change it.
#[derive(Debug)]
pub struct Baseline {
    root: PathBuf,
    /// The `--dry-run` overlay the teammates write to, when there is one
    /// (removed when the baseline is dropped, after the diffs are taken).
    overlay: Option<Overlay>,
    policy: Arc<Policy>,
    /// Owned file → (task, contents before).
    owned: BTreeMap<String, (String, Before)>,
    /// Files that existed before the run and some task's `owns` patterns
    /// match (so they were not created by it).
    existing: BTreeSet<String>,
}

impl Baseline {
    /// Records the owned files of `tasks` under `root` (reads them), and
    /// the existing files their `owns` patterns match (walks the root, only
    /// when some task has patterns). `overlay` is where a dry run's writes
    /// land; `policy` decides which new files a task could have created.
    pub fn capture(root: &Path, overlay: Option<Overlay>, tasks: &[TaskSpec], policy: Arc<Policy>) -> Self {
        let mut budget = MAX_BASELINE;
        let mut owned = BTreeMap::new();
        for t in tasks {
            for rel in &t.owned_files {
                let before = match read_regular(&root.join(rel)) {
                    Ok(Some(bytes)) => hold(bytes, &mut budget),
                    Ok(None) => Before::Missing,
                    Err(e) => {
                        tracing::debug!(file = %rel, "not in the diff baseline: {e}");
                        continue;
                    }
                };
                owned.insert(rel.clone(), (t.id.clone(), before));
            }
        }
        let existing = if policy.creation().is_empty() {
            BTreeSet::new()
        } else {
            files_under(root).into_iter().filter(|rel| !policy.creation().owners(rel).is_empty()).collect()
        };
        Self { root: root.to_path_buf(), overlay, policy, owned, existing }
    }

    /// Every task's changed files, diffed against the tree now, in path
    /// order per task.
    pub fn changes(&self) -> BTreeMap<String, Vec<FileDiff>> {
        let mut out: BTreeMap<String, Vec<FileDiff>> = BTreeMap::new();
        for (rel, (task, before)) in &self.owned {
            let after = match self.read_after(rel) {
                Ok(after) => after,
                Err(e) => {
                    let note = format!("could not be read after the run: {e}");
                    out.entry(task.clone()).or_default().push(FileDiff::noted(rel, note));
                    continue;
                }
            };
            if let Some(diff) = diff_of(rel, before, after.as_deref()) {
                out.entry(task.clone()).or_default().push(diff);
            }
        }
        for rel in self.created() {
            let owners = self.policy.creation().owners(&rel);
            let [task] = owners.keys().collect::<Vec<_>>()[..] else {
                continue;
            };
            if self.policy.check_create(&rel, Some(task)).is_err() {
                continue;
            }
            let after = self.read_after(&rel).ok().flatten();
            if let Some(diff) = diff_of(&rel, &Before::Missing, after.as_deref()) {
                out.entry(task.clone()).or_default().push(diff);
            }
        }
        for diffs in out.values_mut() {
            diffs.sort_by(|a, b| a.path.cmp(&b.path));
        }
        out
    }

    /// Files present now that were neither owned nor present before and
    /// that some task's patterns match.
    fn created(&self) -> BTreeSet<String> {
        if self.policy.creation().is_empty() {
            return BTreeSet::new();
        }
        let tree = self.overlay.as_ref().map_or(self.root.as_path(), Overlay::path);
        files_under(tree)
            .into_iter()
            .filter(|rel| !self.owned.contains_key(rel) && !self.existing.contains(rel))
            .filter(|rel| !self.policy.creation().owners(rel).is_empty())
            .collect()
    }

    /// A file as the run left it: the overlay's copy if it has one.
    fn read_after(&self, rel: &str) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(overlay) = &self.overlay
            && let Some(bytes) = read_regular(&overlay.path().join(rel))?
        {
            return Ok(Some(bytes));
        }
        read_regular(&self.root.join(rel))
    }
}

/// Holds `bytes` as text if it is text, small, and within `budget`.
fn hold(bytes: Vec<u8>, budget: &mut u64) -> Before {
    let len = bytes.len() as u64;
    let unheld = if len > MAX_DIFF_FILE {
        Some(Unheld::TooLarge)
    } else if len > *budget {
        Some(Unheld::OverBudget)
    } else {
        None
    };
    match (unheld, text_of(&bytes)) {
        (None, Some(_)) => {
            *budget -= len;
            // Checked above: valid UTF-8.
            Before::Text(String::from_utf8(bytes).unwrap_or_default())
        }
        (None, None) => Before::Digest(digest(&bytes), Unheld::Binary),
        (Some(why), _) => Before::Digest(digest(&bytes), why),
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `bytes` as text, unless it is binary (a NUL byte, or not UTF-8).
fn text_of(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) { None } else { std::str::from_utf8(bytes).ok() }
}

/// The diff of `rel` from `before` to `after` (`None` = absent), or `None`
/// if it did not change.
fn diff_of(rel: &str, before: &Before, after: Option<&[u8]>) -> Option<FileDiff> {
    let after = after?;
    let old = match before {
        Before::Missing => None,
        Before::Text(text) if text.as_bytes() == after => return None,
        Before::Text(text) => Some(text.as_str()),
        Before::Digest(d, _) if *d == digest(after) => return None,
        Before::Digest(_, why) => return Some(FileDiff::noted(rel, why.note())),
    };
    if after.len() as u64 > MAX_DIFF_FILE {
        return Some(FileDiff::noted(rel, Unheld::TooLarge.note()));
    }
    let Some(new) = text_of(after) else {
        return Some(FileDiff::noted(rel, Unheld::Binary.note()));
    };
    Some(FileDiff { path: rel.to_string(), diff: git_diff(rel, old, new), note: None })
}

/// `rel`'s change from `old` (`None`: created) to `new`, as `git diff`
/// writes it.
fn git_diff(rel: &str, old: Option<&str>, new: &str) -> String {
    let (a, b) = (quote(&format!("a/{rel}")), quote(&format!("b/{rel}")));
    let mut out = format!("diff --git {a} {b}\n");
    if old.is_none() {
        out.push_str("new file mode 100644\n");
    }
    let text = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(old.unwrap_or(""), new);
    let unified = text.unified_diff();
    let mut hunks = unified.iter_hunks().peekable();
    if hunks.peek().is_none() {
        // An empty file created: git writes no hunk and no `---` lines.
        return out;
    }
    let from = if old.is_some() { a } else { "/dev/null".into() };
    let _ = writeln!(out, "--- {from}\n+++ {b}");
    for hunk in hunks {
        let _ = writeln!(out, "{}", hunk.header());
        for change in hunk.iter_changes() {
            let line = change.value();
            let _ = write!(out, "{}{line}", change.tag());
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// A path as git writes it in a diff header: C-quoted when it has a byte
/// git would quote (a quote, a backslash, a control or non-ASCII byte).
fn quote(path: &str) -> String {
    if !path.bytes().any(|b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b)) {
        return path.to_string();
    }
    let mut out = String::from("\"");
    for b in path.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..0x7f => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

/// Reads `path` if it is a regular file (a symlink is not followed and
/// reads as absent, like a missing file).
fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => std::fs::read(path).map(Some),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // A parent that is a file reads as absent too.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every regular file under `dir`, relative and `/`-separated, without
/// following symlinks or entering `.git`.
fn files_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(parts?.join("/"))
        })
        .collect()
}

/// Fills every task's `diffs` in `report` from [`Baseline::changes`].
pub fn fill(report: &mut RunReport, mut changes: BTreeMap<String, Vec<FileDiff>>) {
    for t in &mut report.tasks {
        if let Some(diffs) = changes.remove(&t.id) {
            t.diffs = diffs;
        }
    }
}

/// All the changes of `report` as one patch `git apply` takes, and the
/// files left out of it (binary or too large: each with its note).
pub fn patch(report: &RunReport) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut left_out = Vec::new();
    for d in report.tasks.iter().flat_map(|t| &t.diffs) {
        match &d.note {
            Some(note) => left_out.push(format!("{}: {note}", d.path)),
            None => out.push_str(&d.diff),
        }
    }
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::workspace::{PolicySpec, ReadScope};

    fn task(id: &str, owned: &[&str], creates: &[&str]) -> TaskSpec {
        TaskSpec::owning(id, owned, creates)
    }

    fn policy(root: &Path, tasks: &[TaskSpec]) -> Arc<Policy> {
        let spec = PolicySpec {
            creates: tasks.iter().map(|t| (t.id.clone(), t.creates.clone())).collect(),
            ..PolicySpec::default()
        };
        Arc::new(Policy::build(root, ReadScope::Owned, &spec).unwrap())
    }

    #[test]
    fn changed_and_created_files_are_diffed_per_task_and_unchanged_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("src/gen")).unwrap();
        std::fs::write(r.join("src/a.rs"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(r.join("src/b.rs"), "same\n").unwrap();
        std::fs::write(r.join("src/gen/old.rs"), "was here\n").unwrap();
        let tasks = [task("a", &["src/a.rs"], &[]), task("b", &["src/b.rs"], &["src/gen/**"])];
        let base = Baseline::capture(r, None, &tasks, policy(r, &tasks));
        std::fs::write(r.join("src/a.rs"), "one\n2\nthree").unwrap();
        std::fs::write(r.join("src/gen/new.rs"), "fn x() {}\n").unwrap();
        let changes = base.changes();
        let a = &changes["a"];
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[0].diff,
            "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,3 +1,3 @@\n one\n-two\n-three\n+2\n\
             +three\n\\ No newline at end of file\n"
        );
        let b: Vec<&str> = changes["b"].iter().map(|d| d.path.as_str()).collect();
        assert_eq!(b, ["src/gen/new.rs"], "the unchanged file and the file that existed before are not listed");
        assert_eq!(
            changes["b"][0].diff,
            "diff --git a/src/gen/new.rs b/src/gen/new.rs\nnew file mode 100644\n--- /dev/null\n+++ \
             b/src/gen/new.rs\n@@ -0,0 +1 @@\n+fn x() {}\n"
        );
    }

    #[test]
    fn binary_and_large_files_get_a_note_instead_of_a_diff_and_are_left_out_of_the_patch() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::write(r.join("bin"), b"a\0b").unwrap();
        std::fs::write(r.join("big"), vec![b'x'; MAX_DIFF_FILE as usize + 1]).unwrap();
        std::fs::write(r.join("same.bin"), b"\0").unwrap();
        let tasks = [task("t", &["bin", "big", "same.bin"], &[])];
        let base = Baseline::capture(r, None, &tasks, policy(r, &tasks));
        std::fs::write(r.join("bin"), b"a\0c").unwrap();
        std::fs::write(r.join("big"), b"small now\n").unwrap();
        let diffs = &base.changes()["t"];
        let notes: Vec<(&str, &str)> =
            diffs.iter().map(|d| (d.path.as_str(), d.note.as_deref().unwrap_or(""))).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].0 == "big" && notes[0].1.contains("diff limit of 1048576 bytes"), "{notes:?}");
        assert!(notes[1].0 == "bin" && notes[1].1.contains("binary"), "{notes:?}");
        assert!(diffs.iter().all(|d| d.diff.is_empty()));
    }

    #[test]
    fn a_dry_run_reads_the_overlay_first() {
        let root = tempfile::tempdir().unwrap();
        let overlay = Overlay::create(root.path()).unwrap();
        let above = overlay.path().to_path_buf();
        std::fs::write(root.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(root.path().join("b.txt"), "b\n").unwrap();
        let tasks = [task("t", &["a.txt", "b.txt"], &["new/*"])];
        let base = Baseline::capture(root.path(), Some(overlay), &tasks, policy(root.path(), &tasks));
        std::fs::write(above.join("a.txt"), "A\n").unwrap();
        std::fs::create_dir(above.join("new")).unwrap();
        std::fs::write(above.join("new/c.txt"), "c\n").unwrap();
        let paths: Vec<String> = base.changes()["t"].iter().map(|d| d.path.clone()).collect();
        assert_eq!(paths, ["a.txt", "new/c.txt"]);
        drop(base);
        assert!(!above.exists(), "the overlay is removed with the baseline");
    }

    #[test]
    fn unusual_paths_are_quoted_like_git_does() {
        assert_eq!(quote("a/src/x.rs"), "a/src/x.rs");
        assert_eq!(quote("a/é \"q\"\t"), "\"a/\\303\\251 \\\"q\\\"\\t\"");
    }
}
