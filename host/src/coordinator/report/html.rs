//! The report as one self-contained HTML page: a timeline (a lane per
//! teammate, a bar per attempt coloured by outcome, retries and limit hits
//! marked, messages to the lead and between teammates as arrows, idle time
//! visible), the plan as a lead proposed it and as validated, every task
//! with its findings, diffs and transcript, and the totals. It opens from a
//! CI artifact in any browser with no network: the styles and the script
//! are inline, and its Content-Security-Policy allows exactly those two
//! (by hash) and nothing else, so the page cannot load or send anything.
//!
//! The report goes into the page as JSON inside a non-executed
//! `<script type="application/json">` block, with `<`, `>`, `&` and the
//! JavaScript line separators written as `\u` escapes, so no text a guest
//! wrote can close the block; the script builds the page with DOM calls
//! and `textContent` only (never `innerHTML`), so guest text is always
//! text. Tasks are shown a page at a time and a task's findings, diffs and
//! transcript are built when it is opened: the page stays usable at 10,000
//! tasks and 100,000 findings.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::RunReport;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

impl RunReport {
    /// The report as a self-contained HTML page.
    pub fn to_html(&self) -> String {
        let payload = json!({
            "report": self,
            "timeline": self.timeline(),
            "by_severity": self.findings_by_severity().iter().map(|(s, n)| (s.as_str(), n)).collect::<Vec<_>>(),
            "verdict_line": self.verdict.as_ref().map(|v| v.line()),
            "success": self.success(),
        });
        let data = script_safe(&payload.to_string());
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>swarm-host report: {title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
             <noscript>This report is drawn by its inline script; the same data is in the JSON report (--format json).</noscript>\n\
             <main id=\"app\"></main>\n\
             <script type=\"application/json\" id=\"report-data\">{data}</script>\n\
             <script>{JS}</script>\n</body>\n</html>\n",
            csp = content_security_policy(),
            title = escape_html(&self.team),
        )
    }
}

/// The page's policy: its own inline script and style (by hash), nothing
/// else: no request of any kind leaves the page.
pub(super) fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'none'; \
         connect-src 'none'; font-src 'none'; base-uri 'none'; form-action 'none'",
        base64(&Sha256::digest(JS.as_bytes())),
        base64(&Sha256::digest(CSS.as_bytes()))
    )
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` (so no
/// `</script>` or `<!--` can occur) and U+2028/U+2029 as `\u` escapes.
/// The result is still valid JSON denoting the same value.
fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML element content or a quoted attribute value.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), for the policy's hashes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{finding, report};
    use super::super::{FileDiff, TranscriptEntry, TranscriptKind};
    use super::*;

    const HOSTILE: &str = "</script><script>alert(1)</script></style><img src=x onerror=alert(2)>\"' onmouseover=\"alert(3) javascript:alert(4) <!-- \u{2028}";

    fn data_of(html: &str) -> serde_json::Value {
        let start = html.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..end]).unwrap()
    }

    #[test]
    fn a_hostile_guest_cannot_leave_the_data_block_and_its_text_arrives_intact() {
        let mut r = report();
        r.team = "team \"<b>\"".into();
        r.tasks[0].subject = HOSTILE.into();
        r.tasks[0].summary = Some(HOSTILE.into());
        r.tasks[0].findings.push(finding(HOSTILE, Some(1), HOSTILE, HOSTILE));
        r.tasks[0].diffs = vec![FileDiff { path: HOSTILE.into(), diff: format!("+{HOSTILE}\n"), note: None }];
        r.tasks[0].transcript = vec![TranscriptEntry {
            kind: TranscriptKind::ToolCall,
            name: Some(HOSTILE.into()),
            text: HOSTILE.into(),
            denied: true,
        }];
        let html = r.to_html();
        assert_eq!(html.matches("<script").count(), 2, "only the page's own two script elements");
        assert_eq!(html.matches("</script").count(), 2);
        assert_eq!(html.matches("</style").count(), 1);
        assert!(!html.contains("<img") && !html.contains("<!--") && !html.contains('\u{2028}'));
        assert!(html.contains("<title>swarm-host report: team &quot;&lt;b&gt;&quot;</title>"));
        let data = data_of(&html);
        let task = &data["report"]["tasks"][0];
        assert_eq!(task["subject"], HOSTILE, "the text arrives as it was written, to be shown as text");
        assert_eq!(task["findings"][3]["message"], HOSTILE);
        assert_eq!(task["diffs"][0]["path"], HOSTILE);
        assert_eq!(task["transcript"][0]["denied"], true);
        assert!(!JS.contains("innerHTML") && !JS.contains("insertAdjacentHTML") && !JS.contains("document.write"));
        assert!(!JS.contains("eval(") && !JS.contains("Function("));
    }

    #[test]
    fn the_policy_allows_only_the_inline_script_and_style() {
        let html = report().to_html();
        let csp = content_security_policy();
        assert!(html.contains(&format!("content=\"{csp}\"")));
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(!CSS.contains("url(") && !CSS.contains("@import"), "no request from the style sheet");
        assert!(!JS.contains("fetch(") && !JS.contains("XMLHttpRequest") && !JS.contains("WebSocket"));
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
