//! Where the CLI's `tracing` events go: plain lines on stderr (`RUST_LOG`
//! sets the level, `NO_COLOR` or a non-terminal turns colour off), printed
//! above the live team view's bars when one is shown, and the team's log
//! files ([`super::team_logs`]) once a run knows its state directory.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::team_logs::TeamLogs;
use super::view::TeamView;

/// Level of the stderr lines when `RUST_LOG` is not set.
const DEFAULT_STDERR: &str = "swarm_host=info";
/// Level of the team log files when `RUST_LOG` is not set: files are cheap,
/// so they keep the debug lines too (progress, idle, shutdown answers).
const DEFAULT_FILES: &str = "swarm_host=debug";

/// The live view, once a run shows one; log lines then go above its bars.
static VIEW: OnceLock<Arc<TeamView>> = OnceLock::new();

/// The team log files, shared by the subscriber and the run commands.
static TEAM_LOGS: OnceLock<TeamLogs> = OnceLock::new();

/// True if colour may be used on stderr: it is a terminal and `NO_COLOR` is
/// unset or empty (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber: stderr lines and the team log files.
pub fn init() {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(|| LogLine(Vec::new()))
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .with_filter(filter(DEFAULT_STDERR));
    let files = TEAM_LOGS.get_or_init(TeamLogs::default).clone().with_filter(filter(DEFAULT_FILES));
    let _ = tracing_subscriber::registry().with(stderr).with(files).try_init();
}

/// The team log files (closed until a run opens them).
pub fn team_logs() -> &'static TeamLogs {
    TEAM_LOGS.get_or_init(TeamLogs::default)
}

/// The live team view of this process, created on first use.
pub fn view(tasks: usize) -> Arc<TeamView> {
    VIEW.get_or_init(|| Arc::new(TeamView::new(tasks))).clone()
}

/// Leaves the live view's final bars on screen, if one is shown.
pub fn finish_view() {
    if let Some(view) = VIEW.get() {
        view.finish();
    }
}

/// One log line, printed when dropped: above the team view's bars if one is
/// shown, else straight to stderr.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        match VIEW.get() {
            Some(view) => view.println(line.trim_end()),
            None => {
                use std::io::Write as _;
                let _ = std::io::stderr().write_all(&self.0);
            }
        }
    }
}
