//! `swarm-host worker`: a scale-out worker. It joins a team's JetStream
//! objects (a worker that starts late or restarts joins the running team),
//! pulls task assignments, and runs each task's teammate component in its
//! own sandbox with the teammate's limits (`backend::nats::remote`); the
//! coordinator applies the results. It holds no model key: model calls go
//! to the coordinator. It runs until Ctrl-C or SIGTERM.
//!
//! The connection flags ([`NatsArgs`]) are shared with `run --nats`. The
//! command needs the `nats` cargo feature; without it, it says how to
//! build with it.

use std::path::PathBuf;

use super::{CacheArgs, CliResult, config_error};

/// Printed when a NATS flag is used by a binary built without the feature.
pub const NO_NATS: &str = "this swarm-host was built without NATS support: build it with the `nats` feature \
     (`cargo build -p swarm-host --features nats`, or `cargo run -p swarm-host --features nats -- ...`)";

/// How to reach the NATS server (`run --nats`, `worker`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsArgs {
    /// Run the team's tasks on NATS workers: the server's URL
    /// (`nats://host:4222`, `tls://...`; comma-separated for several).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// NATS credentials file (JWT and nkey seed).
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub creds: Option<PathBuf>,
    /// Name of the environment variable holding the NATS token (never the
    /// token itself on the command line).
    #[arg(long, value_name = "VAR", requires = "nats")]
    pub token_env: Option<String>,
    /// CA certificates (PEM) to trust for the server's TLS.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for mutual TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires_all = ["nats", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM), for mutual TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse a connection without TLS.
    #[arg(long, requires = "nats")]
    pub require_tls: bool,
}

impl NatsArgs {
    /// Fails with [`NO_NATS`] when a NATS flag is given to a build without
    /// the feature.
    pub fn check_feature(&self) -> Result<(), (u8, String)> {
        if self.nats.is_some() && !cfg!(feature = "nats") {
            return Err(config_error(NO_NATS));
        }
        Ok(())
    }

    /// The client's options; `None` without `--nats`.
    #[cfg(feature = "nats")]
    pub fn options(&self) -> Result<Option<crate::cluster::ConnectOptions>, (u8, String)> {
        let Some(url) = &self.nats else { return Ok(None) };
        let token = match &self.token_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                config_error(format!("the environment variable `{var}` named by --token-env is not set (or not UTF-8)"))
            })?),
            None => None,
        };
        Ok(Some(crate::cluster::ConnectOptions {
            url: url.clone(),
            credentials: self.creds.clone(),
            token,
            tls_ca: self.tls_ca.clone(),
            tls_client: self.tls_cert.clone().zip(self.tls_key.clone()),
            require_tls: self.require_tls,
            name: None,
        }))
    }
}

/// `swarm-host worker`'s options.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The server, and how to authenticate (`--nats` is required).
    #[command(flatten)]
    pub conn: NatsArgs,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub slots: u16,
    /// The team to work for [default: the only team on the server].
    #[arg(long)]
    pub team: Option<String>,
    /// This worker's id, as the coordinator's report shows it
    /// [default: `<host>-<pid>`].
    #[arg(long)]
    pub id: Option<String>,
    /// Where plugins, snapshots and each task's writes are kept while it
    /// runs [default: a fresh directory in the temp dir, removed at exit].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The compiled-plugin cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Runs the worker until Ctrl-C or SIGTERM.
pub async fn main(args: WorkerArgs) -> CliResult {
    if args.conn.nats.is_none() {
        return Err(config_error("`swarm-host worker` needs --nats URL (the server the team's coordinator uses)"));
    }
    args.conn.check_feature()?;
    #[cfg(feature = "nats")]
    return serve(args).await;
    #[cfg(not(feature = "nats"))]
    Err(config_error(NO_NATS))
}

#[cfg(feature = "nats")]
async fn serve(args: WorkerArgs) -> CliResult {
    use std::sync::Arc;

    use super::EXIT_INTERNAL;
    use crate::backend::nats::WorkerHost;
    use crate::cluster::{Cluster, Worker};

    let internal = |e: &dyn std::fmt::Display| (EXIT_INTERNAL, e.to_string());
    let host_name = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let id = args.id.clone().unwrap_or_else(|| {
        let host: String =
            host_name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect::<String>();
        format!("{}-{}", if host.is_empty() { "worker" } else { &host }, std::process::id())
    });
    crate::cluster::names::token("worker id", &id).map_err(config_error)?;
    let mut options = args.conn.options()?.expect("checked above");
    options.name = Some(format!("swarm-host worker {id}"));
    let client = options.connect().await.map_err(config_error)?;
    let team = match &args.team {
        Some(t) => t.clone(),
        None => match crate::cluster::queue::teams(&client).await.map_err(config_error)?.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(config_error(
                    "no team on this server yet: start its coordinator (`swarm-host run --nats`) first, or name it with --team",
                ));
            }
            many => {
                return Err(config_error(format!(
                    "several teams on this server ({}): name one with --team",
                    many.join(", ")
                )));
            }
        },
    };
    let cluster = Cluster::join(client, &team).await.map_err(config_error)?;
    let (dir, remove) = match &args.work_dir {
        Some(d) => (d.clone(), false),
        None => {
            let suffix = crate::backend::server::random_hex(4).map_err(|e| internal(&e))?;
            (std::env::temp_dir().join(format!("swarm-worker-{id}-{suffix}")), true)
        }
    };
    let host = Arc::new(
        WorkerHost::new(cluster.clone(), dir.clone(), args.cache.dir())
            .map_err(|e| (EXIT_INTERNAL, format!("cannot set up the work directory {}: {e}", dir.display())))?,
    );
    let worker = Worker::new(cluster, id.clone(), usize::from(args.slots));
    let stats = worker.stats();
    println!("worker {id} joined team {team} ({} slot(s))", args.slots);
    let shutdown = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let ran = worker
        .run(
            move |a, _attempt, plugin| {
                let host = host.clone();
                async move { host.run(a, plugin).await }
            },
            shutdown,
        )
        .await;
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    ran.map_err(|e| internal(&e))?;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "worker {id} stopped: {} executed, {} committed, {} fenced, {} failed",
        load(&stats.executed),
        load(&stats.committed),
        load(&stats.fenced),
        load(&stats.failed)
    );
    Ok(super::EXIT_OK)
}
