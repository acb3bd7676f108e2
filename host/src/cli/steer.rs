//! `swarm-host send`, `stop`, `answer`, `pending` and `attach`: a person
//! steers a running team from another terminal through its coordinator's
//! control socket (see `coordinator::steer::control`).
//!
//! The socket is found through the pointer file in the team's state
//! directory; its directory must be a real directory owned by this user
//! with mode 0700 (else nothing is sent, not even the token), and the token
//! is read from the file beside the socket.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::{CliResult, EXIT_CONFIG, EXIT_OK};
use crate::protocol::control::{
    CONTROL_VERSION, ControlOp, ControlPointer, ControlReply, ControlRequest, POINTER_FILE,
};

/// Exit code when the coordinator refused the request (wrong token, unknown
/// teammate or request): the same as a usage error.
const EXIT_REFUSED: u8 = EXIT_CONFIG;

/// Sends `op` to the running coordinator of `team`; prints its answer (for
/// `attach`, every event until the run ends, while answers typed on stdin
/// are sent).
pub fn control(state_dir: &Path, team: &str, op: ControlOp) -> CliResult {
    let dir = socket_dir(state_dir, team)?;
    let token = std::fs::read_to_string(dir.join("token"))
        .map_err(|e| (EXIT_CONFIG, format!("cannot read the control token in {}: {e}", dir.display())))?;
    request(&dir.join("sock"), team, token.trim(), op)
}

/// [`control`] with an explicit socket and token (tests use it to show a
/// wrong token is refused).
pub fn request(socket: &Path, team: &str, token: &str, op: ControlOp) -> CliResult {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        (
            EXIT_CONFIG,
            format!(
                "team `{team}` is not running: its control socket {} does not answer ({e}); the pointer is stale",
                socket.display()
            ),
        )
    })?;
    let attach = op == ControlOp::Attach;
    if attach {
        answer_from_stdin(socket.to_path_buf(), team.to_string(), token.to_string());
    }
    let mut line = serde_json::to_vec(&ControlRequest { v: CONTROL_VERSION, token: token.to_string(), op })
        .map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| (EXIT_CONFIG, format!("cannot send to team `{team}`: {e}")))?;
    let reader = std::io::BufReader::new(stream);
    let mut answered = false;
    for line in reader.lines() {
        let line = line.map_err(|e| (EXIT_CONFIG, format!("the coordinator of `{team}` went away: {e}")))?;
        match serde_json::from_str::<ControlReply>(&line) {
            Ok(ControlReply::Ok { text }) => {
                if !text.is_empty() {
                    println!("{}", crate::sanitize::line(&text));
                }
                return Ok(EXIT_OK);
            }
            Ok(ControlReply::Error { message }) => return Err((EXIT_REFUSED, crate::sanitize::line(&message))),
            Ok(ControlReply::Event { text }) => {
                answered = true;
                println!("{}", crate::sanitize::line(&text));
                let _ = std::io::stdout().flush();
            }
            Err(e) => return Err((EXIT_CONFIG, format!("not a control answer from `{team}`: {e}"))),
        }
    }
    if attach && answered {
        println!("the run of team `{team}` ended");
        return Ok(EXIT_OK);
    }
    Err((EXIT_CONFIG, format!("the coordinator of `{team}` closed the connection without an answer")))
}

/// While attached, a person answers a pending ownership request by typing
/// `grant <id>` or `deny <id>` on a line of its own; each is sent as an
/// `answer` request of its own, and its outcome printed with the events.
fn answer_from_stdin(socket: PathBuf, team: String, token: String) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let op = match line.split_whitespace().collect::<Vec<_>>()[..] {
                [] => continue,
                ["grant", id] => ControlOp::Answer { request: id.to_string(), grant: true },
                ["deny", id] => ControlOp::Answer { request: id.to_string(), grant: false },
                _ => {
                    eprintln!("not an answer: type `grant <id>` or `deny <id>` (e.g. `grant r1`)");
                    continue;
                }
            };
            if let Err((_, message)) = request(&socket, &team, &token, op) {
                eprintln!("{message}");
            }
        }
    });
}

/// The control socket's directory of `team`, checked private.
fn socket_dir(state_dir: &Path, team: &str) -> Result<PathBuf, (u8, String)> {
    let pointer = state_dir.join(team).join(POINTER_FILE);
    let text = std::fs::read_to_string(&pointer).map_err(|e| {
        (
            EXIT_CONFIG,
            format!(
                "team `{team}` has no running coordinator: no control socket pointer at {} ({e})",
                pointer.display()
            ),
        )
    })?;
    let p: ControlPointer = serde_json::from_str(&text)
        .map_err(|e| (EXIT_CONFIG, format!("{} is not a control pointer: {e}", pointer.display())))?;
    if p.v != CONTROL_VERSION {
        return Err((EXIT_CONFIG, format!("{}: control version {} is not {CONTROL_VERSION}", pointer.display(), p.v)));
    }
    let dir = PathBuf::from(p.dir);
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| {
        (EXIT_CONFIG, format!("team `{team}` is not running: {} is gone ({e}); the pointer is stale", dir.display()))
    })?;
    // The user who wrote the pointer (the coordinator's) must own the
    // directory too: a directory planted by another user is refused.
    let me = std::fs::symlink_metadata(&pointer).map_err(|e| (EXIT_CONFIG, e.to_string()))?.uid();
    let mode = meta.permissions().mode() & 0o777;
    if !meta.is_dir() || meta.uid() != me || mode != 0o700 {
        return Err((
            EXIT_CONFIG,
            format!(
                "refusing the control socket directory {}: it must be a directory with mode 700 owned by the pointer's owner (mode {mode:o}, owner {})",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    Ok(dir)
}
