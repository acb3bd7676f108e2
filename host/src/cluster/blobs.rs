//! Content-addressed blobs in the team's object store: plugins and task
//! outputs, stored as `sha256-<hex>` and re-hashed by whoever reads them.
//! A worker never hands wasmtime bytes it did not verify against the
//! digest the task named, whoever could write to the store.

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use super::ClusterError;
use super::queue::Cluster;

/// Chunk size of stored blobs (the client's default), or less when the
/// server's max_payload is smaller.
const CHUNK_BYTES: usize = 128 << 10;

/// Largest blob read back, in bytes (a plugin or one task's output).
pub const MAX_BLOB_BYTES: usize = 64 << 20;

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn object_name(digest: &str) -> String {
    format!("sha256-{digest}")
}

impl Cluster {
    /// Stores `bytes` under their digest, which it returns.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<String, ClusterError> {
        let digest = sha256_hex(bytes);
        let name = object_name(&digest);
        if self.blobs.info(&name).await.is_err() {
            let mut reader = bytes;
            // Chunks fit in one message whatever the server's max_payload.
            let meta = async_nats::jetstream::object_store::ObjectMetadata {
                name: name.clone(),
                chunk_size: Some(self.inline_limit().min(CHUNK_BYTES)),
                ..Default::default()
            };
            self.blobs.put(meta, &mut reader).await.map_err(|e| ClusterError::js(format!("store {name}"), e))?;
        }
        Ok(digest)
    }

    /// The bytes stored under `digest`, refused unless they hash to it.
    pub async fn blob(&self, digest: &str) -> Result<Vec<u8>, ClusterError> {
        let name = object_name(digest);
        let mut object = self.blobs.get(&name).await.map_err(|e| ClusterError::js(format!("read {name}"), e))?;
        let mut bytes = Vec::new();
        (&mut object)
            .take(MAX_BLOB_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ClusterError::js(format!("read {name}"), e))?;
        if bytes.len() > MAX_BLOB_BYTES {
            return Err(ClusterError::js(format!("read {name}"), format!("over the {MAX_BLOB_BYTES}-byte blob limit")));
        }
        let actual = sha256_hex(&bytes);
        if actual != digest {
            return Err(ClusterError::DigestMismatch { expected: digest.to_string(), actual });
        }
        Ok(bytes)
    }

    /// The object store itself (for tools that inspect or repair it).
    pub fn blob_store(&self) -> &async_nats::jetstream::object_store::ObjectStore {
        &self.blobs
    }
}
