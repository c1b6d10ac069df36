//! Image operations: ListImages, DescribeImages, BatchGetImage,
//! BatchDeleteImage, PutImage and BatchCheckLayerAvailability.
//!
//! The batch operations report per-image problems as `failures` and keep
//! going; only request-level problems (unknown repository, malformed
//! input) are exceptions.

use std::collections::HashSet;

use aws_protocol::error::AwsError;
use blobs::Digest;
use registry::{ImageSummary, ManifestRow, Reference, RegistryError, RepositoryRow};
use serde_json::{json, Map, Value};

use super::errors::{self, constraint, IMAGE_DIGEST_PATTERN, IMAGE_TAG_PATTERN};
use super::paging::{self, Cursor, DEFAULT_PAGE};
use super::render;
use super::request::{
    self, image_filter, list_len, looks_like_digest, max_results, registry_id, repository_name,
    str_len, ImageIdInput, TagStatus,
};
use super::{not_with, required_str, Ecr};

/// Failure codes and reasons of `ImageFailure`, as ECR words them.
const IMAGE_NOT_FOUND: (&str, &str) = ("ImageNotFound", "Requested image not found");
const MISSING_DIGEST_AND_TAG: (&str, &str) = (
    "MissingDigestAndTag",
    "Invalid request parameters: both tag and digest cannot be null",
);
const TAG_DOES_NOT_MATCH_DIGEST: (&str, &str) = (
    "ImageTagDoesNotMatchDigest",
    "Invalid request parameters: given tag does not map to the given digest",
);

fn invalid_image_digest() -> (&'static str, String) {
    (
        "InvalidImageDigest",
        format!("Invalid request parameters: image digest should satisfy the regex '{IMAGE_DIGEST_PATTERN}'"),
    )
}

fn invalid_image_tag() -> (&'static str, String) {
    (
        "InvalidImageTag",
        format!(
            "Invalid request parameters: image tag should satisfy the regex '{IMAGE_TAG_PATTERN}'"
        ),
    )
}

