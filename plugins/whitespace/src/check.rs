//! Whitespace checks and the fixer: pure functions, no host calls, tested
//! natively.

/// What to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Longest allowed line, in characters; 0 turns the check off.
    pub max_line: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_line: DEFAULT_MAX_LINE }
    }
}

/// Default of the `max-line` option.
pub const DEFAULT_MAX_LINE: usize = 100;

/// Most findings of one rule reported per file; the rest are counted in one
/// closing finding.
pub const MAX_PER_RULE: usize = 50;

/// Rule ids, stable: they key the merged report's per-rule counts and SARIF
/// rules.
pub mod rule {
    /// Spaces or tabs at the end of a line.
    pub const TRAILING: &str = "whitespace/trailing";
    /// Some lines indented with tabs, others with spaces.
    pub const MIXED_INDENT: &str = "whitespace/mixed-indent";
    /// The last line has no `\n`.
    pub const FINAL_NEWLINE: &str = "whitespace/final-newline";
    /// Lines ending in `\r\n`.
    pub const CRLF: &str = "whitespace/crlf";
    /// A line longer than `max-line`.
    pub const LINE_LENGTH: &str = "whitespace/line-length";
}

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line, when the issue is on one.
    pub line: Option<u32>,
    /// Its rule id (see [`rule`]).
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// True if [`fix`] repairs it.
    pub fixable: bool,
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Every whitespace issue in `text`, in rule order, each rule's issues in
/// line order, at most [`MAX_PER_RULE`] (+1 summary) per rule.
pub fn check(text: &str, config: Config) -> Vec<Issue> {
    let mut trailing = Vec::new();
    let mut long = Vec::new();
    let (mut tab_lines, mut space_lines) = (Vec::new(), Vec::new());
    let mut crlf = Vec::new();
    // `split('\n')` keeps the piece after the last newline: empty when the
    // file ends with one.
    let pieces: Vec<&str> = text.split('\n').collect();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        if i == last && piece.is_empty() {
            break;
        }
        let line = match piece.strip_suffix('\r') {
            Some(l) if i < last => {
                crlf.push(i);
                l
            }
            _ => piece,
        };
        let kept = line.trim_end();
        if kept.len() < line.len() {
            trailing.push(Issue {
                line: Some(line_no(i)),
                rule: rule::TRAILING,
                message: format!("trailing whitespace ({} chars)", line[kept.len()..].chars().count()),
                fixable: true,
            });
        }
        match line.chars().next() {
            Some('\t') if !kept.is_empty() => tab_lines.push(i),
            Some(' ') if !kept.is_empty() => space_lines.push(i),
            _ => {}
        }
        let chars = line.chars().count();
        if config.max_line > 0 && chars > config.max_line {
            long.push(Issue {
                line: Some(line_no(i)),
                rule: rule::LINE_LENGTH,
                message: format!("line is {chars} characters, over max-line = {}", config.max_line),
                fixable: false,
            });
        }
    }

    let mut issues = Vec::new();
    push_capped(&mut issues, trailing);
    if !tab_lines.is_empty() && !space_lines.is_empty() {
        // The minority style is the odd one out (tabs lose a tie).
        let (odd, odd_name, usual) = if tab_lines.len() <= space_lines.len() {
            (&tab_lines, "tabs", "spaces")
        } else {
            (&space_lines, "spaces", "tabs")
        };
        let found = odd
            .iter()
            .map(|&i| Issue {
                line: Some(line_no(i)),
                rule: rule::MIXED_INDENT,
                message: format!(
                    "indented with {odd_name} while {} other lines use {usual}",
                    tab_lines.len() + space_lines.len() - odd.len()
                ),
                fixable: false,
            })
            .collect();
        push_capped(&mut issues, found);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        issues.push(Issue {
            line: Some(line_no(last)),
            rule: rule::FINAL_NEWLINE,
            message: "no newline at the end of the file".into(),
            fixable: true,
        });
    }
    if let Some(&first) = crlf.first() {
        issues.push(Issue {
            line: Some(line_no(first)),
            rule: rule::CRLF,
            message: format!("{} line(s) end with CRLF (\\r\\n), the first here", crlf.len()),
            fixable: true,
        });
    }
    push_capped(&mut issues, long);
    issues
}

fn push_capped(issues: &mut Vec<Issue>, found: Vec<Issue>) {
    let total = found.len();
    let Some(first) = found.first() else { return };
    let (rule, fixable) = (first.rule, first.fixable);
    issues.extend(found.into_iter().take(MAX_PER_RULE));
    if total > MAX_PER_RULE {
        issues.push(Issue {
            line: None,
            rule,
            message: format!("… and {} more {rule} issue(s) in this file", total - MAX_PER_RULE),
            fixable,
        });
    }
}

