//! Connecting to NATS: the options a deployment passes through
//! (credentials file, token, TLS), and the refusal of servers older than
//! [`MIN_SERVER`], read from the server's INFO at connect time.

use std::path::PathBuf;
use std::time::Duration;

use super::ClusterError;

/// The oldest nats-server accepted, as (major, minor).
pub const MIN_SERVER: &str = "2.10";
const MIN: (u32, u32) = (2, 10);

/// How to reach the server. Secrets stay in files or in the token given
/// here; none is logged.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// `nats://host:port` (or `tls://`), comma-separated for several.
    pub url: String,
    /// A `.creds` file (JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// A bearer token.
    pub token: Option<String>,
    /// CA certificates to trust (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for mutual TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// Refuse a connection without TLS.
    pub require_tls: bool,
    /// The client name the server shows (`swarm-host worker w1`).
    pub name: Option<String>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("url", &self.url)
            .field("credentials", &self.credentials)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls_client", &self.tls_client)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

impl ConnectOptions {
    /// Plain options for `url`.
    pub fn url(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }

    /// Connects, then refuses the server if it is older than [`MIN_SERVER`].
    /// The client reconnects on its own afterwards (unlimited attempts).
    pub async fn connect(&self) -> Result<async_nats::Client, ClusterError> {
        let fail = |message: String| ClusterError::Connect { url: self.url.clone(), message };
        let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
        if let Some(path) = &self.credentials {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| fail(format!("credentials file {}: {e}", path.display())))?;
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls_client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        let client = options.connect(self.url.as_str()).await.map_err(|e| fail(e.to_string()))?;
        let version = client.server_info().version;
        if !supported(&version) {
            return Err(ClusterError::ServerTooOld { url: self.url.clone(), version });
        }
        Ok(client)
    }
}

/// Whether a server version string (`2.10.27`, `2.11.0-RC.1`) is at least
/// [`MIN_SERVER`]. An unparsable or empty version is refused.
pub fn supported(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) >= MIN,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_before_2_10_are_refused() {
        assert!(!supported("2.9.10"));
        assert!(!supported("1.4.1"));
        assert!(!supported(""));
        assert!(!supported("garbage"));
        assert!(supported("2.10.0"));
        assert!(supported("2.10.27"));
        assert!(supported("2.15.1"));
        assert!(supported("v2.11.0-RC.1"));
        assert!(supported("3.0.0"));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let options = ConnectOptions { token: Some("s3cret-token".into()), ..ConnectOptions::url("nats://x") };
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
