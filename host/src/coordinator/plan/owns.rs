//! `owns` patterns: checking them, telling literal paths from globs,
//! matching the whole file tree against every task's patterns at once, and
//! spotting two tasks that could both create one new file.
//!
//! Matching stays fast for the largest plan the limits allow. Literal paths
//! (every planned path, and most team-file paths) are looked up in a hash
//! map. Globs are grouped by their literal leading directories (`src/parser`
//! for `src/parser/**/*.rs`), one [`GlobSet`] per group, and a file is
//! matched only against the groups of its own ancestor directories: a glob
//! whose literal directories differ from the file's cannot match it. At most
//! [`super::limits::MAX_GLOBS`] globs exist in a plan, which bounds the rest.
//!
//! Creation: a task may create a new file whose path matches one of its
//! patterns (see `TaskSpec::creates`), and the workspace refuses at run
//! time a new path that another task's patterns match too; that run-time
//! check is what keeps creations disjoint. The plan only warns ahead of it,
//! conservatively: [`creation_overlaps`] may name two globs that cannot in
//! fact match one path, never misses two that can.

use std::collections::HashMap;
use std::path::{Component, Path};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::limits::MAX_PATTERN_LEN;
use super::shown;
use super::walk::ALWAYS_SKIPPED;

/// A glob that stays inside the root: relative, no `..`, not too long.
pub fn check_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!("{} is {} bytes, over max_pattern_len = {MAX_PATTERN_LEN}", shown(pattern), pattern.len()));
    }
    let p = Path::new(pattern);
    if p.is_absolute() || pattern.starts_with('/') {
        return Err(format!("{} is absolute; owned paths are relative to the root", shown(pattern)));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{} leads outside the root (`..`)", shown(pattern)));
    }
    GlobBuilder::new(normal(pattern))
        .literal_separator(true)
        .build()
        .map_err(|e| format!("{} is not a valid glob: {}", shown(pattern), crate::sanitize::line(&e.to_string())))
}

/// A pattern as matched: without leading `./`.
pub fn normal(pattern: &str) -> &str {
    pattern.trim_start_matches("./")
}

/// `path` as a glob that matches exactly that path: every glob
/// metacharacter (and the backslash, an escape in globs) inside a
/// one-character class, e.g. `a*.rs` → `a[*].rs`.
pub fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '?' | '*' | '[' | ']' | '{' | '}' | '\\') {
            out.extend(['[', c, ']']);
        } else {
            out.push(c);
        }
    }
    out
}

/// One piece of a glob: a character it matches literally, or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Literal(char),
    Wild,
}

/// The pieces of a (valid) glob: a backslash escape and a one-character
/// class (what [`escape`] writes) are literal; `*`, `?`, alternations and
/// every other class are wild. Conservative: whatever is not surely
/// literal is wild.
fn pieces(glob: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '\\' => chars.next().map_or(Piece::Wild, Piece::Literal),
            '[' => {
                let mut look = chars.clone();
                match (look.next(), look.next()) {
                    (Some(x), Some(']')) if x != '!' && x != '^' => {
                        chars = look;
                        Piece::Literal(x)
                    }
                    _ => {
                        // Skip the class: `[!`/`[^`, then a `]` right away is
                        // a member, then up to the closing `]`.
                        if matches!(chars.peek(), Some('!' | '^')) {
                            chars.next();
                        }
                        if chars.peek() == Some(&']') {
                            chars.next();
                        }
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                        }
                        Piece::Wild
                    }
                }
            }
            '*' | '?' | '{' | '}' => Piece::Wild,
            c => Piece::Literal(c),
        };
        out.push(piece);
    }
    out
}

/// The path `glob` matches, if it matches exactly one.
pub fn literal(glob: &str) -> Option<String> {
    pieces(glob)
        .into_iter()
        .map(|p| match p {
            Piece::Literal(c) => Some(c),
            Piece::Wild => None,
        })
        .collect()
}

/// One checked `owns` pattern of one task.
#[derive(Debug, Clone)]
pub struct Owned {
    /// Index of its task in the plan.
    pub task: usize,
    /// The pattern as written.
    pub text: String,
    /// The one path it matches, if it is a literal path.
    pub literal: Option<String>,
    /// Its literal leading directories (`src/parser` for
    /// `src/parser/*.rs`; empty for `**/*.rs`).
    pub dirs: String,
    /// The literal end every path it matches ends with (`.rs` for
    /// `src/*.rs`; empty for `src/**`).
    pub tail: String,
    glob: Glob,
}

