//! The built-in tools of an [`Agent`](super::Agent), each a thin layer over
//! one import: `read_file`, `list_files`, `search`, `write_file`,
//! `edit_file`, `request_file`, `send_message`, `wait_for_message` and
//! `finish`.
//!
//! Every path is relative to the workspace root and checked by the host. A
//! refused call returns the reason and the files the task owns (see
//! [`refusal`]), so the model can adapt instead of retrying blindly.

use super::{Tool, ToolCtx, Value};
use crate::bindings::swarm::teammate::mailbox;
use crate::{Finding, FsError, Incoming, Report, Severity, Task};

/// Most matches `search` returns (the model may ask for fewer).
pub const MAX_SEARCH_MATCHES: usize = 200;
/// Most entries `list_files` returns.
pub const MAX_LISTED: usize = 2000;
/// Longest line `search` shows (bytes); longer ones are cut.
pub const MAX_LINE_SHOWN: usize = 240;
/// Longest wait of `wait_for_message` (milliseconds).
pub const MAX_WAIT_MS: u64 = 600_000;

/// All the built-in tools, in the order the model sees them.
pub fn all() -> Vec<Tool> {
    vec![
        read_file(),
        list_files(),
        search(),
        write_file(),
        edit_file(),
        request_file(),
        send_message(),
        wait_for_message(),
        finish(),
    ]
}

/// The text of a refused workspace call: the reason, and for a refusal by
/// the sandbox the files the task owns.
pub fn refusal(task: &Task, err: &FsError) -> String {
    match err {
        FsError::Denied(_) | FsError::InvalidPath(_) | FsError::TooLarge(_) => format!(
            "refused: {}. This task owns only these files (only they can change): {}. \
             For anything else, ask the team lead with send_message.",
            err.describe(),
            owned_list(task)
        ),
        other => other.describe(),
    }
}

fn owned_list(task: &Task) -> String {
    if task.owned_files.is_empty() { "(none)".to_string() } else { task.owned_files.join(", ") }
}

/// The string field `key` of a tool's input, or an error naming it.
pub fn str_arg<'a>(input: &'a Value, key: &str) -> Result<&'a str, String> {
    match input.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is required")),
    }
}

fn opt_str<'a>(input: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn opt_u64(input: &Value, key: &str) -> Result<Option<u64>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    }
}

