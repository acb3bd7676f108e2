//! What each finding rule means, for SARIF's rule table (code-scanning UIs
//! show it beside every alert): a short description, a full one and help
//! text on how to resolve a finding.
//!
//! The plugin that owns a rule describes it: its component carries a TOML
//! rule table in the custom section [`RULES_SECTION`] (the Rust SDK's
//! `describe_rules!` embeds one, `guest-sdk/lang-build.sh` appends one to a
//! Python or JavaScript plugin). The coordinator reads it from the plugin
//! file after the run ([`describe_rules`]), so describing rules costs no
//! call into the guest and works alike on every backend. It reads section
//! headers only, seeking past every other section: a Python plugin is
//! 18 MB, its table a few KB (reading the whole file took about half of a
//! short Python team's `swarm-host run`). The text is
//! untrusted: the section, the number of rules and each text are bounded
//! and control characters are escaped. A rule no plugin describes gets a
//! description naming the rule and the teammate that reported it, so every
//! rule carries all three texts.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RunReport;
use crate::coordinator::Plan;

/// The custom section of a component that holds its rule table.
pub const RULES_SECTION: &str = "swarm-rules";
/// The most bytes of rule tables one component may carry.
pub const MAX_SECTION_BYTES: usize = 64 * 1024;
/// The most rules one component may describe.
pub const MAX_RULES: usize = 256;
/// The most characters of one description or help text; longer ones are
/// cut with `…`.
pub const MAX_TEXT_CHARS: usize = 1000;

/// A rule's descriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHelp {
    /// One line: what was found.
    pub short: String,
    /// What the rule checks.
    pub full: String,
    /// How to resolve a finding.
    pub help: String,
}

/// How deep components nest in a plugin file before it is refused.
const MAX_NESTING: u32 = 16;

/// Why a component's rule table was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Read(String),
    /// The component's binary does not parse.
    #[error("the component does not parse: {0}")]
    Wasm(String),
    /// The sections hold more than [`MAX_SECTION_BYTES`].
    #[error("its `{RULES_SECTION}` sections hold {0} bytes, over the limit of {MAX_SECTION_BYTES}")]
    TooLarge(usize),
    /// A section is not UTF-8 TOML of `[[rule]]` tables.
    #[error("its `{RULES_SECTION}` section is not a TOML table of `[[rule]]` entries (id, short, full, help): {0}")]
    Parse(String),
    /// More than [`MAX_RULES`] rules.
    #[error("its `{RULES_SECTION}` sections describe {0} rules, over the limit of {MAX_RULES}")]
    TooMany(usize),
    /// A rule has an empty id or text.
    #[error("rule {index} of its `{RULES_SECTION}` section has an empty `{field}`")]
    Empty {
        /// 1-based position of the rule.
        index: usize,
        /// The empty field.
        field: &'static str,
    },
}

/// One `[[rule]]` entry as the plugin wrote it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    id: String,
    short: String,
    full: String,
    help: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleEntry>,
}

/// The rule table of a component: every [`RULES_SECTION`] custom section
/// at any depth (a Rust plugin's sits in its core module), in order; the
/// first description of a rule id wins. Empty if it has none.
pub fn from_component(wasm: impl Read + Seek) -> Result<BTreeMap<String, RuleHelp>, RulesError> {
    let sections = rule_sections(wasm)?;
    let mut table = BTreeMap::new();
    let mut count = 0;
    for data in &sections {
        let text = std::str::from_utf8(data).map_err(|e| RulesError::Parse(format!("not UTF-8: {e}")))?;
        let file: RuleFile = toml::from_str(text).map_err(|e| RulesError::Parse(first_line(&e.to_string())))?;
        for (i, entry) in file.rule.into_iter().enumerate() {
            count += 1;
            if count > MAX_RULES {
                return Err(RulesError::TooMany(count));
            }
            let index = i + 1;
            for (field, value) in
                [("id", &entry.id), ("short", &entry.short), ("full", &entry.full), ("help", &entry.help)]
            {
                if value.trim().is_empty() {
                    return Err(RulesError::Empty { index, field });
                }
            }
            let help = RuleHelp { short: clean(&entry.short), full: clean(&entry.full), help: clean(&entry.help) };
            table.entry(entry.id).or_insert(help);
        }
    }
    Ok(table)
}

