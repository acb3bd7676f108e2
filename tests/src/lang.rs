//! Plugins scaffolded by `swarm-host new --lang rust|python|js` and built as
//! their README says, for the tests and the bench of issue 17: the same
//! long-lines teammate in each language. The Python and JavaScript builds use
//! the toolchains `tests/build.rs` installed ([`crate::LANG_TOOLS`]) instead
//! of installing their own: `COMPONENTIZE_PY` for `build.sh`, and the
//! installed `node_modules` linked into the plugin directory for
//! `npm run build` (the lock files are the same).

use std::path::{Path, PathBuf};
use std::process::Command;

use swarm_host::cli::new::{Lang, NewArgs, scaffold};

/// The languages `new` scaffolds.
pub const LANGS: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

/// Scaffolds plugin `name` in `lang` into `dir` (which must not exist).
pub fn new_plugin(name: &str, lang: Lang, dir: &Path) -> Result<(), String> {
    scaffold(&NewArgs { name: name.into(), path: Some(dir.to_path_buf()), sdk: None, lang }).map(drop)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("missing tool: {:?} ({e})", cmd.get_program()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(format!("{cmd:?} failed ({}):\n{text}", out.status)) }
}

/// `cargo` in `dir` with its own target directory `target` (shared by the
/// Rust plugins a test builds, so the SDK compiles once).
fn cargo(dir: &Path, target: &Path) -> Command {
    let mut cmd = Command::new(env_or("CARGO", "cargo"));
    cmd.current_dir(dir).env("CARGO_TARGET_DIR", target).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// Runs the plugin's own unit test the way its README says; the output.
/// `target` is the cargo target directory for a Rust plugin.
pub fn unit_test(lang: Lang, dir: &Path, target: &Path) -> Result<String, String> {
    match lang {
        Lang::Rust => run(cargo(dir, target).arg("test")),
        Lang::Python => run(Command::new("python3").args(["-m", "unittest", "-v", "test_rules"]).current_dir(dir)),
        Lang::Js => {
            link_node_modules(dir)?;
            run(Command::new("npm").arg("test").current_dir(dir))
        }
    }
}

/// Builds the plugin the way its README says; the component's path.
/// `target` is the cargo target directory for a Rust plugin.
pub fn build(name: &str, lang: Lang, dir: &Path, target: &Path) -> Result<PathBuf, String> {
    let file = format!("{}.wasm", name.replace('-', "_"));
    match lang {
        Lang::Rust => {
            run(cargo(dir, target).args(["build", "--release", "--target", "wasm32-wasip2"]))?;
            Ok(target.join("wasm32-wasip2/release").join(file))
        }
        Lang::Python => {
            let tool = Path::new(crate::LANG_TOOLS).join("py/bin/componentize-py");
            if !tool.exists() {
                return Err(format!("missing tool: componentize-py (not installed in {})", crate::LANG_TOOLS));
            }
            run(Command::new("sh").arg("build.sh").current_dir(dir).env("COMPONENTIZE_PY", tool))?;
            Ok(dir.join(file))
        }
        Lang::Js => {
            link_node_modules(dir)?;
            run(Command::new("npm").args(["run", "build"]).current_dir(dir))?;
            Ok(dir.join(file))
        }
    }
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.into())
}

/// `dir/node_modules` -> the installed toolchain's.
fn link_node_modules(dir: &Path) -> Result<(), String> {
    let installed = Path::new(crate::LANG_TOOLS).join("js/node_modules");
    if !installed.join(".bin/componentize-js").exists() {
        return Err(format!("missing tool: componentize-js (not installed in {})", crate::LANG_TOOLS));
    }
    let link = dir.join("node_modules");
    if !link.exists() {
        std::os::unix::fs::symlink(&installed, &link).map_err(|e| format!("linking {}: {e}", link.display()))?;
    }
    Ok(())
}
