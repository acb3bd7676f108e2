//! Secret patterns: pure functions, no host calls, tested natively.
//!
//! Matching is hand-written over bytes (every pattern is a fixed prefix and
//! a run of one character class), which keeps the component small and the
//! scan linear in the file size.

/// Rule ids, stable.
pub mod rule {
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    pub const AWS_ACCESS_KEY: &str = "secret-scan/aws-access-key";
    /// A PEM private-key block.
    pub const PRIVATE_KEY: &str = "secret-scan/private-key";
    /// A GitHub token (`ghp_…`, `github_pat_…`).
    pub const GITHUB_TOKEN: &str = "secret-scan/github-token";
    /// A Slack token (`xoxb-…`) or incoming-webhook URL.
    pub const SLACK_TOKEN: &str = "secret-scan/slack-token";
    /// A quoted, high-entropy value assigned to a name like `password`.
    pub const PASSWORD_ASSIGNMENT: &str = "secret-scan/password-assignment";
}

/// A line holding this text is not scanned (for test fixtures and
/// documented examples).
pub const ALLOW_MARKER: &str = "secret-scan:allow";

/// Shortest value a password assignment is reported for, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Least Shannon entropy (bits per character) a password assignment's value
/// must have to be reported: `changeme` and `xxxxxxxx` stay quiet.
pub const MIN_ENTROPY: f64 = 3.0;

/// Names that make an assignment a credential (compared in lower case).
const SECRET_NAMES: &[&str] =
    &["password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "access_key", "credential"];

/// One secret found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1-based line.
    pub line: u32,
    /// Rule id.
    pub rule: &'static str,
    /// What was found, with the secret masked.
    pub message: String,
}

/// `secret` masked: its first `keep` characters, then `…` and its length.
/// `keep` is meant for public prefixes (`AKIA`, `ghp_`).
pub fn mask(secret: &str, keep: usize) -> String {
    let shown: String = secret.chars().take(keep).collect();
    format!("{shown}…({} chars)", secret.chars().count())
}

/// Every secret in `text`, in line order.
pub fn scan(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.contains(ALLOW_MARKER) {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let mut push = |rule, message| hits.push(Hit { line: line_no, rule, message });
        for (token, keep) in prefixed(line, &["AKIA", "ASIA"], 16, 16, |b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            push(rule::AWS_ACCESS_KEY, format!("AWS access key id {}", mask(token, keep)));
        }
        if let Some(kind) = private_key_header(line) {
            push(rule::PRIVATE_KEY, format!("private key block ({kind}); key material not shown"));
        }
        let gh_tokens = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"];
        for (token, keep) in prefixed(line, &gh_tokens, 36, 255, |b| b.is_ascii_alphanumeric()) {
            push(rule::GITHUB_TOKEN, format!("GitHub token {}", mask(token, keep)));
        }
        for (token, keep) in prefixed(line, &["github_pat_"], 22, 255, |b| b.is_ascii_alphanumeric() || b == b'_') {
            push(rule::GITHUB_TOKEN, format!("GitHub fine-grained token {}", mask(token, keep)));
        }
        let slack = ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"];
        for (token, keep) in prefixed(line, &slack, 10, 255, |b| b.is_ascii_alphanumeric() || b == b'-') {
            push(rule::SLACK_TOKEN, format!("Slack token {}", mask(token, keep)));
        }
        let hook = ["https://hooks.slack.com/services/"];
        for (token, keep) in prefixed(line, &hook, 20, 255, |b| b.is_ascii_alphanumeric() || b == b'/') {
            push(rule::SLACK_TOKEN, format!("Slack webhook URL {}", mask(token, keep)));
        }
        for (name, value) in assignments(line) {
            push(
                rule::PASSWORD_ASSIGNMENT,
                format!(
                    "`{name}` is assigned a literal that looks like a secret {} ({:.1} bits/char)",
                    mask(value, 0),
                    entropy(value)
                ),
            );
        }
    }
    hits
}

/// Tokens in `line` that start with one of `prefixes` (not inside a word),
/// followed by `min..=max` bytes of `class`, and not followed by another
/// byte of `class`. Returns each token with the length of its prefix.
fn prefixed<'a>(
    line: &'a str,
    prefixes: &[&str],
    min: usize,
    max: usize,
    class: impl Fn(u8) -> bool,
) -> Vec<(&'a str, usize)> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    for prefix in prefixes {
        let mut from = 0;
        while let Some(pos) = line[from..].find(prefix) {
            let start = from + pos;
            let body = start + prefix.len();
            from = body;
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let run = bytes[body..].iter().take_while(|b| class(**b)).count();
            if (min..=max).contains(&run) {
                found.push((&line[start..body + run], prefix.len()));
            }
            from = body + run;
        }
    }
    found
}

/// `RSA PRIVATE KEY` for `-----BEGIN RSA PRIVATE KEY-----`.
fn private_key_header(line: &str) -> Option<&str> {
    let start = line.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &line[start..];
    let end = rest.find("-----")?;
    let kind = &rest[..end];
    kind.ends_with("PRIVATE KEY").then_some(kind)
}

/// Quoted literals assigned (`=`, `:`, `:=`) to a secret-sounding name,
/// long and random enough to be real: `(name, value)` pairs.
fn assignments(line: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if quote != b'"' && quote != b'\'' {
            i += 1;
            continue;
        }
        let Some(len) = line[i + 1..].find(quote as char) else { break };
        let value = &line[i + 1..i + 1 + len];
        let before = &line[..i];
        if let Some(name) = assigned_name(before)
            && looks_secret(value)
        {
            out.push((name, value));
        }
        i += len + 2;
    }
    out
}

