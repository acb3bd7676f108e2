//! Native backends: headless processes and tmux panes (on a private tmux
//! server each test starts and kills) run the same team to the same report
//! as in-process; tmux panes follow the binary-tree layout; a killed
//! teammate process is seen dead within a second and its task requeued;
//! only holders of the run's token join the team; the shipped example team
//! (`examples/ci-audit.toml`, over this repository) gives one report on all
//! three; an idle teammate answers messages with no extra `idle` (in-process
//! and over the socket); a guest repeating `idle` or answering shutdown
//! requests it never got reaches the coordinator once at most, on both;
//! a full tmux window gets a new window instead of failing the run, and a
//! hung tmux or osascript is killed at its timeout with an error naming it;
//! a teammate process whose coordinator stops reading queues a bounded
//! number of events.
//! One test prints spawn times (run with `--nocapture` to see them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarm_host::backend::layout::{Rect, Split};
use swarm_host::backend::link::connect;
use swarm_host::backend::native::{Launcher, Pane};
use swarm_host::backend::server::{HEARTBEAT_TIMEOUT, LinkServer, SocketDir};
use swarm_host::backend::{Headless, InProcess, Native, NativeSetup, TeammateBackend, Tmux};
use swarm_host::coordinator::run::{RunOptions, run, team_of, workspace_spec};
use swarm_host::coordinator::{Loaded, Plan};
use swarm_host::mailbox::{Incoming, Mailbox, TEAM_LEAD};
use swarm_host::model::TeammateMessage;
use swarm_host::port::SharedPort;
use swarm_host::protocol::frame::{LaunchConfig, MAX_FRAME_BYTES};
use swarm_host::sandbox::{Launch, Limits, ReadScope, Sandbox, Workspace};
use swarm_host::tasks::{Status, TaskList};
use swarm_host::team::{Event, Liveness, Member, Roster, Team};
use swarm_tests::tmux::TmuxServer;

const BIN: &str = env!("CARGO_BIN_EXE_swarm-host");

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("backends-cache")
}

/// A temp dir with `tree/` holding `files` and `team.toml` = header + `body`.
fn fixture(files: &[(&str, &str)], body: &str) -> tempfile::TempDir {
    swarm_tests::team_dir("native", files, body)
}

/// The example team's shape (todo-scan over areas, two instances) on a
/// small tree, with findings in every task.
fn example_team() -> tempfile::TempDir {
    let body = format!(
        "read = \"owned\"\n[[teammate]]\nname = \"todo-scan\"\nplugin = {:?}\ninstances = 2\n\
         [[task]]\nid = \"host\"\nsubject = \"host\"\nowns = [\"host/**/*.rs\"]\n\
         [[task]]\nid = \"sdk\"\nsubject = \"sdk\"\nowns = [\"sdk/**/*.rs\"]\n\
         [[task]]\nid = \"docs\"\nsubject = \"docs\"\nowns = [\"*.md\"]\n",
        swarm_tests::TODO_SCAN
    );
    fixture(
        &[
            ("host/src/a.rs", "fn a() {}\n// TODO: tidy\n"),
            ("host/src/b.rs", "// XXX\n// FIXME later\n"),
            ("sdk/lib.rs", "// nothing here\n"),
            ("README.md", "FIXME: docs\n"),
        ],
        &body,
    )
}

fn swarm_host(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.join("state"))
        .env("XDG_CACHE_HOME", cache_dir())
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TERM_PROGRAM");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The parts of a JSON report that must not depend on the backend.
fn comparable(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let tasks: Vec<serde_json::Value> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            serde_json::json!({ "id": t["id"], "status": t["status"], "summary": t["summary"],
                                "findings": t["findings"], "error": t["error"] })
        })
        .collect();
    serde_json::json!({ "team": report["team"], "totals": report["totals"], "tasks": tasks,
                        "messages": report["messages"], "denials": report["denials"], "warnings": report["warnings"] })
}

fn backend_of(out: &Output) -> String {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["backend"].as_str().unwrap().to_string()
}

#[test]
fn headless_processes_give_the_same_report_as_in_process() {
    let dir = example_team();
    let team = dir.path().join("team.toml");
    let team = team.to_str().unwrap();
    let in_process = swarm_host(dir.path(), &["run", "--fresh", "--json", "--backend", "in-process", team], &[]);
    let headless = swarm_host(dir.path(), &["run", "--fresh", "--json", "--backend", "headless", team], &[]);
    assert_eq!(backend_of(&headless), "process");
    let expected = comparable(&in_process);
    assert_eq!(expected["totals"]["findings"], 4, "{expected:#}");
    assert_eq!(comparable(&headless), expected);
}

