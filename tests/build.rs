//! Builds the guests the integration tests run (the shipped plugins and the
//! hostile fixtures in `tests/guests/`) to `wasm32-wasip2` components, and
//! writes `$OUT_DIR/guests.rs` with one path constant per guest.
//!
//! Modelled on wasmtime's `crates/test-programs/artifacts/build.rs`: a nested
//! `cargo build` with its own target directory under `OUT_DIR` (so it never
//! waits on the lock of the outer build), and `rerun-if-changed` lines taken
//! from the `.d` files cargo writes next to each artifact.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Python and JavaScript guests (issue 17), built by their own toolchains.
#[path = "build_lang.rs"]
mod lang;

const TARGET: &str = "wasm32-wasip2";

/// The first 8 bytes of a component: `\0asm`, then version 0x0d and layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// One guest crate to build.
struct Guest {
    /// Cargo package name.
    package: &'static str,
    /// Name of the constant in `guests.rs`.
    constant: &'static str,
    /// Doc comment of the constant.
    doc: &'static str,
}

const GUESTS: &[Guest] = &[
    Guest {
        package: "todo-scan",
        constant: "TODO_SCAN",
        doc: "`plugins/todo-scan`: reports TODO / FIXME / XXX markers in the task's owned files.",
    },
    Guest {
        package: "ping",
        constant: "PING",
        doc: "`plugins/ping`: `send-to:<id>` pings `<id>` and waits for the pong; `echo` \
              completes with the subject; answers `ping from <x>` with `pong from <me>`.",
    },
    Guest {
        package: "trapper",
        constant: "TRAPPER",
        doc: "`tests/guests/trapper`: by task subject, `panic` panics, `unreachable` executes \
              `unreachable`, `recurse` overflows the stack, `env` reports `env=<n> args=<n>`; \
              else completes.",
    },
    Guest {
        package: "looper",
        constant: "LOOPER",
        doc: "`tests/guests/looper`: spins forever if the task subject contains `loop`, else \
              completes; a teammate whose id starts with `spin-idle` spins before it ever claims.",
    },
    Guest {
        package: "counter",
        constant: "COUNTER",
        doc: "`tests/guests/counter`: completes every task with `done <task id> by <me>`.",
    },
    Guest {
        package: "writer",
        constant: "WRITER",
        doc: "`tests/guests/writer`: `write:<path>` writes `written by <me>`, `read:<path>` \
              reports the length, `request:<path>` asks for the file then writes it, `ask:<text>` \
              completes with the lead's answer, `wait:<instruction>` waits for a message first; a refused call fails the task with the error text.",
    },
    Guest {
        package: "legacy",
        constant: "LEGACY",
        doc: "`tests/guests/legacy`: built with wit-bindgen against its own copy of the \
              `swarm:teammate@0.1.0` WIT (no SDK); by task subject, `fail` fails the task with its \
              description, `quit` returns the description as `run`'s error while holding the task; \
              else completes it with the old `complete` and one unrated finding \
              `legacy.txt:1 legacy-rule`.",
    },
    Guest {
        package: "llm-caller",
        constant: "LLM_CALLER",
        doc: "`tests/guests/llm-caller`: subject `ask[@<alias>] [xN] <prompt>` calls the model N times \
              and completes with `answer: <text> | model=.. in=.. out=.. stop=.. tokens_left=.. \
              calls_left=..`; an error fails the task with `llm error: <description>`.",
    },
    Guest {
        package: "memhog",
        constant: "MEMHOG",
        doc: "`tests/guests/memhog`: allocates and touches 1 MiB chunks until the host stops it.",
    },
    Guest {
        package: "rogue",
        constant: "ROGUE",
        doc: "`tests/guests/rogue`: hostile by task subject: `escape` tries the `read|write|list <path>` \
              lines of its description and reports each outcome as a finding; `flood` sends to the \
              teammate in the description until refused; `oversize` sends the team lead a body one \
              byte over the description's size; `forge` poses as another teammate; `ansi` logs, sends \
              and fails with escape sequences; `logflood` logs without end; `denyflood` reads the \
              description's path without end; `progressflood`, `idleflood` and `shutdownflood` \
              repeat those calls without end; `bigreport` completes with a summary of the \
              description's number of control characters.",
    },
    Guest {
        package: "cruncher",
        constant: "CRUNCHER",
        doc: "`tests/guests/cruncher` (bench only): a task described `rounds:<n>`, `scan:<mib>` or \
              `map:<n>` runs `crunch_kernel::crunch(n)`, `scan(mib)` or `map(n)` and completes with \
              `checksum <hash>`.",
    },
    Guest {
        package: "planner",
        constant: "PLANNER",
        doc: "`plugins/planner` (world `planner`): splits the files into balanced, contiguous, \
              disjoint tasks `p1..pN`; synthesizes `N tasks: X completed, Y failed, Z findings.`.",
    },
    Guest {
        package: "lead",
        constant: "LEAD",
        doc: "`plugins/lead` (world `lead`): plans the team's goal with its model (`submit_plan` \
              tool call, replans on the host's problems) and writes the closing text with it.",
    },
    Guest {
        package: "bad-planner",
        constant: "BAD_PLANNER",
        doc: "`tests/guests/bad-planner` (world `planner`): by subject, `loop` spins, `panic` \
              panics, `hog` eats memory, `err` refuses, `log` logs control characters, `ask <prompt>` asks its \
              model and names the tasks with the answer; else one \
              task per file. `synthesize` spins for team `loop`.",
    },
    Guest {
        package: "license-header",
        constant: "LICENSE_HEADER",
        doc: "`plugins/license-header`: checks for an SPDX header; options `license=<id>`, `fix`, \
              `within=<n>`.",
    },
    Guest {
        package: "whitespace",
        constant: "WHITESPACE",
        doc: "`plugins/whitespace`: trailing whitespace, mixed indentation, final newline, CRLF, \
              long lines; options `fix`, `max-line=<n>`.",
    },
    Guest {
        package: "md-links",
        constant: "MD_LINKS",
        doc: "`plugins/md-links`: broken relative links, images and anchors in Markdown (needs \
              `read = \"root\"`); option `no-anchors`.",
    },
    Guest {
        package: "secret-scan",
        constant: "SECRET_SCAN",
        doc: "`plugins/secret-scan`: AWS keys, private keys, GitHub/Slack tokens, high-entropy \
              password assignments, masked in findings.",
    },
    Guest {
        package: "messenger",
        constant: "MESSENGER",
        doc: "`tests/guests/messenger`: answers a message `go` with a body and a summary full of XML \
              metacharacters (one posing as the team lead); its tasks complete at once.",
    },
    Guest {
        package: "agent",
        constant: "AGENT",
        doc: "`plugins/agent`: a coding agent (the SDK's agent loop): the task's subject and description \
              are its instructions; a description line `options: model=<alias> max-turns=<n> \
              temperature=<t>`.",
    },
];

