//! Licence-header checks and insertion: pure functions, no host calls,
//! tested natively.

/// The tag every accepted header carries.
pub const SPDX_TAG: &str = "SPDX-License-Identifier:";

/// How many lines from the top (after a shebang or XML declaration) may hold
/// the header by default.
pub const DEFAULT_WITHIN: usize = 5;

/// Rule ids, stable.
pub mod rule {
    /// No SPDX header near the top of the file.
    pub const MISSING: &str = "license-header/missing";
    /// An SPDX header naming another licence than the one asked for.
    pub const MISMATCH: &str = "license-header/mismatch";
    /// `fix` could not insert a header: no known comment syntax for the file.
    pub const UNKNOWN_STYLE: &str = "license-header/unknown-style";
}

/// What a header looks like in a given kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `// …`
    Slashes,
    /// `# …`
    Hash,
    /// `-- …`
    Dashes,
    /// `<!-- … -->`
    Html,
    /// `/* … */`
    Block,
}

impl Style {
    /// The comment syntax for `path`, by extension or well-known file name.
    pub fn for_path(path: &str) -> Option<Style> {
        let name = path.rsplit('/').next().unwrap_or(path);
        if matches!(name, "Dockerfile" | "Makefile" | "makefile" | "CMakeLists.txt" | "run") {
            return Some(Style::Hash);
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
        Some(match ext.as_str() {
            "rs" | "c" | "h" | "cc" | "cpp" | "hpp" | "go" | "java" | "js" | "mjs" | "ts" | "tsx" | "jsx" | "kt"
            | "swift" | "scala" | "wit" | "proto" | "dart" | "zig" => Style::Slashes,
            "toml" | "py" | "sh" | "bash" | "yaml" | "yml" | "rb" | "pl" | "r" | "cmake" | "nix" | "ps1" => Style::Hash,
            "sql" | "lua" | "hs" | "elm" => Style::Dashes,
            "md" | "html" | "htm" | "xml" | "svg" | "vue" => Style::Html,
            "css" | "scss" | "less" => Style::Block,
            _ => return None,
        })
    }

    /// The header line for licence `id`, without the newline.
    pub fn header(self, id: &str) -> String {
        match self {
            Style::Slashes => format!("// {SPDX_TAG} {id}"),
            Style::Hash => format!("# {SPDX_TAG} {id}"),
            Style::Dashes => format!("-- {SPDX_TAG} {id}"),
            Style::Html => format!("<!-- {SPDX_TAG} {id} -->"),
            Style::Block => format!("/* {SPDX_TAG} {id} */"),
        }
    }
}

/// What may come before the SPDX tag on a header line: a comment opener
/// (or nothing, inside a block comment). A line that only mentions the tag,
/// like a string constant or prose, is not a header.
const COMMENT_OPENERS: &[&str] = &["", "//", "///", "//!", "#", "--", "<!--", "/*", "/**", "*", ";", ";;", "%", "'"];

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A header naming the wanted licence (or any, if none was asked for).
    Ok,
    /// No header within the first lines.
    Missing,
    /// A header naming `found` on 1-based line `line`.
    Mismatch {
        /// Line of the header.
        line: u32,
        /// The licence expression it names.
        found: String,
    },
}

/// Lines at the top that come before any header: a shebang (`#!/…`, not a
/// Rust `#![attr]`) or an XML declaration.
fn preamble_lines(text: &str) -> usize {
    match text.lines().next() {
        Some(first) if first.starts_with("#!") && !first.starts_with("#![") => 1,
        Some(first) if first.starts_with("<?xml") => 1,
        _ => 0,
    }
}

/// Looks for an SPDX header within the first `within` lines after the
/// preamble. `want` is the licence expression the header must name, if any.
pub fn check(text: &str, want: Option<&str>, within: usize) -> Verdict {
    let skip = preamble_lines(text);
    for (n, line) in text.lines().enumerate().skip(skip).take(within) {
        if let Some(at) = line.find(SPDX_TAG)
            && COMMENT_OPENERS.contains(&line[..at].trim())
        {
            let rest = line[at + SPDX_TAG.len()..].trim();
            let found = rest.trim_end_matches("-->").trim_end_matches("*/").trim();
            return match want {
                Some(w) if w != found => {
                    Verdict::Mismatch { line: u32::try_from(n + 1).unwrap_or(u32::MAX), found: found.to_string() }
                }
                _ => Verdict::Ok,
            };
        }
    }
    Verdict::Missing
}

