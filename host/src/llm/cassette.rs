//! Record and replay. Recording writes one JSON-lines cassette per
//! teammate, `<dir>/<teammate>.jsonl`, one line per call sent:
//! `{"seq", "fingerprint", "request", "response" | "error"}`, where
//! `request` is the canonical request (alias, model, output cap and the
//! teammate's request; sorted keys) and `fingerprint` its SHA-256. No
//! header, URL or key is ever part of it. Replaying answers from the
//! cassette with no network: the first unused entry with the same
//! fingerprint; a request that matches none is a `ReplayMiss` naming the
//! first field that differs from the next unused entry.

use super::LlmError;
use super::models::{ProviderAnswer, ProviderCall};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Longest value quoted in a replay miss, in characters.
const MAX_QUOTE: usize = 80;

/// Whether `teammate` can name a cassette file.
pub(crate) fn name_ok(teammate: &str) -> bool {
    !teammate.is_empty()
        && !teammate.starts_with('.')
        && teammate.len() <= 128
        && teammate.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The canonical form of a call: what is fingerprinted and recorded.
pub(crate) fn canonical(call: &ProviderCall<'_>) -> Value {
    let mut v = json!({
        "alias": call.alias,
        "model": call.model,
        "max_output_tokens": call.max_output_tokens,
        "request": call.request,
    });
    v.sort_all_objects();
    v
}

fn fingerprint(canonical: &Value) -> String {
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One recorded call.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    fingerprint: String,
    request: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<ProviderAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<LlmError>,
}

#[derive(Default)]
struct Tape {
    /// Replay: the entries and whether each was used. Record: how many were written.
    entries: Vec<(Entry, bool)>,
    written: u64,
    loaded: bool,
}

/// The cassettes of one team, in record or replay mode.
pub(crate) struct Cassettes {
    dir: PathBuf,
    replay: bool,
    // A std mutex: held for a file append or a lookup, never across an await.
    tapes: Mutex<HashMap<String, Tape>>,
}

impl Cassettes {
    pub fn for_recording(dir: PathBuf) -> Self {
        Cassettes { dir, replay: false, tapes: Mutex::new(HashMap::new()) }
    }

    pub fn for_replay(dir: PathBuf) -> Self {
        Cassettes { dir, replay: true, tapes: Mutex::new(HashMap::new()) }
    }

    pub fn replaying(&self) -> bool {
        self.replay
    }

    fn file(&self, teammate: &str) -> PathBuf {
        self.dir.join(format!("{teammate}.jsonl"))
    }

    /// Appends one call to `teammate`'s cassette (started afresh by the
    /// first call of this service).
    pub fn record(
        &self,
        teammate: &str,
        canonical: &Value,
        result: &Result<ProviderAnswer, LlmError>,
    ) -> std::io::Result<()> {
        let mut tapes = self.tapes.lock().unwrap_or_else(|p| p.into_inner());
        let tape = tapes.entry(teammate.to_string()).or_default();
        let entry = Entry {
            seq: tape.written,
            fingerprint: fingerprint(canonical),
            request: canonical.clone(),
            response: result.as_ref().ok().cloned(),
            error: result.as_ref().err().cloned(),
        };
        std::fs::create_dir_all(&self.dir)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(tape.loaded)
            .truncate(!tape.loaded)
            .open(self.file(teammate))?;
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        tape.loaded = true;
        tape.written += 1;
        Ok(())
    }

    /// The recorded answer (or error) for this call.
    pub fn replay(&self, teammate: &str, canonical: &Value) -> Result<ProviderAnswer, LlmError> {
        let mut tapes = self.tapes.lock().unwrap_or_else(|p| p.into_inner());
        let tape = tapes.entry(teammate.to_string()).or_default();
        if !tape.loaded {
            tape.entries = self.load(teammate)?;
            tape.loaded = true;
        }
        let fp = fingerprint(canonical);
        if let Some((entry, used)) = tape.entries.iter_mut().find(|(e, used)| !used && e.fingerprint == fp) {
            *used = true;
            return match (&entry.response, &entry.error) {
                (Some(r), _) => Ok(r.clone()),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => {
                    Err(LlmError::ReplayMiss(format!("entry {} has neither response nor error", entry.seq)))
                }
            };
        }
        let file = format!("{teammate}.jsonl");
        Err(LlmError::ReplayMiss(match tape.entries.iter().find(|(_, used)| !used) {
            None => format!("{file} has no unused entry left ({} recorded)", tape.entries.len()),
            Some((next, _)) => match first_difference(&next.request, canonical, String::new()) {
                Some((path, recorded, got)) => {
                    format!("{file} entry {} differs at {path}: recorded {recorded}, got {got}", next.seq)
                }
                None => format!("{file} entry {} has a different fingerprint", next.seq),
            },
        }))
    }

    fn load(&self, teammate: &str) -> Result<Vec<(Entry, bool)>, LlmError> {
        let file = format!("{teammate}.jsonl");
        let text = match std::fs::read_to_string(self.file(teammate)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LlmError::ReplayMiss(format!("no cassette {file} for teammate '{teammate}'")));
            }
            Err(e) => return Err(LlmError::ReplayMiss(format!("cannot read cassette {file}: {e}"))),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str::<Entry>(l)
                    .map(|e| (e, false))
                    .map_err(|e| LlmError::ReplayMiss(format!("cassette {file} line {}: {e}", n + 1)))
            })
            .collect()
    }
}

