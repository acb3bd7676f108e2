//! `swarm-host plugins inspect <file.wasm>`: what a plugin is, from the
//! component itself. Its size, its imports and exports (interface names with
//! their versions, and the functions and resources of each), which world it
//! looks like (`teammate` exports `run`, `planner` exports `plan` and
//! `synthesize`), and whether it really fits this host's worlds: the same
//! compile-and-link check `run` does before spawning.
//!
//! The component's types come from wasmtime (`Component::component_type`),
//! so they are exactly what the linker sees. The `producers` custom sections
//! (the component's own and those of its core modules) say which toolchain
//! built it: `rustc` and `wit-component` for a Rust plugin, `componentize-py`
//! or `ComponentizeJS` for one in Python or JavaScript.

use std::path::Path;

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::{CacheArgs, CliResult, EXIT_CONFIG, EXIT_OK, config_error};
use crate::sandbox::Limits;
use crate::sandbox::planner::Planner;

/// One import or export.
#[derive(Debug, Serialize)]
pub struct Item {
    /// Its name, e.g. `swarm:teammate/mailbox@0.1.0` or `run`.
    pub name: String,
    /// The version in the name, if any.
    pub version: Option<String>,
    /// `instance`, `func`, `resource`, `type`, `module` or `component`.
    pub kind: &'static str,
    /// For an instance: its functions, as `name(param, ...)`.
    pub functions: Vec<String>,
    /// For an instance: its resources.
    pub resources: Vec<String>,
}

/// Whether the plugin fits one of this host's worlds.
#[derive(Debug, Serialize)]
pub struct Fit {
    /// `teammate` or `planner`.
    pub world: &'static str,
    /// True if it compiles and links against that world.
    pub fits: bool,
    /// Why not, if it does not.
    pub error: Option<String>,
}

/// One field of the `producers` sections, e.g. `language: Python`.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Producer {
    /// `language`, `processed-by` or `sdk`.
    pub field: String,
    /// The tool or language, e.g. `componentize-py`.
    pub name: String,
    /// Its version, possibly empty.
    pub version: String,
}

