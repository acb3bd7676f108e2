//! The hostile-guest suite: guests written to break out, each run in a team
//! beside well-behaved `counter` teammates that have tasks of their own, on
//! the in-process backend and again with every teammate a headless process
//! (`swarm-host teammate`, the `process` backend).
//!
//! For every attack the suite checks that
//! 1. the host survives (the run returns a report, or refuses to start with
//!    an error for a plugin that cannot be loaded);
//! 2. the other teammates complete all their tasks;
//! 3. the hostile task fails with an error naming the limit and its value,
//!    the same text on both backends;
//! 4. no file changed, inside the root or in the directory beside it that
//!    the hostile symlinks point at (the whole fixture is compared, file by
//!    file and link by link, before and after).
//!
//! The counts the suite prints (and `docs/SECURITY.md` quotes) are computed
//! from those checks: an attack counts as contained only if every check of
//! its run passed, and the test asserts on the computed count.
//!
//! `figures_for_the_security_notes` prints the numbers `docs/SECURITY.md`
//! quotes (run it with `--nocapture`); it asserts behaviour and generous
//! bounds, never tight timings.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Fixture, outcome, task, teammate};
use swarm_host::backend::Headless;
use swarm_host::coordinator::events::DENIAL_SAMPLES;
use swarm_host::coordinator::run::run_native;
use swarm_host::coordinator::{Loaded, Observer, Plan, RunOptions, RunReport, StartError, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_host::tasks::Status;

/// The swarm-host CLI, built as a binary of this package.
const SWARM_HOST: &str = env!("CARGO_BIN_EXE_swarm-host-under-test");

/// Tasks the well-behaved counters must finish in every hostile run.
const COUNTER_TASKS: usize = 6;

/// Escape sequences the `rogue` guest writes (see its `EVIL`); each must
/// reach neither a report nor a log line raw.
const RAW_ESCAPES: &[char] = &['\x1b', '\x07', '\r', '\u{9b}', '\u{202e}'];

// ----- fixture -------------------------------------------------------------

/// A fixture with a workspace tree, a sibling directory `outside/` holding
/// the "secret" the attacks aim at, and symlinks from the tree to it.
struct Arena {
    fx: Fixture,
}

impl Arena {
    fn new() -> Self {
        let fx = Fixture::new(&[
            ("mine.txt", "mine"),
            ("theirs.txt", "theirs"),
            ("sub/x.txt", "x"),
            ("victim.txt", "victim"),
            ("vdir/f.txt", "f"),
        ]);
        let outside = fx.dir.path().join("outside");
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("secret.txt"), "s3cret").unwrap();
        std::fs::write(outside.join("dir/f.txt"), "outside f").unwrap();
        let arena = Self { fx };
        let root = arena.fx.root();
        let abs_secret = outside.join("secret.txt");
        let links: &[(&str, &Path)] = &[
            ("link-secret", Path::new("../outside/secret.txt")),
            ("link-abs", abs_secret.as_path()),
            ("link-out", Path::new("../outside")),
            ("chain-b", Path::new("link-secret")),
            ("chain-a", Path::new("chain-b")),
            ("chain-dir", Path::new("link-out")),
            ("link-root", Path::new("/")),
            ("link-proc", Path::new("/proc/self")),
            ("sub/up", Path::new("../..")),
            ("link-in", Path::new("theirs.txt")),
        ];
        for (link, target) in links {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        arena
    }

    fn outside(&self) -> PathBuf {
        self.fx.dir.path().join("outside")
    }

    /// Every entry under the fixture dir: path, and contents or link target.
    /// Symlinks are recorded, never followed.
    fn snapshot(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        snapshot_into(self.fx.dir.path(), self.fx.dir.path(), &mut out);
        out.sort();
        out
    }

    /// The team file: the hostile teammate `bad`, two counters with
    /// [`COUNTER_TASKS`] tasks, and `extra`.
    fn team(&self, hostile: &str, extra: &str) -> PathBuf {
        let counts: String = (0..COUNTER_TASKS)
            .map(|i| {
                let owns = if i == 0 { "\nowns = [\"theirs.txt\"]" } else { "" };
                task(&format!("c{i}"), "count", &format!("owner = \"counter\"{owns}"))
            })
            .collect();
        self.fx.team(&format!("{hostile}{}{counts}{extra}", teammate("counter", swarm_tests::COUNTER, 2, "")))
    }

    /// Compiles a WAT component of `tests/wat/` to a plugin file.
    fn wat(&self, name: &str) -> String {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("wat").join(format!("{name}.wat"));
        let bytes = wat::parse_file(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        self.plugin_file(&format!("{name}.wasm"), &bytes)
    }

    /// Writes a plugin file beside the tree (not inside it).
    fn plugin_file(&self, name: &str, bytes: &[u8]) -> String {
        let dir = self.fx.dir.path().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        dir.join(name).to_str().unwrap().to_string()
    }
}

fn snapshot_into(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            out.push((rel, format!("-> {}", std::fs::read_link(&path).unwrap().display())));
        } else if meta.is_dir() {
            out.push((rel, "dir".into()));
            snapshot_into(base, &path, out);
        } else {
            out.push((rel, String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()));
        }
    }
}