/// The bodies of every [`RULES_SECTION`] custom section, in order.
fn rule_sections(wasm: impl Read + Seek) -> Result<Vec<Vec<u8>>, RulesError> {
    // Small reads: a section's header, then a seek past its body.
    let mut reader = BufReader::with_capacity(64, wasm);
    let end = reader.seek(SeekFrom::End(0)).map_err(|e| RulesError::Read(e.to_string()))?;
    let mut walk = Walk { reader, sections: Vec::new(), total: 0 };
    walk.binary(0, end, 0)?;
    Ok(walk.sections)
}

/// A walk over the sections of a wasm binary that keeps the bodies of the
/// [`RULES_SECTION`] custom sections and seeks past everything else.
struct Walk<R> {
    reader: BufReader<R>,
    sections: Vec<Vec<u8>>,
    total: usize,
}

impl<R: Read + Seek> Walk<R> {
    /// The component or core module in bytes `start..end`; nested modules
    /// and components are walked too.
    fn binary(&mut self, start: u64, end: u64, depth: u32) -> Result<(), RulesError> {
        self.reader.seek(SeekFrom::Start(start)).map_err(|e| RulesError::Read(e.to_string()))?;
        let mut header = [0u8; 8];
        self.exact(&mut header, start)?;
        let component = match header {
            [0, b'a', b's', b'm', 1, 0, 0, 0] => false,
            [0, b'a', b's', b'm', 0x0d, 0, 1, 0] => true,
            _ => return Err(RulesError::Wasm(format!("no wasm header at byte {start}"))),
        };
        let mut at = start + 8;
        while at < end {
            self.reader.seek(SeekFrom::Start(at)).map_err(|e| RulesError::Read(e.to_string()))?;
            let id = self.byte(at)?;
            let size = self.leb(at)?;
            let body = self.reader.stream_position().map_err(|e| RulesError::Read(e.to_string()))?;
            let next = body + size;
            if next > end {
                return Err(RulesError::Wasm(format!("the section at byte {at} runs past the end of its binary")));
            }
            match (component, id) {
                (_, 0) => self.custom(at, next)?,
                // A core module (1) or a nested component (4).
                (true, 1 | 4) if depth < MAX_NESTING => self.binary(body, next, depth + 1)?,
                (true, 1 | 4) => {
                    return Err(RulesError::Wasm(format!("components nest deeper than {MAX_NESTING} at byte {at}")));
                }
                _ => {}
            }
            at = next;
        }
        Ok(())
    }

    /// A custom section whose name starts at the reader and whose body ends
    /// at `next`: kept if it is a rule table.
    fn custom(&mut self, at: u64, next: u64) -> Result<(), RulesError> {
        let len = self.leb(at)?;
        let start = self.reader.stream_position().map_err(|e| RulesError::Read(e.to_string()))?;
        if start + len > next {
            return Err(RulesError::Wasm(format!("the custom section at byte {at} has a name past its end")));
        }
        if len != RULES_SECTION.len() as u64 {
            return Ok(());
        }
        let mut name = [0u8; RULES_SECTION.len()];
        self.exact(&mut name, at)?;
        if name != *RULES_SECTION.as_bytes() {
            return Ok(());
        }
        let size = (next - start - len) as usize;
        self.total += size;
        if self.total > MAX_SECTION_BYTES {
            return Err(RulesError::TooLarge(self.total));
        }
        let mut data = vec![0u8; size];
        self.exact(&mut data, at)?;
        self.sections.push(data);
        Ok(())
    }

