//! Task options: the small `key=value` language the shipped plugins read
//! from a task's `description`.
//!
//! The description is split on whitespace; each word is either a flag
//! (`fix`) or a `key=value` pair (`max-line=120`). Words after a `#` are a
//! comment. Every key must be one the plugin knows, so a typo fails the task
//! with an error naming the word and the known keys instead of being
//! silently ignored.
//!
//! ```
//! use swarm_guest_sdk::options::Options;
//!
//! let opts = Options::parse("fix max-line=120 # CI settings", &["fix", "max-line"]).unwrap();
//! assert!(opts.flag("fix"));
//! assert_eq!(opts.number("max-line", 100u32).unwrap(), 120);
//! assert!(Options::parse("fxi", &["fix"]).unwrap_err().contains("unknown option `fxi`"));
//! ```

use std::str::FromStr;

/// Options parsed from a task description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    words: Vec<(String, Option<String>)>,
}

impl Options {
    /// Parses `text`, accepting only the keys in `known` (flags and
    /// `key=value` pairs alike). A key given twice is an error too.
    pub fn parse(text: &str, known: &[&str]) -> Result<Self, String> {
        let mut words: Vec<(String, Option<String>)> = Vec::new();
        for word in text.split_whitespace() {
            if word.starts_with('#') {
                break;
            }
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (word, None),
            };
            if !known.contains(&key) {
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(format!("unknown option `{key}` in the task description (known: {known})"));
            }
            if words.iter().any(|(k, _)| k == key) {
                return Err(format!("option `{key}` is given twice in the task description"));
            }
            words.push((key.to_string(), value));
        }
        Ok(Self { words })
    }

    /// True if `name` was given, as a flag or with a value.
    pub fn flag(&self, name: &str) -> bool {
        self.words.iter().any(|(k, _)| k == name)
    }

    /// The value of `name=value`, if given with one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.words.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }

    /// The value of `name=<number>`, or `default` if `name` is absent. A
    /// flag without a value or a value that does not parse is an error
    /// naming the option.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.words.iter().find(|(k, _)| k == name) {
            None => Ok(default),
            Some((_, None)) => Err(format!("option `{name}` needs a value: `{name}=<number>`")),
            Some((_, Some(v))) => v.parse().map_err(|_| format!("option `{name}={v}`: `{v}` is not a valid number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_values_and_comments() {
        let o = Options::parse("  fix\tlicense=MIT  # fix=nothing here", &["fix", "license"]).unwrap();
        assert!(o.flag("fix"));
        assert_eq!(o.value("fix"), None);
        assert_eq!(o.value("license"), Some("MIT"));
        assert!(o.flag("license"));
        assert!(!o.flag("other"));
        assert_eq!(Options::parse("", &[]).unwrap(), Options::default());
    }

    #[test]
    fn unknown_and_repeated_keys_are_errors() {
        let e = Options::parse("fix colour=red", &["fix", "max-line"]).unwrap_err();
        assert!(e.contains("unknown option `colour`") && e.contains("fix, max-line"), "{e}");
        let e = Options::parse("fix fix", &["fix"]).unwrap_err();
        assert!(e.contains("`fix` is given twice"), "{e}");
        assert!(Options::parse("x", &[]).unwrap_err().contains("known: none"));
    }

    #[test]
    fn numbers() {
        let o = Options::parse("max-line=80 bad=x8 bare", &["max-line", "bad", "bare", "absent"]).unwrap();
        assert_eq!(o.number("max-line", 100u32), Ok(80));
        assert_eq!(o.number("absent", 7u32), Ok(7));
        assert!(o.number::<u32>("bad", 1).unwrap_err().contains("`x8` is not a valid number"));
        assert!(o.number::<u32>("bare", 1).unwrap_err().contains("needs a value"));
    }
}
