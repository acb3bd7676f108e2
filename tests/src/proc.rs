//! A child process (the CLI under test) whose output lines tests wait on:
//! stderr and stdout lines arrive on one channel (waited for with a
//! timeout, never polled), stdout is also collected whole (a JSON report).
//! Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process whose stderr lines arrive on a channel and whose
/// stdout is collected; killed when dropped.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    /// Starts `exe` with `args` in `dir`.
    pub fn start(exe: &str, args: &[&str], dir: &Path) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let both = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  | {line}");
                let _ = tx.send(line);
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = both.send(line.clone());
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Self { child, lines, stdout: Some(stdout) }
    }

    /// Waits up to `timeout` for a line (stdout or stderr) containing `needle`.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to end (its stdout closes first); exit code
    /// and stdout.
    pub fn finish(mut self, timeout: Duration) -> (i32, String) {
        let (tx, rx) = mpsc::channel();
        let handle = self.stdout.take().unwrap();
        std::thread::spawn(move || {
            let _ = tx.send(handle.join().unwrap_or_default());
        });
        let out = rx.recv_timeout(timeout).unwrap_or_else(|_| panic!("the run did not end within {timeout:?}"));
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        (code, out)
    }
}

impl Proc {
    /// `kill -9`.
    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// Sends `signal` (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        send_signal(&self.child, signal);
    }
}

/// `kill -9` of `child`, reaped.
pub fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` (`STOP`, `CONT`) to `child` with kill(1).
pub fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {} failed", child.id());
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `json` parsed as a report, or a panic showing it.
pub fn report(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not a JSON report ({e}):\n{json}"))
}
