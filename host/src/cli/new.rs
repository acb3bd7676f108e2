//! `swarm-host new <name> [--lang rust|python|js]`: scaffolds a plugin that
//! builds and passes its own test as generated, with a small working teammate
//! (long lines), a native unit test, a README, a `.gitignore` and a
//! `team.toml` that runs it.
//!
//! - Rust: a crate (`Cargo.toml`, a `cdylib` with its own `[workspace]`, and
//!   `src/lib.rs`). The guest SDK is not on crates.io, so the crate depends on
//!   it by path: `--sdk <dir>`, else the SDK this binary was built from, if
//!   that directory still exists.
//! - Python: `app.py`, `rules.py` + `test_rules.py` (`python3 -m unittest test_rules`)
//!   and `build.sh` (componentize-py, pinned, in a `.venv` it creates).
//! - JavaScript: `app.js`, `rules.js` + `rules.test.js` (`node --test`) and a
//!   `package.json` + `package-lock.json` pinning jco, componentize-js and
//!   rolldown (`npm ci && npm run build`).
//!
//! A Python or JavaScript plugin gets a copy of its SDK and of the WIT this
//! binary was built with (both compiled in), so its directory builds on its
//! own.

use std::path::{Path, PathBuf};

use super::{CliResult, EXIT_OK, config_error};

/// The SDK next to the crate this binary was built from.
const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Longest plugin name.
const MAX_NAME: usize = 64;

/// Names cargo or Rust reserve.
const RESERVED: &[&str] = &[
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "proc-macro",
    "self",
    "super",
    "crate",
    "build",
    "deps",
    "examples",
    "swarm-guest-sdk",
    "swarm_guest_sdk",
];