/// `text` with every fixable issue repaired: `\r\n` becomes `\n`, trailing
/// whitespace is removed, and a non-empty file ends with a newline.
/// Indentation and long lines are left alone.
pub fn fix(text: &str) -> String {
    let mut out: String = text.split('\n').map(str::trim_end).collect::<Vec<_>>().join("\n");
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, max_line: usize) -> Vec<(Option<u32>, &'static str)> {
        check(text, Config { max_line }).into_iter().map(|i| (i.line, i.rule)).collect()
    }

    #[test]
    fn a_clean_file_has_no_issues() {
        assert!(found("fn main() {\n    x();\n}\n", 100).is_empty());
        assert!(found("", 100).is_empty());
        assert!(found("\n\n", 100).is_empty());
        assert!(found("\tonly\n\ttabs\n", 100).is_empty());
    }

    #[test]
    fn trailing_whitespace_per_line() {
        let issues = check("a \nb\nc\t\t\n   \n", Config::default());
        let lines: Vec<_> = issues.iter().map(|i| (i.line, i.rule)).collect();
        assert_eq!(lines, [(Some(1), rule::TRAILING), (Some(3), rule::TRAILING), (Some(4), rule::TRAILING)]);
        assert_eq!(issues[1].message, "trailing whitespace (2 chars)");
        assert!(issues.iter().all(|i| i.fixable));
    }

    #[test]
    fn missing_final_newline_names_the_last_line() {
        assert_eq!(found("a\nb", 100), [(Some(2), rule::FINAL_NEWLINE)]);
        assert_eq!(found("a", 100), [(Some(1), rule::FINAL_NEWLINE)]);
    }

    #[test]
    fn crlf_is_one_issue_per_file_and_not_trailing_whitespace() {
        let issues = check("a\nb\r\nc\r\n", Config::default());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!((issues[0].line, issues[0].rule), (Some(2), rule::CRLF));
        assert!(issues[0].message.starts_with("2 line(s) end with CRLF"), "{}", issues[0].message);
    }

    #[test]
    fn the_minority_indentation_is_reported() {
        let text = "fn a() {\n    one();\n    two();\n\tthree();\n}\n";
        let issues = check(text, Config::default());
        assert_eq!(issues.len(), 1);
        assert_eq!((issues[0].line, issues[0].rule), (Some(4), rule::MIXED_INDENT));
        assert_eq!(issues[0].message, "indented with tabs while 2 other lines use spaces");
        // Mostly tabs: the space-indented line is the odd one.
        assert_eq!(found("\ta\n\tb\n  c\n", 100), [(Some(3), rule::MIXED_INDENT)]);
        // Blank lines do not count as indented.
        assert!(found("\ta\n   \n", 100).iter().all(|(_, r)| *r == rule::TRAILING));
    }

    #[test]
    fn long_lines_count_characters_and_zero_turns_the_check_off() {
        let line = "é".repeat(11);
        assert_eq!(found(&format!("{line}\n"), 10), [(Some(1), rule::LINE_LENGTH)]);
        assert!(found(&format!("{line}\n"), 11).is_empty());
        assert!(found(&format!("{}\n", "x".repeat(5000)), 0).is_empty());
        let issues = check("xxxx\n", Config { max_line: 3 });
        assert_eq!(issues[0].message, "line is 4 characters, over max-line = 3");
        assert!(!issues[0].fixable);
    }

    #[test]
    fn findings_are_capped_per_rule_with_a_count_of_the_rest() {
        let text = "x \n".repeat(MAX_PER_RULE + 7);
        let issues = check(&text, Config::default());
        assert_eq!(issues.len(), MAX_PER_RULE + 1);
        let last = issues.last().unwrap();
        assert_eq!(last.line, None);
        assert_eq!(last.message, "… and 7 more whitespace/trailing issue(s) in this file");
    }

    #[test]
    fn fix_repairs_what_is_fixable_and_nothing_else() {
        assert_eq!(fix("a  \r\n\tb\t\r\n  \nc"), "a\n\tb\n\nc\n");
        assert_eq!(fix(""), "");
        assert_eq!(fix("ok\n"), "ok\n");
        let long = format!("{}\n", "y".repeat(300));
        assert_eq!(fix(&long), long);
        let fixed = fix("a \r\nb");
        assert!(check(&fixed, Config::default()).is_empty(), "{fixed:?}");
    }
}
