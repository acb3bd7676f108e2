//! The crate's layers, checked: every `crate::<module>` a source file of
//! `host/src` names (outside comments) must be of a lower layer than its
//! own top-level module, or of the same layer without closing a cycle.
//!
//! | layer | modules | what they are |
//! | --- | --- | --- |
//! | 0 | `model`, `sanitize`, `options_line` | plain data, text hygiene, the `options:` line of a task |
//! | 1 | `tasks`, `mailbox`, `team`, `port` | the core: task list, inboxes, roster, the port guests reach them through |
//! | 1 | `llm` | model calls made by the host: providers, budgets, retries, cassettes |
//! | 2 | `sandbox`, `protocol` | side by side: neither names the other; `protocol` names nothing of the crate |
//! | 3 | `backend` | where teammates run; converts host types to wire types |
//! | 3 | `cluster` | scale-out over NATS JetStream (feature `nats`): queue, bucket, fencing, workers |
//! | 4 | `coordinator` | plan, run, report and their persisted state |
//! | 5 | `cli` | the command line |

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, u32)] = &[
    ("model", 0),
    ("sanitize", 0),
    ("options_line", 0),
    ("tasks", 1),
    ("mailbox", 1),
    ("team", 1),
    ("port", 1),
    ("llm", 1),
    ("sandbox", 2),
    ("protocol", 2),
    ("backend", 3),
    ("cluster", 3),
    ("coordinator", 4),
    ("cli", 5),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<name>` in `text` outside `//` comments.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// The module graph: top-level module → the modules its files name.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let named = named_modules(&std::fs::read_to_string(&file).unwrap());
        graph.entry(module.clone()).or_default().extend(named.into_iter().filter(|n| *n != module));
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let unknown: Vec<_> = graph().into_keys().filter(|m| layer(m).is_none()).collect();
    assert!(unknown.is_empty(), "modules with no layer in tests/layering.rs: {unknown:?}");
}

#[test]
fn no_module_names_a_module_of_a_higher_layer() {
    let mut upward = Vec::new();
    for (module, named) in graph() {
        let Some(own) = layer(&module) else { continue };
        for other in named {
            match layer(&other) {
                Some(l) if l > own => upward.push(format!("{module} (layer {own}) names {other} (layer {l})")),
                _ => {}
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers:\n{}", upward.join("\n"));
}

#[test]
fn the_protocol_names_nothing_of_the_crate_and_the_sandbox_not_the_protocol() {
    let g = graph();
    assert_eq!(g.get("protocol").cloned().unwrap_or_default(), BTreeSet::new(), "protocol must stand alone");
    let sandbox = g.get("sandbox").cloned().unwrap_or_default();
    assert!(!sandbox.contains("protocol") && !sandbox.contains("backend"), "sandbox names {sandbox:?}");
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    // Depth-first search; a node met again while still on the path closes
    // a cycle.
    fn visit<'a>(
        g: &'a BTreeMap<String, BTreeSet<String>>,
        node: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in g.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(g, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in g.keys() {
        if let Some(cycle) = visit(&g, node, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// The check itself sees an import: a file naming a module is an edge.
#[test]
fn the_scanner_sees_imports_and_skips_comments() {
    let text = "use crate::tasks::TaskList;\n// crate::cli in a comment\nlet x = crate::model::LimitKind::Memory; // crate::backend\n";
    let named = named_modules(text);
    assert_eq!(named, BTreeSet::from(["tasks".to_string(), "model".to_string()]));
}
