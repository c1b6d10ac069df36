//! Resolves a Lambda `ImageUri` against the built-in registry: the
//! repository, the single-platform manifest, its layers and the image
//! config (ENTRYPOINT, CMD, ENV, WORKDIR).
//!
//! Accepted forms: `localhost:PORT/repo:tag`, `127.0.0.1:PORT/repo@sha256:…`,
//! `repo:tag` (no host), and the ECR form
//! `{account}.dkr.ecr.{region}.amazonaws.com/repo:tag` in any region.

use std::sync::Arc;

use blobs::Digest;
use functions::{ImageError, ImageSource, ResolvedImage};
use futures::StreamExt;
use registry::manifest::{DOCKER_MANIFEST_LIST, OCI_INDEX};
use registry::{Reference, Registry, RegistryError};
use serde_json::Value;

/// Largest image config blob read.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

pub(crate) struct RegistryImages {
    pub registry: Arc<Registry>,
}

/// (account, region) pinned by the host part, repository, reference.
struct ParsedUri {
    host_account: Option<String>,
    host_region: Option<String>,
    repository: String,
    reference: String,
}

fn invalid(uri: &str, why: &str) -> ImageError {
    ImageError::Invalid(format!(
        "Source image {uri} is not valid: {why}. Push the image to Stratus' registry (docker push localhost:PORT/REPO:TAG) and use that URI."
    ))
}

/// Whether the first path segment of an image reference is a registry
/// host (as docker decides it) rather than part of the repository.
fn is_registry_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

/// A function's `ResolvedImageUri`: its image pinned by digest, under the
/// registry host its `ImageUri` named (`own_host`, Stratus' registry
/// address, when it named none).
pub(crate) fn resolved_image_uri(
    image_uri: &str,
    repository: &str,
    digest: &str,
    own_host: &str,
) -> String {
    let host = match image_uri.split_once('/') {
        Some((h, _)) if is_registry_host(h) => h,
        _ => own_host,
    };
    format!("{host}/{repository}@{digest}")
}

fn parse_uri(uri: &str) -> Result<ParsedUri, ImageError> {
    let (host, rest) = match uri.split_once('/') {
        Some((h, r)) if is_registry_host(h) => (Some(h), r),
        _ => (None, uri),
    };
    let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
        (repo, digest)
    } else {
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (rest, "latest"),
        }
    };
    let (mut host_account, mut host_region) = (None, None);
    if let Some(h) = host {
        let name = h.split(':').next().unwrap_or(h);
        let labels: Vec<&str> = name.split('.').collect();
        match labels.as_slice() {
            [account, "dkr", "ecr", region, ..] if aws_protocol::ids::is_account_id(account) => {
                host_account = Some(account.to_string());
                host_region = Some(region.to_string());
            }
            ["localhost"] | ["127", "0", "0", "1"] => {}
            _ if name.ends_with(".localhost") => {}
            _ => return Err(invalid(uri, "its registry host is not Stratus")),
        }
    }
    if repository.is_empty() {
        return Err(invalid(uri, "it names no repository"));
    }
    Ok(ParsedUri {
        host_account,
        host_region,
        repository: repository.to_string(),
        reference: reference.to_string(),
    })
}

fn registry_error(uri: &str, e: RegistryError) -> ImageError {
    match e {
        RegistryError::Internal(m) => ImageError::Internal(m),
        RegistryError::RepositoryNotFound { .. } => invalid(uri, "the repository does not exist"),
        RegistryError::ManifestUnknown { .. } => {
            invalid(uri, "the image does not exist or has been deleted")
        }
        other => invalid(uri, &other.to_string()),
    }
}

