//! `swarm-host new <name>`: scaffolds a plugin crate that builds and passes
//! its own test as generated: `Cargo.toml` (a `cdylib` with its own
//! `[workspace]`), `src/lib.rs` (a small working teammate and a native unit
//! test), a README, a `.gitignore` and a `team.toml` that runs it.
//!
//! The guest SDK is not on crates.io, so the crate depends on it by path:
//! `--sdk <dir>`, else the SDK this binary was built from, if that directory
//! still exists.

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
    ("README.md", include_str!("template/README.md.tmpl")),
    (".gitignore", include_str!("template/gitignore.tmpl")),
];

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
    /// this binary was built from].
    #[arg(long)]
    pub sdk: Option<PathBuf>,
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

/// Writes the crate; returns its directory.
pub fn scaffold(args: &NewArgs) -> Result<PathBuf, String> {
    check_name(&args.name)?;
    let sdk = sdk_dir(args.sdk.as_deref())?;
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(format!("{} already exists and is not empty; nothing was written", dir.display()));
    }
    let sdk_str = sdk.to_str().ok_or_else(|| format!("the SDK path {} is not UTF-8", sdk.display()))?;
    let vars = [
        ("{{name}}", args.name.clone()),
        ("{{crate}}", args.name.replace('-', "_")),
        ("{{type}}", type_name(&args.name)),
        // A TOML string, quoted and escaped.
        ("{{sdk}}", toml::Value::String(sdk_str.to_string()).to_string()),
    ];
    for (file, template) in FILES {
        let text = vars.iter().fold(template.to_string(), |t, (k, v)| t.replace(k, v));
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(dir)
}

/// `swarm-host new <name> [--path DIR] [--sdk DIR]`.
pub fn new(args: &NewArgs) -> CliResult {
    let dir = scaffold(args).map_err(config_error)?;
    let d = dir.display();
    println!("Created plugin `{}` in {d}", args.name);
    println!("  cd {d}");
    println!("  cargo test                                      # its unit test, natively");
    println!("  cargo build --release --target wasm32-wasip2    # the plugin component");
    println!("  swarm-host run team.toml                        # run it over the crate");
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
        let args = NewArgs { name: "demo".into(), path: Some(dir.path().to_path_buf()), sdk: None };
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
        };
        let e = scaffold(&args).unwrap_err();
        assert!(e.contains("--sdk") && e.contains("no readable Cargo.toml"), "{e}");
        assert!(!dir.path().join("demo").exists(), "nothing written");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("my-lint");
        scaffold(&NewArgs { name: "my-lint".into(), path: Some(out.clone()), sdk: None }).unwrap();
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
}
