//! An API key that never prints: `Debug` and `Display` show `[redacted]`, it
//! has no `Serialize`, and the only way to read it is [`Secret::expose`],
//! called where a request header is built. Used for every provider key, so a
//! key cannot reach a log line, an error message or a cassette by accident.

use std::fmt;

/// A provider key. Cloning keeps it in memory once more; nothing else copies
/// it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key read by the host (from its environment or a key file).
    pub fn new(key: impl Into<String>) -> Self {
        Secret(key.into())
    }

    /// The key itself: only for building the request header that carries
    /// it, and for redacting it from text a provider echoed back.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`
    /// (some providers echo a bad key in their error message).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let s = Secret::new("sk-ant-very-secret-123");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:#?}", Some(&s)), "Some(\n    Secret([redacted]),\n)");
        assert_eq!(s.expose(), "sk-ant-very-secret-123");
    }

    #[test]
    fn redact_removes_an_echoed_key() {
        let s = Secret::new("sk-abc");
        assert_eq!(s.redact("Incorrect API key provided: sk-abc."), "Incorrect API key provided: [redacted].");
        assert_eq!(Secret::new("").redact("text"), "text");
    }
}
