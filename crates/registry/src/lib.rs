//! The image registry: repositories, blobs, manifests, tags and upload
//! sessions, with ECR's rules (tag immutability, repository scoping by
//! account and region) and the garbage collector.
//!
//! Both faces of the registry — the OCI distribution HTTP API and the ECR
//! JSON API — call this crate; neither knows the other. This crate knows
//! no HTTP: wire names and status codes belong to the server's surfaces.
//!
//! Invariants:
//! - a blob is visible in a repository only after its digest was checked
//!   and it was linked there;
//! - a manifest is stored only if every blob and child manifest it names
//!   is in the same repository (checked in the transaction that stores it);
//! - the collector deletes a blob only when no repository links it, and
//!   only links older than its grace period, so pushes in flight (blobs
//!   uploaded, manifest not yet put) are never collected.

pub mod manifest;
pub mod names;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blobs::{BlobError, BlobRead, BodyStream, Digest, SharedBlobStore};
use store::{NewManifest, PutManifestError, RefKind, Store, StoreError};
use tokio::sync::RwLock;

pub use names::{is_valid_repository_name, is_valid_tag, Reference};
pub use store::{ImageSummary, ManifestRow, RepositoryRow};

/// Account and region a request acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Create a repository on first push instead of answering NAME_UNKNOWN.
    pub auto_create_repositories: bool,
    /// Region for repositories created by a push and for ambiguous names.
    pub default_region: String,
    /// Largest blob accepted.
    pub max_blob_bytes: u64,
    /// Upload sessions idle longer than this are discarded by the collector.
    pub upload_expiry: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            auto_create_repositories: false,
            default_region: "us-east-1".into(),
            max_blob_bytes: 52_000 * 1024 * 1024,
            upload_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// Everything that can go wrong in a registry operation. Each surface maps
/// these to its own wire errors with one exhaustive `match`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "the repository with name '{name}' does not exist in the registry with id '{account}'"
    )]
    RepositoryNotFound { name: String, account: String },
    #[error(
        "the repository with name '{name}' already exists in the registry with id '{account}'"
    )]
    RepositoryAlreadyExists { name: String, account: String },
    #[error("the repository with name '{name}' in registry with id '{account}' cannot be deleted because it still contains images")]
    RepositoryNotEmpty { name: String, account: String },
    #[error("invalid repository name {0:?}")]
    InvalidRepositoryName(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("invalid tag {0:?}")]
    InvalidTag(String),
    #[error("invalid digest: {0}")]
    DigestInvalid(String),
    #[error("uploaded content has digest {computed}, not {expected}")]
    DigestMismatch { expected: String, computed: String },
    #[error("manifest {reference} is unknown in repository {repository}")]
    ManifestUnknown {
        repository: String,
        reference: String,
    },
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest of {size} bytes exceeds the {limit}-byte limit")]
    ManifestTooLarge { size: usize, limit: usize },
    #[error("manifest references blobs that are not in the repository: {}", .0.join(", "))]
    ManifestBlobUnknown(Vec<String>),
    #[error("image index references manifests that are not in the repository: {}", .0.join(", "))]
    ReferencedManifestsUnknown(Vec<String>),
    #[error("the image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable.")]
    TagImmutable { tag: String, repository: String },
    #[error("blob {0} is unknown to the repository")]
    BlobUnknown(String),
    #[error("upload session {0} is unknown")]
    UploadUnknown(String),
    #[error("upload session {0} is busy with another request")]
    UploadBusy(String),
    #[error("chunk starts at {requested}, the upload has {current} bytes")]
    RangeInvalid { current: u64, requested: u64 },
    #[error("range not satisfiable: {0}")]
    RangeNotSatisfiable(String),
    #[error("blob exceeds the {limit}-byte limit")]
    BlobTooLarge { limit: u64 },
    #[error("the request body ended early: {0}")]
    BodyFailed(String),
    #[error("the lifecycle policy is not found for the repository '{name}'")]
    LifecyclePolicyNotFound { name: String },
    #[error("repository policy does not exist for the repository with name '{name}' in the registry with id '{account}'")]
    RepositoryPolicyNotFound { name: String, account: String },
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        RegistryError::Internal(e.to_string())
    }
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::UploadUnknown(id) => RegistryError::UploadUnknown(id),
            BlobError::UploadBusy(id) => RegistryError::UploadBusy(id),
            BlobError::RangeInvalid {
                current, requested, ..
            } => RegistryError::RangeInvalid { current, requested },
            BlobError::TooLarge { limit, .. } => RegistryError::BlobTooLarge { limit },
            BlobError::Body(e) => RegistryError::BodyFailed(e.to_string()),
            BlobError::DigestMismatch { expected, computed } => {
                RegistryError::DigestMismatch { expected, computed }
            }
            BlobError::RangeNotSatisfiable { start, end, size } => {
                RegistryError::RangeNotSatisfiable(format!(
                    "bytes {start}-{end} of a {size}-byte blob"
                ))
            }
            e @ BlobError::Io { .. } => RegistryError::Internal(e.to_string()),
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Settings of a new repository.
#[derive(Debug, Clone)]
pub struct NewRepository {
    pub name: String,
    pub tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags_json: String,
}