/// Where the teammates of a run live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// In the test process, one store each.
    InProcess,
    /// One `swarm-host teammate` process each, over the Unix socket.
    Process,
}

impl Backend {
    const ALL: [Backend; 2] = [Backend::InProcess, Backend::Process];

    fn name(self) -> &'static str {
        match self {
            Backend::InProcess => "in-process",
            Backend::Process => "process",
        }
    }
}

/// Compiled plugins, shared by the coordinator and its teammate processes.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-cache")
}

/// Runs a plan on `backend`; `Err` if it could not start (a plugin refused).
fn try_run(plan: &Plan, observer: Option<Observer>, backend: Backend) -> Result<RunReport, StartError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let options = RunOptions { shutdown_grace: Duration::from_secs(5), observer, ..RunOptions::default() };
        let run = async {
            match backend {
                Backend::InProcess => run_in_process(plan, &Sandbox::new(), options).await,
                Backend::Process => {
                    let sandbox = Sandbox::with_cache(cache_dir());
                    run_native(plan, &sandbox, options, Headless, SWARM_HOST.into(), Some(cache_dir())).await
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), run).await.expect("the run finished within 120 s")
    })
}

fn plan_of(team: &Path) -> Plan {
    let loaded = Loaded::read(team).unwrap();
    Plan::build(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

/// A TOML basic string holding `s` exactly (NULs, backslashes and all).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ----- log capture -----------------------------------------------------------

/// Everything the host logged through `tracing` in this test binary, without
/// colours, so any escape sequence in it came from a guest.
fn captured_log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    static INIT: OnceLock<()> = OnceLock::new();
    let log = LOG.get_or_init(|| Mutex::new(Vec::new()));
    INIT.get_or_init(|| {
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(|| Capture)
            .finish()
            .try_init()
            .expect("no other subscriber in this binary");
    });
    log
}

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured_log().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ----- the runtime attacks ---------------------------------------------------

/// Which plugin a case runs.
#[derive(Clone, Copy)]
enum Guest {
    Built(&'static str),
    Wat(&'static str),
}

/// One attack run beside the counters.
struct Case {
    name: &'static str,
    /// The hostile teammate's name in the team file (its id is `<name>-1`).
    teammate: &'static str,
    guest: Guest,
    /// Extra lines of the hostile `[[teammate]]` (its limits).
    limits: &'static str,
    subject: &'static str,
    description: &'static str,
    deadline: &'static str,
    /// What the hostile task's error must contain: the limit and its value.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "infinite loop",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::LOOPER),
        limits: "",
        subject: "loop forever",
        description: "",
        deadline: "300ms",
        expect: &["deadline hit: task attack ran past task_deadline = 300ms"],
    },
    Case {
        name: "infinite loop on a fuel budget",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::LOOPER),
        limits: "limits = { fuel = 20000000 }",
        subject: "loop forever",
        description: "",
        deadline: "60s",
        expect: &["fuel limit hit", "fuel = 20000000"],
    },
    Case {
        name: "memory bomb",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::MEMHOG),
        limits: "limits = { memory_mib = 24 }",
        subject: "eat memory",
        description: "",
        deadline: "60s",
        expect: &["memory limit hit", "memory_mib = 24 MiB"],
    },
    Case {
        name: "deep recursion",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "limits = { wasm_stack_kib = 64 }",
        subject: "recurse",
        description: "",
        deadline: "60s",
        expect: &["stack limit hit: wasm stack overflow (wasm_stack_kib = 64 KiB)"],
    },
    Case {
        name: "table growth bomb",
        teammate: "bad",
        guest: Guest::Wat("tablebomb"),
        limits: "limits = { table_elements = 5000 }",
        subject: "grow tables",
        description: "",
        deadline: "60s",
        expect: &["table limit hit", "table_elements = 5000"],
    },
    Case {
        name: "panic",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "",
        subject: "panic",
        description: "",
        deadline: "60s",
        expect: &["trapped: ", "deliberate panic in task attack"],
    },
    Case {
        name: "trap",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "",
        subject: "unreachable",
        description: "",
        deadline: "60s",
        expect: &["trapped: wasm trap: wasm `unreachable` instruction executed"],
    },
    Case {
        name: "instance count bomb",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::COUNTER),
        limits: "limits = { instances = 1 }",
        subject: "count",
        description: "",
        deadline: "60s",
        expect: &["bad-1 could not start: instance limit hit:", "count too high", "(instances = 1)"],
    },
    Case {
        name: "stuck in a host call",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::COUNTER),
        limits: "",
        subject: "wait",
        description: "wait:600000",
        deadline: "300ms",
        expect: &["deadline hit: task attack ran past task_deadline = 300ms"],
    },
    Case {
        name: "mailbox flood",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { inbox_len = 8 }",
        subject: "flood",
        description: "bad-1",
        deadline: "60s",
        expect: &["sent 8 then inbox full: bad-1"],
    },
    Case {
        name: "flood of the team lead",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { inbox_len = 16 }",
        subject: "flood",
        description: "team-lead",
        deadline: "60s",
        expect: &["sent 16 then inbox full: team-lead"],
    },
    Case {
        name: "oversized message",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { message_kib = 4 }",
        subject: "oversize",
        description: "4096",
        deadline: "60s",
        expect: &["oversized send refused: too large: over the message limit of 4096 bytes"],
    },
    Case {
        name: "forged sender identity",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "",
        subject: "forge",
        description: "counter-1 c0",
        deadline: "60s",
        expect: &[
            "send: Ok(())",
            "complete c0: Err(TaskError::NotHeld(\"task `c0` is not held by `bad-1`\"))",
            "fail c0: Err(TaskError::NotHeld(\"task `c0` is not held by `bad-1`\"))",
        ],
    },
    Case {
        name: "terminal escape sequences",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "",
        subject: "ansi",
        description: "",
        deadline: "60s",
        expect: &["reason \x1b]0;pwned"],
    },
    Case {
        name: "log flood",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { log_lines_per_sec = 50 }",
        subject: "logflood",
        description: "",
        deadline: "60s",
        expect: &["log rate limit hit", "log_lines_per_sec = 50"],
    },
    Case {
        name: "spin without a task",
        teammate: "spin-idle",
        guest: Guest::Built(swarm_tests::LOOPER),
        limits: "limits = { idle_cpu = \"1s\" }",
        subject: "never claimed",
        description: "",
        deadline: "60s",
        expect: &["spin-idle-1 trapped: idle compute limit hit", "idle_cpu = 1s"],
    },
    Case {
        name: "denial flood",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { events_per_sec = 200 }",
        subject: "denyflood",
        description: "../outside/secret.txt",
        deadline: "60s",
        expect: &["event rate limit hit", "events_per_sec = 200"],
    },
    Case {
        name: "progress flood",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { events_per_sec = 200 }",
        subject: "progressflood",
        description: "",
        deadline: "60s",
        expect: &["event rate limit hit", "events_per_sec = 200"],
    },
    Case {
        name: "idle flood",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "",
        subject: "idleflood",
        description: "",
        deadline: "1s",
        expect: &["deadline hit: task attack ran past task_deadline = 1s"],
    },
    Case {
        name: "forged shutdown answers",
        teammate: "bad",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "",
        subject: "shutdownflood",
        description: "",
        deadline: "1s",
        expect: &["deadline hit: task attack ran past task_deadline = 1s"],
    },
];

