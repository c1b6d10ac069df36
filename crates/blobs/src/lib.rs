//! Content-addressed blob storage: image layers, configs and (later) zip
//! code, named by their sha256 digest.
//!
//! Uploads stream into a temporary file while being hashed; a blob becomes
//! visible under its digest only after the digest was checked, by an atomic
//! rename. Memory use never grows with blob size: bodies pass through in
//! bounded chunks.
//!
//! This crate knows digests, bytes and files; it does not know repositories,
//! manifests or which blobs are still referenced (that is the registry's).

mod digest;
mod fs;

use bytes::Bytes;
use futures::stream::BoxStream;

pub use digest::{Digest, DigestError};
pub use fs::FsBlobStore;

/// An error from the body a client streams in (e.g. it disconnected).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A body being uploaded.
pub type BodyStream = BoxStream<'static, Result<Bytes, BodyError>>;

/// A blob store shared behind the trait.
pub type SharedBlobStore = std::sync::Arc<dyn BlobStore>;

/// A blob (or a range of it) being read.
pub struct BlobRead {
    /// Size of the whole blob.
    pub total_size: u64,
    /// Bytes of the requested range.
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upload {0} is unknown")]
    UploadUnknown(String),
    #[error("upload {0} is busy with another request")]
    UploadBusy(String),
    #[error("upload {id} is at offset {current}, the chunk starts at {requested}")]
    RangeInvalid {
        id: String,
        current: u64,
        requested: u64,
    },
    #[error("upload {id} would exceed the {limit}-byte limit for one blob")]
    TooLarge { id: String, limit: u64 },
    #[error("the client's body failed mid-stream: {0}")]
    Body(BodyError),
    #[error("uploaded content has digest {computed}, not the {expected} the client named")]
    DigestMismatch { expected: String, computed: String },
    #[error("requested range {start}-{end} is outside the blob of {size} bytes")]
    RangeNotSatisfiable { start: u64, end: u64, size: u64 },
}

/// Where blobs live. The filesystem store is the default; an S3-compatible
/// store implements the same operations for multi-node deployments.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a stored blob, `None` if absent.
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;

    /// Reads a blob, or the inclusive byte range `(start, end)` of it.
    async fn read(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<Option<BlobRead>, BlobError>;

    /// Deletes a stored blob; `false` if it was absent.
    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError>;

    /// Opens a new, empty upload session.
    async fn upload_start(&self, id: &str) -> Result<(), BlobError>;

    /// Bytes received so far by an upload session, `None` if unknown.
    async fn upload_len(&self, id: &str) -> Result<Option<u64>, BlobError>;

    /// Appends a streamed body to an upload. With `expected_offset`, the
    /// body must start exactly where the upload ends (else `RangeInvalid`).
    /// If the body fails mid-stream the upload is rolled back to where it
    /// was, so it can be resumed. Returns the new length.
    async fn upload_append(
        &self,
        id: &str,
        expected_offset: Option<u64>,
        body: BodyStream,
        max_total: u64,
    ) -> Result<u64, BlobError>;

    /// Checks the upload's digest and makes it the blob `digest`. On a
    /// mismatch nothing is stored and the upload is discarded. Returns the
    /// blob's size.
    async fn upload_commit(&self, id: &str, digest: &Digest) -> Result<u64, BlobError>;

    /// Discards an upload session and its bytes.
    async fn upload_abort(&self, id: &str) -> Result<(), BlobError>;

    /// Ids of upload sessions that have bytes on storage (to reconcile with
    /// the metadata after a crash).
    async fn upload_ids(&self) -> Result<Vec<String>, BlobError>;
}
