//! Where teammates run. Every backend implements [`TeammateBackend`]; the
//! coordinator only ever talks to this trait, so the same team file gives
//! the same report whichever backend runs it.

pub mod command;
pub mod detect;
pub mod in_process;
pub mod iterm;
pub mod layout;
pub mod link;
pub mod native;
#[cfg(feature = "nats")]
pub mod nats;
pub mod process;
pub mod server;
pub mod tmux;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use in_process::InProcess;
pub use iterm::Iterm;
pub use native::{Native, NativeSetup};
pub use process::Headless;
pub use tmux::Tmux;

use tokio::sync::watch;

use crate::mailbox::Incoming;
use crate::sandbox::Launch;
use crate::team::{Event, ExitReason, Liveness, Team};

/// Runs teammates somewhere and tells how they ended.
pub trait TeammateBackend: Send + Sync + 'static {
    /// A running teammate.
    type Handle: Clone + Send + Sync + 'static;

    /// Short name for reports, e.g. `in-process`.
    fn name(&self) -> &'static str;

    /// The team this backend's teammates belong to.
    fn team(&self) -> &Arc<Team>;

    /// Starts a teammate. Returns once it is started, not once it is ready;
    /// a teammate that fails to start is reported through [`Self::result`].
    fn spawn(&self, launch: Launch) -> impl Future<Output = anyhow::Result<Self::Handle>> + Send;

    /// Waits until the teammate is gone and says how it ended.
    fn result(&self, handle: &Self::Handle) -> impl Future<Output = ExitReason> + Send;

    /// What the backend counted that the report shows (workers over NATS:
    /// executions, duplicates, fenced results); `None` for the others.
    fn scale_out(&self) -> Option<crate::model::ScaleOut> {
        None
    }

    /// Stops it now, without asking.
    fn kill(&self, handle: &Self::Handle, why: &str) -> impl Future<Output = ExitReason> + Send;

    /// The id of the teammate behind `handle`.
    fn id<'a>(&self, handle: &'a Self::Handle) -> &'a str;

    /// Graceful stop: a shutdown request through the mailbox, up to `grace`
    /// for the teammate to answer and exit, then a hard kill.
    fn stop(
        &self,
        handle: &Self::Handle,
        request_id: &str,
        reason: &str,
        grace: Duration,
    ) -> impl Future<Output = ExitReason> + Send {
        async move {
            let id = self.id(handle).to_string();
            let request = Incoming::Shutdown { request_id: request_id.to_string(), reason: reason.to_string() };
            if self.team().mailbox.send(&id, request).is_ok() {
                self.team().roster.update(&id, |m| m.state = crate::team::Liveness::Stopping);
            }
            match tokio::time::timeout(grace, self.result(handle)).await {
                Ok(exit) => exit,
                Err(_) => {
                    let why = format!("no exit within the {} shutdown grace period", humantime::format_duration(grace));
                    self.kill(handle, &why).await
                }
            }
        }
    }
}

/// Publishes how teammate `id` ended, once, in the order every backend
/// keeps: its roster row (exited or dead), its handle's exit watch, then the
/// coordinator's event.
pub(crate) async fn publish_exit(
    team: &Team,
    id: String,
    reason: ExitReason,
    exit: &watch::Sender<Option<ExitReason>>,
) {
    let state = if reason.is_clean() { Liveness::Exited } else { Liveness::Dead };
    team.roster.gone(&id, state, reason.to_string());
    let _ = exit.send(Some(reason.clone()));
    let _ = team.events.send(Event::Exited { id, reason }).await;
}

/// Waits until a handle's exit watch holds how the teammate ended.
pub(crate) async fn wait_exit(exit: &watch::Receiver<Option<ExitReason>>) -> ExitReason {
    let mut rx = exit.clone();
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or_else(|| ExitReason::killed("exit lost")),
        Err(_) => ExitReason::killed("exit watcher ended without a result"),
    }
}
