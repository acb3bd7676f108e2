//! Steering a running team, end to end through `swarm-host` (issue 16):
//! the lead's changes while the team runs (a task added and run; a change
//! that breaks disjoint ownership refused, the reason answered), ownership
//! requests under each policy, and people reaching a running team from
//! another process (`send`, `stop`, `attach`, `pending`, `answer`) through
//! its control socket, which refuses a wrong token and says when no team
//! runs. The model is the scripted provider; nothing reaches the internet.
//! Every wait is on a line or an exit, with a timeout.

mod cli_run;
mod lead_script;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_run::{command, swarm_host, text};
use lead_script::{step, submit};
use serde_json::Value;
use swarm_tests::report_task as task;

/// Longest wait for a line or an exit (plugins compile on first use).
const WAIT: Duration = Duration::from_secs(180);

/// The lead's closing text.
fn synthesis() -> String {
    step("Every task's outcome", r#"{"type": "text", "text": "done"}"#, "end_turn")
}

/// A team directory with `a.txt`, `b.txt` and `free.txt` in its tree,
/// `body` after the name and root, and the lead's `steps` as its script.
fn team(body: &str, steps: &[String]) -> tempfile::TempDir {
    let files = [("a.txt", "a\n"), ("b.txt", "b\n"), ("free.txt", "free\n")];
    let dir = swarm_tests::team_dir("steer", &files, body);
    std::fs::write(dir.path().join("script.json"), format!("{{\"steps\": [{}]}}", steps.join(",\n"))).unwrap();
    dir
}

/// A goal-driven team of `writer` teammates whose lead answers from the
/// scripted model.
fn lead_team(steps: &[String], extra: &str) -> tempfile::TempDir {
    let body = format!(
        "goal = \"steer the team\"\n{extra}\n\
         [models.s]\nprovider = \"scripted\"\nmodel = \"m\"\nscript = \"script.json\"\n\
         [[teammate]]\nname = \"writer\"\nplugin = {:?}\n\
         [planner]\nplugin = {:?}\nmodels = [\"s\"]\n",
        swarm_tests::WRITER,
        swarm_tests::LEAD,
    );
    team(&body, steps)
}

/// A team of `writer` teammates in the `groups` given, with `tasks`
/// (TOML) and `extra` settings; no lead.
fn writers(groups: &[&str], tasks: &str, extra: &str) -> tempfile::TempDir {
    let mut body = format!("{extra}\n");
    for g in groups {
        body.push_str(&format!("[[teammate]]\nname = \"{g}\"\nplugin = {:?}\n", swarm_tests::WRITER));
    }
    body.push_str(tasks);
    team(&body, &[])
}

/// The JSON report of a finished `swarm-host run --json`.
fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Runs the team of `dir` to its end.
fn run(dir: &Path) -> (Output, Value) {
    let team_file = dir.join("team.toml");
    let out = swarm_host(dir, &["run", "--json", "--backend", "in-process", team_file.to_str().unwrap()]);
    let r = report(&out);
    (out, r)
}

/// A team run in the background, and a follower of its events
/// (`swarm-host attach` in another process).
struct Running {
    dir: PathBuf,
    run: Option<Child>,
    attach: Option<Child>,
    /// What a person types into `attach`.
    typed: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `swarm-host run` on the team of `dir`, waits for its control
    /// socket's pointer, and attaches.
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// [`Running::start`] with `args` added to `run`'s.
    fn start_with(dir: &Path, args: &[&str]) -> Self {
        let team_file = dir.join("team.toml");
        let run = command(dir)
            .args(["run", "--json", "--backend", "in-process"])
            .args(args)
            .arg(&team_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut r = Running {
            dir: dir.to_path_buf(),
            run: Some(run),
            attach: None,
            typed: None,
            lines: mpsc::channel().1,
            seen: vec![],
        };
        let pointer = dir.join("state/steer/control.json");
        let started = Instant::now();
        while !pointer.exists() {
            if let Some(status) = r.run.as_mut().unwrap().try_wait().unwrap() {
                let out = r.run.take().unwrap().wait_with_output().unwrap();
                panic!("the run ended ({status}) before its control socket was up: {}", text(&out.stderr));
            }
            assert!(started.elapsed() < WAIT, "no control socket pointer at {} after {WAIT:?}", pointer.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut attach =
            command(dir).args(["attach", "steer"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        r.typed = attach.stdin.take();
        let (tx, rx) = mpsc::channel();
        let stdout = attach.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        r.attach = Some(attach);
        r.lines = rx;
        r
    }

    /// Waits for an attach line containing `want`; returns it.
    fn line(&mut self, want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(want)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(e) => panic!("no attach line with {want:?} ({e}); lines so far: {:#?}", self.seen),
            }
        }
    }

    /// `swarm-host ARGS` from another process, against this team.
    fn cli(&self, args: &[&str]) -> Output {
        swarm_host(&self.dir, args)
    }

    /// Waits for the run to end; its output and report.
    fn finish(mut self) -> (Output, Value) {
        let mut run = self.run.take().unwrap();
        let started = Instant::now();
        while run.try_wait().unwrap().is_none() {
            if started.elapsed() > WAIT {
                let _ = run.kill();
                panic!("the run did not end within {WAIT:?}; attach lines: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = run.wait_with_output().unwrap();
        let r = report(&out);
        (out, r)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in [self.run.as_mut(), self.attach.as_mut()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_task_the_lead_adds_while_the_team_runs_runs_and_is_reported_completed_with_its_diff() {
    // `ask` asks the lead for more work; the lead adds `more` (writes
    // b.txt, which no task owns) and answers.
    let plan = r#"[{"id": "ask", "subject": "ask for more", "instructions": "ask:please add b.txt", "owns": [], "owner": "writer"}]"#;
    let add = r#"{"type": "tool_call", "id": "t1", "name": "add_task", "input": {"id": "more", "subject": "write b", "instructions": "write:b.txt", "owns": ["b.txt"], "owner": "writer"}}"#;
    let answer = r#"{"type": "tool_call", "id": "t2", "name": "answer", "input": {"text": "added more"}}"#;
    let steps = [
        step("Goal:", &submit("c1", plan), "tool_use"),
        step("Message from teammate writer-1:\nplease add b.txt", &format!("{add}, {answer}"), "tool_use"),
        synthesis(),
    ];
    let dir = lead_team(&steps, "");
    let (out, r) = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{r:#}\n{}", text(&out.stderr));
    assert_eq!(task(&r, "ask")["summary"], "team-lead: added more", "{r:#}");
    let more = task(&r, "more");
    assert_eq!(more["status"], "completed", "{r:#}");
    assert_eq!(more["summary"], "wrote b.txt", "{r:#}");
    // The added task's change is in the report, under it.
    let diffs: Vec<&str> = more["diffs"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(diffs, ["b.txt"], "{r:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("tree/b.txt")).unwrap(), "written by writer-1");
    assert_eq!(r["lead_changes"], serde_json::json!(["applied: add task `more`"]), "{r:#}");
    // Planning, the message and the synthesis: three calls of the lead.
    assert_eq!(r["lead_usage"]["calls"], 3, "{r:#}");
}

#[test]
fn a_lead_change_that_breaks_disjoint_ownership_is_refused_and_the_reason_goes_to_the_sender() {
    // `hold` (not started: it waits for `ask`) owns a.txt; the lead tries
    // to add a task that owns a.txt too.
    let plan = r#"[{"id": "ask", "subject": "ask", "instructions": "ask:take a.txt", "owns": [], "owner": "writer"},
                   {"id": "hold", "subject": "hold a", "instructions": "write:a.txt", "owns": ["a.txt"], "owner": "writer", "blocked_by": ["ask"]}]"#;
    let add = r#"{"type": "tool_call", "id": "t1", "name": "add_task", "input": {"id": "steal", "subject": "steal a", "instructions": "write:a.txt", "owns": ["a.txt"], "owner": "writer"}}"#;
    let steps = [
        step("Goal:", &submit("c1", plan), "tool_use"),
        step("Message from teammate writer-1:\ntake a.txt", add, "tool_use"),
        synthesis(),
    ];
    let dir = lead_team(&steps, "");
    let (out, r) = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{r:#}\n{}", text(&out.stderr));
    let overlap = "tasks `hold` and `steal` both own 1 file(s): a.txt";
    // The sender got the refusal with the reason.
    let summary = task(&r, "ask")["summary"].as_str().unwrap();
    assert!(summary.starts_with("team-lead: The lead's change was refused (add task `steal`)"), "{r:#}");
    assert!(summary.contains(overlap), "{r:#}");
    // The report lists the refused change, and no task `steal`.
    let changes = r["lead_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{r:#}");
    let change = changes[0].as_str().unwrap();
    assert!(change.starts_with("refused: add task `steal`: ") && change.contains(overlap), "{r:#}");
    assert!(r["tasks"].as_array().unwrap().iter().all(|t| t["id"] != "steal"), "{r:#}");
    assert_eq!(task(&r, "hold")["summary"], "wrote a.txt", "{r:#}");
}

/// One `writer` task `take` that asks for free.txt, under `policy`.
fn requester(policy: &str) -> tempfile::TempDir {
    let tasks = "[[task]]\nid = \"take\"\nsubject = \"take free.txt\"\ndescription = \"request:free.txt\"\nowns = [\"a.txt\"]\nmax_attempts = 1\n";
    writers(&["writer"], tasks, policy)
}

#[test]
fn under_grant_unowned_a_file_no_task_owns_moves_to_the_requesters_task_and_is_recorded() {
    let dir = requester("ownership_requests = \"grant-unowned\"");
    let (out, r) = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{r:#}\n{}", text(&out.stderr));
    let take = task(&r, "take");
    assert_eq!(take["summary"], "granted and wrote free.txt", "{r:#}");
    // The task owns it now: two files, and the change is its.
    assert_eq!(take["owned_files"], 2, "{r:#}");
    assert_eq!(take["diffs"][0]["path"], "free.txt", "{r:#}");
    let req = &r["file_requests"][0];
    assert_eq!(
        (&req["id"], &req["teammate"], &req["task"], &req["path"]),
        (&"r1".into(), &"writer-1".into(), &"take".into(), &"free.txt".into()),
        "{r:#}"
    );
    assert_eq!(req["granted"], true, "{r:#}");
    assert!(req["decided_by"].as_str().unwrap().contains("grant-unowned"), "{r:#}");
}

#[test]
fn under_deny_a_request_is_refused_naming_the_setting_and_nothing_is_written() {
    let dir = requester("ownership_requests = \"deny\"");
    let (out, r) = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "the task failed: {r:#}\n{}", text(&out.stderr));
    let error = task(&r, "take")["error"].as_str().unwrap();
    assert!(error.contains("request free.txt: denied: the team file's ownership_requests = \"deny\""), "{r:#}");
    assert_eq!(r["file_requests"][0]["granted"], false, "{r:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("tree/free.txt")).unwrap(), "free\n");
}

#[test]
fn under_grant_unowned_a_file_a_running_task_owns_is_denied_and_send_reaches_teammates_from_another_process() {
    // `hold` (waiter-1) owns b.txt and waits for a message; `take`
    // (taker-1) waits for a message, then asks for b.txt.
    let tasks = "[[task]]\nid = \"hold\"\nsubject = \"hold b\"\ndescription = \"ask:holding b.txt\"\nowns = [\"b.txt\"]\nowner = \"waiter\"\n\
                 [[task]]\nid = \"take\"\nsubject = \"take b\"\ndescription = \"wait:request:b.txt\"\nowner = \"taker\"\nmax_attempts = 1\n";
    let dir = writers(&["waiter", "taker"], tasks, "ownership_requests = \"grant-unowned\"");
    let mut team = Running::start(dir.path());
    // `hold` runs: its teammate told the lead.
    team.line("waiter-1 to team-lead: holding b.txt");
    let sent = team.cli(&["send", "steer", "taker-1", "go"]);
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    assert_eq!(text(&sent.stdout).trim(), "sent to taker-1");
    let decided = team.line("request r1: b.txt to taker-1 (task take) denied");
    assert!(decided.contains("task `hold`, a running task"), "{decided}");
    // An unknown teammate is named, with who is there.
    let nobody = team.cli(&["send", "steer", "nobody-1", "hi"]);
    assert_eq!(nobody.status.code(), Some(2));
    assert!(text(&nobody.stderr).contains("no teammate `nobody-1` on team `steer`"), "{}", text(&nobody.stderr));
    let sent = team.cli(&["send", "steer", "waiter-1", "you may finish"]);
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let (_, r) = team.finish();
    assert_eq!(task(&r, "hold")["summary"], "team-lead: you may finish", "{r:#}");
    assert!(
        task(&r, "take")["error"].as_str().unwrap().contains("`b.txt` is owned by task `hold`, a running task"),
        "{r:#}"
    );
    assert_eq!(r["file_requests"][0]["granted"], false, "{r:#}");
    assert_eq!(std::fs::read_to_string(dir.path().join("tree/b.txt")).unwrap(), "b\n");
}

#[test]
fn under_ask_a_person_grants_a_request_from_another_process_with_answer() {
    let dir = requester("ownership_requests = \"ask\"\nask_timeout = \"10m\"");
    let mut team = Running::start(dir.path());
    let asked = team.line("ask r1: writer-1 (task take) asks for free.txt");
    assert!(asked.contains("swarm-host answer steer r1 grant|deny"), "{asked}");
    let pending = team.cli(&["pending", "steer"]);
    assert_eq!(pending.status.code(), Some(0), "{}", text(&pending.stderr));
    assert!(
        text(&pending.stdout).contains("ask r1: writer-1 (task take) asks for free.txt"),
        "{}",
        text(&pending.stdout)
    );
    let wrong = team.cli(&["answer", "steer", "r9", "grant"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("no request `r9` is waiting for an answer (r1)"), "{}", text(&wrong.stderr));
    let answered = team.cli(&["answer", "steer", "r1", "grant"]);
    assert_eq!(answered.status.code(), Some(0), "{}", text(&answered.stderr));
    assert_eq!(text(&answered.stdout).trim(), "granted r1");
    granted_by_a_person(team);
}

/// Lets the run of `team` end and checks that its request `r1` was granted
/// by a person and the task wrote the file.
fn granted_by_a_person(team: Running) {
    let (out, r) = team.finish();
    assert_eq!(out.status.code(), Some(0), "{r:#}\n{}", text(&out.stderr));
    assert_eq!(task(&r, "take")["summary"], "granted and wrote free.txt", "{r:#}");
    assert_eq!(r["file_requests"][0]["granted"], true, "{r:#}");
    assert_eq!(r["file_requests"][0]["decided_by"], "a person", "{r:#}");
}

#[test]
fn under_ask_a_person_attached_answers_by_typing_grant_after_a_refused_answer() {
    let dir = requester("ownership_requests = \"ask\"\nask_timeout = \"10m\"");
    let mut team = Running::start(dir.path());
    team.line("ask r1: writer-1 (task take) asks for free.txt");
    // An answer to a request that is not waiting is refused (on attach's
    // stderr) and the next line is still read.
    let typed = team.typed.as_mut().unwrap();
    typed.write_all(b"deny r7\ngrant r1\n").unwrap();
    typed.flush().unwrap();
    team.line("granted r1");
    granted_by_a_person(team);
}

#[test]
fn under_ask_a_request_nobody_answers_is_denied_at_the_timeout() {
    let dir = requester("ownership_requests = \"ask\"\nask_timeout = \"1s\"");
    let (out, r) = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "the task failed: {r:#}\n{}", text(&out.stderr));
    let req = &r["file_requests"][0];
    assert_eq!(req["granted"], false, "{r:#}");
    assert_eq!(req["decided_by"], "the timeout: nobody answered within ask_timeout = 1s", "{r:#}");
    assert!(task(&r, "take")["error"].as_str().unwrap().contains("denied by the timeout"), "{r:#}");
}

#[test]
fn stop_from_another_process_stops_a_running_team_and_the_control_socket_refuses_a_wrong_token() {
    let tasks = "[[task]]\nid = \"wait\"\nsubject = \"wait\"\ndescription = \"ask:waiting\"\n";
    let dir = writers(&["writer"], tasks, "");
    let mut team = Running::start(dir.path());
    team.line("writer-1 to team-lead: waiting");
    // The socket's directory is private and its token file the owner's.
    let pointer: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state/steer/control.json")).unwrap()).unwrap();
    let socket_dir = PathBuf::from(pointer["dir"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&socket_dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(socket_dir.join("token")).unwrap().permissions().mode() & 0o777, 0o600);
    // A request with a wrong token is refused, and does nothing.
    let mut stream = std::os::unix::net::UnixStream::connect(socket_dir.join("sock")).unwrap();
    stream.write_all(b"{\"v\": 1, \"token\": \"not-the-token\", \"op\": \"stop\", \"teammate\": null}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply, serde_json::json!({"reply": "error", "message": "wrong token: the request was refused"}));
    let pending = team.cli(&["pending", "steer"]);
    assert_eq!(pending.status.code(), Some(0), "the team still runs: {}", text(&pending.stderr));
    let stopped = team.cli(&["stop", "steer"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped.stderr));
    assert_eq!(text(&stopped.stdout).trim(), "stopping team `steer` gracefully");
    team.line("a person stopped the team");
    let (_, r) = team.finish();
    assert_eq!(r["interrupted"], "stopped by a person (swarm-host stop)", "{r:#}");
    // The run is over: its pointer and socket directory are gone.
    assert!(!dir.path().join("state/steer/control.json").exists());
    assert!(!socket_dir.exists());
}

#[test]
fn with_no_running_team_the_control_commands_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = swarm_host(dir.path(), &["send", "steer", "writer-1", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("team `steer` has no running coordinator: no control socket pointer at"),
        "{}",
        text(&out.stderr)
    );
    // A pointer left behind by a coordinator that is gone.
    std::fs::create_dir_all(dir.path().join("state/steer")).unwrap();
    let gone = dir.path().join("gone");
    std::fs::write(
        dir.path().join("state/steer/control.json"),
        serde_json::json!({"v": 1, "dir": gone.to_str().unwrap(), "pid": 1}).to_string(),
    )
    .unwrap();
    let out = swarm_host(dir.path(), &["stop", "steer"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("team `steer` is not running"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the pointer is stale"), "{}", text(&out.stderr));
}

#[test]
fn a_persons_message_to_team_lead_from_another_process_reaches_the_lead_whose_answer_shows_in_attach() {
    let plan = r#"[{"id": "wait", "subject": "wait", "instructions": "ask:waiting", "owns": [], "owner": "writer"}]"#;
    let broadcast = r#"{"type": "tool_call", "id": "t1", "name": "broadcast", "input": {"text": "carry on"}}"#;
    let answer = r#"{"type": "tool_call", "id": "t2", "name": "answer", "input": {"text": "told them"}}"#;
    let steps = [
        step("Goal:", &submit("c1", plan), "tool_use"),
        // The teammate's own message first: nothing to do.
        step("Message from teammate writer-1:\nwaiting", r#"{"type": "text", "text": "NO-ANSWER"}"#, "end_turn"),
        step("Message from a person steering the team:\nlet them go on", &format!("{broadcast}, {answer}"), "tool_use"),
        synthesis(),
    ];
    let dir = lead_team(&steps, "");
    let mut team = Running::start(dir.path());
    // Queued for the lead before the person's message.
    team.line("writer-1 to team-lead: waiting");
    let sent = team.cli(&["send", "steer", "team-lead", "let them go on"]);
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    assert!(text(&sent.stdout).starts_with("queued for team-lead"), "{}", text(&sent.stdout));
    team.line("team-lead answers the person: told them");
    let (out, r) = team.finish();
    assert_eq!(out.status.code(), Some(0), "{r:#}\n{}", text(&out.stderr));
    assert_eq!(task(&r, "wait")["summary"], "team-lead: carry on", "{r:#}");
    let person = r["messages"].as_array().unwrap().iter().find(|m| m["from"] == "person");
    assert_eq!(person.map(|m| &m["body"]), Some(&"let them go on".into()), "{r:#}");
    assert_eq!(r["lead_usage"]["calls"], 4, "{r:#}");
}

#[test]
fn stop_of_one_teammate_from_another_process_stops_that_teammate_and_the_team_goes_on() {
    // writer-1 waits for an answer that never comes; keep-1's task is the
    // rest of the team.
    let tasks = "[[task]]\nid = \"wait\"\nsubject = \"wait\"\ndescription = \"ask:waiting\"\nowner = \"writer\"\nmax_attempts = 1\n\
                 [[task]]\nid = \"other\"\nsubject = \"other\"\ndescription = \"write:a.txt\"\nowns = [\"a.txt\"]\nowner = \"keep\"\n";
    let dir = writers(&["writer", "keep"], tasks, "");
    let mut team = Running::start_with(dir.path(), &["--shutdown-grace", "300ms"]);
    team.line("writer-1 to team-lead: waiting");
    let stopped = team.cli(&["stop", "steer", "writer-1"]);
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped.stderr));
    assert_eq!(text(&stopped.stdout).trim(), "stopping writer-1 gracefully");
    team.line("a person stopped writer-1");
    let (_, r) = team.finish();
    // Only that teammate stopped: it did not answer the shutdown request
    // in its grace, so it was killed, and its task was released as failed.
    assert!(r["interrupted"].is_null(), "{r:#}");
    let writer = r["teammates"].as_array().unwrap().iter().find(|m| m["id"] == "writer-1").unwrap();
    assert_eq!(writer["exit"], "killed: no exit within the 300ms shutdown grace period", "{r:#}");
    assert_eq!(task(&r, "wait")["status"], "failed", "{r:#}");
    assert_eq!(task(&r, "other")["summary"], "wrote a.txt", "{r:#}");
}