impl RegistryImages {
    async fn read_blob(
        &self,
        repo: &registry::RepositoryRow,
        digest: &Digest,
    ) -> Result<Vec<u8>, ImageError> {
        let mut read = self
            .registry
            .blob_read(repo, digest, None)
            .await
            .map_err(|e| ImageError::Internal(e.to_string()))?;
        if read.total_size as usize > MAX_CONFIG_BYTES {
            return Err(ImageError::Invalid(format!(
                "image config {digest} is larger than {MAX_CONFIG_BYTES} bytes"
            )));
        }
        let mut out = Vec::with_capacity(read.total_size as usize);
        while let Some(chunk) = read.stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| ImageError::Internal(e.to_string()))?);
        }
        Ok(out)
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl ImageSource for RegistryImages {
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        uri: &str,
    ) -> Result<ResolvedImage, ImageError> {
        let parsed = parse_uri(uri)?;
        let account = parsed.host_account.as_deref().unwrap_or(account);
        // An ECR host pins its region; a plain host looks in the caller's
        // region first, then anywhere in the account.
        let repo = match self
            .registry
            .resolve(
                account,
                Some(parsed.host_region.as_deref().unwrap_or(region)),
                &parsed.repository,
                false,
            )
            .await
        {
            Ok(r) => r,
            Err(RegistryError::RepositoryNotFound { .. }) => self
                .registry
                .resolve(account, None, &parsed.repository, false)
                .await
                .map_err(|e| registry_error(uri, e))?,
            Err(e) => return Err(registry_error(uri, e)),
        };
        let reference = Reference::parse(&parsed.reference).map_err(|e| registry_error(uri, e))?;
        let mut manifest = self
            .registry
            .manifest(&repo, &reference)
            .await
            .map_err(|e| registry_error(uri, e))?;
        if manifest.media_type == OCI_INDEX || manifest.media_type == DOCKER_MANIFEST_LIST {
            let index: Value = serde_json::from_slice(&manifest.content)
                .map_err(|e| ImageError::Internal(e.to_string()))?;
            let child = index
                .get("manifests")
                .and_then(Value::as_array)
                .and_then(|ms| {
                    ms.iter().find(|m| {
                        let p = m.get("platform");
                        p.and_then(|p| p.get("os")).and_then(Value::as_str) == Some("linux")
                            && p.and_then(|p| p.get("architecture"))
                                .and_then(Value::as_str)
                                == Some("amd64")
                    })
                })
                .and_then(|m| m.get("digest").and_then(Value::as_str))
                .ok_or_else(|| invalid(uri, "the image index has no linux/amd64 image"))?;
            let child = Digest::parse(child).map_err(|e| invalid(uri, &e.to_string()))?;
            manifest = self
                .registry
                .manifest(&repo, &Reference::Digest(child))
                .await
                .map_err(|e| registry_error(uri, e))?;
        }
        let m: Value = serde_json::from_slice(&manifest.content)
            .map_err(|e| ImageError::Internal(e.to_string()))?;
        let config_digest = m
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(uri, "the manifest has no image config"))?;
        let config_digest =
            Digest::parse(config_digest).map_err(|e| invalid(uri, &e.to_string()))?;
        let mut layers = Vec::new();
        let mut size = 0i64;
        for l in m
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let digest = l
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let media = l
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            size += l.get("size").and_then(Value::as_i64).unwrap_or(0);
            layers.push((digest, media));
        }
        let config_bytes = self.read_blob(&repo, &config_digest).await?;
        let config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| invalid(uri, &format!("its image config is not JSON: {e}")))?;
        let c = config.get("config").cloned().unwrap_or(Value::Null);
        let architecture = config
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("amd64")
            .to_string();
        if architecture != "amd64" {
            return Err(invalid(
                uri,
                &format!(
                    "the image is for {architecture}; this machine runs amd64 (x86_64) images"
                ),
            ));
        }
        Ok(ResolvedImage {
            account: repo.account.clone(),
            region: repo.region.clone(),
            repository: repo.name.clone(),
            manifest_digest: manifest.digest.clone(),
            layers,
            entrypoint: strings(c.get("Entrypoint")),
            cmd: strings(c.get("Cmd")),
            env: strings(c.get("Env")),
            working_dir: c
                .get("WorkingDir")
                .and_then(Value::as_str)
                .map(str::to_string),
            user: c
                .get("User")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            architecture,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_uris() {
        let p = parse_uri("localhost:4566/my_lambda:latest").expect("local");
        assert_eq!(
            (p.repository.as_str(), p.reference.as_str()),
            ("my_lambda", "latest")
        );
        let p = parse_uri("000000000000.dkr.ecr.ap-northeast-2.amazonaws.com/team/app@sha256:abc")
            .expect("ecr");
        assert_eq!(p.host_region.as_deref(), Some("ap-northeast-2"));
        assert_eq!(
            (p.repository.as_str(), p.reference.as_str()),
            ("team/app", "sha256:abc")
        );
        let p = parse_uri("my_lambda").expect("bare");
        assert_eq!(p.reference, "latest");
        assert!(parse_uri("docker.io/library/python:3.11").is_err());
    }

    #[test]
    fn resolved_uris_keep_the_registry_host() {
        let d = "sha256:abc";
        let check = |uri: &str, repo: &str, expected: &str| {
            assert_eq!(
                resolved_image_uri(uri, repo, d, "localhost:9000"),
                expected,
                "{uri}"
            );
        };
        check(
            "000000000000.dkr.ecr.ap-northeast-2.amazonaws.com/team/app:latest",
            "team/app",
            "000000000000.dkr.ecr.ap-northeast-2.amazonaws.com/team/app@sha256:abc",
        );
        check(
            "localhost:4566/app:v1",
            "app",
            "localhost:4566/app@sha256:abc",
        );
        check(
            "127.0.0.1:4566/app@sha256:abc",
            "app",
            "127.0.0.1:4566/app@sha256:abc",
        );
        check(
            "team/app:v1",
            "team/app",
            "localhost:9000/team/app@sha256:abc",
        );
        check("app", "app", "localhost:9000/app@sha256:abc");
    }
}