    fn exact(&mut self, buf: &mut [u8], at: u64) -> Result<(), RulesError> {
        self.reader.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => RulesError::Wasm(format!("cut short in the section at byte {at}")),
            _ => RulesError::Read(e.to_string()),
        })
    }

    fn byte(&mut self, at: u64) -> Result<u8, RulesError> {
        let mut b = [0u8];
        self.exact(&mut b, at)?;
        Ok(b[0])
    }

    /// An unsigned LEB128 of at most 32 bits, as wasm's sizes are.
    fn leb(&mut self, at: u64) -> Result<u64, RulesError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.byte(at)?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return if value > u64::from(u32::MAX) {
                    Err(RulesError::Wasm(format!("a size over 32 bits in the section at byte {at}")))
                } else {
                    Ok(value)
                };
            }
        }
        Err(RulesError::Wasm(format!("a size longer than 5 bytes in the section at byte {at}")))
    }
}

/// TOML's error text spans lines: where (the first), the input with a
/// caret, what was wrong (the last). One line of where and what.
fn first_line(s: &str) -> String {
    let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
    let at = lines.next().unwrap_or_default();
    let what = lines.next_back().map(|w| format!(": {w}")).unwrap_or_default();
    crate::sanitize::line(&format!("{at}{what}"))
}

/// One line of at most [`MAX_TEXT_CHARS`] characters (`…` after a cut),
/// line breaks as spaces, every other control character escaped.
fn clean(text: &str) -> String {
    let flat: String = text.trim().chars().map(|c| if matches!(c, '\n' | '\r' | '\t') { ' ' } else { c }).collect();
    let mut cut: String = flat.chars().take(MAX_TEXT_CHARS).collect();
    if flat.chars().nth(MAX_TEXT_CHARS).is_some() {
        cut.push('…');
    }
    crate::sanitize::line(&cut)
}

/// Fills `report.rules` with the descriptions the plugins of `plan` give
/// for the rules of the report's findings: each rule from the plugin of the
/// first teammate (in plan order) that reported it and describes it. A
/// plugin whose table cannot be read or is broken adds a warning to the
/// report naming the plugin and what was wrong; its rules then get the
/// generic description.
pub fn describe_rules(report: &mut RunReport, plan: &Plan) {
    let mut by_plugin: BTreeMap<&Path, Option<BTreeMap<String, RuleHelp>>> = BTreeMap::new();
    let mut rules = BTreeMap::new();
    for teammate in &plan.teammates {
        let reported: Vec<&str> = report
            .tasks
            .iter()
            .filter(|t| t.teammate.as_deref() == Some(teammate.id.as_str()))
            .flat_map(|t| t.findings.iter().map(|f| f.rule.as_str()))
            .filter(|rule| !rules.contains_key(*rule))
            .collect();
        if reported.is_empty() {
            continue;
        }
        let plugin = teammate.plugin.as_path();
        let table = by_plugin.entry(plugin).or_insert_with(|| {
            let read = std::fs::File::open(plugin).map_err(|e| format!("cannot read it: {e}"));
            match read.and_then(|file| from_component(file).map_err(|e| e.to_string())) {
                Ok(table) => Some(table),
                Err(why) => {
                    let group = &teammate.group;
                    report.warnings.push(format!(
                        "the rule descriptions of teammate {group}'s plugin {} are not used: {why}",
                        plugin.display()
                    ));
                    None
                }
            }
        });
        for rule in reported {
            if let Some(help) = table.as_ref().and_then(|t| t.get(rule)) {
                rules.insert(rule.to_string(), help.clone());
            }
        }
    }
    report.rules = rules;
}