#[test]
fn tmux_panes_give_the_same_report_and_close_when_their_teammates_exit() {
    let server = TmuxServer::start();
    let anchor = server.anchor();
    let dir = example_team();
    let team = dir.path().join("team.toml");
    let team = team.to_str().unwrap();
    let in_process = swarm_host(dir.path(), &["run", "--fresh", "--json", "--backend", "in-process", team], &[]);
    // No --backend: detected from $TMUX.
    let tmux_env = server.env_tmux();
    let in_tmux =
        swarm_host(dir.path(), &["run", "--fresh", "--json", team], &[("TMUX", &tmux_env), ("TMUX_PANE", &anchor)]);
    assert_eq!(backend_of(&in_tmux), "tmux");
    assert_eq!(comparable(&in_tmux), comparable(&in_process));
    assert_eq!(server.panes(), vec![anchor], "every teammate pane was closed");
}

/// The shipped example team, `examples/ci-audit.toml`, as a team file in
/// `dir`: the same tasks over this repository, with the checkers this test
/// build compiled instead of `target/wasm32-wasip2/release`.
fn shipped_example_in(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(repo.join("examples/ci-audit.toml")).unwrap();
    let mut team: toml::Table = toml::from_str(&text).unwrap();
    team.insert("root".into(), repo.to_str().unwrap().into());
    for mate in team["teammate"].as_array_mut().unwrap() {
        let name = mate["name"].as_str().unwrap().to_string();
        let (_, wasm) = swarm_tests::CHECKERS.iter().find(|(n, _)| *n == name).expect("a shipped checker");
        mate.as_table_mut().unwrap().insert("plugin".into(), (*wasm).into());
    }
    let path = dir.join("ci-audit.toml");
    std::fs::write(&path, toml::to_string(&team).unwrap()).unwrap();
    path
}

#[test]
fn the_shipped_example_team_gives_one_report_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let team = shipped_example_in(dir.path());
    let team = team.to_str().unwrap();
    let run = |backend: &str, env: &[(&str, &str)]| {
        swarm_host(dir.path(), &["run", "--fresh", "--json", "--backend", backend, team], env)
    };
    let in_process = run("in-process", &[]);
    let expected = comparable(&in_process);
    assert_eq!(expected["totals"]["failed"], 0, "{expected:#}");
    assert_eq!(expected["tasks"].as_array().unwrap().len(), 5, "{expected:#}");

    let headless = run("process", &[]);
    assert_eq!(backend_of(&headless), "process");
    assert_eq!(comparable(&headless), expected, "headless processes");

    let server = TmuxServer::start();
    let anchor = server.anchor();
    let tmux_env = server.env_tmux();
    let in_tmux = run("tmux", &[("TMUX", &tmux_env), ("TMUX_PANE", &anchor)]);
    assert_eq!(backend_of(&in_tmux), "tmux");
    assert_eq!(comparable(&in_tmux), expected, "tmux panes");
    assert_eq!(server.panes(), vec![anchor], "every teammate pane was closed");
}