/// Outcome of storing a manifest.
#[derive(Debug, Clone)]
pub struct PutManifestResult {
    pub digest: Digest,
    pub media_type: String,
    pub subject: Option<String>,
    pub manifest_existed: bool,
    pub tag_unchanged: bool,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GcReport {
    pub uploads_expired: u64,
    pub links_dropped: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The registry service.
pub struct Registry {
    store: Arc<Store>,
    blobs: SharedBlobStore,
    config: RegistryConfig,
    /// Held shared while a blob is committed and linked, exclusively while
    /// the collector deletes blobs, so a blob being re-uploaded is never
    /// deleted under the upload.
    gc_lock: RwLock<()>,
}

impl Registry {
    pub fn new(store: Arc<Store>, blobs: SharedBlobStore, config: RegistryConfig) -> Registry {
        Registry {
            store,
            blobs,
            config,
            gc_lock: RwLock::new(()),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Reconciles upload sessions after a restart: files without a session
    /// row (crash between the two) are removed, rows without a file too.
    pub async fn recover(&self) -> Result<()> {
        let rows = self.store.upload_ids().await?;
        let files = self.blobs.upload_ids().await?;
        for f in files.iter().filter(|f| !rows.contains(f)) {
            self.blobs.upload_abort(f).await?;
        }
        for r in rows.iter().filter(|r| !files.contains(r)) {
            self.store.upload_delete(r).await?;
        }
        Ok(())
    }

    // ----- repositories ---------------------------------------------------

    pub async fn create_repository(
        &self,
        scope: &Scope,
        new: NewRepository,
    ) -> Result<RepositoryRow> {
        if !is_valid_repository_name(&new.name) {
            return Err(RegistryError::InvalidRepositoryName(new.name));
        }
        let row = RepositoryRow {
            id: uuid::Uuid::new_v4().to_string(),
            account: scope.account.clone(),
            region: scope.region.clone(),
            name: new.name.clone(),
            created_at_ms: now_ms(),
            tag_mutability: new.tag_mutability,
            scan_on_push: new.scan_on_push,
            encryption_type: new.encryption_type,
            kms_key: new.kms_key,
            tags_json: new.tags_json,
            lifecycle_policy: None,
            lifecycle_updated_ms: None,
            repository_policy: None,
        };
        if self.store.repo_insert(&row).await? {
            Ok(row)
        } else {
            Err(RegistryError::RepositoryAlreadyExists {
                name: new.name,
                account: scope.account.clone(),
            })
        }
    }

    pub async fn repository(&self, scope: &Scope, name: &str) -> Result<RepositoryRow> {
        self.store
            .repo_get(&scope.account, &scope.region, name)
            .await?
            .ok_or_else(|| RegistryError::RepositoryNotFound {
                name: name.to_string(),
                account: scope.account.clone(),
            })
    }

    pub async fn list_repositories(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepositoryRow>> {
        Ok(self
            .store
            .repo_list(&scope.account, &scope.region, after, limit)
            .await?)
    }

    pub async fn update_repository(&self, repo: &RepositoryRow) -> Result<()> {
        if self.store.repo_update(repo).await? {
            Ok(())
        } else {
            Err(RegistryError::RepositoryNotFound {
                name: repo.name.clone(),
                account: repo.account.clone(),
            })
        }
    }

    pub async fn delete_repository(
        &self,
        scope: &Scope,
        name: &str,
        force: bool,
    ) -> Result<RepositoryRow> {
        let repo = self.repository(scope, name).await?;
        if !force && self.store.repo_image_count(&repo.id).await? > 0 {
            return Err(RegistryError::RepositoryNotEmpty {
                name: name.to_string(),
                account: scope.account.clone(),
            });
        }
        for upload in self.store.repo_delete(&repo.id).await? {
            self.blobs.upload_abort(&upload).await?;
        }
        Ok(repo)
    }

    /// Finds the repository a registry request (`/v2/<name>/…`) names.
    /// `region` is known when the request came to an ECR-style host
    /// (`{account}.dkr.ecr.{region}.…`); on a plain host the name is looked
    /// up in every region of the account, preferring the default region.
    /// With `for_push` and auto-creation on, a missing repository is
    /// created in the default region.
    pub async fn resolve(
        &self,
        account: &str,
        region: Option<&str>,
        name: &str,
        for_push: bool,
    ) -> Result<RepositoryRow> {
        if !is_valid_repository_name(name) {
            return Err(RegistryError::InvalidRepositoryName(name.to_string()));
        }
        let found = match region {
            Some(r) => self.store.repo_get(account, r, name).await?,
            None => {
                let mut all = self.store.repo_find_by_name(account, name).await?;
                let default = all
                    .iter()
                    .position(|r| r.region == self.config.default_region);
                match default {
                    Some(i) => Some(all.swap_remove(i)),
                    None => all.into_iter().next(),
                }
            }
        };
        if let Some(repo) = found {
            return Ok(repo);
        }
        let scope = Scope {
            account: account.to_string(),
            region: region.unwrap_or(&self.config.default_region).to_string(),
        };
        if for_push && self.config.auto_create_repositories {
            let new = NewRepository {
                name: name.to_string(),
                tag_mutability: "MUTABLE".into(),
                scan_on_push: false,
                encryption_type: "AES256".into(),
                kms_key: None,
                tags_json: "[]".into(),
            };
            return match self.create_repository(&scope, new).await {
                Err(RegistryError::RepositoryAlreadyExists { .. }) => {
                    self.repository(&scope, name).await
                }
                other => other,
            };
        }
        Err(RegistryError::RepositoryNotFound {
            name: name.to_string(),
            account: account.to_string(),
        })
    }

    // ----- manifests --------------------------------------------------------

    /// The digest a reference currently names in the repository.
    pub async fn resolve_reference(
        &self,
        repo: &RepositoryRow,
        reference: &Reference,
    ) -> Result<Digest> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => {
                let d = self.store.tag_get(&repo.id, t).await?.ok_or_else(|| {
                    RegistryError::ManifestUnknown {
                        repository: repo.name.clone(),
                        reference: t.clone(),
                    }
                })?;
                Digest::parse(&d).map_err(|e| RegistryError::Internal(e.to_string()))?
            }
        };
        Ok(digest)
    }

    pub async fn manifest(
        &self,
        repo: &RepositoryRow,
        reference: &Reference,
    ) -> Result<ManifestRow> {
        let digest = self.resolve_reference(repo, reference).await?;
        self.store
            .manifest_get(&repo.id, digest.as_str())
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown {
                repository: repo.name.clone(),
                reference: reference.to_string(),
            })
    }

    /// Records that a manifest was pulled (ECR's `lastRecordedPullTime`).
    pub async fn record_pull(&self, repo: &RepositoryRow, digest: &str) -> Result<()> {
        Ok(self
            .store
            .manifest_touch_pull(&repo.id, digest, now_ms())
            .await?)
    }

    /// Stores a manifest under a tag or its digest. `expected_digest` is the
    /// digest the client named (URL reference or ECR `imageDigest`).
    pub async fn put_manifest(
        &self,
        repo: &RepositoryRow,
        tag: Option<&str>,
        expected_digest: Option<&Digest>,
        bytes: &[u8],
        content_type: Option<&str>,
    ) -> Result<PutManifestResult> {
        if let Some(t) = tag {
            if !is_valid_tag(t) {
                return Err(RegistryError::InvalidTag(t.chars().take(300).collect()));
            }
        }
        let parsed = manifest::parse(bytes, content_type)?;
        let digest = Digest::of(bytes);
        if let Some(expected) = expected_digest {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    expected: expected.to_string(),
                    computed: digest.to_string(),
                });
            }
        }
        let image_size = if parsed.is_index {
            let mut max = 0;
            for child in &parsed.children {
                if let Some(m) = self.store.manifest_get(&repo.id, child).await? {
                    max = max.max(m.image_size);
                }
            }
            max
        } else {
            parsed.layers_size
        };
        let artifact_type = parsed
            .artifact_type
            .clone()
            .or_else(|| parsed.config_media_type.clone());
        let mut refs: Vec<(String, RefKind)> = parsed
            .blobs
            .iter()
            .map(|b| (b.clone(), RefKind::Blob))
            .collect();
        refs.extend(
            parsed
                .children
                .iter()
                .map(|c| (c.clone(), RefKind::Manifest)),
        );
        let new = NewManifest {
            row: ManifestRow {
                repo_id: repo.id.clone(),
                digest: digest.to_string(),
                media_type: parsed.media_type.clone(),
                artifact_type,
                subject: parsed.subject.clone(),
                content: bytes.to_vec(),
                image_size,
                pushed_at_ms: now_ms(),
                last_pull_ms: None,
                annotations_json: parsed.annotations.clone(),
            },
            refs,
            tag: tag.map(str::to_string),
            immutable_tags: repo.tag_mutability.starts_with("IMMUTABLE"),
        };
        match self.store.manifest_put(&new).await {
            Ok(outcome) => Ok(PutManifestResult {
                digest,
                media_type: parsed.media_type,
                subject: parsed.subject,
                manifest_existed: outcome.manifest_existed,
                tag_unchanged: outcome.tag_unchanged,
            }),
            Err(PutManifestError::MissingBlobs(b)) => Err(RegistryError::ManifestBlobUnknown(b)),
            Err(PutManifestError::MissingManifests(m)) => {
                Err(RegistryError::ReferencedManifestsUnknown(m))
            }
            Err(PutManifestError::TagImmutable { tag }) => Err(RegistryError::TagImmutable {
                tag,
                repository: repo.name.clone(),
            }),
            Err(PutManifestError::Store(e)) => Err(e.into()),
        }
    }

    /// Deletes a manifest and every tag on it.
    pub async fn delete_manifest(&self, repo: &RepositoryRow, digest: &Digest) -> Result<()> {
        if self
            .store
            .manifest_delete(&repo.id, digest.as_str())
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown {
                repository: repo.name.clone(),
                reference: digest.to_string(),
            })
        }
    }

    /// Removes a tag; with `drop_untagged` the image goes too when this was
    /// its last tag. Returns the digest the tag named.
    pub async fn delete_tag(
        &self,
        repo: &RepositoryRow,
        tag: &str,
        drop_untagged: bool,
    ) -> Result<String> {
        self.store
            .tag_delete(&repo.id, tag, drop_untagged)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown {
                repository: repo.name.clone(),
                reference: tag.to_string(),
            })
    }

    pub async fn manifest_parents(
        &self,
        repo: &RepositoryRow,
        digest: &str,
    ) -> Result<Vec<String>> {
        Ok(self.store.manifest_parents(&repo.id, digest).await?)
    }

    pub async fn tags_of(&self, repo: &RepositoryRow, digest: &str) -> Result<Vec<String>> {
        Ok(self.store.tags_of(&repo.id, digest).await?)
    }

    pub async fn images_page(
        &self,
        repo: &RepositoryRow,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ImageSummary>> {
        Ok(self.store.images_page(&repo.id, after, limit).await?)
    }

    pub async fn tags_list(
        &self,
        repo: &RepositoryRow,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(self.store.tags_list(&repo.id, after, limit).await?)
    }

    pub async fn referrers(
        &self,
        repo: &RepositoryRow,
        subject: &Digest,
    ) -> Result<Vec<ManifestRow>> {
        Ok(self.store.referrers(&repo.id, subject.as_str()).await?)
    }

    // ----- blobs and uploads ----------------------------------------------------

    /// Size of a blob visible in the repository.
    pub async fn blob_size(&self, repo: &RepositoryRow, digest: &Digest) -> Result<Option<u64>> {
        match self.store.blob_in_repo(&repo.id, digest.as_str()).await? {
            Some(size) => Ok(Some(size.max(0) as u64)),
            None => Ok(None),
        }
    }

    pub async fn blob_read(
        &self,
        repo: &RepositoryRow,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<BlobRead> {
        if self
            .store
            .blob_in_repo(&repo.id, digest.as_str())
            .await?
            .is_none()
        {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        self.blobs.read(digest, range).await?.ok_or_else(|| {
            RegistryError::Internal(format!(
                "blob {digest} is recorded but its content is missing"
            ))
        })
    }

    /// Removes a blob from a repository (the collector frees it later).
    pub async fn delete_blob(&self, repo: &RepositoryRow, digest: &Digest) -> Result<()> {
        if self.store.blob_unlink(&repo.id, digest.as_str()).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.to_string()))
        }
    }

    /// Links a blob of another repository of the same account into `repo`
    /// (cross-repository mount). `None` when the source does not have it.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryRow,
        digest: &Digest,
        from: &str,
    ) -> Result<Option<u64>> {
        let Ok(source) = self
            .resolve(&repo.account, Some(&repo.region), from, false)
            .await
        else {
            return Ok(None);
        };
        let Some(size) = self.store.blob_in_repo(&source.id, digest.as_str()).await? else {
            return Ok(None);
        };
        let _guard = self.gc_lock.read().await;
        self.store
            .blob_link(&repo.id, digest.as_str(), size, now_ms())
            .await?;
        Ok(Some(size.max(0) as u64))
    }

    pub async fn upload_start(&self, repo: &RepositoryRow) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.upload_start(&id).await?;
        self.store.upload_insert(&id, &repo.id, now_ms()).await?;
        Ok(id)
    }

    async fn check_upload(&self, repo: &RepositoryRow, id: &str) -> Result<()> {
        match self.store.upload_repo(id).await? {
            Some(r) if r == repo.id => Ok(()),
            _ => Err(RegistryError::UploadUnknown(id.chars().take(64).collect())),
        }
    }

    /// Bytes received so far by an upload session.
    pub async fn upload_status(&self, repo: &RepositoryRow, id: &str) -> Result<u64> {
        self.check_upload(repo, id).await?;
        self.blobs
            .upload_len(id)
            .await?
            .ok_or_else(|| RegistryError::UploadUnknown(id.to_string()))
    }

    /// Appends a body to an upload; `start` is the chunk's first byte when
    /// the client sent a `Content-Range`.
    pub async fn upload_append(
        &self,
        repo: &RepositoryRow,
        id: &str,
        start: Option<u64>,
        body: BodyStream,
    ) -> Result<u64> {
        self.check_upload(repo, id).await?;
        Ok(self
            .blobs
            .upload_append(id, start, body, self.config.max_blob_bytes)
            .await?)
    }

    /// Completes an upload as blob `digest`, with an optional last chunk.
    /// On a digest mismatch nothing is stored and the session is gone.
    pub async fn upload_finish(
        &self,
        repo: &RepositoryRow,
        id: &str,
        digest: &Digest,
        last_chunk: Option<(Option<u64>, BodyStream)>,
    ) -> Result<u64> {
        self.check_upload(repo, id).await?;
        if let Some((start, body)) = last_chunk {
            self.blobs
                .upload_append(id, start, body, self.config.max_blob_bytes)
                .await?;
        }
        let result = {
            let _guard = self.gc_lock.read().await;
            match self.blobs.upload_commit(id, digest).await {
                Ok(size) => {
                    self.store
                        .blob_link(&repo.id, digest.as_str(), size as i64, now_ms())
                        .await?;
                    Ok(size)
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(size) => {
                self.store.upload_delete(id).await?;
                Ok(size)
            }
            Err(e @ BlobError::DigestMismatch { .. }) => {
                self.store.upload_delete(id).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn upload_cancel(&self, repo: &RepositoryRow, id: &str) -> Result<()> {
        self.check_upload(repo, id).await?;
        self.store.upload_delete(id).await?;
        self.blobs.upload_abort(id).await?;
        Ok(())
    }

    // ----- garbage collection --------------------------------------------------

    /// Frees blobs no manifest references. Links younger than `grace` are
    /// kept (a push in flight uploads blobs before its manifest).
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport> {
        let now = now_ms();
        let cutoff = now - grace.as_millis() as i64;
        let mut report = GcReport::default();
        let expired = self
            .store
            .uploads_expire(now - self.config.upload_expiry.as_millis() as i64)
            .await?;
        for id in &expired {
            self.blobs.upload_abort(id).await?;
        }
        report.uploads_expired = expired.len() as u64;
        report.links_dropped = self.store.gc_unlink_unreferenced(cutoff).await?;
        let _guard = self.gc_lock.write().await;
        for (digest, size) in self.store.gc_delete_dead_blobs(cutoff).await? {
            if let Ok(d) = Digest::parse(&digest) {
                if self.blobs.delete(&d).await? {
                    report.blobs_deleted += 1;
                    report.bytes_freed += size.max(0) as u64;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn open(upload_expiry: Duration) -> (tempfile::TempDir, Registry, RepositoryRow) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open_sqlite(&dir.path().join("metadata.db"))
            .await
            .expect("open store");
        let blobs = blobs::FsBlobStore::open(&dir.path().join("blobs")).expect("open blobs");
        let registry = Registry::new(
            Arc::new(store),
            Arc::new(blobs),
            RegistryConfig {
                upload_expiry,
                ..RegistryConfig::default()
            },
        );
        let scope = Scope {
            account: "000000000000".into(),
            region: "us-east-1".into(),
        };
        let new = NewRepository {
            name: "app".into(),
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
            tags_json: "[]".into(),
        };
        let repo = registry
            .create_repository(&scope, new)
            .await
            .expect("create repository");
        (dir, registry, repo)
    }

    fn body(bytes: &'static [u8]) -> BodyStream {
        futures::stream::iter([Ok(bytes::Bytes::from_static(bytes))]).boxed()
    }

    /// A session its client abandoned (e.g. across a crash) is kept while
    /// young and goes with its file once older than the upload expiry.
    #[tokio::test]
    async fn the_collector_expires_abandoned_uploads_with_their_files() {
        let (dir, registry, repo) = open(Duration::from_secs(3600)).await;
        let id = registry.upload_start(&repo).await.expect("start");
        registry
            .upload_append(&repo, &id, None, body(b"partial"))
            .await
            .expect("append");
        let file = dir.path().join("blobs").join("uploads").join(&id);
        let report = registry
            .collect_garbage(Duration::ZERO)
            .await
            .expect("collect");
        assert_eq!(report.uploads_expired, 0);
        assert!(file.exists());
        assert_eq!(registry.upload_status(&repo, &id).await.expect("status"), 7);

        let (dir, registry, repo) = open(Duration::from_millis(1)).await;
        let id = registry.upload_start(&repo).await.expect("start");
        registry
            .upload_append(&repo, &id, None, body(b"partial"))
            .await
            .expect("append");
        let file = dir.path().join("blobs").join("uploads").join(&id);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut expired = 0;
        while expired == 0 {
            assert!(std::time::Instant::now() < deadline, "upload never expired");
            tokio::time::sleep(Duration::from_millis(2)).await;
            expired += registry
                .collect_garbage(Duration::ZERO)
                .await
                .expect("collect")
                .uploads_expired;
        }
        assert_eq!(expired, 1);
        assert!(!file.exists(), "expired upload's file is still there");
        assert!(matches!(
            registry.upload_status(&repo, &id).await,
            Err(RegistryError::UploadUnknown(_))
        ));
    }
}
