//! The Python and JavaScript guests of the tests (issue 17): built by
//! `guest-sdk/lang-build.sh` with its pinned toolchains (componentize-py in a
//! virtual environment, jco/componentize-js from `npm ci`), installed once into
//! `<target dir>/lang-tools` (or `$SWARM_LANG_TOOLS`).
//!
//! A build takes about a minute per component, so its output is cached in
//! `<target dir>/lang-guests/<name>-<hash>.wasm`, keyed by every input (the
//! WIT, the language's SDK and toolchain pins, the plugin's sources): a
//! `cargo clippy` or a second profile reuses it. A toolchain that cannot be
//! installed does not break the other tests: the guest's constant is then an
//! `Err` naming the missing tool, and the tests that need it fail with it.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The language of a guest.
#[derive(Clone, Copy)]
enum Lang {
    Python,
    Js,
}

/// One guest written in Python or JavaScript.
struct LangGuest {
    /// Directory under the workspace (`plugins/py-lint`; test-only guests
    /// live in `tests/lang-guests`, outside the Cargo workspace's
    /// `tests/guests/*` member glob).
    dir: &'static str,
    /// The entry file in `dir`: `app.py` (Python) or `app.js` (JavaScript).
    lang: Lang,
    /// Name of the constant in `guests.rs`.
    constant: &'static str,
    /// Doc comment of the constant.
    doc: &'static str,
}

const LANG_GUESTS: &[LangGuest] = &[
    LangGuest {
        dir: "plugins/py-lint",
        lang: Lang::Python,
        constant: "PY_LINT",
        doc: "`plugins/py-lint` (Python): `missing-docstring`, `bare-except`, `print-call` and \
              `syntax-error` in the task's `.py` files.",
    },
    LangGuest {
        dir: "plugins/py-agent",
        lang: Lang::Python,
        constant: "PY_AGENT",
        doc: "`plugins/py-agent` (Python): a coding agent on the Python SDK's agent loop \
              (`swarm_teammate.agent`): the task's subject and description are its instructions.",
    },
    LangGuest {
        dir: "tests/lang-guests/py-deps",
        lang: Lang::Python,
        constant: "PY_DEPS",
        doc: "`tests/lang-guests/py-deps` (Python): its task's summary lists what the task's \
              dependencies produced (`Context.dependency_results`).",
    },
    LangGuest {
        dir: "plugins/js-package-json",
        lang: Lang::Js,
        constant: "JS_PACKAGE_JSON",
        doc: "`plugins/js-package-json` (JavaScript): `missing-license`, `unpinned-dependency`, \
              `curl-pipe-shell` and `invalid-json` in the task's `package.json` files.",
    },
];

/// Builds the language guests and appends one constant per guest to `code`:
/// `Result<&str, &str>`, the component path or why it could not be built.
pub fn build(workspace: &Path, out_dir: &Path, code: &mut String) {
    for dir in ["guest-sdk/lang-build.sh", "guest-sdk/python", "guest-sdk/js"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=SWARM_LANG_TOOLS");
    let target = target_dir(out_dir);
    let tools = std::env::var_os("SWARM_LANG_TOOLS").map(PathBuf::from).unwrap_or_else(|| target.join("lang-tools"));
    let cache = target.join("lang-guests");
    fs::create_dir_all(&cache).expect("create the lang-guests cache dir");

    // Both languages at once: each build is mostly one core's work.
    let results: Vec<Result<PathBuf, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = LANG_GUESTS.iter().map(|g| s.spawn(|| build_one(workspace, &tools, &cache, g))).collect();
        handles.into_iter().map(|h| h.join().expect("a guest build thread panicked")).collect()
    });

    let tools_str = tools.to_str().expect("lang-tools path is UTF-8");
    writeln!(
        code,
        "/// The pinned Python and JavaScript toolchains (`py/`: componentize-py in a virtual \
         environment; `js/`: `npm ci` of `guest-sdk/js`), installed by `tests/build.rs` as far as \
         it could.\npub const LANG_TOOLS: &str = {tools_str:?};\n"
    )
    .unwrap();
    for (guest, result) in LANG_GUESTS.iter().zip(results) {
        writeln!(code, "/// {}", guest.doc).unwrap();
        writeln!(code, "///").unwrap();
        writeln!(code, "/// `Err` says why it could not be built (e.g. `missing tool: node`).").unwrap();
        match result {
            Ok(path) => {
                let path = path.to_str().expect("lang-guests path is UTF-8");
                writeln!(code, "pub const {}: Result<&str, &str> = Ok({path:?});\n", guest.constant).unwrap();
            }
            Err(why) => {
                println!("cargo:warning={}: {}", guest.dir, why.lines().next().unwrap_or(""));
                writeln!(code, "pub const {}: Result<&str, &str> = Err({why:?});\n", guest.constant).unwrap();
            }
        }
    }
}

/// `<target>/<profile>/build/<pkg>-<hash>/out` -> `<target>`.
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir.ancestors().nth(4).expect("OUT_DIR is <target>/<profile>/build/<pkg>/out").to_path_buf()
}

fn build_one(workspace: &Path, tools: &Path, cache: &Path, guest: &LangGuest) -> Result<PathBuf, String> {
    let dir = workspace.join(guest.dir);
    let (kind, sdk, entry) = match guest.lang {
        Lang::Python => ("python", "guest-sdk/python", dir.clone()),
        Lang::Js => ("js", "guest-sdk/js", dir.join("app.js")),
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut hasher = DefaultHasher::new();
    for input in ["wit", "guest-sdk/lang-build.sh", sdk, guest.dir] {
        hash_tree(&workspace.join(input), &mut hasher);
    }
    let name = guest.dir.rsplit('/').next().unwrap_or(guest.dir);
    let out = cache.join(format!("{name}-{:016x}.wasm", hasher.finish()));
    if out.exists() {
        return Ok(out);
    }
    let partial = out.with_extension("wasm.partial");
    let script = workspace.join("guest-sdk/lang-build.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(kind).arg(tools).arg(&entry).arg(&partial).stdin(Stdio::null());
    eprintln!("running: {cmd:?}");
    let output = cmd.output().map_err(|e| format!("missing tool: bash ({e})"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    if !output.status.success() {
        let missing = stderr.lines().find(|l| l.starts_with("missing tool:"));
        return Err(match missing {
            Some(line) => format!("{line}; building {} needs it", guest.dir),
            None => format!("building {} failed ({}): {}", guest.dir, output.status, stderr.trim()),
        });
    }
    fs::rename(&partial, &out).map_err(|e| format!("moving {} into place: {e}", partial.display()))?;
    // Older builds of this guest are stale: keep only the one just built.
    let stale = format!("{name}-");
    for entry in fs::read_dir(cache).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let hashed = file.len() == stale.len() + 16 + ".wasm".len();
        if hashed && file.starts_with(&stale) && file.ends_with(".wasm") && entry.path() != out {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(out)
}

/// Hashes every file under `path` (names and contents, in sorted order),
/// skipping `node_modules`, `__pycache__` and build outputs.
fn hash_tree(path: &Path, hasher: &mut DefaultHasher) {
    if path.is_dir() {
        let mut entries: Vec<_> =
            fs::read_dir(path).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if matches!(name, "node_modules" | "__pycache__" | "target") || name.ends_with(".wasm") {
                continue;
            }
            hash_tree(&entry, hasher);
        }
    } else if let Ok(bytes) = fs::read(path) {
        path.file_name().hash(hasher);
        bytes.hash(hasher);
    }
}