impl Owned {
    /// Checks `pattern` of task number `task`: [`check_glob`], and no
    /// literal path into `.git` or `.swarm`.
    pub fn parse(task: usize, pattern: &str) -> Result<Self, String> {
        let glob = check_glob(pattern)?;
        let text = normal(pattern);
        let components: Vec<&str> = text.split('/').collect();
        let literal_parts: Vec<String> = components.iter().map_while(|c| literal(c)).collect();
        if let Some(dir) = literal_parts.iter().find(|c| ALWAYS_SKIPPED.contains(&c.as_str())) {
            return Err(format!("{} is inside `{dir}`, which no task may own or create files in", shown(pattern)));
        }
        let literal = literal(text);
        let dir_count = literal_parts.len().min(components.len() - 1);
        let dirs = literal_parts[..dir_count].join("/");
        // What follows the last wild piece is matched literally at the end
        // of every path; its leading `/` is not, after a leading `**/`.
        let pieces = pieces(text);
        let tail_start = pieces.iter().rposition(|p| *p == Piece::Wild).map_or(0, |i| i + 1);
        let tail: String = pieces[tail_start..]
            .iter()
            .filter_map(|p| match p {
                Piece::Literal(c) => Some(*c),
                Piece::Wild => None,
            })
            .collect();
        let tail = tail.strip_prefix('/').map(str::to_string).unwrap_or(tail);
        Ok(Self { task, text: pattern.to_string(), literal, dirs, tail, glob })
    }

    /// True if a new path could match both `self` and `other` (both globs),
    /// as far as a cheap look tells: the literal directories of one lie
    /// within the other's, and one's literal end ends the other's.
    fn may_meet(&self, other: &Owned) -> bool {
        let within = |a: &str, b: &str| a.is_empty() || b == a || b.starts_with(&format!("{a}/"));
        let nested = within(&self.dirs, &other.dirs) || within(&other.dirs, &self.dirs);
        nested && (self.tail.ends_with(&other.tail) || other.tail.ends_with(&self.tail))
    }
}

/// Every task's patterns, ready to match files against.
#[derive(Debug)]
pub struct Index {
    /// The patterns, in plan order.
    pub patterns: Vec<Owned>,
    /// Literal path → its patterns.
    literal: HashMap<String, Vec<usize>>,
    /// Literal leading directories → the globs under them, and their
    /// pattern indices.
    groups: HashMap<String, (GlobSet, Vec<usize>)>,
}

impl Index {
    /// Indexes `patterns`. `Err` names the group of globs that could not be
    /// compiled together (the regex engine's size limit).
    pub fn new(patterns: Vec<Owned>) -> Result<Self, String> {
        let mut literal: HashMap<String, Vec<usize>> = HashMap::new();
        let mut grouped: HashMap<String, (GlobSetBuilder, Vec<usize>)> = HashMap::new();
        for (i, p) in patterns.iter().enumerate() {
            match &p.literal {
                Some(path) => literal.entry(path.clone()).or_default().push(i),
                None => {
                    let (set, members) =
                        grouped.entry(p.dirs.clone()).or_insert_with(|| (GlobSetBuilder::new(), Vec::new()));
                    set.add(p.glob.clone());
                    members.push(i);
                }
            }
        }
        let mut groups = HashMap::with_capacity(grouped.len());
        for (dirs, (set, members)) in grouped {
            let set = set.build().map_err(|e| {
                format!(
                    "the {} owns globs under `{}/` are too complex to match together: {}",
                    members.len(),
                    crate::sanitize::line(&dirs),
                    crate::sanitize::line(&e.to_string())
                )
            })?;
            groups.insert(dirs, (set, members));
        }
        Ok(Self { patterns, literal, groups })
    }

    /// Appends the indices of the patterns that match `path` to `out`:
    /// literal ones, then globs (only those of its ancestor directories).
    pub fn matches(&self, path: &str, out: &mut Vec<usize>) {
        if let Some(found) = self.literal.get(path) {
            out.extend(found);
        }
        self.glob_matches(path, out);
    }

    /// [`Index::matches`] for globs only.
    fn glob_matches(&self, path: &str, out: &mut Vec<usize>) {
        if self.groups.is_empty() {
            return;
        }
        let ancestors = std::iter::once("").chain(path.match_indices('/').map(|(i, _)| &path[..i]));
        for dirs in ancestors {
            if let Some((set, members)) = self.groups.get(dirs) {
                out.extend(set.matches(path).into_iter().map(|k| members[k]));
            }
        }
    }
}

