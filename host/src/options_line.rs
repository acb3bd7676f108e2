//! The `options:` line of a task description, as agents read it
//! (`options: model=<alias> max-turns=<n> temperature=<t>`, words of
//! `key=value`), and the teammate entry's defaults merged into it: a task
//! handed to a teammate whose team-file entry sets `model`, `max_turns` or
//! `temperature` carries them on its options line, each one the task's own
//! line does not set already (the task's options override the teammate's).

/// The prefix of the line.
pub const PREFIX: &str = "options:";

/// `description` with `defaults` (`key=value` words) merged into its first
/// options line, or added as one at its end; a key the task's line sets
/// already keeps the task's value. Unchanged when `defaults` is empty.
pub fn merge(description: &str, defaults: &[String]) -> String {
    if defaults.is_empty() {
        return description.to_string();
    }
    let key = |word: &str| word.split_once('=').map_or(word, |(k, _)| k).to_string();
    let mut lines: Vec<String> = description.lines().map(str::to_string).collect();
    match lines.iter().position(|l| l.trim_start().starts_with(PREFIX)) {
        Some(i) => {
            let set: Vec<String> = lines[i].trim_start()[PREFIX.len()..]
                .split_whitespace()
                .take_while(|w| !w.starts_with('#'))
                .map(key)
                .collect();
            let added: Vec<&str> = defaults.iter().filter(|w| !set.contains(&key(w))).map(String::as_str).collect();
            if !added.is_empty() {
                // Before a comment, if the line has one.
                let line = &lines[i];
                let (words, comment) = match line.find(" #") {
                    Some(at) => (&line[..at], &line[at..]),
                    None => (line.as_str(), ""),
                };
                lines[i] = format!("{} {}{comment}", words.trim_end(), added.join(" "));
            }
            lines.join("\n")
        }
        None => {
            let line = format!("{PREFIX} {}", defaults.join(" "));
            if description.trim().is_empty() { line } else { format!("{}\n{line}", description.trim_end()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_tasks_options_override_the_teammates_and_the_rest_are_added() {
        let d = words(&["model=fast", "max-turns=20", "temperature=0.2"]);
        assert_eq!(
            merge("Fix it.\n  options: max-turns=5 # short\nMore.", &d),
            "Fix it.\n  options: max-turns=5 model=fast temperature=0.2 # short\nMore."
        );
        assert_eq!(merge("Fix it.\n", &d), "Fix it.\noptions: model=fast max-turns=20 temperature=0.2");
        assert_eq!(merge("", &d), "options: model=fast max-turns=20 temperature=0.2");
        assert_eq!(
            merge("options: model=big max-turns=1 temperature=1", &d),
            "options: model=big max-turns=1 temperature=1"
        );
        assert_eq!(merge("Fix it.", &[]), "Fix it.", "no defaults, no change");
    }
}