fn quote(v: Option<&Value>) -> String {
    let Some(v) = v else { return "nothing".into() };
    let s = v.to_string();
    if s.chars().count() > MAX_QUOTE { s.chars().take(MAX_QUOTE).collect::<String>() + "…" } else { s }
}

/// The first path (`request.messages[1].content[0].text`) where `a` and `b`
/// differ, with both values.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<(String, String, String)> {
    let here = |p: &str| if p.is_empty() { "the request".to_string() } else { p.to_string() };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => first_difference(l, r, p),
                    (l, r) => Some((p, quote(l), quote(r))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(l), Some(r)) => {
                        if let Some(d) = first_difference(l, r, p) {
                            return Some(d);
                        }
                    }
                    (l, r) => return Some((p, quote(l), quote(r))),
                }
            }
            None
        }
        _ if a == b => None,
        _ => Some((here(&path), quote(Some(a)), quote(Some(b)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_path() {
        let a = json!({"request": {"messages": [{"content": [{"text": "hi"}]}, {"x": 1}]}, "model": "m"});
        let b = json!({"request": {"messages": [{"content": [{"text": "hello"}]}, {"x": 1}]}, "model": "m"});
        assert_eq!(
            first_difference(&a, &b, String::new()),
            Some(("request.messages[0].content[0].text".into(), "\"hi\"".into(), "\"hello\"".into()))
        );
        let c = json!({"request": {"messages": [{"content": [{"text": "hi"}]}]}, "model": "m"});
        assert_eq!(
            first_difference(&a, &c, String::new()),
            Some(("request.messages[1]".into(), "{\"x\":1}".into(), "nothing".into()))
        );
        assert_eq!(first_difference(&a, &a, String::new()), None);
    }

    #[test]
    fn every_error_survives_a_cassette() {
        let all = [
            LlmError::ModelNotAllowed("m".into()),
            LlmError::InvalidRequest("r".into()),
            LlmError::BudgetExhausted { reason: "b".into(), left: crate::llm::BudgetLeft::default() },
            LlmError::RateLimited { retry_after_ms: Some(5) },
            LlmError::Overloaded,
            LlmError::Timeout(9),
            LlmError::Provider("p".into()),
            LlmError::ReplayMiss("x".into()),
        ];
        for e in all {
            let line = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<LlmError>(&line).unwrap(), e, "{line}");
        }
        assert_eq!(serde_json::to_string(&LlmError::Overloaded).unwrap(), r#"{"kind":"overloaded"}"#);
    }

    #[test]
    fn cassette_names() {
        assert!(name_ok("writer-1.b_2"));
        for bad in ["", ".hidden", "a/b", "..", "a b", "ü"] {
            assert!(!name_ok(bad), "{bad}");
        }
    }
}
