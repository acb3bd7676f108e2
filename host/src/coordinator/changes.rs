//! What each task changed, computed by the coordinator from the tree
//! itself (a guest cannot lie about it). Nothing is read before the run:
//! the teammates' workspaces keep each file as it was just before its first
//! write, and mark each file they create ([`Keep`]); after the run,
//! [`Baseline::changes`] diffs exactly those files against the tree as it
//! is then. A dry run's writes are all in its overlay, over a root that did
//! not change: the overlay's files are diffed against the root's. Ownership
//! is disjoint, so a changed file was changed by the one task that owns it:
//! the tasks as they are at the end of the run, so a task the lead added
//! and a file granted to a task are attributed too (a file granted from a
//! finished task to another has one diff, under the task that owns it at
//! the end).
//!
//! Memory is bounded: one file is held at a time, and a file over
//! [`MAX_DIFF_FILE`] bytes or binary (a NUL byte, or not UTF-8) is hashed,
//! not held; when one changes, the report says so with a note instead of a
//! diff, and [`patch`] leaves it out (naming it).
//!
//! Each file's diff is in `git diff` form (`diff --git`, `new file mode`
//! for created files, `\ No newline at end of file` where it applies), so
//! [`patch`] is the concatenation of all of them and `git apply` takes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use similar::TextDiff;

use super::report::{FileDiff, RunReport};
use crate::sandbox::workspace::{KEEP_WHOLE_UP_TO, Keep, Kept, Overlay, Policy, files_under};
use crate::tasks::TaskSpec;

/// Largest file diffed, in bytes (before or after): larger ones are noted.
/// The same as the largest file the workspace keeps whole before a write.
pub const MAX_DIFF_FILE: u64 = KEEP_WHOLE_UP_TO;
/// Longest time spent finding a minimal diff of one file; past it the diff
/// is still correct, only less minimal.
const DIFF_TIMEOUT: Duration = Duration::from_secs(1);

/// One side of a file's change, read from disk.
#[derive(Debug)]
struct Contents {
    digest: [u8; 32],
    /// The text, when it is text and small enough to diff; else why not.
    text: Result<String, Unheld>,
}

/// Why a file's contents are not diffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unheld {
    Binary,
    TooLarge,
}

impl Unheld {
    fn note(self) -> String {
        match self {
            Unheld::Binary => "binary file changed; not diffed".into(),
            Unheld::TooLarge => format!("changed; over the diff limit of {MAX_DIFF_FILE} bytes, not diffed"),
        }
    }
}

/// Where the run's writes can be seen.
#[derive(Debug)]
enum Writes {
    /// A dry run: every write is in the overlay, the root is as it was.
    Overlay(Overlay),
    /// A real run: the files as they were before their first write.
    Kept(Keep),
}

/// What the run changed, found after it.
#[derive(Debug)]
pub struct Baseline {
    root: PathBuf,
    /// Removed (with what it holds) when the baseline is dropped, after the
    /// diffs are taken.
    writes: Writes,
    policy: Arc<Policy>,
}

impl Baseline {
    /// The changes of a run over `root` whose teammates keep files in
    /// `keep` before writing them; `policy` decides which task a new file
    /// belongs to. Reads nothing.
    pub fn kept(root: &Path, keep: Keep, policy: Arc<Policy>) -> Self {
        Self { root: root.to_path_buf(), writes: Writes::Kept(keep), policy }
    }

    /// The changes of a dry run over `root` whose writes land in `overlay`.
    pub fn dry_run(root: &Path, overlay: Overlay, policy: Arc<Policy>) -> Self {
        Self { root: root.to_path_buf(), writes: Writes::Overlay(overlay), policy }
    }

