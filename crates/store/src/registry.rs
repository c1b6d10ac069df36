//! Queries of the image registry: repositories, blobs and per-repository
//! blob links, manifests with their references, tags, upload sessions and
//! the garbage collector's sweeps.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One repository as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryRow {
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_at_ms: i64,
    pub tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub tags_json: String,
    pub lifecycle_policy: Option<String>,
    pub lifecycle_updated_ms: Option<i64>,
    pub repository_policy: Option<String>,
}

/// One manifest as stored (the exact bytes the client pushed).
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    pub repo_id: String,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    pub content: Vec<u8>,
    pub image_size: i64,
    pub pushed_at_ms: i64,
    pub last_pull_ms: Option<i64>,
    pub annotations_json: Option<String>,
}

/// A manifest without its bytes, with the tags that point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub image_size: i64,
    pub pushed_at_ms: i64,
    pub last_pull_ms: Option<i64>,
    pub tags: Vec<String>,
}

/// What a manifest references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A config or layer blob; must be linked to the repository.
    Blob,
    /// A child manifest of an index; must exist in the repository.
    Manifest,
}

impl RefKind {
    fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Manifest => "manifest",
        }
    }
}

/// A manifest to store, with what it references and the tag to point at it.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub row: ManifestRow,
    pub refs: Vec<(String, RefKind)>,
    pub tag: Option<String>,
    /// The repository refuses to move an existing tag.
    pub immutable_tags: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PutManifestOutcome {
    /// The manifest was already stored with these bytes.
    pub manifest_existed: bool,
    /// The tag already pointed at this manifest.
    pub tag_unchanged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    #[error("manifest references blobs not in the repository: {0:?}")]
    MissingBlobs(Vec<String>),
    #[error("manifest references manifests not in the repository: {0:?}")]
    MissingManifests(Vec<String>),
    #[error("tag {tag} exists and the repository's tags are immutable")]
    TagImmutable { tag: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        PutManifestError::Store(StoreError::Database(e))
    }
}

const REPO_COLUMNS: &str = "id, account, region, name, created_at_ms, tag_mutability, scan_on_push, encryption_type, kms_key, tags_json, lifecycle_policy, lifecycle_updated_ms, repository_policy";

fn repo_from_row(r: &AnyRow) -> Result<RepositoryRow, sqlx::Error> {
    Ok(RepositoryRow {
        id: r.try_get("id")?,
        account: r.try_get("account")?,
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        created_at_ms: r.try_get("created_at_ms")?,
        tag_mutability: r.try_get("tag_mutability")?,
        scan_on_push: r.try_get::<i64, _>("scan_on_push")? != 0,
        encryption_type: r.try_get("encryption_type")?,
        kms_key: r.try_get("kms_key")?,
        tags_json: r.try_get("tags_json")?,
        lifecycle_policy: r.try_get("lifecycle_policy")?,
        lifecycle_updated_ms: r.try_get("lifecycle_updated_ms")?,
        repository_policy: r.try_get("repository_policy")?,
    })
}

const MANIFEST_COLUMNS: &str = "repo_id, digest, media_type, artifact_type, subject, content, image_size, pushed_at_ms, last_pull_ms, annotations_json";

fn manifest_from_row(r: &AnyRow) -> Result<ManifestRow, sqlx::Error> {
    Ok(ManifestRow {
        repo_id: r.try_get("repo_id")?,
        digest: r.try_get("digest")?,
        media_type: r.try_get("media_type")?,
        artifact_type: r.try_get("artifact_type")?,
        subject: r.try_get("subject")?,
        content: r.try_get("content")?,
        image_size: r.try_get("image_size")?,
        pushed_at_ms: r.try_get("pushed_at_ms")?,
        last_pull_ms: r.try_get("last_pull_ms")?,
        annotations_json: r.try_get("annotations_json")?,
    })
}

impl Store {
    // ----- repositories -------------------------------------------------