/// Pairs of patterns of two different tasks that could both match a path
/// that does not exist yet, as `(earlier, later)` pattern indices, at most
/// `cap` of them plus how many more there are. `matched[i]` says whether
/// pattern `i` matched an existing file: a literal path that exists is
/// owned, and two tasks owning it is an error reported elsewhere.
pub fn creation_overlaps(index: &Index, matched: &[bool], cap: usize) -> (Vec<(usize, usize)>, usize) {
    let mut found = Vec::new();
    let mut more = 0;
    let mut add = |a: usize, b: usize| {
        let pair = (a.min(b), a.max(b));
        if found.len() < cap {
            found.push(pair);
        } else {
            more += 1;
        }
    };
    let p = &index.patterns;
    // A literal path yet to be created, against every other pattern.
    for (i, own) in p.iter().enumerate() {
        let Some(path) = &own.literal else { continue };
        if matched[i] {
            continue;
        }
        let mut hits = Vec::new();
        index.matches(path, &mut hits);
        for k in hits {
            // A literal pair is counted once, from its first pattern.
            if p[k].task != own.task && (p[k].literal.is_none() || k > i) {
                add(i, k);
            }
        }
    }
    // Two globs: at most MAX_GLOBS of them, so the pairs are few enough.
    let globs: Vec<usize> = (0..p.len()).filter(|&i| p[i].literal.is_none()).collect();
    for (n, &a) in globs.iter().enumerate() {
        for &b in &globs[n + 1..] {
            if p[a].task != p[b].task && p[a].may_meet(&p[b]) {
                add(a, b);
            }
        }
    }
    (found, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_paths_are_told_from_globs() {
        assert_eq!(literal("src/a.rs").as_deref(), Some("src/a.rs"));
        assert_eq!(literal(&escape("we*ird[1]{x}\\?.rs")).as_deref(), Some("we*ird[1]{x}\\?.rs"));
        assert_eq!(literal("a\\*b").as_deref(), Some("a*b"));
        for glob in ["src/*.rs", "src/**", "a?", "[ab].rs", "[!a]", "{a,b}", "x[]a]"] {
            assert_eq!(literal(glob), None, "{glob}");
        }
    }

    #[test]
    fn an_escaped_path_matches_only_itself() {
        for path in ["a*.rs", "[x].rs", "b\\c.rs", "{a,b}.rs", "q?.md", "plain.rs"] {
            let glob = check_glob(&escape(path)).unwrap().compile_matcher();
            assert!(glob.is_match(path), "{path}");
            for other in ["ab.rs", "x.rs", "bc.rs", "a.rs", "qq.md", "c.rs"] {
                assert!(!glob.is_match(other), "{path} matched {other}");
            }
        }
    }

    #[test]
    fn a_pattern_knows_its_literal_directories_and_end() {
        let o = Owned::parse(0, "./src/parser/**/*.rs").unwrap();
        assert_eq!((o.dirs.as_str(), o.tail.as_str(), o.literal.as_deref()), ("src/parser", ".rs", None));
        let o = Owned::parse(0, "src/lib.rs").unwrap();
        assert_eq!((o.dirs.as_str(), o.literal.as_deref()), ("src", Some("src/lib.rs")));
        let o = Owned::parse(0, "**").unwrap();
        assert_eq!((o.dirs.as_str(), o.tail.as_str()), ("", ""));
        let e = Owned::parse(0, "sub/.git/hooks/*").unwrap_err();
        assert!(e.contains("inside `.git`"), "{e}");
    }

    #[test]
    fn files_match_the_globs_of_their_directories_and_literal_paths() {
        let pats = ["src/**", "src/parser/*.rs", "docs/a.md", "**/*.md", "src/[ab].rs"];
        let index = Index::new(pats.iter().enumerate().map(|(i, p)| Owned::parse(i, p).unwrap()).collect()).unwrap();
        let hits = |f: &str| {
            let mut out = Vec::new();
            index.matches(f, &mut out);
            out.sort();
            out
        };
        assert_eq!(hits("src/parser/lexer.rs"), [0, 1]);
        assert_eq!(hits("src/a.rs"), [0, 4]);
        assert_eq!(hits("docs/a.md"), [2, 3]);
        assert_eq!(hits("other/x.rs"), Vec::<usize>::new());
    }

    #[test]
    fn creation_overlaps_name_nested_globs_and_globs_over_new_literal_paths() {
        let pats = [
            (0, "src/**"),
            (1, "src/parser/*.rs"),
            (2, "docs/*.md"),
            (3, "docs/*.txt"),
            (4, "src/new.rs"),
            (4, "x/**"),
        ];
        let index = Index::new(pats.iter().map(|(t, p)| Owned::parse(*t, p).unwrap()).collect()).unwrap();
        let (pairs, more) = creation_overlaps(&index, &[false; 6], 10);
        assert_eq!(pairs, [(0, 4), (0, 1)], "docs/*.md and docs/*.txt cannot meet");
        assert_eq!(more, 0);
        let (pairs, more) = creation_overlaps(&index, &[false; 6], 1);
        assert_eq!((pairs.len(), more), (1, 1));
    }
}