/// `text` with `header` inserted as its first line (after a shebang or XML
/// declaration), keeping the file's line ending style.
pub fn insert(text: &str, header: &str) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let split = if preamble_lines(text) == 1 { text.find('\n').map_or(text.len(), |end| end + 1) } else { 0 };
    let (before, after) = text.split_at(split);
    let mut out = String::with_capacity(text.len() + header.len() + 4);
    out.push_str(before);
    if !before.is_empty() && !before.ends_with('\n') {
        out.push_str(newline);
    }
    out.push_str(header);
    out.push_str(newline);
    out.push_str(after);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_by_extension_and_name() {
        assert_eq!(Style::for_path("src/lib.rs"), Some(Style::Slashes));
        assert_eq!(Style::for_path("Cargo.toml"), Some(Style::Hash));
        assert_eq!(Style::for_path("a/b/Makefile"), Some(Style::Hash));
        assert_eq!(Style::for_path("README.MD"), Some(Style::Html));
        assert_eq!(Style::for_path("x.sql"), Some(Style::Dashes));
        assert_eq!(Style::for_path("site.css"), Some(Style::Block));
        assert_eq!(Style::for_path("image.png"), None);
        assert_eq!(Style::for_path("LICENSE"), None);
        assert_eq!(Style::Html.header("MIT"), "<!-- SPDX-License-Identifier: MIT -->");
    }

    #[test]
    fn a_header_near_the_top_is_found() {
        assert_eq!(check("// SPDX-License-Identifier: MIT\nfn x() {}\n", None, 5), Verdict::Ok);
        assert_eq!(check("// SPDX-License-Identifier: MIT\n", Some("MIT"), 5), Verdict::Ok);
        assert_eq!(check("<!-- SPDX-License-Identifier: MIT -->\n", Some("MIT"), 5), Verdict::Ok);
        let late = format!("{}// SPDX-License-Identifier: MIT\n", "\n".repeat(5));
        assert_eq!(check(&late, None, 5), Verdict::Missing);
        assert_eq!(check(&late, None, 6), Verdict::Ok);
        assert_eq!(check("", None, 5), Verdict::Missing);
        assert_eq!(check("fn main() {}\n", None, 5), Verdict::Missing);
    }

    #[test]
    fn a_mention_of_the_tag_outside_a_comment_opener_is_not_a_header() {
        assert_eq!(check("pub const TAG: &str = \"SPDX-License-Identifier:\";\n", None, 5), Verdict::Missing);
        assert_eq!(check("//! starts with an `SPDX-License-Identifier: <id>` line\n", None, 5), Verdict::Missing);
        assert_eq!(check("/*\n * SPDX-License-Identifier: MIT\n */\n", Some("MIT"), 5), Verdict::Ok);
        assert_eq!(check("//! SPDX-License-Identifier: MIT\n", Some("MIT"), 5), Verdict::Ok);
    }

    #[test]
    fn a_shebang_does_not_count_against_the_window() {
        let text = "#!/bin/sh\n# SPDX-License-Identifier: MIT\necho\n";
        assert_eq!(check(text, Some("MIT"), 1), Verdict::Ok);
        // A Rust inner attribute is not a shebang.
        assert_eq!(check("#![deny(x)]\n// SPDX-License-Identifier: MIT\n", None, 1), Verdict::Missing);
    }

    #[test]
    fn another_licence_is_a_mismatch() {
        let text = "\n/* SPDX-License-Identifier: GPL-2.0-only */\n";
        assert_eq!(check(text, Some("MIT"), 5), Verdict::Mismatch { line: 2, found: "GPL-2.0-only".into() });
        assert_eq!(check(text, None, 5), Verdict::Ok);
    }

    #[test]
    fn insert_goes_first_or_after_the_shebang() {
        let h = Style::Slashes.header("Apache-2.0");
        assert_eq!(insert("fn a() {}\n", &h), "// SPDX-License-Identifier: Apache-2.0\nfn a() {}\n");
        assert_eq!(insert("", "# h"), "# h\n");
        assert_eq!(insert("#!/bin/sh\necho\n", "# h"), "#!/bin/sh\n# h\necho\n");
        assert_eq!(insert("#!/bin/sh", "# h"), "#!/bin/sh\n# h\n");
        assert_eq!(insert("a\r\nb\r\n", "# h"), "# h\r\na\r\nb\r\n");
        assert_eq!(insert("#![allow(x)]\n", "// h"), "// h\n#![allow(x)]\n");
        let fixed = insert("fn a() {}\n", &h);
        assert_eq!(check(&fixed, Some("Apache-2.0"), 1), Verdict::Ok);
    }
}