/// Runs one case on `backend` and checks it: the report and how long the
/// run took if every check passed, else what failed.
fn run_case(case: &Case, backend: Backend) -> Result<(RunReport, Duration), String> {
    let arena = Arena::new();
    let plugin = match case.guest {
        Guest::Built(path) => path.to_string(),
        Guest::Wat(name) => arena.wat(name),
    };
    let attack = task(
        "attack",
        case.subject,
        &format!(
            "owner = \"{}\"\nmax_attempts = 1\ndeadline = \"{}\"\ndescription = {}",
            case.teammate,
            case.deadline,
            toml_string(case.description)
        ),
    );
    let team = arena.team(&teammate(case.teammate, &plugin, 1, case.limits), &attack);
    let plan = plan_of(&team);
    let before = arena.snapshot();
    let started = Instant::now();
    let report = try_run(&plan, None, backend).map_err(|e| format!("the run did not start: {e}"))?;
    let took = started.elapsed();
    let mut failed = Vec::new();
    if arena.snapshot() != before {
        failed.push("a file changed".to_string());
    }
    if let Err(e) = counters_done(&report) {
        failed.push(e);
    }
    let attack = outcome(&report, "attack");
    let error = attack.error.as_deref().unwrap_or_default();
    if attack.status != Status::Failed {
        failed.push(format!("the attack task is {:?}, not failed", attack.status));
    }
    for want in case.expect {
        if !error.contains(want) {
            failed.push(format!("its error {error:?} does not contain {want:?}"));
        }
    }
    if let Err(e) = case_specific(case, &report, backend) {
        failed.push(e);
    }
    if failed.is_empty() { Ok((report, took)) } else { Err(failed.join("; ")) }
}

/// The counters completed every task of theirs, each once.
fn counters_done(report: &RunReport) -> Result<(), String> {
    for i in 0..COUNTER_TASKS {
        let c = outcome(report, &format!("c{i}"));
        let by = c.teammate.as_deref().unwrap_or_default();
        let want = format!("done c{i} by {by}");
        if c.status != Status::Completed || !by.starts_with("counter-") || c.summary.as_deref() != Some(&want) {
            return Err(format!("counter task c{i} did not complete as it should: {c:?}"));
        }
    }
    Ok(())
}

/// Largest JSON report any attack may leave.
const REPORT_BOUND: usize = 1 << 20;

