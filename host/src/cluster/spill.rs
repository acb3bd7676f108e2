//! Payloads larger than a NATS message may be. The server caps every
//! message (its `max_payload`, 1 MiB by default); a large model
//! conversation, a report with many findings or a job with large
//! dependency results would be refused. Such a payload goes through the
//! object store instead: stored content-addressed ([`Cluster::put_blob`]),
//! the message carries only its digest in the `Swarm-Blob` header (or, for
//! a key-value value, the text `swarm-blob:<digest>`), and the reader
//! fetches it and re-hashes it ([`Cluster::blob`]). Past the blob limit
//! ([`MAX_BLOB_BYTES`]) the error names both sizes.

use async_nats::HeaderMap;

use super::ClusterError;
use super::blobs::MAX_BLOB_BYTES;
use super::queue::Cluster;

/// The header naming a payload stored as a blob.
pub const BLOB_HEADER: &str = "Swarm-Blob";
/// The prefix of a key-value value stored as a blob.
pub const BLOB_VALUE: &str = "swarm-blob:";
/// Kept free under `max_payload` for headers and the subject.
const HEADROOM: usize = 8 << 10;

impl Cluster {
    /// The largest payload sent inline: the server's `max_payload` less
    /// room for headers.
    pub fn inline_limit(&self) -> usize {
        self.client().server_info().max_payload.saturating_sub(HEADROOM).max(1)
    }

    /// `payload` as a message: inline when it fits, else stored as a blob
    /// and named by the [`BLOB_HEADER`] header.
    pub async fn outgoing(&self, what: &str, payload: Vec<u8>) -> Result<(HeaderMap, Vec<u8>), ClusterError> {
        let mut headers = HeaderMap::new();
        if payload.len() <= self.inline_limit() {
            return Ok((headers, payload));
        }
        let digest = self.put_large(what, &payload).await?;
        headers.insert(BLOB_HEADER, digest.as_str());
        Ok((headers, Vec::new()))
    }

    /// A message's payload: its own bytes, or the blob its [`BLOB_HEADER`]
    /// names, re-hashed.
    pub async fn incoming(&self, headers: Option<&HeaderMap>, payload: &[u8]) -> Result<Vec<u8>, ClusterError> {
        match headers.and_then(|h| h.get(BLOB_HEADER)) {
            Some(digest) => self.blob(digest.as_str()).await,
            None => Ok(payload.to_vec()),
        }
    }

    /// `text` as a key-value value: itself when it fits, else
    /// `swarm-blob:<digest>` of it stored as a blob.
    pub async fn spill_text(&self, what: &str, text: String) -> Result<String, ClusterError> {
        if text.len() <= self.inline_limit() {
            return Ok(text);
        }
        Ok(format!("{BLOB_VALUE}{}", self.put_large(what, text.as_bytes()).await?))
    }

    /// A value written by [`Self::spill_text`], read back.
    pub async fn unspill_text(&self, value: &str) -> Result<String, ClusterError> {
        match value.strip_prefix(BLOB_VALUE) {
            None => Ok(value.to_string()),
            Some(digest) => {
                let bytes = self.blob(digest).await?;
                String::from_utf8(bytes)
                    .map_err(|e| ClusterError::Decode { what: format!("blob {digest}"), message: e.to_string() })
            }
        }
    }

    async fn put_large(&self, what: &str, bytes: &[u8]) -> Result<String, ClusterError> {
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(ClusterError::TooLarge { what: what.to_string(), bytes: bytes.len(), limit: MAX_BLOB_BYTES });
        }
        self.put_blob(bytes).await
    }
}