    /// Every task's changed files, diffed, in path order per task; a file
    /// belongs to the one of `tasks` (as they are at the end of the run)
    /// that owns it.
    pub fn changes(&self, tasks: &[TaskSpec]) -> BTreeMap<String, Vec<FileDiff>> {
        let owners: BTreeMap<&str, &str> =
            tasks.iter().flat_map(|t| t.owned_files.iter().map(|rel| (rel.as_str(), t.id.as_str()))).collect();
        // (file, how it was before: `None` = it did not exist, where it is now)
        let files: Vec<(String, Option<Kept>, PathBuf)> = match &self.writes {
            Writes::Overlay(overlay) => files_under(overlay.path())
                .into_iter()
                .map(|rel| {
                    let (before, after) = (self.root.join(&rel), overlay.path().join(&rel));
                    (rel, Some(Kept::Whole(before)), after)
                })
                .collect(),
            Writes::Kept(keep) => {
                let replaced = keep.replaced().into_iter().map(|(rel, kept)| (rel, Some(kept)));
                let created = keep.created().into_iter().map(|rel| (rel, None));
                replaced
                    .chain(created)
                    .map(|(rel, before)| {
                        let after = self.root.join(&rel);
                        (rel, before, after)
                    })
                    .collect()
            }
        };
        let mut out: BTreeMap<String, Vec<FileDiff>> = BTreeMap::new();
        for (rel, before, after) in files {
            let Some(task) = self.owner(&owners, &rel) else {
                tracing::warn!(file = %rel, "a changed file no task owns is left out of the diffs");
                continue;
            };
            let before = match before {
                None => Ok(None),
                Some(Kept::Whole(path)) => read_contents(&path),
                Some(Kept::Digest(digest)) => Ok(Some(Contents { digest, text: Err(Unheld::TooLarge) })),
            };
            let diff = match (before, read_contents(&after)) {
                (Ok(before), Ok(after)) => diff_of(&rel, before.as_ref(), after.as_ref()),
                (Err(e), _) | (_, Err(e)) => {
                    Some(FileDiff::noted(&rel, format!("could not be read for the diff: {e}")))
                }
            };
            if let Some(diff) = diff {
                out.entry(task).or_default().push(diff);
            }
        }
        for diffs in out.values_mut() {
            diffs.sort_by(|a, b| a.path.cmp(&b.path));
        }
        out
    }

    /// The task `rel` belongs to: the one that owns it, or the one whose
    /// patterns alone let it create it.
    fn owner(&self, owners: &BTreeMap<&str, &str>, rel: &str) -> Option<String> {
        if let Some(task) = owners.get(rel) {
            return Some((*task).to_string());
        }
        let owners = self.policy.creation().owners(rel);
        let [task] = owners.keys().collect::<Vec<_>>()[..] else {
            return None;
        };
        self.policy.check_create(rel, Some(task)).ok()?;
        Some(task.clone())
    }
}

/// `path`'s contents if it is a regular file (a symlink is not followed
/// and reads as absent, like a missing file): the text if it is small text,
/// else only the digest, streamed.
fn read_contents(path: &Path) -> std::io::Result<Option<Contents>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // A parent that is a file reads as absent too.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::new();
    (&mut file).take(MAX_DIFF_FILE + 1).read_to_end(&mut head)?;
    if head.len() as u64 > MAX_DIFF_FILE {
        let mut hasher = Sha256::new();
        hasher.update(&head);
        std::io::copy(&mut file, &mut hasher)?;
        return Ok(Some(Contents { digest: hasher.finalize().into(), text: Err(Unheld::TooLarge) }));
    }
    let digest = Sha256::digest(&head).into();
    let text =
        if head.contains(&0) { Err(Unheld::Binary) } else { String::from_utf8(head).map_err(|_| Unheld::Binary) };
    Ok(Some(Contents { digest, text }))
}