/// What a case checks beyond the common checks.
fn case_specific(case: &Case, report: &RunReport, backend: Backend) -> Result<(), String> {
    let json = report.to_json().len();
    if json > REPORT_BOUND {
        return Err(format!("the report is {json} bytes, over {REPORT_BOUND}"));
    }
    match case.name {
        "flood of the team lead" => {
            // The lead keeps at most inbox_len messages per teammate.
            let kept = report.messages.iter().filter(|m| m.from == "bad-1").count();
            if kept != 16 {
                return Err(format!("the team lead kept {kept} flood messages, not 16"));
            }
        }
        "forged sender identity" => {
            // The host stamps the sender; the forged body arrives as text.
            let forged: Vec<_> = report.messages.iter().filter(|m| m.body.contains("\"from\":\"counter-1\"")).collect();
            if forged.len() != 1 || forged[0].from != "bad-1" {
                return Err(format!("the forged message did not arrive as text from bad-1: {:?}", report.messages));
            }
        }
        "terminal escape sequences" => {
            let text = report.to_text(100);
            if text.chars().any(|c| c.is_control() && c != '\n') {
                return Err(format!("raw control characters in {text:?}"));
            }
            if !text.contains("\\u{1b}]0;pwned") {
                return Err(format!("the escaped reason is missing from {text}"));
            }
            // A teammate process logs to its own stderr, not through this
            // process's subscriber.
            if backend == Backend::InProcess {
                let log = String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned();
                if !log.contains("log \\u{1b}]0;pwned") {
                    return Err("the guest's log line was not captured".into());
                }
                if log.contains(RAW_ESCAPES) {
                    return Err("a raw escape reached the log".into());
                }
            }
        }
        "denial flood" => {
            // Counted, not kept: the report lists the first few.
            let listed = report.denials.iter().filter(|d| d.teammate == "bad-1").count();
            let counted = report.denial_counts.get("bad-1").copied().unwrap_or(0);
            if listed > DENIAL_SAMPLES || counted < 200 || (listed as u64) > counted {
                return Err(format!("{listed} denials listed, {counted} counted"));
            }
        }
        "forged shutdown answers" if backend == Backend::InProcess => {
            let log = String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned();
            let forged = log.matches("rejected shutdown forged").count();
            if forged > 0 {
                return Err(format!("{forged} forged shutdown answers reached the coordinator's log"));
            }
        }
        _ => {}
    }
    Ok(())
}