fn read_text(t: &ToolCtx<'_>, path: &str) -> Result<String, String> {
    let bytes = t.ctx.read(path).map_err(|e| t.refusal(&e))?;
    String::from_utf8(bytes).map_err(|e| format!("{path} is not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()))
}

fn read_file() -> Tool {
    Tool::new(
        "read_file",
        "Reads a whole text file. `path` is relative to the workspace root.",
        r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#,
        |t, input| read_text(t, str_arg(input, "path")?),
    )
}

/// Walks `dir` depth first, calling `visit` on every entry the host lets
/// this teammate list, at most `limit` entries; returns whether it stopped
/// at the limit. Directories it may not list are skipped.
fn walk(t: &ToolCtx<'_>, dir: &str, limit: usize, visit: &mut dyn FnMut(&crate::DirEntry)) -> Result<bool, String> {
    let mut stack = vec![dir.trim_end_matches('/').to_string()];
    let mut seen = 0usize;
    let mut first = true;
    while let Some(d) = stack.pop() {
        let entries = match t.ctx.list(&d) {
            Ok(e) => e,
            Err(e) if first => return Err(t.refusal(&e)),
            Err(_) => continue,
        };
        first = false;
        for e in entries.iter().rev() {
            if e.is_dir {
                stack.push(e.path.clone());
            }
        }
        for e in &entries {
            if seen == limit {
                return Ok(true);
            }
            seen += 1;
            visit(e);
        }
    }
    Ok(false)
}

fn list_files() -> Tool {
    Tool::new(
        "list_files",
        "Lists the files and directories under `dir` (default: the workspace root), recursively. \
         Directories end with `/`; files show their size in bytes.",
        r#"{"type":"object","properties":{"dir":{"type":"string"}}}"#,
        |t, input| {
            let dir = opt_str(input, "dir")?.unwrap_or("");
            let mut out = String::new();
            let capped = walk(t, dir, MAX_LISTED, &mut |e| {
                if e.is_dir {
                    out.push_str(&format!("{}/\n", e.path));
                } else {
                    out.push_str(&format!("{} ({} bytes)\n", e.path, e.size));
                }
            })?;
            if capped {
                out.push_str(&format!("(stopped at {MAX_LISTED} entries: list a subdirectory)\n"));
            }
            if out.is_empty() {
                out.push_str("(empty)\n");
            }
            Ok(out)
        },
    )
}

/// Appends `file:line: text` for every line of `text` matching `re` to
/// `out`, up to `cap` lines in `out`; returns false once the cap is hit.
pub fn search_text(file: &str, text: &str, re: &regex::Regex, cap: usize, out: &mut Vec<String>) -> bool {
    for (n, line) in text.lines().enumerate() {
        if re.is_match(line) {
            if out.len() == cap {
                return false;
            }
            let shown = crate::truncate(line, MAX_LINE_SHOWN);
            let cut = if shown.len() < line.len() { "…" } else { "" };
            out.push(format!("{file}:{}: {shown}{cut}", n + 1));
        }
    }
    true
}

fn search() -> Tool {
    Tool::new(
        "search",
        "Searches the files this task may read for a regular expression (Rust `regex` syntax), \
         line by line. Returns `file:line: text` for each match, at most `max_matches` (default 50, \
         at most 200). `dir` narrows the search to a directory.",
        r#"{"type":"object","properties":{"pattern":{"type":"string"},"dir":{"type":"string"},"max_matches":{"type":"integer","minimum":1}},"required":["pattern"]}"#,
        |t, input| {
            let pattern = str_arg(input, "pattern")?;
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("`pattern` is not a valid regular expression: {e}"))?;
            let cap = (opt_u64(input, "max_matches")?.unwrap_or(50) as usize).clamp(1, MAX_SEARCH_MATCHES);
            let dir = opt_str(input, "dir")?.unwrap_or("");
            let mut files = Vec::new();
            walk(t, dir, usize::MAX, &mut |e| {
                if !e.is_dir {
                    files.push(e.path.clone());
                }
            })?;
            let mut out = Vec::new();
            let mut complete = true;
            for file in &files {
                // Files it may not read, binary or too large are skipped.
                let Ok(text) = read_text(t, file) else { continue };
                if !search_text(file, &text, &re, cap, &mut out) {
                    complete = false;
                    break;
                }
            }
            if out.is_empty() {
                return Ok(format!("no match in {} files", files.len()));
            }
            let mut text = out.join("\n");
            if !complete {
                text.push_str(&format!("\n(stopped at {cap} matches: narrow the pattern or the dir)"));
            }
            Ok(text)
        },
    )
}

fn write_file() -> Tool {
    Tool::new(
        "write_file",
        "Writes (creates or replaces) a whole file. Only the files this task owns can be written.",
        r#"{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}"#,
        |t, input| {
            let path = str_arg(input, "path")?;
            let content = str_arg(input, "content")?;
            t.ctx.write(path, content).map_err(|e| t.refusal(&e))?;
            Ok(format!("wrote {path} ({} bytes)", content.len()))
        },
    )
}

/// `text` with its one occurrence of `old` replaced by `new`; zero or
/// several occurrences are an error saying which (with the lines of each).
pub fn replace_unique(path: &str, text: &str, old: &str, new: &str) -> Result<String, String> {
    if old.is_empty() {
        return Err("`old` must not be empty".to_string());
    }
    let at: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    match at.as_slice() {
        [] => Err(format!("`old` was not found in {path}: read the file and copy the text exactly")),
        [i] => Ok(format!("{}{new}{}", &text[..*i], &text[i + old.len()..])),
        many => {
            let lines: Vec<String> =
                many.iter().take(10).map(|i| (text[..*i].matches('\n').count() + 1).to_string()).collect();
            Err(format!(
                "`old` occurs {} times in {path} (at lines {}): include more context so it is unique",
                many.len(),
                lines.join(", ")
            ))
        }
    }
}

fn edit_file() -> Tool {
    Tool::new(
        "edit_file",
        "Replaces the one occurrence of `old` in a file with `new`. `old` must occur exactly once; \
         include surrounding lines to make it unique. Only the files this task owns can be edited.",
        r#"{"type":"object","properties":{"path":{"type":"string"},"old":{"type":"string"},"new":{"type":"string"}},"required":["path","old","new"]}"#,
        |t, input| {
            let path = str_arg(input, "path")?;
            let (old, new) = (str_arg(input, "old")?, str_arg(input, "new")?);
            let text = read_text(t, path)?;
            let edited = replace_unique(path, &text, old, new)?;
            t.ctx.write(path, &edited).map_err(|e| t.refusal(&e))?;
            Ok(format!("edited {path}"))
        },
    )
}

fn request_file() -> Tool {
    Tool::new(
        "request_file",
        "Asks the coordinator for an existing file this task does not own, saying why. Waits for the \
         decision; once granted, the task owns the file and may write it. A file another running task owns \
         is never granted.",
        r#"{"type":"object","properties":{"path":{"type":"string"},"reason":{"type":"string"}},"required":["path","reason"]}"#,
        |t, input| {
            let (path, reason) = (str_arg(input, "path")?, str_arg(input, "reason")?);
            t.ctx.request_file(path, reason).map_err(|e| format!("not granted: {e}"))?;
            Ok(format!("granted: this task owns {path} now"))
        },
    )
}

fn send_message() -> Tool {
    Tool::new(
        "send_message",
        "Sends a message to a teammate (by id) or to `team-lead`. `summary` is a short line for the team view.",
        r#"{"type":"object","properties":{"to":{"type":"string"},"body":{"type":"string"},"summary":{"type":"string"}},"required":["to","body"]}"#,
        |t, input| {
            let to = str_arg(input, "to")?;
            let body = str_arg(input, "body")?;
            let sent = match opt_str(input, "summary")? {
                Some(s) => t.ctx.send_with_summary(to, body, s),
                None => t.ctx.send(to, body),
            };
            sent.map_err(|e| format!("not sent: {} (team: {})", e.describe(), t.ctx.roster().join(", ")))?;
            Ok(format!("sent to {to}"))
        },
    )
}

fn wait_for_message() -> Tool {
    Tool::new(
        "wait_for_message",
        "Waits for the next message from a teammate or the team lead, up to `timeout_ms` \
         (default 60000). The message is shown after this tool's result.",
        r#"{"type":"object","properties":{"timeout_ms":{"type":"integer","minimum":0}}}"#,
        |t, input| {
            let ms = opt_u64(input, "timeout_ms")?.unwrap_or(60_000).min(MAX_WAIT_MS) as u32;
            loop {
                match mailbox::recv(ms) {
                    None => return Ok(format!("no message within {ms} ms")),
                    Some(Incoming::TasksAvailable) => continue,
                    Some(incoming) => {
                        t.deliver(incoming);
                        return Ok("a message arrived: it follows".to_string());
                    }
                }
            }
        },
    )
}

fn severity(s: Option<&str>) -> Result<Severity, String> {
    match s {
        None | Some("warning") => Ok(Severity::Warning),
        Some("note") => Ok(Severity::Note),
        Some("error") => Ok(Severity::Error),
        Some(other) => Err(format!("severity {other:?} must be note, warning or error")),
    }
}

fn finding(i: usize, f: &Value) -> Result<Finding, String> {
    let field = |e: String| format!("findings[{i}]: {e}");
    let line = match opt_u64(f, "line").map_err(field)? {
        Some(n) => Some(u32::try_from(n).map_err(|_| field("`line` is too large".into()))?),
        None => None,
    };
    Ok(Finding {
        file: str_arg(f, "file").map_err(field)?.to_string(),
        line,
        rule: str_arg(f, "rule").map_err(field)?.to_string(),
        message: opt_str(f, "message").map_err(field)?.unwrap_or("").to_string(),
        severity: severity(opt_str(f, "severity").map_err(field)?).map_err(field)?,
    })
}

/// The report `finish` completes the task with, from its input.
pub fn finish_report(input: &Value) -> Result<Report, String> {
    let summary = str_arg(input, "summary")?;
    let findings = match input.get("findings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().enumerate().map(|(i, f)| finding(i, f)).collect::<Result<_, _>>()?,
        Some(_) => return Err("`findings` must be an array".to_string()),
    };
    Ok(Report::with_findings(summary, findings))
}

fn finish() -> Tool {
    Tool::new(
        "finish",
        "Ends the task: `summary` says what was done in one line; `findings` lists problems found \
         (file, optional 1-based line, rule, message, severity note|warning|error).",
        r#"{"type":"object","properties":{"summary":{"type":"string"},"findings":{"type":"array","items":{"type":"object","properties":{"file":{"type":"string"},"line":{"type":"integer","minimum":1},"rule":{"type":"string"},"message":{"type":"string"},"severity":{"type":"string","enum":["note","warning","error"]}},"required":["file","rule"]}}},"required":["summary"]}"#,
        |t, input| {
            let report = finish_report(input)?;
            let n = report.findings.len();
            t.finish(report);
            Ok(format!("finished with {n} findings"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_replaces_one_unique_occurrence_and_names_the_others() {
        assert_eq!(replace_unique("a", "x = 1;\ny = 2;\n", "y = 2", "y = 3").unwrap(), "x = 1;\ny = 3;\n");
        let e = replace_unique("src/a.rs", "fn f() {}\n", "fn g", "x").unwrap_err();
        assert!(e.contains("`old` was not found in src/a.rs"), "{e}");
        let e = replace_unique("src/a.rs", "a\nb\na\nc\na\n", "a", "z").unwrap_err();
        assert!(e.contains("`old` occurs 3 times in src/a.rs (at lines 1, 3, 5)"), "{e}");
        assert!(replace_unique("a", "abc", "", "z").unwrap_err().contains("must not be empty"));
    }

    #[test]
    fn search_gives_file_line_and_stops_at_the_cap() {
        let re = regex::Regex::new(r"TODO|FIXME").unwrap();
        let mut out = Vec::new();
        assert!(search_text("a.rs", "ok\n// TODO one\nfine\n// FIXME two\n", &re, 5, &mut out));
        assert_eq!(out, ["a.rs:2: // TODO one", "a.rs:4: // FIXME two"]);
        assert!(!search_text("b.rs", "TODO\nTODO\nTODO\nTODO\n", &re, 5, &mut out));
        assert_eq!(out.len(), 5);
        assert_eq!(out[4], "b.rs:3: TODO");
        let mut long = Vec::new();
        search_text("c", &format!("TODO {}", "x".repeat(500)), &re, 5, &mut long);
        assert!(long[0].len() < 300 && long[0].ends_with('…'), "{}", long[0]);
    }

    #[test]
    fn finish_reads_summary_and_rated_findings() {
        let input: Value = serde_json::from_str(
            r#"{"summary":"2 fixed","findings":[{"file":"a.rs","line":3,"rule":"doc","message":"m","severity":"error"},
                {"file":"b.rs","rule":"x"}]}"#,
        )
        .unwrap();
        let r = finish_report(&input).unwrap();
        assert_eq!(r.summary, "2 fixed");
        assert_eq!(r.findings[0], Finding::new("a.rs", 3, "doc", "m").rated(Severity::Error));
        assert_eq!(r.findings[1], Finding::for_file("b.rs", "x", ""));
        let bad: Value =
            serde_json::from_str(r#"{"summary":"s","findings":[{"file":"a","rule":"r","severity":"fatal"}]}"#).unwrap();
        assert!(finish_report(&bad).unwrap_err().contains("findings[0]: severity \"fatal\""));
        assert!(finish_report(&serde_json::json!({})).unwrap_err().contains("`summary` is required"));
    }

    #[test]
    fn a_refusal_names_the_reason_and_the_owned_files() {
        let task = Task {
            id: "t1".into(),
            subject: "s".into(),
            description: String::new(),
            owned_files: vec!["src/a.rs".into(), "src/b.rs".into()],
            attempt: 1,
        };
        let text = refusal(&task, &FsError::Denied("src/c.rs is not owned by task t1".into()));
        assert!(text.starts_with("refused: denied: src/c.rs is not owned by task t1."), "{text}");
        assert!(text.contains("owns only these files (only they can change): src/a.rs, src/b.rs"), "{text}");
        assert_eq!(refusal(&task, &FsError::NotFound("x".into())), "not found: x");
    }
}
