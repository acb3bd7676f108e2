//! Marker matching: pure functions, no host calls, tested natively.

/// The markers `todo-scan` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `TODO`
    Todo,
    /// `FIXME`
    Fixme,
    /// `XXX`
    Xxx,
}

impl Marker {
    /// All markers, in the order they are tried.
    pub const ALL: [Marker; 3] = [Marker::Todo, Marker::Fixme, Marker::Xxx];

    /// The word as it appears in source.
    pub fn word(self) -> &'static str {
        match self {
            Marker::Todo => "TODO",
            Marker::Fixme => "FIXME",
            Marker::Xxx => "XXX",
        }
    }

    /// The finding's rule name: the word in lower case.
    pub fn rule(self) -> &'static str {
        match self {
            Marker::Todo => "todo",
            Marker::Fixme => "fixme",
            Marker::Xxx => "xxx",
        }
    }
}

/// One marker found on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1-based line number.
    pub line: u32,
    /// Which marker.
    pub marker: Marker,
    /// The line, trimmed and cut to [`MAX_TEXT_CHARS`] characters.
    pub text: String,
}

/// Longest line text kept in a finding, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// Finds every marker in `text`, in order of line, then column. Each
/// occurrence is one hit.
pub fn find_markers(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let found = markers_in_line(line);
        if found.is_empty() {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let shown = clip(line.trim(), MAX_TEXT_CHARS);
        hits.extend(found.into_iter().map(|marker| Hit { line: line_no, marker, text: shown.clone() }));
    }
    hits
}

/// The markers on one line, in column order. A marker counts only as a
/// whole word: the characters around it must not be letters, digits or `_`.
pub fn markers_in_line(line: &str) -> Vec<Marker> {
    let mut found: Vec<(usize, Marker)> = Vec::new();
    for marker in Marker::ALL {
        let word = marker.word();
        let mut from = 0;
        while let Some(pos) = line[from..].find(word) {
            let start = from + pos;
            let end = start + word.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            if !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char) {
                found.push((start, marker));
            }
            from = end;
        }
    }
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, marker)| marker).collect()
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `s` cut to at most `max` characters (on a char boundary), with `…`
/// appended when something was cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// Counts for the report summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Markers found.
    pub markers: usize,
    /// Files with at least one marker.
    pub files_with_markers: usize,
    /// Files skipped because they are not UTF-8.
    pub skipped: usize,
    /// Files that could not be read.
    pub unreadable: usize,
}

impl Stats {
    /// Records one scanned file with `markers` markers.
    pub fn record_scanned(&mut self, markers: usize) {
        self.markers += markers;
        if markers > 0 {
            self.files_with_markers += 1;
        }
    }

    /// E.g. `3 markers in 2 of 5 files, 1 skipped (not UTF-8), 1 unreadable`.
    pub fn summary(&self, files: usize) -> String {
        let mut s =
            format!("{} in {} of {}", plural(self.markers, "marker"), self.files_with_markers, plural(files, "file"));
        if self.skipped > 0 {
            s += &format!(", {} skipped (not UTF-8)", self.skipped);
        }
        if self.unreadable > 0 {
            s += &format!(", {} unreadable", self.unreadable);
        }
        s
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(line: &str) -> Vec<&'static str> {
        markers_in_line(line).into_iter().map(Marker::rule).collect()
    }

    #[test]
    fn whole_words_match() {
        assert_eq!(rules("// TODO: fix"), ["todo"]);
        assert_eq!(rules("TODO(bob) later"), ["todo"]);
        assert_eq!(rules("// FIXME"), ["fixme"]);
        assert_eq!(rules("XXX"), ["xxx"]);
        assert_eq!(rules("# TODO-list and XXX."), ["todo", "xxx"]);
        assert_eq!(rules("/*FIXME*/"), ["fixme"]);
    }

    #[test]
    fn parts_of_words_do_not_match() {
        assert!(rules("TODOS are fine").is_empty());
        assert!(rules("let todo_list = 1;").is_empty());
        assert!(rules("size XXXL").is_empty());
        assert!(rules("MY_TODO").is_empty());
        assert!(rules("TODO_LATER").is_empty());
        assert!(rules("2TODO").is_empty());
        assert!(rules("éTODO").is_empty());
        assert!(rules("todo: lower case is prose").is_empty());
        assert!(rules("XXXX").is_empty());
    }

    #[test]
    fn several_markers_in_column_order() {
        assert_eq!(rules("XXX then FIXME then TODO"), ["xxx", "fixme", "todo"]);
        assert_eq!(rules("TODO TODO"), ["todo", "todo"]);
        // A rejected candidate does not hide a later match.
        assert_eq!(rules("TODOS TODO"), ["todo"]);
    }

    #[test]
    fn hits_have_lines_and_trimmed_text() {
        let text = "fn main() {\n    // TODO: first\r\n}\n\t// FIXME second  \n";
        let hits = find_markers(text);
        assert_eq!(
            hits,
            vec![
                Hit { line: 2, marker: Marker::Todo, text: "// TODO: first".into() },
                Hit { line: 4, marker: Marker::Fixme, text: "// FIXME second".into() },
            ]
        );
        assert!(find_markers("").is_empty());
    }

    #[test]
    fn long_lines_are_clipped_on_char_boundaries() {
        let line = format!("// TODO {}", "é".repeat(300));
        let hit = &find_markers(&line)[0];
        assert_eq!(hit.text.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(hit.text.ends_with('…'));
        assert_eq!(clip("short", 200), "short");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
    }

    #[test]
    fn summary_wording() {
        let mut s = Stats::default();
        s.record_scanned(2);
        s.record_scanned(0);
        s.record_scanned(1);
        assert_eq!(s.summary(5), "3 markers in 2 of 5 files");
        s.skipped = 1;
        s.unreadable = 2;
        assert_eq!(s.summary(5), "3 markers in 2 of 5 files, 1 skipped (not UTF-8), 2 unreadable");
        let mut one = Stats::default();
        one.record_scanned(1);
        assert_eq!(one.summary(1), "1 marker in 1 of 1 file");
        assert_eq!(Stats::default().summary(0), "0 markers in 0 of 0 files");
    }
}