#[test]
fn every_runtime_attack_is_contained_on_every_backend() {
    let _ = captured_log();
    let mut tried = 0;
    let mut contained = 0;
    let mut failures = Vec::new();
    // The error of each case per backend: the same limit named on both.
    let mut errors: Vec<(&str, Backend, String)> = Vec::new();
    for backend in Backend::ALL {
        for case in CASES {
            tried += 1;
            match run_case(case, backend) {
                Ok((report, took)) => {
                    contained += 1;
                    let error = outcome(&report, "attack").error.clone().unwrap_or_default();
                    eprintln!(
                        "contained: {:<10} {:<32} in {:>7.1?}: {}",
                        backend.name(),
                        case.name,
                        took,
                        swarm_host::sanitize::line(&error)
                    );
                    errors.push((case.name, backend, error));
                }
                Err(why) => {
                    eprintln!("NOT contained: {:<10} {:<32}: {why}", backend.name(), case.name);
                    failures.push(format!("{} on {}: {why}", case.name, backend.name()));
                }
            }
        }
    }
    eprintln!("runtime attacks tried: {tried} ({} cases x {} backends), contained: {contained}", CASES.len(), 2);
    assert!(failures.is_empty(), "{} of {tried} not contained:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(contained, tried);
    assert_eq!(tried, CASES.len() * Backend::ALL.len());
    // Backend parity: each attack ends with the same words on both (the
    // teammate ids and limits are the same; durations are not part of them).
    for case in CASES {
        let texts: Vec<&String> = errors.iter().filter(|(n, _, _)| *n == case.name).map(|(_, _, e)| e).collect();
        for want in case.expect {
            assert!(texts.iter().all(|t| t.contains(want)), "{}: {texts:?}", case.name);
        }
    }
}

// ----- path escapes ------------------------------------------------------------

/// `(operation, path, expected outcome)`; `@OUT` stands for the absolute
/// path of the `outside/` directory beside the root.
const ESCAPES: &[(&str, &str, &str)] = &[
    ("read", "../outside/secret.txt", "invalid-path"),
    ("write", "../outside/secret.txt", "invalid-path"),
    ("list", "..", "invalid-path"),
    ("read", "sub/../../outside/secret.txt", "invalid-path"),
    ("write", "sub/../../outside/secret.txt", "invalid-path"),
    ("read", "./../outside/secret.txt", "invalid-path"),
    ("read", "../../../../../../../../etc/passwd", "invalid-path"),
    ("read", "@OUT/secret.txt", "invalid-path"),
    ("write", "@OUT/secret.txt", "invalid-path"),
    ("read", "/etc/passwd", "invalid-path"),
    ("list", "/", "invalid-path"),
    ("read", "//etc/passwd", "invalid-path"),
    ("read", "/proc/self/environ", "invalid-path"),
    ("read", "/proc/self/mem", "invalid-path"),
    ("read", "/proc/self/root/etc/passwd", "invalid-path"),
    ("read", "/proc/self/cwd/Cargo.toml", "invalid-path"),
    ("read", "proc/self/environ", "not-found"),
    ("read", "mine.txt\0../../outside/secret.txt", "invalid-path"),
    ("write", "mine.txt\0", "invalid-path"),
    ("read", "..\\outside\\secret.txt", "invalid-path"),
    ("read", "@LONG_PATH", "invalid-path"),
    ("write", "@LONG_NAME", "invalid-path"),
    ("read", "link-secret", "denied"),
    ("read", "link-abs", "denied"),
    ("read", "link-out/secret.txt", "denied"),
    ("list", "link-out", "denied"),
    ("read", "chain-a", "denied"),
    ("read", "chain-dir/secret.txt", "denied"),
    ("read", "link-root/etc/passwd", "denied"),
    ("read", "link-proc/environ", "denied"),
    ("list", "link-proc", "denied"),
    ("read", "sub/up/outside/secret.txt", "denied"),
    ("read", "link-in", "denied"),
    ("write", "victim.txt", "denied"),
    ("read", "victim.txt", "denied"),
    ("write", "vdir/f.txt", "denied"),
    ("write", "theirs.txt", "denied"),
    ("write", "link-secret", "denied"),
    ("write", "sub/new.txt", "denied"),
    ("write", "chain-a", "denied"),
];

/// What the path-escape run showed: attempts made, attempts refused with
/// the expected kind, and refusals reported to the coordinator.
struct Escapes {
    tried: usize,
    refused: usize,
    reported: u64,
    expected_reports: usize,
}

fn path_escapes(backend: Backend) -> Result<Escapes, String> {
    let arena = Arena::new();
    let out = arena.outside();
    let attempts: Vec<(String, String, &str)> = ESCAPES
        .iter()
        .map(|(op, path, want)| {
            let path = match *path {
                "@LONG_PATH" => "a/".repeat(2500) + "x",
                "@LONG_NAME" => "n".repeat(300),
                p => p.replace("@OUT", out.to_str().unwrap()),
            };
            (op.to_string(), path, *want)
        })
        .collect();
    let description: String = attempts.iter().map(|(op, path, _)| format!("{op} {path}\n")).collect();
    let attack = task(
        "attack",
        "escape",
        &format!(
            "owner = \"bad\"\nowns = [\"mine.txt\", \"victim.txt\", \"vdir/f.txt\"]\ndescription = {}",
            toml_string(&description)
        ),
    );
    // `root`: the symlink cases reach the file system, not only the scope.
    let team = arena.team(&format!("read = \"root\"\n{}", teammate("bad", swarm_tests::ROGUE, 1, "")), &attack);
    let plan = plan_of(&team);
    // After planning, the attack's own files become symlinks out of the
    // root: ownership checks on the path text alone would let these through.
    let root = arena.fx.root();
    std::fs::remove_file(root.join("victim.txt")).unwrap();
    std::os::unix::fs::symlink(out.join("secret.txt"), root.join("victim.txt")).unwrap();
    std::fs::remove_dir_all(root.join("vdir")).unwrap();
    std::os::unix::fs::symlink(out.join("dir"), root.join("vdir")).unwrap();
    let before = arena.snapshot();

    let report = try_run(&plan, None, backend).map_err(|e| format!("the run did not start: {e}"))?;

    if arena.snapshot() != before {
        return Err("a file changed".into());
    }
    counters_done(&report)?;
    let attack = outcome(&report, "attack");
    if attack.status != Status::Completed || attack.findings.len() != attempts.len() {
        return Err(format!("not one finding per attempt: {attack:#?}"));
    }
    let mut refused = 0;
    for (n, ((op, path, want), finding)) in attempts.iter().zip(&attack.findings).enumerate() {
        let shown = swarm_host::sanitize::line(&path.chars().take(60).collect::<String>());
        // Findings name the task's own file (a finding must name a file the
        // task could read); the line is the attempt's.
        if (finding.file.as_str(), finding.line) != ("mine.txt", Some(n as u32 + 1)) {
            return Err(format!("findings are not in attempt order at {op} {shown}"));
        }
        if finding.rule == *want && finding.rule != "allowed" {
            refused += 1;
        } else {
            eprintln!("{}: {op} {shown}: {} ({}), expected {want}", backend.name(), finding.rule, finding.message);
        }
    }
    if attack.summary.as_deref() != Some(format!("{refused} of {} attempts refused", attempts.len()).as_str()) {
        return Err(format!("the guest saw otherwise: {:?}", attack.summary));
    }
    // Each denied or invalid attempt is reported to the coordinator too.
    let expected_reports = attempts.iter().filter(|(_, _, want)| *want != "not-found").count();
    let reported = report.denial_counts.get("bad-1").copied().unwrap_or(0);
    let listed = report.denials.iter().filter(|d| d.teammate == "bad-1").count();
    if listed as u64 != reported.min(DENIAL_SAMPLES as u64) {
        return Err(format!("{listed} denials listed of {reported}"));
    }
    Ok(Escapes { tried: attempts.len(), refused, reported, expected_reports })
}

#[test]
fn every_path_escape_is_refused_on_every_backend() {
    for backend in Backend::ALL {
        let e = path_escapes(backend).unwrap_or_else(|why| panic!("{}: {why}", backend.name()));
        eprintln!(
            "{}: path escape attempts: {}, refused: {}, reported as denials: {} of {}, outside files unchanged",
            backend.name(),
            e.tried,
            e.refused,
            e.reported,
            e.expected_reports
        );
        assert_eq!(e.refused, e.tried, "{}: every attempt refused", backend.name());
        assert_eq!(e.reported, e.expected_reports as u64, "{}: every refusal reported", backend.name());
        assert!(e.tried >= 30);
    }
}

// ----- plugins that must not load --------------------------------------------

#[test]
fn unloadable_plugins_are_refused_before_anything_runs() {
    let counter = std::fs::read(swarm_tests::COUNTER).unwrap();
    let mut oversized = counter.clone();
    oversized.resize(2 << 20, 0);
    let cases: Vec<(&str, PluginSource, &str, &str)> = vec![
        ("unknown import", PluginSource::Wat("alien"), "", "swarm:teammate/network@0.1.0"),
        ("truncated component", PluginSource::Bytes(counter[..counter.len() / 2].to_vec()), "", "failed to compile"),
        ("truncated header", PluginSource::Bytes(counter[..5].to_vec()), "", "only 5 bytes long"),
        ("empty file", PluginSource::Bytes(Vec::new()), "", "only 0 bytes long"),
        ("shell script", PluginSource::Bytes(b"#!/bin/sh\necho pwned > /dev/tty\n".to_vec()), "", "no \\0asm magic"),
        ("core module", PluginSource::Bytes(wat::parse_str("(module)").unwrap()), "", "core wasm module"),
        (
            "oversized plugin",
            PluginSource::Bytes(oversized),
            "limits = { plugin_mib = 1 }",
            "over the plugin_mib limit of 1 MiB",
        ),
        (
            "slow compile",
            PluginSource::Bytes(counter.clone()),
            "limits = { compile_timeout = \"1ms\" }",
            "took longer than compile_timeout = 1ms to compile",
        ),
    ];
    // Plugins are loaded by the coordinator before any teammate starts,
    // whatever the backend: the in-process run covers both.
    let mut refused = 0;
    let mut failures = Vec::new();
    for (name, source, limits, expect) in &cases {
        let arena = Arena::new();
        let plugin = match source {
            PluginSource::Wat(wat) => arena.wat(wat),
            PluginSource::Bytes(bytes) => arena.plugin_file("bad.wasm", bytes),
        };
        let team = arena.team(&teammate("bad", &plugin, 1, limits), &task("attack", "anything", "owner = \"bad\""));
        let plan = plan_of(&team);
        let before = arena.snapshot();
        let outcome = match try_run(&plan, None, Backend::InProcess) {
            Ok(report) => Err(format!("the run started: {}", report.to_text(5))),
            Err(e) if arena.snapshot() != before => Err(format!("a file changed ({e})")),
            Err(e) if !e.to_string().contains(expect) => Err(format!("{e:?} does not contain {expect:?}")),
            Err(e) => Ok(e.to_string()),
        };
        match outcome {
            Ok(err) => {
                refused += 1;
                eprintln!(
                    "refused: {name:<20} {}",
                    swarm_host::sanitize::line(&err).chars().take(150).collect::<String>()
                );
            }
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    eprintln!("unloadable plugins tried: {}, refused: {refused}", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(refused, cases.len());
}

enum PluginSource {
    Wat(&'static str),
    Bytes(Vec<u8>),
}

// ----- floods and backend parity -------------------------------------------------

/// Tasks the counters run beside a flooder.
const FLOOD_COUNTER_TASKS: usize = 30;

/// A team of two counters with [`FLOOD_COUNTER_TASKS`] tasks beside `bad`,
/// which runs `attack` (`rogue` with `limits`, deadline `deadline`).
fn flood_team(fx: &Fixture, attack: &str, description: &str, limits: &str, deadline: &str) -> PathBuf {
    let counts: String =
        (0..FLOOD_COUNTER_TASKS).map(|i| task(&format!("c{i}"), "count", "owner = \"counter\"")).collect();
    let flood = task(
        "flood",
        attack,
        &format!(
            "owner = \"bad\"\nmax_attempts = 1\ndeadline = \"{deadline}\"\ndescription = {}",
            toml_string(description)
        ),
    );
    fx.team(&format!(
        "{}{}{flood}{counts}",
        teammate("bad", swarm_tests::ROGUE, 1, limits),
        teammate("counter", swarm_tests::COUNTER, 2, "")
    ))
}

/// A teammate refusing to stop flooding (no event rate to speak of) for
/// 4 s: the honest counters finish all their tasks while it still floods,
/// the coordinator keeps a bounded report (samples and a count, under
/// 1 MiB), and on every backend the flooder is stopped by its deadline
/// (a teammate process used to die of "no heartbeat" instead).
#[test]
fn honest_teammates_finish_while_a_teammate_floods_the_coordinator() {
    for backend in Backend::ALL {
        let fx = Fixture::new(&[]);
        let team =
            flood_team(&fx, "denyflood", "../outside/secret.txt", "limits = { events_per_sec = 4000000000 }", "4s");
        let plan = plan_of(&team);
        let started: Arc<OnceLock<Instant>> = Arc::default();
        let done_at: Arc<Mutex<Option<Duration>>> = Arc::default();
        let seen = done_at.clone();
        let observer = Observer(Arc::new(move |team: &swarm_host::team::Team| {
            let started = *started.get_or_init(Instant::now);
            let done = team
                .tasks
                .snapshot()
                .iter()
                .filter(|t| t.spec.id.starts_with('c') && t.status == Status::Completed)
                .count();
            let mut seen = seen.lock().unwrap();
            if done == FLOOD_COUNTER_TASKS && seen.is_none() {
                *seen = Some(started.elapsed());
            }
        }));
        let report = try_run(&plan, Some(observer), backend).expect("the run started");
        let name = backend.name();
        let flood = outcome(&report, "flood");
        let error = flood.error.as_deref().unwrap_or_default();
        assert!(error.contains("deadline hit: task flood ran past task_deadline = 4s"), "{name}: {error}");
        // The counters' last completion came before the flood ended.
        let flood_ended = flood.attempts[0].ended_seq.expect("the flood attempt ended");
        for i in 0..FLOOD_COUNTER_TASKS {
            let c = outcome(&report, &format!("c{i}"));
            assert_eq!(c.status, Status::Completed, "{name}: {c:#?}");
            let ended = c.attempts.last().and_then(|a| a.ended_seq).unwrap();
            assert!(ended < flood_ended, "{name}: c{i} completed after the flood ended");
        }
        let done = done_at.lock().unwrap().expect("the counters finished");
        assert!(done < Duration::from_secs(30), "{name}: the counters took {done:?}");
        let counted = report.denial_counts.get("bad-1").copied().unwrap_or(0);
        let listed = report.denials.iter().filter(|d| d.teammate == "bad-1").count();
        let json = report.to_json().len();
        eprintln!(
            "{name}: counters' {FLOOD_COUNTER_TASKS} tasks done {done:.1?} after the first event beside a denial flood; \
             {counted} denials counted, {listed} listed; report {json} bytes"
        );
        assert!(counted > 1000, "{name}: the flood was real: {counted}");
        assert_eq!(listed, DENIAL_SAMPLES, "{name}");
        assert!(json < REPORT_BOUND, "{name}: report of {json} bytes");
    }
}

/// A report of `report_kib` (the default, 4 MiB) made of control
/// characters is 24 MiB of JSON: it completes its task in a teammate
/// process as it does in-process (the frame cap is sized from the limits;
/// it was a fixed 16 MiB, and the teammate died with no limit named).
#[test]
fn a_report_that_fits_report_kib_completes_on_every_backend() {
    let size = swarm_host::sandbox::Limits::default().report_bytes() - 1024;
    for backend in Backend::ALL {
        let fx = Fixture::new(&[]);
        let team = fx.team(&format!(
            "{}{}",
            teammate("big", swarm_tests::ROGUE, 1, ""),
            task("big", "bigreport", &format!("max_attempts = 1\ndescription = \"{size}\""))
        ));
        let report = try_run(&plan_of(&team), None, backend).expect("the run started");
        let big = outcome(&report, "big");
        assert_eq!(big.status, Status::Completed, "{}: {:?}", backend.name(), big.error);
        assert_eq!(big.summary.as_ref().map(String::len), Some(size), "{}", backend.name());
    }
}

// ----- figures -----------------------------------------------------------------

/// Runs the counters' tasks alone, then beside a looping, a memory-eating
/// and a log-flooding neighbour, and prints when the counters finished;
/// also prints how far past its deadline a runaway guest was stopped.
#[test]
fn figures_for_the_security_notes() {
    const TASKS: usize = 60;
    // How long after the start of a run the counters' last task completed.
    let counters_done = |neighbours: &str, extra_tasks: &str| -> (Duration, RunReport) {
        let fx = Fixture::new(&[]);
        let counts: String =
            (0..TASKS).map(|i| task(&format!("c{i}"), "count", "owner = \"counter\"")).collect::<String>();
        let team =
            fx.team(&format!("{}{neighbours}{counts}{extra_tasks}", teammate("counter", swarm_tests::COUNTER, 2, "")));
        let plan = plan_of(&team);
        // From the first event of the run (every plugin compiled, every
        // teammate spawned) to the counters' last completion.
        let started: Arc<OnceLock<Instant>> = Arc::default();
        let done_at: Arc<Mutex<Option<Duration>>> = Arc::default();
        let seen = done_at.clone();
        let observer = Observer(Arc::new(move |team: &swarm_host::team::Team| {
            let started = *started.get_or_init(Instant::now);
            let tasks = team.tasks.snapshot();
            let counted = tasks.iter().filter(|t| t.spec.id.starts_with('c') && t.status == Status::Completed).count();
            let mut seen = seen.lock().unwrap();
            if counted == TASKS && seen.is_none() {
                *seen = Some(started.elapsed());
            }
        }));
        let report = try_run(&plan, Some(observer), Backend::InProcess).expect("the run started");
        assert_eq!(report.totals.completed, TASKS, "{}", report.to_text(5));
        let at = done_at.lock().unwrap().expect("the observer saw the counters finish");
        (at, report)
    };
    let neighbours = format!(
        "{}{}{}",
        teammate("looper", swarm_tests::LOOPER, 1, ""),
        teammate("memhog", swarm_tests::MEMHOG, 1, "limits = { memory_mib = 24 }"),
        teammate("rogue", swarm_tests::ROGUE, 1, "limits = { log_lines_per_sec = 1000 }"),
    );
    let hostile_tasks = format!(
        "{}{}{}",
        task("spin", "loop forever", "owner = \"looper\"\ndeadline = \"2s\"\nmax_attempts = 1"),
        task("hog", "eat memory", "owner = \"memhog\"\nmax_attempts = 1"),
        task("flood", "logflood", "owner = \"rogue\"\nmax_attempts = 1"),
    );
    let mut alone = Vec::new();
    let mut beside = Vec::new();
    for _ in 0..3 {
        alone.push(counters_done("", "").0);
        let (at, report) = counters_done(&neighbours, &hostile_tasks);
        for id in ["spin", "hog", "flood"] {
            assert_eq!(outcome(&report, id).status, Status::Failed, "{id}");
        }
        beside.push(at);
    }
    alone.sort();
    beside.sort();
    eprintln!(
        "counters' {TASKS} tasks done after (median of 3): alone {:.1?}, beside 3 hostile neighbours {:.1?} \
         (ratio {:.2})",
        alone[1],
        beside[1],
        beside[1].as_secs_f64() / alone[1].as_secs_f64()
    );

    // Time from a runaway's deadline to the host having stopped it.
    let mut overshoot = Vec::new();
    for _ in 0..5 {
        let fx = Fixture::new(&[]);
        let team = fx.team(&format!(
            "{}{}",
            teammate("looper", swarm_tests::LOOPER, 1, ""),
            task("spin", "loop forever", "deadline = \"200ms\"\nmax_attempts = 1"),
        ));
        let report = try_run(&plan_of(&team), None, Backend::InProcess).expect("the run started");
        let spin = outcome(&report, "spin");
        assert!(spin.error.as_deref().unwrap_or_default().contains("deadline hit"), "{spin:#?}");
        let ran = spin.attempts[0].duration.expect("the attempt ended");
        overshoot.push(ran.saturating_sub(Duration::from_millis(200)));
    }
    overshoot.sort();
    eprintln!(
        "runaway stopped after its 200ms deadline by: min {:.1?}, median {:.1?}, max {:.1?} (5 runs)",
        overshoot[0], overshoot[2], overshoot[4]
    );

    // What a denial flood costs the coordinator: a `swarm-host run` child's
    // peak resident memory and report, beside the same team without it.
    for backend in Backend::ALL {
        let quiet = Fixture::new(&[]);
        let counts: String =
            (0..FLOOD_COUNTER_TASKS).map(|i| task(&format!("c{i}"), "count", "owner = \"counter\"")).collect();
        let team = quiet.team(&format!("{}{counts}", teammate("counter", swarm_tests::COUNTER, 2, "")));
        let (base_rss, base_report, _) = cli_run(&team, backend);
        let fx = Fixture::new(&[]);
        let team =
            flood_team(&fx, "denyflood", "../outside/secret.txt", "limits = { events_per_sec = 4000000000 }", "5s");
        let (rss, report, took) = cli_run(&team, backend);
        let grew = rss.saturating_sub(base_rss);
        eprintln!(
            "{}: a 5 s denial flood: coordinator peak RSS {} MiB (without it {} MiB, +{} MiB), report {report} bytes \
             (without it {base_report}), run {took:.1?}",
            backend.name(),
            rss / 1024,
            base_rss / 1024,
            grew / 1024
        );
        assert!(report < REPORT_BOUND, "{}: report of {report} bytes", backend.name());
        // It grew by 27 (in-process) and 40 MiB (process) before the
        // coordinator counted instead of keeping every denial.
        assert!(grew < 16 * 1024, "{}: the flood grew the coordinator by {grew} KiB", backend.name());
    }
    let _ = std::io::stderr().flush();
}

/// Runs `swarm-host run --json` on `team` as a child on `backend`: its peak
/// resident memory in KiB, the size of its JSON report, and its duration.
fn cli_run(team: &Path, backend: Backend) -> (u64, usize, Duration) {
    let dir = team.parent().unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(SWARM_HOST)
        .args(["run", "--fresh", "--json", "--backend", backend.name()])
        .arg(team)
        .env("SWARM_TEST_PEAK_RSS", "1")
        .env("SWARM_STATE_DIR", dir.join("state"))
        .env("XDG_CACHE_HOME", cache_dir())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The coordinator's line is the last: its teammate processes (the same
    // binary) print theirs when they end, before it does.
    let rss = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("peak-rss-kib: "))
        .next_back()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    (rss, out.stdout.len(), took)
}