    /// Inserts a repository; `Ok(false)` when one with the same account,
    /// region and name exists.
    pub async fn repo_insert(&self, repo: &RepositoryRow) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "INSERT INTO repositories (id, account, region, name, created_at_ms, tag_mutability, scan_on_push, encryption_type, kms_key, tags_json, lifecycle_policy, lifecycle_updated_ms, repository_policy)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (account, region, name) DO NOTHING",
        )
        .bind(&repo.id)
        .bind(&repo.account)
        .bind(&repo.region)
        .bind(&repo.name)
        .bind(repo.created_at_ms)
        .bind(&repo.tag_mutability)
        .bind(repo.scan_on_push as i64)
        .bind(&repo.encryption_type)
        .bind(&repo.kms_key)
        .bind(&repo.tags_json)
        .bind(&repo.lifecycle_policy)
        .bind(repo.lifecycle_updated_ms)
        .bind(&repo.repository_policy)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Rewrites a repository's mutable settings (everything but identity
    /// and creation time).
    pub async fn repo_update(&self, repo: &RepositoryRow) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "UPDATE repositories SET tag_mutability = $2, scan_on_push = $3, encryption_type = $4, kms_key = $5, tags_json = $6, lifecycle_policy = $7, lifecycle_updated_ms = $8, repository_policy = $9 WHERE id = $1",
        )
        .bind(&repo.id)
        .bind(&repo.tag_mutability)
        .bind(repo.scan_on_push as i64)
        .bind(&repo.encryption_type)
        .bind(&repo.kms_key)
        .bind(&repo.tags_json)
        .bind(&repo.lifecycle_policy)
        .bind(repo.lifecycle_updated_ms)
        .bind(&repo.repository_policy)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn repo_get(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<RepositoryRow>, StoreError> {
        let sql = format!(
            "SELECT {REPO_COLUMNS} FROM repositories WHERE account = $1 AND region = $2 AND name = $3"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(region)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(repo_from_row).transpose()?)
    }

    /// Repositories of an account with this name, in any region.
    pub async fn repo_find_by_name(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Vec<RepositoryRow>, StoreError> {
        let sql = format!(
            "SELECT {REPO_COLUMNS} FROM repositories WHERE account = $1 AND name = $2 ORDER BY region"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .bind(name)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(repo_from_row).collect::<Result<_, _>>()?)
    }

    /// A page of an account's repositories in one region, by name, strictly
    /// after `after`.
    pub async fn repo_list(
        &self,
        account: &str,
        region: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RepositoryRow>, StoreError> {
        let sql = format!(
            "SELECT {REPO_COLUMNS} FROM repositories WHERE account = $1 AND region = $2 AND name > $3 ORDER BY name LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .bind(region)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(repo_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn repo_image_count(&self, repo_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM manifests WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Deletes a repository with its manifests, tags, links and uploads.
    /// Blob files are left to the garbage collector. Returns the upload ids
    /// that were open, so their temp files can be removed.
    pub async fn repo_delete(&self, repo_id: &str) -> Result<Vec<String>, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let uploads: Vec<String> = sqlx::query("SELECT id FROM uploads WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for table in [
            "tags",
            "manifest_refs",
            "manifests",
            "repo_blobs",
            "uploads",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE repo_id = $1"))
                .bind(repo_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(uploads)
    }

    // ----- blobs ----------------------------------------------------------

    /// Size of a blob if it is linked to the repository.
    pub async fn blob_in_repo(
        &self,
        repo_id: &str,
        digest: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT b.size AS size FROM repo_blobs l JOIN blobs b ON b.digest = l.digest WHERE l.repo_id = $1 AND l.digest = $2",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("size")).transpose()?)
    }

    /// Size of a blob if it is stored at all (in any repository).
    pub async fn blob_size(&self, digest: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("size")).transpose()?)
    }

    /// Records a stored blob and links it to the repository (refreshing the
    /// link time, which the garbage collector's grace period reads).
    pub async fn blob_link(
        &self,
        repo_id: &str,
        digest: &str,
        size: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO blobs (digest, size, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(size)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at_ms) VALUES ($1, $2, $3) ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at_ms = $3",
        )
        .bind(repo_id)
        .bind(digest)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a blob's link to a repository; `false` if it was not linked.
    pub async fn blob_unlink(&self, repo_id: &str, digest: &str) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query("DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ----- manifests and tags ------------------------------------------------

    pub async fn manifest_get(
        &self,
        repo_id: &str,
        digest: &str,
    ) -> Result<Option<ManifestRow>, StoreError> {
        let sql =
            format!("SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repo_id = $1 AND digest = $2");
        let row = sqlx::query(&sql)
            .bind(repo_id)
            .bind(digest)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(manifest_from_row).transpose()?)
    }

    pub async fn tag_get(&self, repo_id: &str, tag: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2")
            .bind(repo_id)
            .bind(tag)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("digest")).transpose()?)
    }

    /// Stores a manifest, its references and its tag in one transaction,
    /// after checking every referenced blob and manifest is in the
    /// repository and the tag may move.
    pub async fn manifest_put(
        &self,
        m: &NewManifest,
    ) -> Result<PutManifestOutcome, PutManifestError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let repo_id = &m.row.repo_id;
        let mut missing_blobs = Vec::new();
        let mut missing_manifests = Vec::new();
        for (child, kind) in &m.refs {
            let sql = match kind {
                RefKind::Blob => {
                    "SELECT 1 AS one FROM repo_blobs WHERE repo_id = $1 AND digest = $2"
                }
                RefKind::Manifest => {
                    "SELECT 1 AS one FROM manifests WHERE repo_id = $1 AND digest = $2"
                }
            };
            let found = sqlx::query(sql)
                .bind(repo_id)
                .bind(child)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                match kind {
                    RefKind::Blob => missing_blobs.push(child.clone()),
                    RefKind::Manifest => missing_manifests.push(child.clone()),
                }
            }
        }
        if !missing_blobs.is_empty() {
            return Err(PutManifestError::MissingBlobs(missing_blobs));
        }
        if !missing_manifests.is_empty() {
            return Err(PutManifestError::MissingManifests(missing_manifests));
        }
        let mut tag_unchanged = false;
        if let Some(tag) = &m.tag {
            let existing = sqlx::query("SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2")
                .bind(repo_id)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(existing) = existing {
                let existing: String = existing.try_get("digest")?;
                if m.immutable_tags {
                    return Err(PutManifestError::TagImmutable { tag: tag.clone() });
                }
                tag_unchanged = existing == m.row.digest;
            }
        }
        let r = &m.row;
        let inserted = sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, subject, content, image_size, pushed_at_ms, last_pull_ms, annotations_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(&r.repo_id)
        .bind(&r.digest)
        .bind(&r.media_type)
        .bind(&r.artifact_type)
        .bind(&r.subject)
        .bind(&r.content)
        .bind(r.image_size)
        .bind(r.pushed_at_ms)
        .bind(r.last_pull_ms)
        .bind(&r.annotations_json)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            for (child, kind) in &m.refs {
                sqlx::query(
                    "INSERT INTO manifest_refs (repo_id, manifest_digest, child_digest, kind) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(repo_id)
                .bind(&r.digest)
                .bind(child)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(tag) = &m.tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, tag, digest, updated_at_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repo_id, tag) DO UPDATE SET digest = $3, updated_at_ms = $4",
            )
            .bind(repo_id)
            .bind(tag)
            .bind(&r.digest)
            .bind(r.pushed_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(PutManifestOutcome {
            manifest_existed: !inserted,
            tag_unchanged,
        })
    }

    /// Deletes a manifest with its tags and references; `false` if absent.
    pub async fn manifest_delete(&self, repo_id: &str, digest: &str) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a tag. With `drop_untagged`, the manifest it pointed at is
    /// deleted too when no tag is left on it (ECR's BatchDeleteImage by
    /// tag). Returns the digest the tag pointed at.
    pub async fn tag_delete(
        &self,
        repo_id: &str,
        tag: &str,
        drop_untagged: bool,
    ) -> Result<Option<String>, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let Some(row) = sqlx::query("SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2")
            .bind(repo_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let digest: String = row.try_get("digest")?;
        sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND tag = $2")
            .bind(repo_id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        if drop_untagged {
            let left: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM tags WHERE repo_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(&digest)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            if left == 0 {
                sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
                    .bind(repo_id)
                    .bind(&digest)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2",
                )
                .bind(repo_id)
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(digest))
    }

    /// Tags of a repository in lexical order, strictly after `after`.
    pub async fn tags_list(
        &self,
        repo_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT tag FROM tags WHERE repo_id = $1 AND tag > $2 ORDER BY tag LIMIT $3",
        )
        .bind(repo_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("tag"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn tags_of(&self, repo_id: &str, digest: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT tag FROM tags WHERE repo_id = $1 AND digest = $2 ORDER BY tag")
                .bind(repo_id)
                .bind(digest)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("tag"))
            .collect::<Result<_, _>>()?)
    }

    /// A page of a repository's manifests by digest (strictly after
    /// `after`), each with its tags.
    pub async fn images_page(
        &self,
        repo_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ImageSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, image_size, pushed_at_ms, last_pull_ms FROM manifests
             WHERE repo_id = $1 AND digest > $2 ORDER BY digest LIMIT $3",
        )
        .bind(repo_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let digest: String = r.try_get("digest")?;
            let tags = self.tags_of(repo_id, &digest).await?;
            out.push(ImageSummary {
                media_type: r.try_get("media_type")?,
                artifact_type: r.try_get("artifact_type")?,
                image_size: r.try_get("image_size")?,
                pushed_at_ms: r.try_get("pushed_at_ms")?,
                last_pull_ms: r.try_get("last_pull_ms")?,
                digest,
                tags,
            });
        }
        Ok(out)
    }

    /// Manifests of the repository whose `subject` is `digest`.
    pub async fn referrers(
        &self,
        repo_id: &str,
        digest: &str,
    ) -> Result<Vec<ManifestRow>, StoreError> {
        let sql = format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repo_id = $1 AND subject = $2 ORDER BY digest LIMIT 10000"
        );
        let rows = sqlx::query(&sql)
            .bind(repo_id)
            .bind(digest)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(manifest_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Index manifests in the repository that list `digest` as a child.
    pub async fn manifest_parents(
        &self,
        repo_id: &str,
        digest: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT manifest_digest FROM manifest_refs WHERE repo_id = $1 AND child_digest = $2 AND kind = 'manifest'",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("manifest_digest"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn manifest_touch_pull(
        &self,
        repo_id: &str,
        digest: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _w = self.writer().await;
        sqlx::query("UPDATE manifests SET last_pull_ms = $3 WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    // ----- upload sessions -------------------------------------------------

    pub async fn upload_insert(
        &self,
        id: &str,
        repo_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _w = self.writer().await;
        sqlx::query("INSERT INTO uploads (id, repo_id, started_at_ms) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(repo_id)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The repository an upload session belongs to.
    pub async fn upload_repo(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT repo_id FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("repo_id")).transpose()?)
    }

    pub async fn upload_delete(&self, id: &str) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every known upload session id.
    pub async fn upload_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM uploads")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    /// Deletes upload sessions started before `cutoff_ms`, returning their ids.
    pub async fn uploads_expire(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError> {
        let _w = self.writer().await;
        let rows = sqlx::query("DELETE FROM uploads WHERE started_at_ms < $1 RETURNING id")
            .bind(cutoff_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    // ----- garbage collection ------------------------------------------------

    /// Drops repository links to blobs that no manifest of that repository
    /// references and that were linked before `cutoff_ms`.
    pub async fn gc_unlink_unreferenced(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "DELETE FROM repo_blobs WHERE linked_at_ms < $1 AND NOT EXISTS (
                SELECT 1 FROM manifest_refs r WHERE r.repo_id = repo_blobs.repo_id AND r.child_digest = repo_blobs.digest AND r.kind = 'blob')",
        )
        .bind(cutoff_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes blob rows no repository links to, created before
    /// `cutoff_ms`; returns their digests and sizes so the files can go.
    pub async fn gc_delete_dead_blobs(
        &self,
        cutoff_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let _w = self.writer().await;
        let rows = sqlx::query(
            "DELETE FROM blobs WHERE created_at_ms < $1 AND NOT EXISTS (
                SELECT 1 FROM repo_blobs l WHERE l.digest = blobs.digest) RETURNING digest, size",
        )
        .bind(cutoff_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("digest")?, r.try_get("size")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        (dir, store)
    }

    fn repo(id: &str, name: &str) -> RepositoryRow {
        RepositoryRow {
            id: id.into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            name: name.into(),
            created_at_ms: 1,
            tag_mutability: "MUTABLE".into(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
            tags_json: "[]".into(),
            lifecycle_policy: None,
            lifecycle_updated_ms: None,
            repository_policy: None,
        }
    }

    fn manifest(repo_id: &str, digest: &str) -> ManifestRow {
        ManifestRow {
            repo_id: repo_id.into(),
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: None,
            content: b"{}".to_vec(),
            image_size: 3,
            pushed_at_ms: 5,
            last_pull_ms: None,
            annotations_json: None,
        }
    }

    #[tokio::test]
    async fn repository_names_are_unique_per_account_and_region() {
        let (_d, s) = store().await;
        assert!(s.repo_insert(&repo("a", "app")).await.expect("insert"));
        assert!(!s.repo_insert(&repo("b", "app")).await.expect("insert dup"));
        let mut other = repo("c", "app");
        other.region = "eu-west-1".into();
        assert!(s.repo_insert(&other).await.expect("other region"));
        assert_eq!(
            s.repo_find_by_name("000000000000", "app")
                .await
                .expect("find")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn manifest_put_checks_blobs_and_immutable_tags() {
        let (_d, s) = store().await;
        s.repo_insert(&repo("r", "app")).await.expect("insert");
        let new = NewManifest {
            row: manifest("r", "sha256:m1"),
            refs: vec![("sha256:l1".into(), RefKind::Blob)],
            tag: Some("v1".into()),
            immutable_tags: true,
        };
        match s.manifest_put(&new).await {
            Err(PutManifestError::MissingBlobs(m)) => assert_eq!(m, vec!["sha256:l1".to_string()]),
            other => panic!("expected missing blobs, got {other:?}"),
        }
        s.blob_link("r", "sha256:l1", 3, 1).await.expect("link");
        let out = s.manifest_put(&new).await.expect("put");
        assert!(!out.manifest_existed);
        assert!(matches!(
            s.manifest_put(&new).await,
            Err(PutManifestError::TagImmutable { .. })
        ));
        assert_eq!(
            s.tag_get("r", "v1").await.expect("tag").as_deref(),
            Some("sha256:m1")
        );
        // referenced blobs survive the collector; unreferenced ones do not
        s.blob_link("r", "sha256:l2", 3, 1).await.expect("link");
        assert_eq!(s.gc_unlink_unreferenced(10).await.expect("gc"), 1);
        let dead = s.gc_delete_dead_blobs(10).await.expect("gc");
        assert_eq!(dead, vec![("sha256:l2".to_string(), 3)]);
        assert_eq!(
            s.tag_delete("r", "v1", true).await.expect("del").as_deref(),
            Some("sha256:m1")
        );
        assert!(s
            .manifest_get("r", "sha256:m1")
            .await
            .expect("get")
            .is_none());
    }
}
