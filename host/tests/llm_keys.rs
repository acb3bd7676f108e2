//! The zero-hit key test: a team whose model alias has a known fake key
//! (served by a loopback OpenAI-compatible provider in this test) runs on
//! the in-process, process and tmux backends. While each teammate waits for
//! its model answer, the provider reads `/proc/<pid>/environ` and the command
//! line of every teammate process and the scrollback of every tmux pane;
//! after the run, every output, log file, state file, cassette and report
//! format is searched. The key must be found nowhere, and the provider must
//! have received it (so the search is not vacuous). The search itself is
//! shown to find a planted copy of the key in a file and in a process's
//! environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const KEY: &str = "sk-swarm-ZERO-HIT-4f1c9e27b3a8d6";
const KEY_VAR: &str = "SWARM_TEST_FAKE_MODEL_KEY";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir` whose bytes contain the key.
fn files_with_key(dir: &Path) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && std::fs::read(&path).is_ok_and(|b| contains(&b, KEY.as_bytes())) {
                hits.push(path);
            }
        }
    }
    hits
}

/// `/proc/<pid>/environ` and `cmdline` of `pid`: where the key was found.
fn process_hits(pid: u32) -> Vec<String> {
    ["environ", "cmdline"]
        .into_iter()
        .filter(|f| std::fs::read(format!("/proc/{pid}/{f}")).is_ok_and(|b| contains(&b, KEY.as_bytes())))
        .map(|f| format!("/proc/{pid}/{f}"))
        .collect()
}

/// Pids of running `swarm-host teammate` processes.
fn teammate_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"swarm-host")) && args.iter().any(|a| *a == b"teammate") {
            pids.push(pid);
        }
    }
    pids
}

/// What the provider saw while the teammates waited on it.
#[derive(Default)]
struct Seen {
    /// Requests that carried `Authorization: Bearer <key>`.
    keyed_requests: usize,
    /// Teammate processes whose environment and command line were read.
    processes_checked: usize,
    /// tmux panes whose scrollback was read.
    panes_checked: usize,
    /// Where the key was found.
    hits: Vec<String>,
}

/// A loopback OpenAI-compatible provider. Before answering a request it
/// checks every teammate process and (if `tmux` is set) every pane.
fn provider(tmux: Option<PathBuf>) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0usize;
            let mut keyed = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") && line.trim_end().ends_with(&format!("Bearer {KEY}")) {
                    keyed = true;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            {
                let mut s = shared.lock().unwrap();
                s.keyed_requests += usize::from(keyed);
                for pid in teammate_pids() {
                    s.processes_checked += 1;
                    s.hits.extend(process_hits(pid));
                }
                if let Some(socket) = &tmux {
                    let panes = Command::new("tmux")
                        .arg("-S")
                        .arg(socket)
                        .args(["list-panes", "-a", "-F", "#{pane_id}"])
                        .output()
                        .unwrap();
                    for pane in String::from_utf8_lossy(&panes.stdout).lines() {
                        let text = Command::new("tmux")
                            .arg("-S")
                            .arg(socket)
                            .args(["capture-pane", "-p", "-S", "-", "-t", pane])
                            .output()
                            .unwrap();
                        s.panes_checked += 1;
                        if contains(&text.stdout, KEY.as_bytes()) {
                            s.hits.push(format!("tmux pane {pane}"));
                        }
                    }
                }
            }
            let answer = r#"{"id":"chatcmpl-1","model":"fake-model","choices":[{"index":0,"message":{"role":"assistant","content":"hi from the fake"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (port, seen)
}

fn team(port: u16) -> tempfile::TempDir {
    let body = format!(
        "[models.fake]\nprovider = \"openai\"\nmodel = \"fake-model\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         key_env = \"{KEY_VAR}\"\n\
         [[teammate]]\nname = \"caller\"\nplugin = {:?}\ninstances = 2\nmodels = [\"fake\"]\n\
         [[task]]\nid = \"a\"\nsubject = \"ask hello\"\n[[task]]\nid = \"b\"\nsubject = \"ask again\"\n",
        swarm_tests::LLM_CALLER
    );
    swarm_tests::team_dir("keys", &[("a.txt", "x\n")], &body)
}

fn run(dir: &Path, backend: &str, format: &str, env: &[(&str, &str)]) -> Output {
    let team = dir.join("team.toml");
    let cassettes = dir.join("cassettes");
    let out = Command::new(env!("CARGO_BIN_EXE_swarm-host"))
        .args(["run", "--fresh", "--backend", backend, "--format", format, "--llm-record"])
        .arg(&cassettes)
        .arg(&team)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "debug")
        .env("SWARM_STATE_DIR", dir.join("state"))
        .env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"))
        .env(KEY_VAR, KEY)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{backend}/{format}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the team on `backend` in every report format and checks everything.
fn zero_hits(backend: &str, formats: &[&str], tmux: Option<&swarm_tests::tmux::TmuxServer>) {
    let (port, seen) = provider(tmux.map(|t| t.socket.clone()));
    let dir = team(port);
    let env: Vec<(String, String)> = match tmux {
        Some(t) => vec![("TMUX".into(), t.env_tmux()), ("TMUX_PANE".into(), t.anchor())],
        None => vec![],
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for format in formats {
        let out = run(dir.path(), backend, format, &env);
        assert!(!contains(&out.stdout, KEY.as_bytes()), "{backend}/{format}: the key is in the report on stdout");
        assert!(!contains(&out.stderr, KEY.as_bytes()), "{backend}/{format}: the key is on stderr");
        // The report really is there (a run that printed nothing would pass
        // the search); SARIF has no summaries, only the usage.
        let shown = if *format == "sarif" { "llmUsage" } else { "hi from the fake" };
        assert!(String::from_utf8_lossy(&out.stdout).contains(shown), "{backend}/{format}");
    }
    assert!(
        dir.path().join("cassettes/caller-1.jsonl").is_file() || dir.path().join("cassettes/caller-2.jsonl").is_file()
    );
    assert!(dir.path().join("state").is_dir());
    let files = files_with_key(dir.path());
    assert!(files.is_empty(), "{backend}: the key is in {files:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.keyed_requests, 2 * formats.len(), "{backend}: the provider got the key on every call");
    assert!(seen.hits.is_empty(), "{backend}: the key is in {:?}", seen.hits);
    if backend != "in-process" {
        assert!(seen.processes_checked >= 1, "{backend}: no teammate process was checked");
    }
    if tmux.is_some() {
        assert!(seen.panes_checked >= 2, "{backend}: no teammate pane was checked");
    }
}

#[test]
fn the_search_finds_a_planted_key_in_a_file_and_in_a_process_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state/logs")).unwrap();
    std::fs::write(dir.path().join("state/logs/x.log"), format!("line\nkey={KEY}\n")).unwrap();
    assert_eq!(files_with_key(dir.path()), vec![dir.path().join("state/logs/x.log")]);
    let mut child = Command::new("sleep").arg("30").env("PLANTED", KEY).spawn().unwrap();
    // Until the child's exec has set up its new environment, /proc shows
    // this process's (or none): wait for the variable's name to appear.
    let environ = format!("/proc/{}/environ", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read(&environ).is_ok_and(|b| contains(&b, b"PLANTED=")) {
        assert!(std::time::Instant::now() < deadline, "the child's environment was not set up within 10 s");
        std::thread::yield_now();
    }
    let hits = process_hits(child.id());
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(hits, vec![format!("/proc/{}/environ", child.id())]);
}

#[test]
fn no_key_in_any_output_log_state_cassette_or_report_in_process() {
    zero_hits("in-process", &["text", "json", "sarif"], None);
}

#[test]
fn no_key_in_a_teammate_process_environment_or_anything_it_leaves() {
    zero_hits("process", &["json"], None);
}

#[test]
fn no_key_in_a_tmux_pane_its_process_or_anything_it_leaves() {
    if !swarm_tests::tmux::installed() {
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    // The key is in the tmux server's environment too, as it is when the
    // user exported it before starting tmux: new panes inherit it.
    let server = swarm_tests::tmux::TmuxServer::start_with_env(&[(KEY_VAR, KEY)]);
    assert!(server.tmux(&["show-environment", "-g", KEY_VAR]).contains(KEY), "the server holds the key");
    zero_hits("tmux", &["json"], Some(&server));
}