/// Variables of the outer build that must not leak into the guest build:
/// flags meant for the host target, a clippy driver, a forced target dir or
/// target.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let workspace = manifest_dir.parent().expect("tests/ lives inside the workspace").to_path_buf();

    for dir in ["wit", "guest-sdk", "plugins", "tests/guests", "tests/lang-guests"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    for file in ["Cargo.toml", "Cargo.lock", "tests/build.rs", "tests/build_lang.rs"] {
        println!("cargo:rerun-if-changed={}", workspace.join(file).display());
    }

    check_target_installed();

    let target_dir = out_dir.join("guests-target");
    build_guests(&workspace, &target_dir);

    let release = target_dir.join(TARGET).join("release");
    let mut deps = BTreeSet::new();
    let mut code = String::from("// @generated by tests/build.rs: paths of the guest components.\n\n");
    for guest in GUESTS {
        let wasm = release.join(format!("{}.wasm", guest.package.replace('-', "_")));
        check_component(guest.package, &wasm);
        read_deps_of(&wasm, &mut deps);
        let path = wasm.to_str().unwrap_or_else(|| panic!("artifact path {} is not UTF-8", wasm.display()));
        writeln!(code, "/// {}", guest.doc).unwrap();
        writeln!(code, "pub const {}: &str = {path:?};\n", guest.constant).unwrap();
    }
    code.push_str("/// Every guest as `(package name, component path)`.\npub const ALL: &[(&str, &str)] = &[\n");
    for guest in GUESTS {
        writeln!(code, "    ({:?}, {}),", guest.package, guest.constant).unwrap();
    }
    code.push_str("];\n\n");
    lang::build(&workspace, &out_dir, &mut code);
    fs::write(out_dir.join("guests.rs"), code).expect("write guests.rs");

    for dep in deps {
        println!("cargo:rerun-if-changed={dep}");
    }
}

/// Fails early, with the fix, if the standard library for the wasm target
/// is not installed.
fn check_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(&rustc).args(["--print", "sysroot"]).output() else {
        return; // Let the build itself report what is wrong.
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !sysroot.is_empty() {
        let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
        if !lib.exists() {
            panic!(
                "\n\nthe Rust target {TARGET} is not installed (no {}).\n\
                 The integration tests build their guests for it; install it with:\n\n    \
                 rustup target add {TARGET}\n",
                lib.display()
            );
        }
    }
}

fn build_guests(workspace: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args(["build", "--release", "--target", TARGET]);
    for guest in GUESTS {
        cmd.args(["-p", guest.package]);
    }
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir).stdin(Stdio::null()).stdout(Stdio::null());
    eprintln!("running: {cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("could not run cargo to build the guests: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    if !out.status.success() {
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\nhint: install the target with `rustup target add {TARGET}`\n")
        } else {
            String::new()
        };
        panic!("\n\nbuilding the test guests for {TARGET} failed ({}):\n\n{stderr}{hint}", out.status);
    }
}

/// `cargo build --target wasm32-wasip2` links a cdylib with
/// `wasm-component-ld`, so the artifact is already a component; check it.
fn check_component(package: &str, wasm: &Path) {
    let bytes = fs::read(wasm).unwrap_or_else(|e| panic!("guest {package}: cannot read {}: {e}", wasm.display()));
    assert!(
        bytes.starts_with(&COMPONENT_HEADER),
        "guest {package}: {} is not a WebAssembly component (header {:02x?})",
        wasm.display(),
        &bytes[..bytes.len().min(8)]
    );
}

/// Adds every file listed in the dep-info (`.d`) file next to `artifact`.
/// The format is a makefile rule, `target: dep dep ...`, with spaces in paths
/// escaped by a backslash. See
/// <https://doc.rust-lang.org/cargo/reference/build-cache.html#dep-info-files>.
fn read_deps_of(artifact: &Path, deps: &mut BTreeSet<String>) {
    let d_file = artifact.with_extension("d");
    let contents =
        fs::read_to_string(&d_file).unwrap_or_else(|e| panic!("cannot read dep-info {}: {e}", d_file.display()));
    for line in contents.lines() {
        let Some(pos) = line.find(": ") else {
            continue;
        };
        let mut parts = line[pos + 2..].split_whitespace();
        while let Some(part) = parts.next() {
            let mut file = part.to_string();
            while file.ends_with('\\') {
                file.pop();
                file.push(' ');
                match parts.next() {
                    Some(next) => file.push_str(next),
                    None => break,
                }
            }
            deps.insert(file);
        }
    }
}
