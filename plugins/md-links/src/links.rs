//! Markdown link extraction, heading anchors and target resolution: pure
//! functions, no host calls, tested natively.

use std::collections::HashSet;

/// Rule ids, stable.
pub mod rule {
    /// A relative link whose target file or directory does not exist.
    pub const BROKEN_LINK: &str = "md-links/broken-link";
    /// A relative image whose file does not exist.
    pub const BROKEN_IMAGE: &str = "md-links/broken-image";
    /// A `#anchor` that no heading (or `id`/`name` attribute) of the target
    /// Markdown file defines.
    pub const BROKEN_ANCHOR: &str = "md-links/broken-anchor";
    /// A relative link that climbs above the workspace root.
    pub const OUTSIDE_ROOT: &str = "md-links/outside-root";
}

/// One link or image in a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// 1-based line.
    pub line: u32,
    /// The destination as written.
    pub target: String,
    /// True for `![alt](target)`.
    pub image: bool,
}

/// Lines of `text` that are not inside fenced code blocks, with their
/// 1-based numbers.
fn prose_lines(text: &str) -> Vec<(u32, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        let opener = ['`', '~'].into_iter().map(|c| (c, run(c))).find(|&(_, len)| len >= 3);
        match (fence, opener) {
            (None, Some(open)) => {
                fence = Some(open);
                continue;
            }
            (Some((c, len)), Some((c2, len2))) if c == c2 && len2 >= len && trimmed[len2..].trim().is_empty() => {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            (None, None) => {}
        }
        out.push((u32::try_from(n + 1).unwrap_or(u32::MAX), line));
    }
    out
}

/// `line` with the contents of `code spans` replaced by spaces.
fn blank_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else if in_code {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Every inline link, image and reference definition outside code, in
/// order. Autolinks and raw HTML are not links here.
pub fn extract(text: &str) -> Vec<Link> {
    let mut links = Vec::new();
    for (line_no, line) in prose_lines(text) {
        let line = blank_code_spans(line);
        if let Some(target) = reference_definition(&line) {
            links.push(Link { line: line_no, target, image: false });
            continue;
        }
        let bytes = line.as_bytes();
        for (open, _) in line.match_indices('[') {
            let Some(close) = matching_bracket(bytes, open) else { continue };
            if bytes.get(close + 1) != Some(&b'(') {
                continue;
            }
            if let Some(target) = destination(&line[close + 2..]) {
                let image = open > 0 && bytes[open - 1] == b'!';
                links.push(Link { line: line_no, target, image });
            }
        }
    }
    links
}

/// The index of the `]` closing the `[` at `open`, with nesting.
fn matching_bracket(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The destination at the start of `rest` (the text after `](`): either
/// `<…>` or up to whitespace or the unbalanced `)`.
fn destination(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        return inner.find('>').map(|end| inner[..end].to_string());
    }
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(rest[..i].to_string()),
            ')' => depth -= 1,
            c if c.is_whitespace() => return Some(rest[..i].to_string()),
            _ => {}
        }
    }
    None
}

/// `[label]: target` (up to 3 spaces of indentation).
fn reference_definition(line: &str) -> Option<String> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line[indent..].strip_prefix('[').filter(|_| indent <= 3)?;
    let end = rest.find("]:")?;
    if end == 0 || rest[..end].starts_with('^') {
        return None; // empty label, or a footnote
    }
    let target = rest[end + 2..].split_whitespace().next()?;
    Some(target.trim_start_matches('<').trim_end_matches('>').to_string())
}

/// True for destinations that are not files in the workspace: URLs with a
/// scheme (`https:`, `mailto:`), protocol-relative `//host` links.
pub fn is_external(target: &str) -> bool {
    if target.starts_with("//") {
        return true;
    }
    match target.find(':') {
        Some(colon) => {
            let scheme = &target[..colon];
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        }
        None => false,
    }
}

/// The anchors a Markdown file defines: GitHub-style slugs of its ATX
/// headings (duplicates get `-1`, `-2`, …) and every `id="…"` / `name="…"`
/// attribute of inline HTML. All in lower case.
pub fn anchors(text: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for (_, line) in prose_lines(text) {
        for attr in ["id=\"", "name=\""] {
            for (at, _) in line.match_indices(attr) {
                let rest = &line[at + attr.len()..];
                if let Some(end) = rest.find('"') {
                    set.insert(rest[..end].to_lowercase());
                }
            }
        }
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) || line.len() - trimmed.len() > 3 {
            continue;
        }
        let title = &trimmed[level..];
        if !title.is_empty() && !title.starts_with([' ', '\t']) {
            continue;
        }
        let base = slug(title.trim().trim_end_matches('#').trim());
        let mut candidate = base.clone();
        let mut n = 0;
        while !set.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    set
}