/// The diff of `rel` from `before` to `after` (`None` = absent), or `None`
/// if it did not change.
fn diff_of(rel: &str, before: Option<&Contents>, after: Option<&Contents>) -> Option<FileDiff> {
    let after = after?;
    if before.is_some_and(|b| b.digest == after.digest) {
        return None;
    }
    let old = match before.map(|b| &b.text) {
        None => None,
        Some(Ok(text)) => Some(text.as_str()),
        Some(Err(why)) => return Some(FileDiff::noted(rel, why.note())),
    };
    match &after.text {
        Ok(new) => Some(FileDiff { path: rel.to_string(), diff: git_diff(rel, old, new), note: None }),
        Err(why) => Some(FileDiff::noted(rel, why.note())),
    }
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
    use std::collections::BTreeSet;

    use super::*;
    use crate::sandbox::workspace::{Holder, PolicySpec, ReadScope, Workspace};

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

    /// A baseline over `r` for `tasks` and a workspace whose writes it
    /// sees; `write(task, path, contents)` writes as the task's teammate.
    fn kept(r: &Path, tasks: &[TaskSpec]) -> (Baseline, impl Fn(&str, &str, &[u8])) {
        let keep = Keep::create(r).unwrap();
        let policy = policy(r, tasks);
        let ws = Workspace::with_policy(Workspace::open_root(r).unwrap(), policy.clone(), 4 * MAX_DIFF_FILE)
            .with_keep(Workspace::open_root(keep.path()).unwrap());
        let owned: BTreeMap<String, BTreeSet<String>> =
            tasks.iter().map(|t| (t.id.clone(), t.owned_files.iter().cloned().collect())).collect();
        let write = move |task: &str, path: &str, contents: &[u8]| {
            let holder = Holder { task: Some(task), owned: &owned[task] };
            ws.write(path, contents, &holder).unwrap();
        };
        (Baseline::kept(r, keep, policy), write)
    }

    #[test]
    fn changed_and_created_files_are_diffed_per_task_and_unchanged_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("src/gen")).unwrap();
        std::fs::write(r.join("src/a.rs"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(r.join("src/b.rs"), "same\n").unwrap();
        std::fs::write(r.join("src/c.rs"), "written back as it was\n").unwrap();
        std::fs::write(r.join("src/gen/old.rs"), "was here\n").unwrap();
        let tasks = [task("a", &["src/a.rs", "src/c.rs"], &[]), task("b", &["src/b.rs"], &["src/gen/**"])];
        let (base, write) = kept(r, &tasks);
        write("a", "src/a.rs", b"first\n");
        write("a", "src/a.rs", b"one\n2\nthree");
        write("a", "src/c.rs", b"written back as it was\n");
        write("b", "src/gen/new.rs", b"fn x() {}\n");
        // A file changed behind the workspace's back is not a task's change.
        std::fs::write(r.join("src/b.rs"), "changed by someone else\n").unwrap();
        let changes = base.changes(&tasks);
        let a = &changes["a"];
        assert_eq!(a.len(), 1, "a file written back unchanged has no diff: {a:?}");
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
    fn files_are_attributed_by_the_tasks_at_the_end_of_the_run_an_added_task_and_a_granted_file_included() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in ["a.rs", "b.rs", "c.rs"] {
            std::fs::write(r.join(f), "old\n").unwrap();
        }
        // At the end: `a` was granted `c.rs`, and `b` was added by the lead.
        let end = [task("a", &["a.rs", "c.rs"], &[]), task("b", &["b.rs"], &[])];
        let (base, write) = kept(r, &end);
        write("a", "c.rs", b"granted\n");
        write("b", "b.rs", b"added\n");
        let plan = [task("a", &["a.rs"], &[])];
        assert!(!base.changes(&plan).contains_key("b"), "the plan's tasks alone do not know `b`");
        let changes = base.changes(&end);
        let paths = |t: &str| changes[t].iter().map(|d| d.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths("a"), ["c.rs"]);
        assert_eq!(paths("b"), ["b.rs"]);
    }

    #[test]
    fn binary_and_large_files_get_a_note_instead_of_a_diff_and_are_left_out_of_the_patch() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::write(r.join("bin"), b"a\0b").unwrap();
        std::fs::write(r.join("big"), vec![b'x'; MAX_DIFF_FILE as usize + 1]).unwrap();
        std::fs::write(r.join("same.bin"), b"\0").unwrap();
        let tasks = [task("t", &["bin", "big", "same.bin"], &[])];
        let (base, write) = kept(r, &tasks);
        write("t", "bin", b"a\0c");
        write("t", "big", b"small now\n");
        write("t", "same.bin", b"\0");
        let diffs = &base.changes(&tasks)["t"];
        let notes: Vec<(&str, &str)> =
            diffs.iter().map(|d| (d.path.as_str(), d.note.as_deref().unwrap_or(""))).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].0 == "big" && notes[0].1.contains("diff limit of 1048576 bytes"), "{notes:?}");
        assert!(notes[1].0 == "bin" && notes[1].1.contains("binary"), "{notes:?}");
        assert!(diffs.iter().all(|d| d.diff.is_empty()));
    }

    #[test]
    fn a_dry_run_diffs_the_overlay_against_the_root() {
        let root = tempfile::tempdir().unwrap();
        let overlay = Overlay::create(root.path()).unwrap();
        let above = overlay.path().to_path_buf();
        std::fs::write(root.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(root.path().join("b.txt"), "b\n").unwrap();
        let tasks = [task("t", &["a.txt", "b.txt"], &["new/*"])];
        let base = Baseline::dry_run(root.path(), overlay, policy(root.path(), &tasks));
        std::fs::write(above.join("a.txt"), "A\n").unwrap();
        std::fs::write(above.join("b.txt"), "b\n").unwrap();
        std::fs::create_dir(above.join("new")).unwrap();
        std::fs::write(above.join("new/c.txt"), "c\n").unwrap();
        let paths: Vec<String> = base.changes(&tasks)["t"].iter().map(|d| d.path.clone()).collect();
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