/// The descriptions of `rule` from the report's table, or, for a rule no
/// plugin describes, text naming the rule and the `teammates` that reported
/// it.
pub fn describe(report: &RunReport, rule: &str, teammates: &[&str]) -> RuleHelp {
    if let Some(help) = report.rules.get(rule) {
        return help.clone();
    }
    let who = if teammates.is_empty() { "a teammate".to_string() } else { teammates.join(", ") };
    RuleHelp {
        short: format!("Rule {rule}"),
        full: format!("Rule `{rule}` of a swarm-host teammate plugin ({who}); the plugin does not describe it."),
        help: format!(
            "See the documentation of the plugin behind {who} for what rule `{rule}` checks and how to resolve it."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::report;
    use super::*;
    use std::io::Cursor;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A core module holding `sections` as `swarm-rules` custom sections.
    fn module(sections: &[&[u8]]) -> Cursor<Vec<u8>> {
        Cursor::new(module_bytes(sections))
    }

    fn module_bytes(sections: &[&[u8]]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for data in sections {
            let mut body = vec![RULES_SECTION.len() as u8];
            body.extend_from_slice(RULES_SECTION.as_bytes());
            body.extend_from_slice(data);
            section(&mut wasm, 0, &body);
        }
        wasm
    }

    fn section(wasm: &mut Vec<u8>, id: u8, body: &[u8]) {
        wasm.push(id);
        leb(wasm, body.len());
        wasm.extend_from_slice(body);
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: Arc<AtomicUsize>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.fetch_add(n, Ordering::Relaxed);
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// A component: a section of `big` bytes, then a core module holding a
    /// data section of `big` bytes and the table, then another custom
    /// section.
    fn nested(big: usize) -> Vec<u8> {
        let mut core = module_bytes(&[]);
        section(&mut core, 11, &vec![7u8; big]);
        let mut custom = vec![RULES_SECTION.len() as u8];
        custom.extend_from_slice(RULES_SECTION.as_bytes());
        custom.extend_from_slice(ONE);
        section(&mut core, 0, &custom);
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        section(&mut component, 0, &[&[5u8][..], b"other", &vec![9u8; big]].concat());
        section(&mut component, 1, &core);
        section(&mut component, 0, b"\x04name\x00\x01\x02");
        component
    }

    /// The rule sections wasmparser finds, if it reads the whole binary.
    fn wasmparser_sections(wasm: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut found = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let wasmparser::Payload::CustomSection(s) = payload.ok()?
                && s.name() == RULES_SECTION
            {
                found.push(s.data().to_vec());
            }
        }
        Some(found)
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_get_an_answer_never_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = from_component(Cursor::new(bytes));
        }

        /// Differential: wherever wasmparser reads a mutated component
        /// through, the walk finds the same tables.
        #[test]
        fn a_mutated_component_gives_the_tables_wasmparser_finds(
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..4)
        ) {
            let mut wasm = nested(40);
            for (at, byte) in flips {
                let n = wasm.len();
                wasm[at.index(n)] = byte;
            }
            let ours = rule_sections(Cursor::new(&wasm));
            if let Some(theirs) = wasmparser_sections(&wasm) {
                proptest::prop_assert_eq!(ours.ok(), Some(theirs));
            }
        }
    }

    #[test]
    fn the_table_in_a_nested_module_is_found_reading_headers_only() {
        let component = nested(4 << 20);
        assert_eq!(wasmparser_sections(&nested(40)), Some(vec![ONE.to_vec()]), "the test's binary is well formed");
        let read = Arc::new(AtomicUsize::new(0));
        let table = from_component(Counting { inner: Cursor::new(&component), read: read.clone() }).unwrap();
        assert_eq!(table["r"].short, "S");
        let read = read.load(Ordering::Relaxed);
        assert!(read < 4096, "read {read} bytes of {}: the big sections were not skipped", component.len());
        // A section that claims more bytes than its binary has.
        let mut cut = component.clone();
        cut.truncate(component.len() - 2);
        let err = from_component(Cursor::new(cut)).unwrap_err().to_string();
        assert!(err.contains("runs past the end"), "{err}");
    }

    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    const ONE: &[u8] = b"[[rule]]\nid = \"r\"\nshort = \"S\"\nfull = \"F\"\nhelp = \"H\"\n";

    #[test]
    fn a_component_without_a_table_has_none_and_the_first_description_wins() {
        assert_eq!(from_component(module(&[])).unwrap(), BTreeMap::new());
        let other = b"[[rule]]\nid = \"r\"\nshort = \"x\"\nfull = \"x\"\nhelp = \"x\"\n";
        let table = from_component(module(&[ONE, other])).unwrap();
        assert_eq!(table["r"], RuleHelp { short: "S".into(), full: "F".into(), help: "H".into() });
    }

    #[test]
    fn hostile_text_is_cut_flattened_and_escaped() {
        let long = "y".repeat(5000);
        let toml = format!(
            "[[rule]]\nid = \"r\"\nshort = \"a\\nb\\u001b[31m\\u202e\"\nfull = \"{long}\"\nhelp = \"</script>\"\n"
        );
        let table = from_component(module(&[toml.as_bytes()])).unwrap();
        let r = &table["r"];
        assert_eq!(r.short, "a b\\u{1b}[31m\\u{202e}", "line breaks become spaces, controls are escaped");
        assert_eq!(r.full.chars().count(), MAX_TEXT_CHARS + 1, "cut to the limit");
        assert!(r.full.ends_with('…'));
        assert_eq!(r.help, "</script>", "markup stays text: each report format escapes it");
    }

    #[test]
    fn broken_tables_are_errors_naming_what_was_wrong() {
        let big = vec![b' '; MAX_SECTION_BYTES + 1];
        assert_eq!(from_component(module(&[&big])), Err(RulesError::TooLarge(MAX_SECTION_BYTES + 1)));
        let many: String = (0..=MAX_RULES)
            .map(|i| format!("[[rule]]\nid = \"r{i}\"\nshort = \"s\"\nfull = \"f\"\nhelp = \"h\"\n"))
            .collect();
        assert_eq!(from_component(module(&[many.as_bytes()])), Err(RulesError::TooMany(MAX_RULES + 1)));
        let empty = b"[[rule]]\nid = \"r\"\nshort = \"s\"\nfull = \" \"\nhelp = \"h\"\n";
        let err = from_component(module(&[empty])).unwrap_err();
        assert_eq!(err, RulesError::Empty { index: 1, field: "full" });
        assert_eq!(err.to_string(), "rule 1 of its `swarm-rules` section has an empty `full`");
        let unknown = b"[[rule]]\nid = \"r\"\nshort = \"s\"\nfull = \"f\"\nhelp = \"h\"\nurl = \"u\"\n";
        let err = from_component(module(&[unknown])).unwrap_err().to_string();
        assert!(err.contains("line 6") && err.contains("unknown field `url`"), "{err}");
        let deep = format!("a = {}", "[".repeat(MAX_SECTION_BYTES - 8));
        assert!(matches!(from_component(module(&[deep.as_bytes()])), Err(RulesError::Parse(_))));
        assert!(matches!(from_component(module(&[b"\xff"])), Err(RulesError::Parse(_))));
        assert!(matches!(from_component(std::io::Cursor::new(b"\0asm\x01\0\0\0\x00\xff")), Err(RulesError::Wasm(_))));
    }

    #[test]
    fn a_rule_no_plugin_describes_names_its_teammate() {
        let mut r = report();
        r.rules.insert("known".into(), RuleHelp { short: "K".into(), full: "F".into(), help: "H".into() });
        assert_eq!(describe(&r, "known", &["x"]).short, "K");
        let unknown = describe(&r, "acme/x", &["acme-1"]);
        assert!(unknown.full.contains("acme-1") && unknown.help.contains("acme/x"), "{unknown:?}");
    }
}