/// GitHub's heading slug: link destinations dropped, lower case, letters,
/// digits, `-` and `_` kept, spaces to `-`, everything else removed.
pub fn slug(title: &str) -> String {
    let mut text = String::new();
    let mut rest = title;
    // `[text](url)` → `text`.
    while let Some(at) = rest.find("](") {
        text.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        rest = after.find(')').map_or("", |end| &after[end + 1..]);
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Where a relative link points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Path relative to the workspace root (`""` for the root itself);
    /// `None` for a link into the same file (`#anchor`).
    pub path: Option<String>,
    /// The anchor, decoded and in lower case, if any.
    pub anchor: Option<String>,
}

/// Resolves `target`, written in the Markdown file `from` (a root-relative
/// path), against the workspace root. A leading `/` means the root, as on
/// GitHub. `Err` if the path climbs above the root.
pub fn resolve(from: &str, target: &str) -> Result<Target, String> {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(percent_decode(a).to_lowercase())),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Ok(Target { path: None, anchor });
    }
    let path = percent_decode(path);
    let mut parts: Vec<&str> = Vec::new();
    if !path.starts_with('/') {
        parts.extend(from.split('/'));
        parts.pop(); // the file's own name
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("`{target}` climbs above the workspace root"));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(Target { path: Some(parts.join("/")), anchor })
}

/// `%20` → ` `; malformed escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(text: &str) -> Vec<(u32, String, bool)> {
        extract(text).into_iter().map(|l| (l.line, l.target, l.image)).collect()
    }

    fn want(items: &[(u32, &str, bool)]) -> Vec<(u32, String, bool)> {
        items.iter().map(|&(n, t, i)| (n, t.to_string(), i)).collect()
    }

    #[test]
    fn inline_links_images_and_references() {
        let text = "See [the guide](docs/guide.md) and ![logo](img/logo.png \"Logo\").\n\
                    [![badge](b.svg)](https://ci) [x](<with space.md>) [p](a_(b).md)\n\
                    \n   [ref]: ../up.md \"title\"\n[^1]: a footnote\n[not a link] (x.md)\n";
        assert_eq!(
            targets(text),
            want(&[
                (1, "docs/guide.md", false),
                (1, "img/logo.png", true),
                (2, "https://ci", false),
                (2, "b.svg", true),
                (2, "with space.md", false),
                (2, "a_(b).md", false),
                (4, "../up.md", false),
            ])
        );
    }

    #[test]
    fn code_is_not_scanned() {
        let text = "```sh\n[a](missing.md)\n```\nok `[b](in-code.md)` [c](real.md)\n~~~~\n[d](x.md)\n~~~\n~~~~\n";
        assert_eq!(targets(text), want(&[(4, "real.md", false)]));
    }

    #[test]
    fn external_targets() {
        for t in ["https://x.org/a", "mailto:a@b", "//cdn/x.js", "ftp://h", "tel:+1"] {
            assert!(is_external(t), "{t}");
        }
        for t in ["docs/a.md", "a.md#x:y", "#anchor", "./c:d", ""] {
            assert!(!is_external(t), "{t}");
        }
    }

    #[test]
    fn github_slugs_and_duplicates() {
        let text = "# Quick start\n## A teammate in 20 lines\n## Quick start\n### `run` & [links](x.md)!\n\
                    #not-a-heading\n    # indented code\n```\n# in code\n```\n<a id=\"Custom\"></a>\n";
        let got = anchors(text);
        for want in ["quick-start", "quick-start-1", "a-teammate-in-20-lines", "run--links", "custom"] {
            assert!(got.contains(want), "{want} not in {got:?}");
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(slug("State, resume and status"), "state-resume-and-status");
        assert_eq!(slug("Limits (defaults)"), "limits-defaults");
    }

    #[test]
    fn resolving_against_the_file_and_the_root() {
        let t = |p: &str, a: Option<&str>| Target { path: Some(p.into()), anchor: a.map(Into::into) };
        assert_eq!(resolve("docs/guide.md", "api.md"), Ok(t("docs/api.md", None)));
        assert_eq!(resolve("docs/guide.md", "../README.md#Quick-Start"), Ok(t("README.md", Some("quick-start"))));
        assert_eq!(resolve("docs/guide.md", "/wit/teammate.wit"), Ok(t("wit/teammate.wit", None)));
        assert_eq!(resolve("README.md", "./plugins/"), Ok(t("plugins", None)));
        assert_eq!(resolve("README.md", "my%20file.md?raw=1"), Ok(t("my file.md", None)));
        assert_eq!(resolve("a/b.md", ".."), Ok(t("", None)));
        assert_eq!(resolve("README.md", "#Layout"), Ok(Target { path: None, anchor: Some("layout".into()) }));
        assert!(resolve("README.md", "../outside.md").unwrap_err().contains("climbs above"));
        assert!(resolve("README.md", "..").is_err());
    }
}