#[test]
fn choosing_an_unavailable_backend_is_a_clear_error() {
    let dir = example_team();
    let team = dir.path().join("team.toml");
    let out = swarm_host(dir.path(), &["run", "--backend", "tmux", team.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the tmux backend is not available: not running inside tmux"), "{stderr}");
    let out = swarm_host(dir.path(), &["run", "--backend", "iterm", team.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the iterm backend is not available"), "{stderr}");
}

fn launch(id: &str) -> Launch {
    Launch { id: id.to_string(), group: "g".into(), color: "blue".into(), limits: Limits::default() }
}

fn find(geometry: &[(String, Rect)], id: &str) -> Rect {
    geometry.iter().find(|(p, _)| p == id).map(|(_, r)| *r).unwrap_or_else(|| panic!("no pane {id}"))
}

#[tokio::test]
async fn tmux_panes_split_the_largest_pane_alternating_direction() {
    let server = TmuxServer::start();
    let anchor = server.anchor();
    let tmux = Tmux::new(&server.socket, &anchor);
    // The team's panes in creation order, with their depth in the tree.
    let mut order = vec![(anchor.clone(), 0u32)];
    let mut before = tmux.geometry(&anchor).await.unwrap();
    assert_eq!(find(&before, &anchor), Rect { left: 0, top: 0, width: 200, height: 50 });
    for k in 1..=8 {
        let pane = tmux.open(vec!["cat".into()], &launch(&format!("t-{k}"))).await.unwrap();
        let Pane::Tmux { pane_id } = pane else { panic!("not a tmux pane") };
        let after = tmux.geometry(&anchor).await.unwrap();
        assert_eq!(after.len(), k + 1, "{k} teammates: {after:?}");
        let changed: Vec<&(String, Rect)> = before.iter().filter(|(id, r)| find(&after, id) != *r).collect();
        assert_eq!(changed.len(), 1, "exactly one pane was split: {changed:?}");
        let (parent, old) = changed[0];
        // The split pane was the largest, the earliest of equals.
        let largest = order.iter().map(|(id, _)| find(&before, id)).map(|r| r.area()).max().unwrap();
        let expected_parent = order.iter().find(|(id, _)| find(&before, id).area() == largest).unwrap();
        assert_eq!(parent, &expected_parent.0, "{k} teammates: the largest pane is split");
        // Its direction follows its depth, and the two halves tile it.
        let (p, n) = (find(&after, parent), find(&after, &pane_id));
        match Split::at_depth(expected_parent.1) {
            Split::SideBySide => {
                assert_eq!((p.top, n.top, p.height, n.height), (old.top, old.top, old.height, old.height));
                assert_eq!((p.left, n.left), (old.left, p.left + p.width + 1));
                assert_eq!(p.width + n.width + 1, old.width);
            }
            Split::Stacked => {
                assert_eq!((p.left, n.left, p.width, n.width), (old.left, old.left, old.width, old.width));
                assert_eq!((p.top, n.top), (old.top, p.top + p.height + 1));
                assert_eq!(p.height + n.height + 1, old.height);
            }
        }
        let slot = order.iter_mut().find(|(id, _)| id == parent).unwrap();
        slot.1 += 1;
        let depth = slot.1;
        order.push((pane_id.clone(), depth));
        before = after;
    }
    // Eight teammates in a 200×50 window stay usable.
    for (id, r) in &before {
        assert!(r.width >= 49 && r.height >= 11, "pane {id} is too small: {r:?}");
    }
    // A pane the user closed is detected as stale and not split again.
    let victim = order.last().unwrap().0.clone();
    server.tmux(&["kill-pane", "-t", &victim]);
    let Pane::Tmux { pane_id } = tmux.open(vec!["cat".into()], &launch("t-9")).await.unwrap() else { panic!() };
    let panes = server.panes();
    assert!(panes.contains(&pane_id) && !panes.contains(&victim), "{panes:?}");
    assert_eq!(panes.len(), 9);
}

/// Waits (event-driven, bounded) until `id`'s roster row satisfies `f`.
async fn wait_member(team: &Team, id: &str, f: impl Fn(&Member) -> bool) -> Member {
    let wait = async {
        loop {
            if let Some(m) = team.roster.snapshot().into_iter().find(|m| m.id == id && f(m)) {
                return m;
            }
            team.roster.changed().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("roster never reached the expected state")
}

fn native_setup(plan: &Plan) -> NativeSetup {
    let plugins = plan.teammates.iter().map(|t| (t.group.clone(), t.plugin.clone())).collect();
    NativeSetup {
        exe: BIN.into(),
        root: plan.root.clone(),
        read: plan.read,
        workspace: workspace_spec(plan, None, None),
        plugins,
        cache_dir: Some(cache_dir()),
    }
}

/// Teammate processes of one group, running `plugin` over `root`.
fn group_setup(root: &Path, group: &str, plugin: &str) -> NativeSetup {
    let plugins = HashMap::from([(group.to_string(), PathBuf::from(plugin))]);
    NativeSetup {
        exe: BIN.into(),
        root: root.to_path_buf(),
        read: ReadScope::Owned,
        workspace: Default::default(),
        plugins,
        cache_dir: Some(cache_dir()),
    }
}

/// Runs a two-teammate team whose one slow task is held by one of them,
/// ends that teammate's process with `end` while it holds the task, and
/// checks that it is seen dead within a second and that the other teammate
/// completes the requeued task.
async fn a_teammate_whose_process_dies_is_dead_within_a_second<L: Launcher>(
    launcher: L,
    end: impl Fn(&Member) + Send + 'static,
) {
    let body = format!(
        "[[teammate]]\nname = \"counter\"\nplugin = {:?}\ninstances = 2\n\
         [[task]]\nid = \"slow\"\nsubject = \"slow\"\ndescription = \"wait:1500\"\n",
        swarm_tests::COUNTER
    );
    let dir = fixture(&[], &body);
    let plan = Plan::build(&Loaded::read(&dir.path().join("team.toml")).unwrap()).unwrap();
    Sandbox::with_cache(cache_dir()).load(Path::new(swarm_tests::COUNTER), &Limits::default()).unwrap();
    let (team, events) = team_of(&plan, None, None);
    let server = LinkServer::start(team.clone(), SocketDir::create("liveness").unwrap(), HEARTBEAT_TIMEOUT).unwrap();
    let backend = Arc::new(Native::new(team.clone(), server, launcher, native_setup(&plan)));
    let watched = team.clone();
    let killer = tokio::spawn(async move {
        let victim = loop {
            let holder = watched.roster.snapshot().into_iter().find(|m| m.task.as_deref() == Some("slow"));
            if let Some(m) = holder.filter(|m| m.pid.is_some()) {
                break m;
            }
            watched.roster.changed().await;
        };
        end(&victim);
        let killed = Instant::now();
        let dead = wait_member(&watched, &victim.id, |m| m.state == Liveness::Dead).await;
        (victim.id, killed.elapsed(), dead.exit.unwrap_or_default())
    });
    let report = tokio::time::timeout(Duration::from_secs(120), run(&plan, backend, events, RunOptions::default()))
        .await
        .expect("the run ended")
        .unwrap();
    let (victim, seen_after, exit) = killer.await.unwrap();
    println!("a teammate whose process died was seen dead after {seen_after:.1?}");
    assert!(seen_after < Duration::from_secs(1), "seen dead after {seen_after:?}");
    assert!(exit.contains("its process ended without reporting an exit"), "{exit}");
    let task = &report.tasks[0];
    assert_eq!(task.status, Status::Completed, "{report:#?}");
    assert_eq!(task.attempts.len(), 2, "requeued once: {:#?}", task.attempts);
    assert_eq!(task.attempts[0].teammate, victim);
    assert_ne!(task.teammate.as_deref(), Some(victim.as_str()), "the other teammate finished it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_headless_teammate_is_dead_within_a_second_and_its_task_requeued() {
    a_teammate_whose_process_dies_is_dead_within_a_second(Headless, |victim| {
        let status = Command::new("kill").args(["-9", &victim.pid.unwrap().to_string()]).status().unwrap();
        assert!(status.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmux_pane_closed_by_the_user_is_dead_within_a_second_and_its_task_requeued() {
    let server = Arc::new(TmuxServer::start());
    let tmux = Tmux::new(&server.socket, &server.anchor());
    let user = server.clone();
    a_teammate_whose_process_dies_is_dead_within_a_second(tmux, move |victim| {
        // Find the victim's pane by its title, as a user would, and close it.
        let panes = user.tmux(&["list-panes", "-a", "-F", "#{pane_id} #{pane_title}"]);
        let title = format!("{} (", victim.id);
        let pane =
            panes.lines().find(|l| l.contains(&title)).unwrap_or_else(|| panic!("no pane titled {title}: {panes}"));
        user.tmux(&["kill-pane", "-t", pane.split_whitespace().next().unwrap()]);
    })
    .await;
    assert_eq!(server.panes().len(), 1, "every teammate pane is closed at the end");
}

fn config(id: &str, root: &Path) -> LaunchConfig {
    LaunchConfig {
        team: "sec".into(),
        id: id.into(),
        group: "g".into(),
        color: "blue".into(),
        plugin: swarm_tests::COUNTER.into(),
        limits: (&Limits::default()).into(),
        root: root.to_path_buf(),
        read: ReadScope::Owned.into(),
        cache_dir: None,
        heartbeat_ms: 250,
        workspace: Default::default(),
        frame_bytes: MAX_FRAME_BYTES,
    }
}

#[tokio::test]
async fn only_an_expected_teammate_with_the_run_token_joins_the_team() {
    let (team, _events) =
        Team::new("sec", Mailbox::new([("w-1", 8usize), ("w-2", 8)]), TaskList::new(vec![]), Roster::default());
    let dir = SocketDir::create("sec").unwrap();
    let token = dir.token().to_string();
    let server = LinkServer::start(team, dir, HEARTBEAT_TIMEOUT).unwrap();
    let socket = server.socket();
    let root = tempfile::tempdir().unwrap();
    let (_kill, kill_rx) = tokio::sync::watch::channel(None);
    let _expectation = server.expect(config("w-1", root.path()), kill_rx);

    let err = connect(&socket, "w-1", "0123456789abcdef").await.err().expect("a wrong token is refused");
    assert!(format!("{err:#}").contains("wrong run token"), "{err:#}");
    let err = connect(&socket, "intruder", &token).await.err().expect("an unexpected teammate is refused");
    assert!(format!("{err:#}").contains("no teammate `intruder` is waiting"), "{err:#}");

    let joined = connect(&socket, "w-1", &token).await.unwrap();
    assert_eq!(joined.config, config("w-1", root.path()));
    let link: SharedPort = joined.remote.clone();
    assert_eq!(link.roster("w-1").await.unwrap(), vec!["w-1".to_string(), "w-2".to_string()]);
    assert!(link.claim("w-1", "g").await.unwrap().is_none());

    let err = connect(&socket, "w-1", &token).await.err().expect("a second w-1 is refused");
    assert!(format!("{err:#}").contains("already connected"), "{err:#}");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Spawns `n` teammates one after the other on `backend` and returns the
/// time from `spawn` to each being instantiated (`Spawning` → `Working`).
async fn spawn_times<B: TeammateBackend>(backend: &B, team: &Team, ids: &[String]) -> Vec<Duration> {
    let mut times = vec![];
    let mut handles = vec![];
    for id in ids {
        let started = Instant::now();
        let h = backend.spawn(Launch { id: id.clone(), ..launch(id) }).await.unwrap();
        wait_member(team, id, |m| m.state != Liveness::Spawning).await;
        times.push(started.elapsed());
        handles.push(h);
    }
    for h in &handles {
        backend.kill(h, "measured").await;
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_time_of_in_process_headless_and_tmux_teammates() {
    const N: usize = 5;
    let ids: Vec<String> = (1..=N).map(|i| format!("w-{i}")).collect();
    let new_team = || {
        Team::new("bench", Mailbox::new(ids.iter().map(|i| (i.as_str(), 8usize))), TaskList::new(vec![]), {
            let roster = Roster::default();
            for id in &ids {
                roster.add(id, "g", "blue");
            }
            roster
        })
    };
    let root = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::with_cache(cache_dir());
    let plugin = sandbox.load(Path::new(swarm_tests::COUNTER), &Limits::default()).unwrap();
    let setup = group_setup(root.path(), "g", swarm_tests::COUNTER);

    let (team, _events) = new_team();
    let in_process = InProcess::new(
        team.clone(),
        Workspace::open_root(root.path()).unwrap(),
        ReadScope::Owned,
        HashMap::from([("g".to_string(), plugin)]),
    );
    let base = median(spawn_times(&in_process, &team, &ids).await);

    let (team, _events) = new_team();
    let server = LinkServer::start(team.clone(), SocketDir::create("bench").unwrap(), HEARTBEAT_TIMEOUT).unwrap();
    let headless = Native::new(team.clone(), server, Headless, setup.clone());
    let process = median(spawn_times(&headless, &team, &ids).await);

    let tmux_server = TmuxServer::start();
    let (team, _events) = new_team();
    let server = LinkServer::start(team.clone(), SocketDir::create("bench").unwrap(), HEARTBEAT_TIMEOUT).unwrap();
    let tmux = Native::new(team.clone(), server, Tmux::new(&tmux_server.socket, &tmux_server.anchor()), setup);
    let pane = median(spawn_times(&tmux, &team, &ids).await);
    assert_eq!(tmux_server.panes().len(), 1, "killed teammates' panes are closed");

    let ratio = |d: Duration| d.as_secs_f64() / base.as_secs_f64().max(1e-9);
    println!("spawn → instantiated, median of {N} (cached plugin):");
    println!("  in-process   {base:>10.2?}  (baseline)");
    println!("  headless     {process:>10.2?}  ×{:.1}", ratio(process));
    println!("  tmux pane    {pane:>10.2?}  ×{:.1}", ratio(pane));
}

#[tokio::test]
async fn a_connection_that_forges_a_sender_oversteps_the_frame_cap_or_piles_up_calls_ends_its_teammate() {
    use swarm_host::protocol::frame::{Call, FrameReader, ToCoordinator, ToTeammate, write_frame};
    use swarm_host::protocol::wire::WireEvent;
    use swarm_host::team::ExitReason;
    use tokio::io::AsyncWriteExt;

    let (team, _events) = Team::new(
        "sec",
        Mailbox::new([("w-1", 8usize), ("w-2", 8), ("w-3", 8)]),
        TaskList::new(vec![]),
        Roster::default(),
    );
    let dir = SocketDir::create("sec").unwrap();
    let token = dir.token().to_string();
    let server = LinkServer::start(team, dir, HEARTBEAT_TIMEOUT).unwrap();
    let root = tempfile::tempdir().unwrap();
    let joined = |id: &'static str| {
        let (socket, token) = (server.socket(), token.clone());
        async move {
            let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
            let hello = ToCoordinator::Hello { agent_id: id.into(), token, pid: 1 };
            write_frame(&mut s, &hello).await.unwrap();
            let welcome: ToTeammate = FrameReader::new(&mut s, MAX_FRAME_BYTES).next().await.unwrap().unwrap();
            assert!(matches!(welcome, ToTeammate::Welcome { .. }), "{welcome:?}");
            s
        }
    };

    let (_k1, kill) = tokio::sync::watch::channel(None);
    let forged = server.expect(config("w-1", root.path()), kill);
    let mut s = joined("w-1").await;
    let lie = WireEvent::IdleNotification { from: "w-2".into(), reason: None };
    write_frame(&mut s, &ToCoordinator::Event { message: lie }).await.unwrap();
    let ExitReason::Killed { message: why, .. } = forged.exit.await.unwrap() else { panic!("not killed") };
    assert!(why.contains("a message from `w-2` on the connection of `w-1`"), "{why}");

    let (_k2, kill) = tokio::sync::watch::channel(None);
    let oversized = server.expect(config("w-2", root.path()), kill);
    let mut s = joined("w-2").await;
    s.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
    let ExitReason::Killed { message: why, .. } = oversized.exit.await.unwrap() else { panic!("not killed") };
    assert!(why.contains(&format!("over the {MAX_FRAME_BYTES}-byte frame limit")), "{why}");

    // A guest makes one call at a time; a peer piling up waiting calls is
    // cut off instead of growing the coordinator's memory.
    let (_k3, kill) = tokio::sync::watch::channel(None);
    let flooding = server.expect(config("w-3", root.path()), kill);
    let mut s = joined("w-3").await;
    for id in 0..65 {
        let call = Call::Recv { timeout_ms: 60_000 };
        write_frame(&mut s, &ToCoordinator::Request { id, call }).await.unwrap();
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), flooding.exit).await;
    let ExitReason::Killed { message: why, .. } = ended.expect("cut off in time").unwrap() else {
        panic!("not killed")
    };
    assert!(why.contains("more than 64 calls in flight"), "{why}");
}

fn is_idle(ev: &Event) -> bool {
    matches!(ev, Event::Message(TeammateMessage::IdleNotification { .. }))
}

/// Waits (30 s at most) for an event `done` accepts, counting the idle
/// notifications on the way (that one included).
async fn until(events: &mut tokio::sync::mpsc::Receiver<Event>, idles: &mut usize, done: impl Fn(&Event) -> bool) {
    let wait = async {
        loop {
            let ev = events.recv().await.expect("event channel open");
            *idles += usize::from(is_idle(&ev));
            if done(&ev) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the event arrived in time");
}

/// Spawns `ping-1` on `backend`, sends it `pings` messages from the team
/// lead one at a time (each answered before the next), stops it, and says
/// how many idle notifications it sent in all.
async fn idle_notifications_around_pings<B: TeammateBackend>(
    backend: &B,
    team: &Team,
    events: &mut tokio::sync::mpsc::Receiver<Event>,
    pings: usize,
) -> usize {
    let mut idles = 0;
    let launch = Launch { id: "ping-1".into(), group: "ping".into(), color: "blue".into(), limits: Limits::default() };
    let handle = backend.spawn(launch).await.unwrap();
    // It finds no task and says it is idle.
    until(events, &mut idles, is_idle).await;
    let pong =
        |ev: &Event| matches!(ev, Event::Message(TeammateMessage::Message { body, .. }) if body == "pong from ping-1");
    for _ in 0..pings {
        let ping = Incoming::Message { sender: TEAM_LEAD.into(), body: "ping from team-lead".into(), summary: None };
        team.mailbox.send("ping-1", ping).unwrap();
        until(events, &mut idles, pong).await;
    }
    let stopping = backend.stop(&handle, "stop-ping-1", "test done", Duration::from_secs(30));
    tokio::pin!(stopping);
    let exit = loop {
        tokio::select! {
            exit = &mut stopping => break exit,
            Some(ev) = events.recv() => idles += usize::from(is_idle(&ev)),
        }
    };
    assert!(exit.is_clean(), "ping-1 ended badly: {exit}");
    idles
}

/// The SDK's loop: an idle teammate woken by a message answers it and goes
/// back to waiting without saying `idle` again (nor claiming: the host
/// pushes `tasks-available` to idle teammates). Over the socket every extra
/// call would be a round trip. Checked in-process and in a teammate process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_teammate_answers_messages_without_saying_idle_again() {
    const PINGS: usize = 5;
    let new_team = || {
        let roster = Roster::default();
        roster.add("ping-1", "ping", "blue");
        Team::new("idle", Mailbox::new([("ping-1", 8usize)]), TaskList::new(vec![]), roster)
    };
    let root = tempfile::tempdir().unwrap();
    let plugin = Sandbox::with_cache(cache_dir()).load(Path::new(swarm_tests::PING), &Limits::default()).unwrap();

    let (team, mut events) = new_team();
    let in_process = InProcess::new(
        team.clone(),
        Workspace::open_root(root.path()).unwrap(),
        ReadScope::Owned,
        HashMap::from([("ping".to_string(), plugin)]),
    );
    let idles = idle_notifications_around_pings(&in_process, &team, &mut events, PINGS).await;
    assert_eq!(idles, 1, "in-process: one idle notification, not one per message");

    let (team, mut events) = new_team();
    let server = LinkServer::start(team.clone(), SocketDir::create("idle").unwrap(), HEARTBEAT_TIMEOUT).unwrap();
    let setup = group_setup(root.path(), "ping", swarm_tests::PING);
    let headless = Native::new(team.clone(), server, Headless, setup);
    let idles = idle_notifications_around_pings(&headless, &team, &mut events, PINGS).await;
    assert_eq!(idles, 1, "teammate process: one idle notification, not one per message");
}

/// A team of `rogue` teammates: `rogue-1` says `idle` without end and
/// `rogue-2` answers shutdown requests it never received without end, each
/// until its 1 s deadline. Returns how many idle notifications and shutdown
/// answers reached the coordinator from each.
async fn floods_reaching_the_coordinator(process: bool) -> (usize, usize) {
    let body = format!(
        "[[teammate]]\nname = \"rogue\"\nplugin = {:?}\ninstances = 2\n\
         [[task]]\nid = \"idle\"\nsubject = \"idleflood\"\nowner = \"rogue-1\"\ndeadline = \"1s\"\nmax_attempts = 1\n\
         [[task]]\nid = \"shut\"\nsubject = \"shutdownflood\"\nowner = \"rogue-2\"\ndeadline = \"1s\"\nmax_attempts = 1\n",
        swarm_tests::ROGUE
    );
    let dir = fixture(&[], &body);
    let plan = Plan::build(&Loaded::read(&dir.path().join("team.toml")).unwrap()).unwrap();
    let sandbox = Sandbox::with_cache(cache_dir());
    let plugin = sandbox.load(Path::new(swarm_tests::ROGUE), &Limits::default()).unwrap();
    let (team, mut events) = team_of(&plan, None, None);
    // Counts the events on their way to the coordinator.
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let counter = tokio::spawn(async move {
        let (mut idles, mut answers) = (0, 0);
        while let Some(ev) = events.recv().await {
            match &ev {
                Event::Message(TeammateMessage::IdleNotification { from, .. }) if from == "rogue-1" => idles += 1,
                Event::Message(TeammateMessage::ShutdownResponse { from, .. }) if from == "rogue-2" => answers += 1,
                _ => {}
            }
            if tx.send(ev).await.is_err() {
                break;
            }
        }
        (idles, answers)
    });
    let options = RunOptions { shutdown_grace: Duration::from_secs(5), ..RunOptions::default() };
    let report = if process {
        let server = LinkServer::start(team.clone(), SocketDir::create("floods").unwrap(), HEARTBEAT_TIMEOUT).unwrap();
        let backend = Arc::new(Native::new(team.clone(), server, Headless, native_setup(&plan)));
        tokio::time::timeout(Duration::from_secs(60), run(&plan, backend, rx, options)).await
    } else {
        let root = Workspace::open_root(&plan.root).unwrap();
        let plugins = HashMap::from([("rogue".to_string(), plugin)]);
        let backend = Arc::new(InProcess::new(team.clone(), root, plan.read, plugins));
        tokio::time::timeout(Duration::from_secs(60), run(&plan, backend, rx, options)).await
    };
    let report = report.expect("the run ended").unwrap();
    for id in ["idle", "shut"] {
        let t = report.tasks.iter().find(|t| t.id == id).unwrap();
        let error = t.error.as_deref().unwrap_or_default();
        assert!(error.contains(&format!("deadline hit: task {id} ran past task_deadline = 1s")), "{error}");
    }
    drop(team);
    tokio::time::timeout(Duration::from_secs(10), counter).await.expect("the counter ended").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_idle_calls_and_forged_shutdown_answers_reach_the_coordinator_once_at_most() {
    for process in [false, true] {
        let (idles, answers) = floods_reaching_the_coordinator(process).await;
        let backend = if process { "process" } else { "in-process" };
        println!("{backend}: a second of idle calls gave {idles} idle notification(s); forged answers gave {answers}");
        assert_eq!(idles, 1, "{backend}: one idle notification for a second of `idle` calls");
        assert_eq!(answers, 0, "{backend}: no answer to a shutdown request that was never sent");
    }
}

/// A tmux stand-in that writes its pid to `pid` beside it, then hangs.
fn hung_tmux(dir: &Path) -> PathBuf {
    let fake = dir.join("tmux");
    let script = format!("#!/bin/sh\necho $$ > {}\nexec sleep 1000\n", dir.join("pid").display());
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fake
}

/// True once process `pid` has exited (gone, or a zombie not reaped yet).
fn exited(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// `swarm-host run --backend tmux` with a `tmux` on `$PATH` that never
/// answers: the run ends (it used to hang for ever) with an error naming
/// the tmux call and its timeout, and the hung tmux is killed.
#[test]
fn a_hung_tmux_on_path_ends_the_run_with_an_error_naming_its_timeout() {
    let fakes = tempfile::tempdir().unwrap();
    hung_tmux(fakes.path());
    let body = format!(
        "[[teammate]]\nname = \"counter\"\nplugin = {:?}\ninstances = 1\n[[task]]\nid = \"t\"\nsubject = \"count\"\n",
        swarm_tests::COUNTER
    );
    let dir = fixture(&[], &body);
    let path = format!("{}:{}", fakes.path().display(), std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["run", "--fresh", "--backend", "tmux"])
        .arg(dir.path().join("team.toml"))
        .env("NO_COLOR", "1")
        .env("SWARM_STATE_DIR", dir.path().join("state"))
        .env("XDG_CACHE_HOME", cache_dir())
        .env("PATH", path)
        .env("TMUX", format!("{},1,0", fakes.path().join("sock").display()))
        .env("TMUX_PANE", "%0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Waits (bounded) for the run to end by itself.
    let deadline = started + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run hung on a tmux that never answers");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    println!("a hung tmux ended the run after {:.1?} ({status}): {}", started.elapsed(), stderr.trim());
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("cannot spawn teammate `counter-1`"), "{stderr}");
    assert!(stderr.contains("list-panes did not finish within 10s (the tmux call timeout); it was killed"), "{stderr}");
    let pid = std::fs::read_to_string(fakes.path().join("pid")).unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exited(&pid) {
        assert!(Instant::now() < deadline, "the hung tmux {pid} was not killed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The same with the program and timeout injected: the launcher's error
/// names them, within the timeout.
#[tokio::test]
async fn a_hung_tmux_is_killed_at_an_injected_timeout() {
    let fakes = tempfile::tempdir().unwrap();
    let tmux = Tmux::new(&fakes.path().join("sock"), "%0")
        .with_program(hung_tmux(fakes.path()))
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = tmux.open(vec!["cat".into()], &launch("t-1")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = format!("{err:#}");
    assert!(text.contains("list-panes did not finish within 300ms (the tmux call timeout); it was killed"), "{text}");
}

#[tokio::test]
async fn a_full_tmux_window_gets_a_new_window_instead_of_failing() {
    let server = TmuxServer::start();
    let anchor = server.anchor();
    // So small that tmux soon answers "no space for new pane".
    server.tmux(&["resize-window", "-t", "swarm", "-x", "8", "-y", "4"]);
    let tmux = Tmux::new(&server.socket, &anchor);
    let mut panes = Vec::new();
    for k in 1..=12 {
        let pane = tmux.open(vec!["cat".into()], &launch(&format!("t-{k}"))).await;
        let Pane::Tmux { pane_id } = pane.unwrap_or_else(|e| panic!("teammate {k}: {e:#}")) else { panic!() };
        panes.push(pane_id);
    }
    let windows = server.tmux(&["list-panes", "-a", "-F", "#{window_id} #{pane_id}"]);
    let window_of = |pane: &str| {
        windows
            .lines()
            .find(|l| l.ends_with(&format!(" {pane}")))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let first = window_of(&anchor);
    let elsewhere: Vec<&String> = panes.iter().filter(|p| window_of(p) != first).collect();
    println!("panes in the 8x4 window: {}, in a new window: {}", panes.len() - elsewhere.len(), elsewhere.len());
    assert!(!elsewhere.is_empty(), "some teammate went to a new window: {windows}");
    assert_eq!(server.panes().len(), 13, "every teammate has a pane: {windows}");
    // Closing a teammate's pane in the new window works as anywhere.
    tmux.close(&Pane::Tmux { pane_id: elsewhere[0].clone() }).await;
    assert_eq!(server.panes().len(), 12);
}

/// A coordinator that welcomes `w-1` and then never reads its socket
/// again: the teammate process's events pile up in the socket's buffer,
/// then in its outbox, which holds `OUTBOX_EVENTS` and makes the next event
/// wait (the outbox used to be unbounded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teammate_process_outbox_is_bounded_when_the_coordinator_stops_reading() {
    use swarm_host::backend::link::OUTBOX_EVENTS;
    use swarm_host::protocol::frame::{FrameReader, ToCoordinator, ToTeammate, write_frame};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let root = tempfile::tempdir().unwrap();
    let welcome = config("w-1", root.path());
    let coordinator = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = stream.into_split();
        let mut reader = FrameReader::new(rd, MAX_FRAME_BYTES);
        let hello: ToCoordinator = reader.next().await.unwrap().unwrap();
        assert!(matches!(hello, ToCoordinator::Hello { .. }), "{hello:?}");
        write_frame(&mut wr, &ToTeammate::Welcome { config: Box::new(welcome) }).await.unwrap();
        // Holds the connection open and reads nothing more.
        (reader, wr)
    });
    let joined = connect(&socket, "w-1", "token").await.unwrap();
    let _held_open = coordinator.await.unwrap();
    let link: SharedPort = joined.remote.clone();
    let reason = "x".repeat(8 * 1024);
    let mut sent = 0;
    loop {
        let msg = TeammateMessage::AccessDenied {
            from: "w-1".into(),
            task_id: None,
            operation: "read".into(),
            reason: reason.clone(),
        };
        // An event that finds no room waits: that is the bound.
        if tokio::time::timeout(Duration::from_millis(500), link.emit(msg)).await.is_err() {
            break;
        }
        sent += 1;
        assert!(sent < 10_000, "the outbox took {sent} events of 8 KiB without making one wait");
    }
    println!("a stalled socket took {sent} events of 8 KiB before the next one had to wait");
    assert_eq!(joined.remote.queued_events(), OUTBOX_EVENTS);
}
