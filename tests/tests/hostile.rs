//! The hostile-guest suite: guests written to break out, each run in a team
//! beside well-behaved `counter` teammates that have tasks of their own.
//!
//! For every attack the suite asserts that
//! 1. the host survives (the run returns a report, or refuses to start with
//!    an error for a plugin that cannot be loaded);
//! 2. the other teammates complete all their tasks;
//! 3. the hostile task fails with an error naming the limit and its value;
//! 4. no file changed, inside the root or in the directory beside it that
//!    the hostile symlinks point at (the whole fixture is compared, file by
//!    file and link by link, before and after).
//!
//! `figures_for_the_security_notes` prints the numbers `docs/SECURITY.md`
//! quotes (run it with `--nocapture`); it asserts behaviour, never timings.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Fixture, outcome, task, teammate};
use swarm_host::coordinator::{Loaded, Observer, Plan, RunOptions, RunReport, StartError, run_in_process};
use swarm_host::sandbox::Sandbox;
use swarm_host::tasks::Status;

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

/// Runs a plan in-process; `Err` if it could not start (a plugin refused).
fn try_run(plan: &Plan, observer: Option<Observer>) -> Result<RunReport, StartError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let options = RunOptions { shutdown_grace: Duration::from_secs(5), observer, ..RunOptions::default() };
        tokio::time::timeout(Duration::from_secs(120), run_in_process(plan, &Sandbox::new(), options))
            .await
            .expect("the run finished within 120 s")
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

/// Asserts the counters completed every task of theirs, each once.
fn assert_counters_done(report: &RunReport, case: &str) {
    for i in 0..COUNTER_TASKS {
        let c = outcome(report, &format!("c{i}"));
        assert_eq!(c.status, Status::Completed, "{case}: counter task c{i}: {c:#?}");
        let by = c.teammate.as_deref().unwrap_or_default();
        assert!(by.starts_with("counter-"), "{case}: c{i} completed by {by}");
        assert_eq!(c.summary.as_deref(), Some(format!("done c{i} by {by}").as_str()), "{case}");
    }
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
        guest: Guest::Built(swarm_tests::LOOPER),
        limits: "",
        subject: "loop forever",
        description: "",
        deadline: "300ms",
        expect: &["deadline hit: task attack ran past task_deadline = 300ms"],
    },
    Case {
        name: "infinite loop on a fuel budget",
        guest: Guest::Built(swarm_tests::LOOPER),
        limits: "limits = { fuel = 20000000 }",
        subject: "loop forever",
        description: "",
        deadline: "60s",
        expect: &["fuel limit hit", "fuel = 20000000"],
    },
    Case {
        name: "memory bomb",
        guest: Guest::Built(swarm_tests::MEMHOG),
        limits: "limits = { memory_mib = 24 }",
        subject: "eat memory",
        description: "",
        deadline: "60s",
        expect: &["memory limit hit", "memory_mib = 24 MiB"],
    },
    Case {
        name: "deep recursion",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "limits = { wasm_stack_kib = 64 }",
        subject: "recurse",
        description: "",
        deadline: "60s",
        expect: &["stack limit hit: wasm stack overflow (wasm_stack_kib = 64 KiB)"],
    },
    Case {
        name: "table growth bomb",
        guest: Guest::Wat("tablebomb"),
        limits: "limits = { table_elements = 5000 }",
        subject: "grow tables",
        description: "",
        deadline: "60s",
        expect: &["table limit hit", "table_elements = 5000"],
    },
    Case {
        name: "panic",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "",
        subject: "panic",
        description: "",
        deadline: "60s",
        expect: &["trapped: ", "deliberate panic in task attack"],
    },
    Case {
        name: "trap",
        guest: Guest::Built(swarm_tests::TRAPPER),
        limits: "",
        subject: "unreachable",
        description: "",
        deadline: "60s",
        expect: &["trapped: wasm trap: wasm `unreachable` instruction executed"],
    },
    Case {
        name: "instance count bomb",
        guest: Guest::Built(swarm_tests::COUNTER),
        limits: "limits = { instances = 1 }",
        subject: "count",
        description: "",
        deadline: "60s",
        expect: &["bad-1 could not start: instance limit hit:", "count too high", "(instances = 1)"],
    },
    Case {
        name: "stuck in a host call",
        guest: Guest::Built(swarm_tests::COUNTER),
        limits: "",
        subject: "wait",
        description: "wait:600000",
        deadline: "300ms",
        expect: &["deadline hit: task attack ran past task_deadline = 300ms"],
    },
    Case {
        name: "mailbox flood",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { inbox_len = 8 }",
        subject: "flood",
        description: "bad-1",
        deadline: "60s",
        expect: &["sent 8 then inbox full: bad-1"],
    },
    Case {
        name: "flood of the team lead",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { inbox_len = 16 }",
        subject: "flood",
        description: "team-lead",
        deadline: "60s",
        expect: &["sent 16 then inbox full: team-lead"],
    },
    Case {
        name: "oversized message",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { message_kib = 4 }",
        subject: "oversize",
        description: "4096",
        deadline: "60s",
        expect: &["oversized send refused: too large: over the message limit of 4096 bytes"],
    },
    Case {
        name: "forged sender identity",
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
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "",
        subject: "ansi",
        description: "",
        deadline: "60s",
        expect: &["reason \x1b]0;pwned"],
    },
    Case {
        name: "log flood",
        guest: Guest::Built(swarm_tests::ROGUE),
        limits: "limits = { log_lines_per_sec = 50 }",
        subject: "logflood",
        description: "",
        deadline: "60s",
        expect: &["log rate limit hit", "log_lines_per_sec = 50"],
    },
];