/// Every distinct entry of every `producers` custom section in `bytes`, at
/// any nesting depth (a component's core modules carry their own), sorted.
/// A section that does not parse is skipped: it is metadata, not code.
pub fn producers(bytes: &[u8]) -> Vec<Producer> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            continue;
        };
        let wasmparser::KnownCustom::Producers(reader) = section.as_known() else {
            continue;
        };
        for field in reader.into_iter().flatten() {
            for value in field.values.into_iter().flatten() {
                let p = Producer {
                    field: field.name.to_string(),
                    name: value.name.to_string(),
                    version: value.version.to_string(),
                };
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// What `inspect` reports.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Format version.
    pub v: u32,
    /// The file.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// The world its exports suggest: `teammate`, `planner` or `unknown`.
    pub world: &'static str,
    /// Imports, in the component's order.
    pub imports: Vec<Item>,
    /// Exports, in the component's order.
    pub exports: Vec<Item>,
    /// The link check against each world of this host.
    pub fits: Vec<Fit>,
    /// The toolchain that built it (the `producers` sections), if recorded.
    pub producers: Vec<Producer>,
}

fn item(engine: &wasmtime::Engine, name: &str, ty: &ComponentItem) -> Item {
    let version = name.split_once('@').map(|(_, v)| v.to_string());
    let mut out = Item { name: name.to_string(), version, kind: "type", functions: Vec::new(), resources: Vec::new() };
    out.kind = match ty {
        ComponentItem::ComponentInstance(inst) => {
            for (f, ext) in inst.exports(engine) {
                match &ext.ty {
                    ComponentItem::ComponentFunc(func) => out.functions.push(signature(f, func)),
                    ComponentItem::Resource(_) => out.resources.push(f.to_string()),
                    _ => {}
                }
            }
            "instance"
        }
        ComponentItem::ComponentFunc(func) => {
            out.functions.push(signature(name, func));
            "func"
        }
        ComponentItem::Resource(_) => "resource",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::CoreFunc(_) => "core-func",
        ComponentItem::Type(_) => "type",
    };
    out
}

fn signature(name: &str, func: &wasmtime::component::types::ComponentFunc) -> String {
    let params: Vec<&str> = func.params().map(|(p, _)| p).collect();
    format!("{name}({})", params.join(", "))
}

/// Inspects `file`; `Err` if it cannot be read or is not a component.
pub async fn examine(file: &Path, cache: &CacheArgs) -> Result<Inspection, String> {
    let limits = Limits::default();
    let bytes = crate::sandbox::read_component(file, &limits).map_err(|e| e.to_string())?;
    let size = bytes.len() as u64;
    let producers = producers(&bytes);
    let cache_dir = cache.dir();
    let (owned, dir) = (file.to_path_buf(), cache_dir.clone());
    let types = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let compile = |e: wasmtime::Error| format!("plugin {} failed to compile: {e:#}", owned.display());
        let engine = crate::sandbox::new_engine(limits.wasm_stack_bytes(), dir.as_deref()).map_err(compile)?;
        let component = Component::new(&engine, &bytes).map_err(compile)?;
        let ty = component.component_type();
        let imports = ty.imports(&engine).map(|(n, e)| item(&engine, n, &e.ty)).collect::<Vec<_>>();
        let exports = ty.exports(&engine).map(|(n, e)| item(&engine, n, &e.ty)).collect::<Vec<_>>();
        Ok((imports, exports))
    })
    .await
    .map_err(|e| e.to_string())??;
    let (imports, exports) = types;
    let exported = |name: &str| exports.iter().any(|e| e.kind == "func" && e.name == name);
    let world = if exported("run") {
        "teammate"
    } else if exported("plan") && exported("synthesize") {
        "planner"
    } else if exported("plan-goal") && exported("synthesize-run") {
        "lead"
    } else {
        "unknown"
    };

    let (owned, dir) = (file.to_path_buf(), cache_dir);
    let fits = tokio::task::spawn_blocking(move || {
        let limits = Limits::default();
        let sandbox = match &dir {
            Some(d) => crate::sandbox::Sandbox::with_cache(d.clone()),
            None => crate::sandbox::Sandbox::new(),
        };
        let teammate = sandbox.load(&owned, &limits).map(drop).map_err(|e| e.to_string());
        // The planner loader takes leads too (world `lead`), and says which it got.
        let planner = Planner::load_with_cache(&owned, &limits, dir.as_deref()).map_err(|e| e.to_string());
        let planner_world = if planner.as_ref().is_ok_and(Planner::is_lead) { "lead" } else { "planner" };
        [("teammate", teammate), (planner_world, planner.map(drop))]
            .into_iter()
            .map(|(world, r)| Fit { world, fits: r.is_ok(), error: r.err() })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(Inspection { v: 1, file: file.display().to_string(), size, world, imports, exports, fits, producers })
}

/// `swarm-host plugins inspect <file.wasm> [--json]`: exits 0 if the plugin
/// fits a world of this host, 2 if it fits none or is not a component.
pub async fn inspect(file: &Path, json: bool, cache: &CacheArgs) -> CliResult {
    let i = examine(file, cache).await.map_err(config_error)?;
    let code = if i.fits.iter().any(|f| f.fits) { EXIT_OK } else { EXIT_CONFIG };
    if json {
        println!("{}", serde_json::to_string_pretty(&i).map_err(config_error)?);
        return Ok(code);
    }
    println!("{}: component, {} bytes, world {}", i.file, i.size, i.world);
    for (title, items) in [("imports", &i.imports), ("exports", &i.exports)] {
        println!("{title}:");
        for it in items {
            println!("  {} ({})", it.name, it.kind);
            for r in &it.resources {
                println!("    resource {r}");
            }
            for f in it.functions.iter().filter(|_| it.kind == "instance") {
                println!("    {f}");
            }
            if it.kind == "func" {
                println!("    {}", it.functions.join(", "));
            }
        }
    }
    if !i.producers.is_empty() {
        println!("producers:");
        for p in &i.producers {
            let line = format!("  {}: {} {}", p.field, p.name, p.version);
            println!("{}", crate::sanitize::line(line.trim_end()));
        }
    }
    for f in &i.fits {
        match &f.error {
            None => println!("fits the {} world of swarm:teammate@0.1.3", f.world),
            Some(e) => println!("does not fit the {} world: {}", f.world, crate::sanitize::line(e)),
        }
    }
    if code != EXIT_OK {
        eprintln!("error: {} fits no world of this host", i.file);
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(file: &str) -> Vec<String> {
        let bytes = std::fs::read(file).unwrap();
        producers(&bytes).into_iter().map(|p| format!("{}: {}", p.field, p.name)).collect()
    }

    #[test]
    fn producers_name_the_toolchain_of_each_language() {
        let rust = names(swarm_tests::TODO_SCAN);
        assert!(
            rust.contains(&"language: Rust".to_string()) && rust.contains(&"processed-by: rustc".to_string()),
            "{rust:?}"
        );
        let js = names(swarm_tests::JS_PACKAGE_JSON.expect("the JS guest was built"));
        assert!(
            js.contains(&"language: JavaScript".into()) && js.contains(&"processed-by: ComponentizeJS".into()),
            "{js:?}"
        );
        // componentize-py records its pre-initialiser, not a language.
        let py = names(swarm_tests::PY_LINT.expect("the Python guest was built"));
        assert!(py.contains(&"processed-by: component-init-transform".into()), "{py:?}");
    }

    #[test]
    fn a_module_without_producers_has_none() {
        assert!(producers(b"\0asm\x01\0\0\0").is_empty());
        assert!(producers(b"not wasm at all").is_empty());
    }
}