/// The files written, relative to the crate directory, with their templates.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    ("team.toml", include_str!("template/team.toml.tmpl")),
    ("rules.toml", include_str!("template/rules.toml.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

/// The files of a Python plugin. Templates have placeholders; the SDK and
/// the WIT are copied verbatim.
const PYTHON_FILES: &[(&str, &str, bool)] = &[
    ("app.py", include_str!("template/python/app.py.tmpl"), true),
    ("rules.py", include_str!("template/python/rules.py.tmpl"), true),
    ("test_rules.py", include_str!("template/python/test_rules.py.tmpl"), true),
    ("build.sh", include_str!("template/python/build.sh.tmpl"), true),
    ("rules.toml", include_str!("template/rules.toml.tmpl"), true),
    ("team.toml", include_str!("template/python/team.toml.tmpl"), true),
    ("README.md", include_str!("template/python/README.md.tmpl"), true),
    (".gitignore", include_str!("template/python/gitignore.tmpl"), true),
    ("requirements-build.txt", include_str!("../../../guest-sdk/python/requirements-build.txt"), false),
    ("swarm_teammate/__init__.py", include_str!("../../../guest-sdk/python/swarm_teammate/__init__.py"), false),
    ("wit/teammate.wit", include_str!("../../../wit/teammate.wit"), false),
];

/// The files of a JavaScript plugin (`package-lock.json` is the SDK's, with
/// the plugin's name).
const JS_FILES: &[(&str, &str, bool)] = &[
    ("app.js", include_str!("template/js/app.js.tmpl"), true),
    ("rules.js", include_str!("template/js/rules.js.tmpl"), true),
    ("rules.test.js", include_str!("template/js/rules.test.js.tmpl"), true),
    ("package.json", include_str!("template/js/package.json.tmpl"), true),
    ("team.toml", include_str!("template/js/team.toml.tmpl"), true),
    ("README.md", include_str!("template/js/README.md.tmpl"), true),
    (".gitignore", include_str!("template/js/gitignore.tmpl"), true),
    ("swarm-teammate.js", include_str!("../../../guest-sdk/js/swarm-teammate.js"), false),
    ("wit/teammate.wit", include_str!("../../../wit/teammate.wit"), false),
];

/// The SDK's lock file: the same pinned toolchain for every JS plugin.
const JS_LOCK: &str = include_str!("../../../guest-sdk/js/package-lock.json");

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate built with cargo for wasm32-wasip2.
    #[default]
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// Arguments of `swarm-host new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lower-case letters, digits, `-` and `_`, starting
    /// with a letter (also names the crate, the teammate and the team).
    pub name: String,
    /// Directory to create [default: ./<name>]; must not exist or be empty.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// The `swarm-guest-sdk` crate directory to depend on [default: the SDK
    /// this binary was built from] (Rust only).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
    /// The plugin's language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

/// Checks a plugin name; the error says which rule it breaks.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("plugin name `{}` {why}", crate::sanitize::line(name)));
    if name.is_empty() || name.len() > MAX_NAME {
        return bad(&format!("must be 1-{MAX_NAME} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("must start with a lower-case letter");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return bad(&format!("may hold only a-z, 0-9, `-` and `_`, not {c:?}"));
    }
    if RESERVED.contains(&name) {
        return bad("is reserved by cargo or Rust");
    }
    Ok(())
}

/// `my-lint_2` → `MyLint2`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            cs.next().map(|c| c.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The SDK directory to depend on, checked.
fn sdk_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let (dir, source) = match given {
        Some(d) => (d.to_path_buf(), "--sdk"),
        None => (PathBuf::from(BUILT_WITH_SDK), "the SDK this swarm-host was built from"),
    };
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).map_err(|e| {
        let hint = if given.is_none() {
            "; pass --sdk <dir> pointing at the `guest-sdk` directory of a swarm-host checkout"
        } else {
            ""
        };
        format!("{source} ({}) has no readable Cargo.toml: {e}{hint}", dir.display())
    })?;
    if !manifest.contains("name = \"swarm-guest-sdk\"") {
        return Err(format!("{source} ({}) is not the swarm-guest-sdk crate", dir.display()));
    }
    dir.canonicalize().map_err(|e| format!("{source} ({}): {e}", dir.display()))
}

/// Writes the plugin; returns its directory.
pub fn scaffold(args: &NewArgs) -> Result<PathBuf, String> {
    check_name(&args.name)?;
    if args.lang != Lang::Rust && args.sdk.is_some() {
        return Err("--sdk is for Rust plugins; a Python or JavaScript plugin gets a copy of its SDK".into());
    }
    let sdk = if args.lang == Lang::Rust { Some(sdk_dir(args.sdk.as_deref())?) } else { None };
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(format!("{} already exists and is not empty; nothing was written", dir.display()));
    }
    let mut vars = vec![
        ("{{name}}", args.name.clone()),
        ("{{crate}}", args.name.replace('-', "_")),
        ("{{type}}", type_name(&args.name)),
    ];
    if let Some(sdk) = &sdk {
        let sdk_str = sdk.to_str().ok_or_else(|| format!("the SDK path {} is not UTF-8", sdk.display()))?;
        // A TOML string, quoted and escaped.
        vars.push(("{{sdk}}", toml::Value::String(sdk_str.to_string()).to_string()));
    }
    let fill = |template: &str| vars.iter().fold(template.to_string(), |t, (k, v)| t.replace(k, v));
    let mut files: Vec<(&str, String)> = match args.lang {
        Lang::Rust => FILES.iter().map(|(f, t)| (*f, fill(t))).collect(),
        Lang::Python => {
            PYTHON_FILES.iter().map(|(f, t, tmpl)| (*f, if *tmpl { fill(t) } else { t.to_string() })).collect()
        }
        Lang::Js => JS_FILES.iter().map(|(f, t, tmpl)| (*f, if *tmpl { fill(t) } else { t.to_string() })).collect(),
    };
    if args.lang == Lang::Js {
        files.push(("package-lock.json", js_lock(&args.name)?));
        let wit = include_str!("../../../wit/teammate.wit");
        for (file, text) in &mut files {
            if *file == "swarm-teammate.js" {
                *text = with_wit_version(text, wit)?;
            }
        }
    }
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// `js` with every `"swarm:teammate/<interface>@<version>"` import naming
/// the version of `wit` instead: the SDK names the version it was written
/// for, and componentize-js needs the names of the WIT it builds with (a
/// later 0.1.x, which old guests keep loading).
fn with_wit_version(js: &str, wit: &str) -> Result<String, String> {
    let version = wit
        .lines()
        .find_map(|l| l.strip_prefix("package swarm:teammate@")?.strip_suffix(';'))
        .ok_or("the compiled-in WIT has no `package swarm:teammate@<version>;` line")?;
    let mut out = String::with_capacity(js.len());
    let mut rest = js;
    while let Some(at) = rest.find("\"swarm:teammate/") {
        let (head, tail) = rest.split_at(at + 1);
        out.push_str(head);
        let end = tail.find('"').ok_or("an unterminated swarm:teammate import in the JS SDK")?;
        let name = &tail[..end];
        match name.split_once('@') {
            Some((interface, _)) => out.push_str(&format!("{interface}@{version}")),
            None => out.push_str(name),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The SDK's lock file with the plugin's name and version at the top and in
/// the root package (the dependencies, and so `npm ci`, are the same).
fn js_lock(name: &str) -> Result<String, String> {
    let mut lock: serde_json::Value =
        serde_json::from_str(JS_LOCK).map_err(|e| format!("the compiled-in package-lock.json: {e}"))?;
    let named = |v: &mut serde_json::Value| {
        v["name"] = name.into();
        v["version"] = "0.1.0".into();
    };
    named(&mut lock);
    named(&mut lock["packages"][""]);
    lock["packages"][""]["license"] = "Apache-2.0".into();
    serde_json::to_string_pretty(&lock).map(|s| s + "\n").map_err(|e| e.to_string())
}

/// `swarm-host new <name> [--path DIR] [--sdk DIR] [--lang rust|python|js]`.
pub fn new(args: &NewArgs) -> CliResult {
    let dir = scaffold(args).map_err(config_error)?;
    let d = dir.display();
    println!("Created plugin `{}` in {d}", args.name);
    println!("  cd {d}");
    match args.lang {
        Lang::Rust => {
            println!("  cargo test                                      # its unit test, natively");
            println!("  cargo build --release --target wasm32-wasip2    # the plugin component");
            println!("  swarm-host run team.toml                        # run it over the crate");
        }
        Lang::Python => {
            println!("  python3 -m unittest test_rules  # its unit test, natively");
            println!("  sh build.sh                     # the plugin component (componentize-py in .venv)");
            println!("  swarm-host run team.toml        # run it over the directory");
        }
        Lang::Js => {
            println!("  npm ci && npm test          # the pinned toolchain, then its unit test");
            println!("  npm run build               # the plugin component");
            println!("  swarm-host run team.toml        # run it over the directory");
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_say_why() {
        assert!(check_name("long-lines").is_ok());
        assert!(check_name("a_2").is_ok());
        for (bad, why) in [
            ("", "1-64"),
            ("Lint", "lower-case letter"),
            ("9lives", "lower-case letter"),
            ("my lint", "not ' '"),
            ("../x", "lower-case letter"),
            ("test", "reserved"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_name(&"a".repeat(65)).unwrap_err().contains("1-64"));
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("long-lines"), "LongLines");
        assert_eq!(type_name("my_lint_2"), "MyLint2");
    }

    #[test]
    fn an_existing_directory_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let args = NewArgs { name: "demo".into(), path: Some(dir.path().to_path_buf()), sdk: None, lang: Lang::Rust };
        let e = scaffold(&args).unwrap_err();
        assert!(e.contains("already exists and is not empty"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "mine");
    }

    #[test]
    fn a_missing_sdk_asks_for_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let args = NewArgs {
            name: "demo".into(),
            path: Some(dir.path().join("demo")),
            sdk: Some(dir.path().join("no-sdk-here")),
            lang: Lang::Rust,
        };
        let e = scaffold(&args).unwrap_err();
        assert!(e.contains("--sdk") && e.contains("no readable Cargo.toml"), "{e}");
        assert!(!dir.path().join("demo").exists(), "nothing written");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("my-lint");
        scaffold(&NewArgs { name: "my-lint".into(), path: Some(out.clone()), sdk: None, lang: Lang::Rust }).unwrap();
        for (file, _) in FILES {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file}: {text}");
        }
        let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct MyLint;") && lib.contains("export_teammate!(MyLint);"), "{lib}");
        let team = std::fs::read_to_string(out.join("team.toml")).unwrap();
        assert!(team.contains("target/wasm32-wasip2/release/my_lint.wasm"), "{team}");
        let loaded = crate::coordinator::Loaded::read(&out.join("team.toml")).unwrap();
        assert_eq!(loaded.team.name, "my-lint");
    }

    #[test]
    fn python_and_js_plugins_get_their_sdk_wit_and_a_filled_team_file() {
        for (lang, entry, sdk) in
            [(Lang::Python, "app.py", "swarm_teammate/__init__.py"), (Lang::Js, "app.js", "swarm-teammate.js")]
        {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("my-lint");
            scaffold(&NewArgs { name: "my-lint".into(), path: Some(out.clone()), sdk: None, lang }).unwrap();
            let app = std::fs::read_to_string(out.join(entry)).unwrap();
            assert!(!app.contains("{{") && app.contains("MyLint"), "{lang:?}: {app}");
            assert!(std::fs::read_to_string(out.join(sdk)).unwrap().contains("IDLE_WAIT_MS"), "{lang:?}: the SDK");
            let wit = std::fs::read_to_string(out.join("wit/teammate.wit")).unwrap();
            assert!(wit.contains("package swarm:teammate@"), "{lang:?}: the WIT");
            let team = crate::coordinator::Loaded::read(&out.join("team.toml")).unwrap();
            assert_eq!(team.team.name, "my-lint");
            assert!(std::fs::read_to_string(out.join("team.toml")).unwrap().contains("plugin = \"my_lint.wasm\""));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p");
        scaffold(&NewArgs { name: "p".into(), path: Some(out.clone()), sdk: None, lang: Lang::Js }).unwrap();
        let lock: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("package-lock.json")).unwrap()).unwrap();
        assert_eq!((&lock["name"], &lock["packages"][""]["name"]), (&"p".into(), &"p".into()));
    }

    #[test]
    fn js_imports_follow_the_wit_version() {
        let js = "import * as log from \"swarm:teammate/log@0.1.1\";\nimport \"swarm:teammate/task-list@0.1.1\";\n";
        let wit = "/// doc\npackage swarm:teammate@0.1.2;\n";
        assert_eq!(
            with_wit_version(js, wit).unwrap(),
            "import * as log from \"swarm:teammate/log@0.1.2\";\nimport \"swarm:teammate/task-list@0.1.2\";\n"
        );
        assert!(with_wit_version(js, "package other;").unwrap_err().contains("package swarm:teammate@"));
    }

    #[test]
    fn sdk_is_refused_for_python_and_js() {
        let dir = tempfile::tempdir().unwrap();
        let args = NewArgs {
            name: "p".into(),
            path: Some(dir.path().join("p")),
            sdk: Some(dir.path().into()),
            lang: Lang::Python,
        };
        assert!(scaffold(&args).unwrap_err().contains("--sdk is for Rust plugins"));
        assert!(!dir.path().join("p").exists(), "nothing written");
    }
}
