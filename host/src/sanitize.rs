//! Terminal safety: text from teammates is shown in the team view, logs and
//! panes, so control characters and escape sequences are rendered inert
//! before they reach a terminal.

/// Longest line kept, in characters; longer lines are cut with `…`.
pub const MAX_LINE_CHARS: usize = 2000;

/// Makes `s` safe to print on one terminal line: every control character
/// (ESC, CR, BEL, C1 controls such as the one-byte CSI, newlines, ...) and
/// every bidi control is shown escaped (`\u{1b}`), and the line is capped at
/// [`MAX_LINE_CHARS`].
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_LINE_CHARS));
    for (n, c) in s.chars().enumerate() {
        if n == MAX_LINE_CHARS {
            out.push('…');
            break;
        }
        if unsafe_on_a_terminal(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters (C0, DEL, C1) and the bidi controls that reorder what
/// a reader sees (embeddings, overrides, isolates and the direction marks).
fn unsafe_on_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_inert() {
        let evil = "ok\x1b]0;pwned\x07\x1b[2J\r\nnext\u{9b}31m\u{202e}";
        let clean = line(evil);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert!(clean.starts_with("ok\\u{1b}]0;pwned"));
    }

    #[test]
    fn every_terminal_control_is_escaped() {
        let controls = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32);
        let bidi = ['\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'];
        for c in controls.chain(bidi) {
            let clean = line(&format!("a{c}b"));
            assert_eq!(clean, format!("a{}b", c.escape_unicode()), "U+{:04X}", c as u32);
        }
        // Ordinary text, including other scripts and emoji, is left alone.
        assert_eq!(line("héllo 世界 ✓ 👍 مرحبا"), "héllo 世界 ✓ 👍 مرحبا");
    }

    #[test]
    fn long_lines_are_capped() {
        assert_eq!(line(&"x".repeat(5000)).chars().count(), MAX_LINE_CHARS + 1);
    }
}