fn run_case(case: &Case) -> (RunReport, Duration) {
    let arena = Arena::new();
    let plugin = match case.guest {
        Guest::Built(path) => path.to_string(),
        Guest::Wat(name) => arena.wat(name),
    };
    let attack = task(
        "attack",
        case.subject,
        &format!(
            "owner = \"bad\"\nmax_attempts = 1\ndeadline = \"{}\"\ndescription = {}",
            case.deadline,
            toml_string(case.description)
        ),
    );
    let team = arena.team(&teammate("bad", &plugin, 1, case.limits), &attack);
    let plan = plan_of(&team);
    let before = arena.snapshot();
    let started = Instant::now();
    let report = try_run(&plan, None).unwrap_or_else(|e| panic!("{}: the run did not start: {e}", case.name));
    let took = started.elapsed();
    assert_eq!(arena.snapshot(), before, "{}: a file changed", case.name);
    assert_counters_done(&report, case.name);
    let attack = outcome(&report, "attack");
    assert_eq!(attack.status, Status::Failed, "{}: {attack:#?}", case.name);
    let error = attack.error.as_deref().unwrap_or_default();
    for want in case.expect {
        assert!(error.contains(want), "{}: error {error:?} does not contain {want:?}", case.name);
    }
    (report, took)
}

#[test]
fn every_runtime_attack_is_contained() {
    let _ = captured_log();
    let mut contained = 0;
    for case in CASES {
        let (report, took) = run_case(case);
        contained += 1;
        let error = outcome(&report, "attack").error.clone().unwrap_or_default();
        eprintln!("contained: {:<32} in {:>7.1?}: {}", case.name, took, swarm_host::sanitize::line(&error));

        match case.name {
            "flood of the team lead" => {
                // The lead keeps at most inbox_len messages per teammate.
                let kept = report.messages.iter().filter(|m| m.from == "bad-1").count();
                assert_eq!(kept, 16, "the team lead kept {kept} flood messages");
            }
            "forged sender identity" => {
                // The host stamps the sender; the forged body arrives as text.
                let forged: Vec<_> =
                    report.messages.iter().filter(|m| m.body.contains("\"from\":\"counter-1\"")).collect();
                assert_eq!(forged.len(), 1, "{:#?}", report.messages);
                assert_eq!(forged[0].from, "bad-1");
            }
            "terminal escape sequences" => {
                let text = report.to_text(100);
                assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "raw control characters in {text:?}");
                assert!(text.contains("\\u{1b}]0;pwned"), "{text}");
                let log = String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned();
                assert!(log.contains("log \\u{1b}]0;pwned"), "the guest's log line was not captured");
                assert!(!log.contains(RAW_ESCAPES), "a raw escape reached the log");
            }
            _ => {}
        }
    }
    eprintln!("runtime attacks tried: {}, contained: {contained}", CASES.len());
    assert_eq!(contained, CASES.len());
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

#[test]
fn every_path_escape_is_refused() {
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

    let report = try_run(&plan, None).expect("the run started");

    assert_eq!(arena.snapshot(), before, "a file changed");
    assert_counters_done(&report, "path escapes");
    let attack = outcome(&report, "attack");
    assert_eq!(attack.status, Status::Completed, "{attack:#?}");
    assert_eq!(attack.findings.len(), attempts.len(), "one finding per attempt: {:#?}", attack.findings);
    let mut refusals = 0;
    for (n, ((op, path, want), finding)) in attempts.iter().zip(&attack.findings).enumerate() {
        let shown = swarm_host::sanitize::line(&path.chars().take(60).collect::<String>());
        // Findings name the task's own file (a finding must name a file the
        // task could read); the line is the attempt's.
        assert_eq!((finding.file.as_str(), finding.line), ("mine.txt", Some(n as u32 + 1)), "attempt order");
        assert_eq!(finding.rule, *want, "{op} {shown}: {}", finding.message);
        assert_ne!(finding.rule, "allowed", "{op} {shown} was allowed");
        refusals += 1;
    }
    assert_eq!(attack.summary.as_deref(), Some(format!("{refusals} of {refusals} attempts refused").as_str()));
    // Each denied or invalid attempt is reported to the coordinator too.
    let reported = attempts.iter().filter(|(_, _, want)| *want != "not-found").count();
    let denials = report.denials.iter().filter(|d| d.teammate == "bad-1").count();
    assert_eq!(denials, reported, "{:#?}", report.denials);
    eprintln!("path escape attempts: {}, refused: {refusals}, outside files unchanged", attempts.len());
    assert!(attempts.len() >= 30);
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
    for (name, source, limits, expect) in &cases {
        let arena = Arena::new();
        let plugin = match source {
            PluginSource::Wat(wat) => arena.wat(wat),
            PluginSource::Bytes(bytes) => arena.plugin_file("bad.wasm", bytes),
        };
        let team = arena.team(&teammate("bad", &plugin, 1, limits), &task("attack", "anything", "owner = \"bad\""));
        let plan = plan_of(&team);
        let before = arena.snapshot();
        let err = match try_run(&plan, None) {
            Ok(report) => panic!("{name}: the run started: {}", report.to_text(5)),
            Err(e) => e.to_string(),
        };
        assert_eq!(arena.snapshot(), before, "{name}: a file changed");
        assert!(err.contains(expect), "{name}: {err:?} does not contain {expect:?}");
        eprintln!("refused: {name:<20} {}", swarm_host::sanitize::line(&err).chars().take(150).collect::<String>());
    }
}

enum PluginSource {
    Wat(&'static str),
    Bytes(Vec<u8>),
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
        let report = try_run(&plan, Some(observer)).expect("the run started");
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
        let report = try_run(&plan_of(&team), None).expect("the run started");
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
    let _ = std::io::stderr().flush();
}