/// Why an `ImageIdentifier` names no image: a failure code and reason.
type Failure = (&'static str, String);

fn failure((code, reason): (&'static str, &str)) -> Failure {
    (code, reason.to_string())
}

/// The manifest an `ImageIdentifier` names, with the tag it named it by.
struct Found {
    manifest: ManifestRow,
    tag: Option<String>,
}

fn matches_status(image: &ImageSummary, status: TagStatus) -> bool {
    match status {
        TagStatus::Any => true,
        TagStatus::Tagged => !image.tags.is_empty(),
        TagStatus::Untagged => image.tags.is_empty(),
    }
}

fn summary(manifest: &ManifestRow, tags: Vec<String>) -> ImageSummary {
    ImageSummary {
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        artifact_type: manifest.artifact_type.clone(),
        image_size: manifest.image_size,
        pushed_at_ms: manifest.pushed_at_ms,
        last_pull_ms: manifest.last_pull_ms,
        tags,
    }
}

fn referenced_by_index(id: &ImageIdInput, parents: &[String]) -> Value {
    render::image_failure(
        id,
        "ImageReferencedByManifestList",
        &format!(
            "Requested image referenced by manifest list: [{}]",
            parents.join(", ")
        ),
    )
}

/// `{"<key>": [...], "nextToken"?}`.
fn page(key: &str, items: Vec<Value>, next: Option<Cursor>) -> Value {
    let mut out = Map::new();
    out.insert(key.into(), Value::Array(items));
    if let Some(next) = next {
        out.insert("nextToken".into(), json!(next.encode()));
    }
    Value::Object(out)
}

impl Ecr<'_> {
    /// Resolves an `ImageIdentifier` the way BatchGetImage and
    /// BatchDeleteImage do: an unusable or unknown id is a failure.
    async fn find_image(
        &self,
        repo: &RepositoryRow,
        id: &ImageIdInput,
    ) -> Result<Result<Found, Failure>, AwsError> {
        let registry = &self.app.registry;
        let fail = self.error(Some(&repo.name));
        if id.image_digest.is_none() && id.image_tag.is_none() {
            return Ok(Err(failure(MISSING_DIGEST_AND_TAG)));
        }
        if let Some(d) = &id.image_digest {
            if !looks_like_digest(d) {
                return Ok(Err(invalid_image_digest()));
            }
        }
        let manifest = match &id.image_tag {
            Some(tag) => {
                if !registry::is_valid_tag(tag) {
                    return Ok(Err(invalid_image_tag()));
                }
                match registry.manifest(repo, &Reference::Tag(tag.clone())).await {
                    Ok(m) => m,
                    Err(RegistryError::ManifestUnknown { .. }) => {
                        return Ok(Err(failure(IMAGE_NOT_FOUND)))
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            None => {
                let Some(Ok(digest)) = id.image_digest.as_deref().map(Digest::parse) else {
                    return Ok(Err(failure(IMAGE_NOT_FOUND)));
                };
                match registry.manifest(repo, &Reference::Digest(digest)).await {
                    Ok(m) => m,
                    Err(RegistryError::ManifestUnknown { .. }) => {
                        return Ok(Err(failure(IMAGE_NOT_FOUND)))
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
        };
        if let (Some(_), Some(d)) = (&id.image_tag, &id.image_digest) {
            if *d != manifest.digest {
                return Ok(Err(failure(TAG_DOES_NOT_MATCH_DIGEST)));
            }
        }
        Ok(Ok(Found {
            manifest,
            tag: id.image_tag.clone(),
        }))
    }

    async fn tags_of(&self, repo: &RepositoryRow, digest: &str) -> Result<Vec<String>, AwsError> {
        self.app
            .registry
            .tags_of(repo, digest)
            .await
            .map_err(self.error(Some(&repo.name)))
    }

    /// The repository name an image operation gives, after checking the
    /// members every image operation shares. AWS validates the whole
    /// input before it looks anything up, so callers fetch the repository
    /// only after their own checks.
    fn checked_name<'a>(
        &self,
        name: &'a Option<String>,
        registry: &Option<String>,
    ) -> Result<&'a str, AwsError> {
        let name = repository_name(name)?;
        registry_id(registry, &self.scope.account)?;
        Ok(name)
    }

    pub(super) async fn list_images(
        &self,
        input: request::ListImagesInput,
    ) -> Result<Value, AwsError> {
        let name = self.checked_name(&input.repository_name, &input.registry_id)?;
        let limit = max_results(input.max_results)?.unwrap_or(DEFAULT_PAGE);
        let (status, active) = image_filter(input.filter.as_ref())?;
        let cursor = Cursor::decode(input.next_token.as_deref(), "ListImages")?;
        let repo = self.repository(name).await?;
        if !active {
            return Ok(page("imageIds", Vec::new(), None));
        }
        let (ids, next) = paging::image_page(&self.app.registry, &repo, cursor, limit, |image| {
            if !matches_status(image, status) {
                Vec::new()
            } else if image.tags.is_empty() {
                vec![render::image_id(&image.digest, None)]
            } else {
                image
                    .tags
                    .iter()
                    .map(|t| render::image_id(&image.digest, Some(t)))
                    .collect()
            }
        })
        .await
        .map_err(self.error(Some(&repo.name)))?;
        Ok(page("imageIds", ids, next))
    }

    pub(super) async fn describe_images(
        &self,
        input: request::DescribeImagesInput,
    ) -> Result<Value, AwsError> {
        let name = self.checked_name(&input.repository_name, &input.registry_id)?;
        let max = max_results(input.max_results)?;
        let (status, active) = image_filter(input.filter.as_ref())?;
        if let Some(ids) = &input.image_ids {
            list_len(ids, "imageIds", 1, 100)?;
            if max.is_some() {
                return Err(not_with("maxResults", "imageIds"));
            }
            if input.next_token.as_deref().is_some_and(|t| !t.is_empty()) {
                return Err(not_with("nextToken", "imageIds"));
            }
            let repo = self.repository(name).await?;
            let mut seen = HashSet::new();
            let mut details = Vec::new();
            for id in ids {
                let found = match self.find_image(&repo, id).await? {
                    Ok(found) => found,
                    Err((code, reason)) => {
                        return Err(match code {
                            "ImageNotFound" | "ImageTagDoesNotMatchDigest" => {
                                errors::image_not_found(
                                    id.image_digest.as_deref(),
                                    id.image_tag.as_deref(),
                                    &repo.name,
                                    &repo.account,
                                )
                            }
                            _ => errors::invalid_parameter(reason),
                        })
                    }
                };
                if !seen.insert(found.manifest.digest.clone()) {
                    continue;
                }
                let tags = self.tags_of(&repo, &found.manifest.digest).await?;
                details.push(render::image_detail(&repo, &summary(&found.manifest, tags)));
            }
            return Ok(json!({"imageDetails": details}));
        }
        let limit = max.unwrap_or(DEFAULT_PAGE);
        let cursor = Cursor::decode(input.next_token.as_deref(), "DescribeImages")?;
        let repo = self.repository(name).await?;
        if !active {
            return Ok(page("imageDetails", Vec::new(), None));
        }
        let (details, next) =
            paging::image_page(&self.app.registry, &repo, cursor, limit, |image| {
                if matches_status(image, status) {
                    vec![render::image_detail(&repo, image)]
                } else {
                    Vec::new()
                }
            })
            .await
            .map_err(self.error(Some(&repo.name)))?;
        Ok(page("imageDetails", details, next))
    }

    pub(super) async fn batch_get_image(
        &self,
        input: request::BatchGetImageInput,
    ) -> Result<Value, AwsError> {
        let name = self.checked_name(&input.repository_name, &input.registry_id)?;
        let ids = request::require(&input.image_ids, "imageIds")?;
        list_len(ids, "imageIds", 1, 100)?;
        let accepted = input.accepted_media_types.as_deref().unwrap_or_default();
        if input.accepted_media_types.is_some() {
            list_len(accepted, "acceptedMediaTypes", 1, 100)?;
        }
        let repo = self.repository(name).await?;
        let mut images = Vec::new();
        let mut failures = Vec::new();
        let mut returned: HashSet<(String, Option<String>)> = HashSet::new();
        let mut pulled: HashSet<String> = HashSet::new();
        for id in ids {
            let found = match self.find_image(&repo, id).await? {
                Ok(found) => found,
                Err((code, reason)) => {
                    failures.push(render::image_failure(id, code, &reason));
                    continue;
                }
            };
            let m = &found.manifest;
            if !registry::manifest::accepted(&m.media_type, accepted) {
                failures.push(render::image_failure(
                    id,
                    IMAGE_NOT_FOUND.0,
                    &format!(
                        "Requested image has manifest media type '{}', which is not among the acceptedMediaTypes",
                        m.media_type
                    ),
                ));
                continue;
            }
            // By digest alone, an image is returned once per tag.
            let tags: Vec<Option<String>> = match &found.tag {
                Some(t) => vec![Some(t.clone())],
                None => {
                    let tags = self.tags_of(&repo, &m.digest).await?;
                    if tags.is_empty() {
                        vec![None]
                    } else {
                        tags.into_iter().map(Some).collect()
                    }
                }
            };
            let manifest_text = String::from_utf8_lossy(&m.content);
            for tag in tags {
                if !returned.insert((m.digest.clone(), tag.clone())) {
                    continue;
                }
                images.push(json!({
                    "registryId": repo.account,
                    "repositoryName": repo.name,
                    "imageId": render::image_id(&m.digest, tag.as_deref()),
                    "imageManifest": manifest_text,
                    "imageManifestMediaType": m.media_type,
                }));
            }
            if pulled.insert(m.digest.clone()) {
                self.app
                    .registry
                    .record_pull(&repo, &m.digest)
                    .await
                    .map_err(self.error(Some(&repo.name)))?;
            }
        }
        Ok(json!({"images": images, "failures": failures}))
    }

    pub(super) async fn batch_delete_image(
        &self,
        input: request::BatchDeleteImageInput,
    ) -> Result<Value, AwsError> {
        let name = self.checked_name(&input.repository_name, &input.registry_id)?;
        let ids = request::require(&input.image_ids, "imageIds")?;
        list_len(ids, "imageIds", 1, 100)?;
        let repo = self.repository(name).await?;
        let registry = &self.app.registry;
        let fail = self.error(Some(&repo.name));
        let mut deleted: Vec<Value> = Vec::new();
        let mut failures: Vec<Value> = Vec::new();

        // Resolve every id first, so that ids naming the same image (its
        // digest and one of its tags) delete it once.
        let mut whole: Vec<(&ImageIdInput, String)> = Vec::new();
        let mut tags: Vec<(&ImageIdInput, String, String)> = Vec::new();
        for id in ids {
            match self.find_image(&repo, id).await? {
                Err((code, reason)) => failures.push(render::image_failure(id, code, &reason)),
                Ok(Found {
                    manifest,
                    tag: None,
                }) => {
                    if !whole.iter().any(|(_, d)| *d == manifest.digest) {
                        whole.push((id, manifest.digest));
                    }
                }
                Ok(Found {
                    manifest,
                    tag: Some(tag),
                }) => {
                    if !tags.iter().any(|(_, _, t)| *t == tag) {
                        tags.push((id, manifest.digest, tag));
                    }
                }
            }
        }

        // Whole images, by digest. An index listed in the same request is
        // deleted before its children, so that they are free to go.
        let mut gone: HashSet<String> = HashSet::new();
        let mut pending = whole;
        loop {
            let mut blocked = Vec::new();
            let mut progressed = false;
            for (id, digest) in pending {
                let parents = registry
                    .manifest_parents(&repo, &digest)
                    .await
                    .map_err(&fail)?;
                if !parents.is_empty() {
                    blocked.push((id, digest, parents));
                    continue;
                }
                let image_tags = self.tags_of(&repo, &digest).await?;
                let removed = match Digest::parse(&digest) {
                    Ok(parsed) => match registry.delete_manifest(&repo, &parsed).await {
                        Ok(()) => true,
                        Err(RegistryError::ManifestUnknown { .. }) => false,
                        Err(e) => return Err(fail(e)),
                    },
                    Err(_) => false,
                };
                if !removed {
                    failures.push(render::image_failure(
                        id,
                        IMAGE_NOT_FOUND.0,
                        IMAGE_NOT_FOUND.1,
                    ));
                    continue;
                }
                if image_tags.is_empty() {
                    deleted.push(render::image_id(&digest, None));
                }
                for t in &image_tags {
                    deleted.push(render::image_id(&digest, Some(t)));
                }
                gone.insert(digest);
                progressed = true;
            }
            if blocked.is_empty() {
                break;
            }
            if !progressed {
                for (id, _, parents) in blocked {
                    failures.push(referenced_by_index(id, &parents));
                }
                break;
            }
            // Deleting an index may have freed its children: try again.
            pending = blocked.into_iter().map(|(id, d, _)| (id, d)).collect();
        }

        // Single tags. The image goes with its last tag, unless an index
        // still needs it.
        for (id, digest, tag) in tags {
            if gone.contains(&digest) {
                continue;
            }
            let remaining = self.tags_of(&repo, &digest).await?;
            if remaining.len() <= 1 {
                let parents = registry
                    .manifest_parents(&repo, &digest)
                    .await
                    .map_err(&fail)?;
                if !parents.is_empty() {
                    failures.push(referenced_by_index(id, &parents));
                    continue;
                }
            }
            match registry.delete_tag(&repo, &tag, true).await {
                Ok(d) => deleted.push(render::image_id(&d, Some(&tag))),
                Err(RegistryError::ManifestUnknown { .. }) => failures.push(render::image_failure(
                    id,
                    IMAGE_NOT_FOUND.0,
                    IMAGE_NOT_FOUND.1,
                )),
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(json!({"imageIds": deleted, "failures": failures}))
    }

    pub(super) async fn put_image(&self, input: request::PutImageInput) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let manifest = required_str(&input.image_manifest, "imageManifest")?;
        str_len(
            manifest,
            "imageManifest",
            1,
            registry::manifest::MAX_MANIFEST_BYTES,
        )?;
        if let Some(tag) = &input.image_tag {
            str_len(tag, "imageTag", 1, 300)?;
        }
        if let Some(media_type) = &input.image_manifest_media_type {
            str_len(media_type, "imageManifestMediaType", 1, 255)?;
        }
        let computed = Digest::of(manifest.as_bytes());
        let expected = match &input.image_digest {
            None => None,
            Some(d) if !looks_like_digest(d) => {
                return Err(constraint(
                    "imageDigest",
                    &format!("must satisfy regular expression '{IMAGE_DIGEST_PATTERN}'"),
                ))
            }
            Some(d) => match Digest::parse(d) {
                Ok(d) => Some(d),
                Err(_) => {
                    return Err((self.error(Some(name)))(RegistryError::DigestMismatch {
                        expected: d.clone(),
                        computed: computed.to_string(),
                    }))
                }
            },
        };
        let repo = self.repository(name).await?;
        let fail = self.error(Some(name));
        let tag = input.image_tag.as_deref();
        if let Some(t) = tag.filter(|t| registry::is_valid_tag(t)) {
            match self
                .app
                .registry
                .resolve_reference(&repo, &Reference::Tag(t.to_string()))
                .await
            {
                Ok(current)
                    if current == computed && expected.as_ref().is_none_or(|e| *e == computed) =>
                {
                    return Err(errors::image_already_exists(
                        computed.as_str(),
                        Some(t),
                        &repo.name,
                        &repo.account,
                    ))
                }
                Ok(_) | Err(RegistryError::ManifestUnknown { .. }) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        let stored = self
            .app
            .registry
            .put_manifest(
                &repo,
                tag,
                expected.as_ref(),
                manifest.as_bytes(),
                input.image_manifest_media_type.as_deref(),
            )
            .await
            .map_err(&fail)?;
        if stored.manifest_existed && (tag.is_none() || stored.tag_unchanged) {
            return Err(errors::image_already_exists(
                stored.digest.as_str(),
                tag,
                &repo.name,
                &repo.account,
            ));
        }
        Ok(json!({"image": {
            "registryId": repo.account,
            "repositoryName": repo.name,
            "imageId": render::image_id(stored.digest.as_str(), tag),
            "imageManifest": manifest,
            "imageManifestMediaType": stored.media_type,
        }}))
    }

    pub(super) async fn batch_check_layer_availability(
        &self,
        input: request::BatchCheckLayerAvailabilityInput,
    ) -> Result<Value, AwsError> {
        let name = self.checked_name(&input.repository_name, &input.registry_id)?;
        let digests = request::require(&input.layer_digests, "layerDigests")?;
        list_len(digests, "layerDigests", 1, 100)?;
        for (i, d) in digests.iter().enumerate() {
            str_len(d, &format!("layerDigests.{}.member", i + 1), 0, 1000)?;
        }
        let repo = self.repository(name).await?;
        let mut layers = Vec::new();
        let mut failures = Vec::new();
        for d in digests {
            if d.is_empty() {
                failures.push(json!({
                    "layerDigest": d,
                    "failureCode": "MissingLayerDigest",
                    "failureReason": "The layer digest is empty",
                }));
                continue;
            }
            if !looks_like_digest(d) {
                failures.push(json!({
                    "layerDigest": d,
                    "failureCode": "InvalidLayerDigest",
                    "failureReason": format!("Invalid layer digest: it should satisfy the regex '{IMAGE_DIGEST_PATTERN}'"),
                }));
                continue;
            }
            let size = match Digest::parse(d) {
                Ok(digest) => self
                    .app
                    .registry
                    .blob_size(&repo, &digest)
                    .await
                    .map_err(self.error(Some(&repo.name)))?,
                Err(_) => None,
            };
            layers.push(match size {
                Some(size) => json!({
                    "layerDigest": d,
                    "layerAvailability": "AVAILABLE",
                    "layerSize": size,
                }),
                None => json!({"layerDigest": d, "layerAvailability": "UNAVAILABLE"}),
            });
        }
        Ok(json!({"layers": layers, "failures": failures}))
    }
}