/// The name in `… name = ` / `"name": ` / `name := `, if it is one of
/// [`SECRET_NAMES`].
fn assigned_name(before: &str) -> Option<&str> {
    let t = before.trim_end();
    let t = if let Some(s) = t.strip_suffix(":=") {
        s
    } else if let Some(s) = t.strip_suffix('=') {
        if s.ends_with(['=', '!', '<', '>']) {
            return None; // a comparison
        }
        s
    } else {
        t.strip_suffix(':')?
    };
    let t = t.trim_end().trim_end_matches(['"', '\'']);
    let in_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let start = t.char_indices().rev().find(|&(_, c)| !in_name(c)).map_or(0, |(at, c)| at + c.len_utf8());
    let name = &t[start..];
    let lower = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| lower.contains(s)).then_some(name)
}

fn looks_secret(value: &str) -> bool {
    let placeholder = value.contains("${")
        || value.contains("{{")
        || value.contains('<')
        || value.starts_with('$')
        || value.starts_with("%(")
        || value.contains(char::is_whitespace);
    !placeholder && value.chars().count() >= MIN_PASSWORD_LEN && entropy(value) >= MIN_ENTROPY
}

/// Shannon entropy of `s`, in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test secrets are assembled at run time so this file itself holds none.
    fn aws() -> String {
        format!("AKIA{}", "IOSFODNN7EXAMPLE")
    }
    fn ghp() -> String {
        format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    }

    fn rules(text: &str) -> Vec<(u32, &'static str)> {
        scan(text).into_iter().map(|h| (h.line, h.rule)).collect()
    }

    #[test]
    fn known_token_shapes_are_found_and_masked() {
        let text = format!(
            "ok\nkey = {}\ntoken: {} # x\n{}\n-----BEGIN {}-----\n",
            aws(),
            ghp(),
            format_args!("xoxb-{}", "1234567890-abcdefghij"),
            "OPENSSH PRIVATE KEY"
        );
        let hits = scan(&text);
        let got: Vec<_> = hits.iter().map(|h| (h.line, h.rule)).collect();
        assert_eq!(
            got,
            [(2, rule::AWS_ACCESS_KEY), (3, rule::GITHUB_TOKEN), (4, rule::SLACK_TOKEN), (5, rule::PRIVATE_KEY),]
        );
        assert_eq!(hits[0].message, "AWS access key id AKIA…(20 chars)");
        assert_eq!(hits[1].message, "GitHub token ghp_…(40 chars)");
        assert!(hits[3].message.contains("OPENSSH PRIVATE KEY"));
        for h in &hits {
            assert!(!h.message.contains(&aws()) && !h.message.contains(&ghp()), "{}", h.message);
            assert!(!h.message.contains("IOSF") && !h.message.contains("a1B2"), "{}", h.message);
        }
    }

    #[test]
    fn near_misses_are_not_secrets() {
        assert!(rules(&format!("x{}\n", aws())).is_empty(), "inside a word");
        assert!(rules(&format!("{}Z\n", aws())).is_empty(), "too long");
        assert!(rules("AKIASHORT123\n").is_empty());
        assert!(rules("ghp_short\n").is_empty());
        assert!(rules("-----BEGIN PUBLIC KEY-----\n").is_empty());
        assert!(rules("-----BEGIN CERTIFICATE-----\n").is_empty());
    }

    #[test]
    fn the_allow_marker_silences_a_line() {
        assert!(rules(&format!("{} # {ALLOW_MARKER}\n", aws())).is_empty());
        assert_eq!(rules(&format!("{ALLOW_MARKER}\n{}\n", aws())), [(2, rule::AWS_ACCESS_KEY)]);
    }

    #[test]
    fn secret_assignments_need_a_secret_name_and_a_random_value() {
        let value = "Zx8#qL2!vR9@mK4";
        for line in [
            format!("password = \"{value}\""),
            format!("  \"api_key\": \"{value}\","),
            format!("let db_password := '{value}'"),
            format!("CLIENT_SECRET: \"{value}\""),
            format!("clé_password = \"{value}\""), // a non-ASCII character before the name
        ] {
            let hits = scan(&line);
            assert_eq!(hits.len(), 1, "{line}");
            assert_eq!(hits[0].rule, rule::PASSWORD_ASSIGNMENT);
            assert!(!hits[0].message.contains(value) && !hits[0].message.contains("Zx8"), "{}", hits[0].message);
            assert!(hits[0].message.contains("…(15 chars)"), "{}", hits[0].message);
        }
        for line in [
            format!("username = \"{value}\""),           // not a secret name
            "password = \"changeme\"".to_string(),       // low entropy
            "password = \"aB3$\"".to_string(),           // too short
            "password = \"${DB_PASSWORD}\"".to_string(), // placeholder
            "password = \"<your password here>\"".to_string(),
            format!("if password == \"{value}\""), // comparison
            format!("password(\"{value}\")"),      // not an assignment
        ] {
            assert!(rules(&line).is_empty(), "{line}");
        }
    }

    #[test]
    fn masking_and_entropy() {
        assert_eq!(mask("abcdef", 2), "ab…(6 chars)");
        assert_eq!(mask("abc", 0), "…(3 chars)");
        assert_eq!(entropy(""), 0.0);
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
    }
}
