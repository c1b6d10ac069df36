//! Output shapes of the ECR model: `Repository`, `ImageIdentifier`,
//! `ImageDetail`, `ImageFailure`, `Tag`. Wire names live here and in
//! `request.rs` only.

use registry::{ImageSummary, RepositoryRow};
use serde_json::{json, Map, Value};

use super::request::ImageIdInput;
use crate::hosts::{self, Endpoint, UrlStyle};

/// Milliseconds since the epoch as ECR's timestamp: seconds with a
/// fraction.
pub(crate) fn epoch(ms: i64) -> f64 {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(aws_protocol::time::epoch_seconds_f64)
        .unwrap_or(ms as f64 / 1000.0)
}

pub(crate) fn repository_arn(row: &RepositoryRow) -> String {
    format!(
        "arn:aws:ecr:{}:{}:repository/{}",
        row.region, row.account, row.name
    )
}

/// How URLs are written: the `--url-style` and the edge's port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UrlForm {
    pub style: UrlStyle,
    pub port: u16,
}

/// The host docker pushes to: `localhost:PORT` (docker speaks plain HTTP
/// to localhost without an insecure-registries entry) or, with
/// `--url-style aws`, `{account}.dkr.ecr.{region}.amazonaws.com:PORT`.
pub(crate) fn registry_host(form: UrlForm, account: &str, region: &str) -> String {
    hosts::public_host(
        form.style,
        form.port,
        Endpoint::Registry { account, region },
    )
}

/// `GetAuthorizationToken`'s `proxyEndpoint`: the registry's base URL.
pub(crate) fn proxy_endpoint(form: UrlForm, account: &str, region: &str) -> String {
    hosts::public_url(
        form.style,
        form.port,
        Endpoint::Registry { account, region },
    )
}

pub(crate) fn repository(row: &RepositoryRow, form: UrlForm) -> Value {
    let mut encryption = Map::new();
    encryption.insert("encryptionType".into(), json!(row.encryption_type));
    if let Some(key) = &row.kms_key {
        encryption.insert("kmsKey".into(), json!(key));
    }
    json!({
        "repositoryArn": repository_arn(row),
        "registryId": row.account,
        "repositoryName": row.name,
        "repositoryUri": format!(
            "{}/{}",
            registry_host(form, &row.account, &row.region),
            row.name
        ),
        "createdAt": epoch(row.created_at_ms),
        "imageTagMutability": row.tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": row.scan_on_push},
        "encryptionConfiguration": encryption,
    })
}

pub(crate) fn image_id(digest: &str, tag: Option<&str>) -> Value {
    let mut id = Map::new();
    id.insert("imageDigest".into(), json!(digest));
    if let Some(tag) = tag {
        id.insert("imageTag".into(), json!(tag));
    }
    Value::Object(id)
}

/// An `ImageIdentifier` echoed as the request gave it.
pub(crate) fn requested_id(id: &ImageIdInput) -> Value {
    let mut out = Map::new();
    if let Some(d) = &id.image_digest {
        out.insert("imageDigest".into(), json!(d));
    }
    if let Some(t) = &id.image_tag {
        out.insert("imageTag".into(), json!(t));
    }
    Value::Object(out)
}

pub(crate) fn image_failure(id: &ImageIdInput, code: &str, reason: &str) -> Value {
    json!({
        "imageId": requested_id(id),
        "failureCode": code,
        "failureReason": reason,
    })
}

pub(crate) fn image_detail(repo: &RepositoryRow, image: &ImageSummary) -> Value {
    let mut d = Map::new();
    d.insert("registryId".into(), json!(repo.account));
    d.insert("repositoryName".into(), json!(repo.name));
    d.insert("imageDigest".into(), json!(image.digest));
    if !image.tags.is_empty() {
        d.insert("imageTags".into(), json!(image.tags));
    }
    d.insert("imageSizeInBytes".into(), json!(image.image_size.max(0)));
    d.insert("imagePushedAt".into(), json!(epoch(image.pushed_at_ms)));
    d.insert("imageManifestMediaType".into(), json!(image.media_type));
    if let Some(a) = &image.artifact_type {
        d.insert("artifactMediaType".into(), json!(a));
    }
    if let Some(ms) = image.last_pull_ms {
        d.insert("lastRecordedPullTime".into(), json!(epoch(ms)));
    }
    d.insert("imageStatus".into(), json!("ACTIVE"));
    Value::Object(d)
}

/// Resource tags as stored in `tags_json` (`[{"Key","Value"}]`); a value
/// that does not parse reads as no tags.
pub(crate) fn stored_tags(tags_json: &str) -> Vec<(String, String)> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(tags_json) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|t| {
            let key = t.get("Key")?.as_str()?;
            let value = t.get("Value").and_then(Value::as_str).unwrap_or("");
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// `[{"Key","Value"}]`, the wire shape and the stored shape of tags.
pub(crate) fn tag_list(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RepositoryRow {
        RepositoryRow {
            id: "id".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            name: "team/app".into(),
            created_at_ms: 1_767_225_600_123,
            tag_mutability: "IMMUTABLE".into(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
            tags_json: "[]".into(),
            lifecycle_policy: None,
            lifecycle_updated_ms: None,
            repository_policy: None,
        }
    }

    #[test]
    fn repository_shape() {
        assert_eq!(
            repository(&row(), local(4566)),
            json!({
                "repositoryArn": "arn:aws:ecr:eu-west-1:123456789012:repository/team/app",
                "registryId": "123456789012",
                "repositoryName": "team/app",
                "repositoryUri": "localhost:4566/team/app",
                "createdAt": 1_767_225_600.123,
                "imageTagMutability": "IMMUTABLE",
                "imageScanningConfiguration": {"scanOnPush": false},
                "encryptionConfiguration": {"encryptionType": "AES256"},
            })
        );
    }

    fn local(port: u16) -> UrlForm {
        UrlForm {
            style: UrlStyle::Local,
            port,
        }
    }

    #[test]
    fn repository_uri_in_aws_style() {
        let form = UrlForm {
            style: UrlStyle::Aws,
            port: 4566,
        };
        assert_eq!(
            repository(&row(), form)["repositoryUri"],
            json!("123456789012.dkr.ecr.eu-west-1.amazonaws.com:4566/team/app")
        );
        assert_eq!(
            proxy_endpoint(form, "123456789012", "eu-west-1"),
            "http://123456789012.dkr.ecr.eu-west-1.amazonaws.com:4566"
        );
    }

    #[test]
    fn image_detail_shape() {
        let mut image = ImageSummary {
            digest: "sha256:ab".into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: Some("application/vnd.oci.image.config.v1+json".into()),
            image_size: 42,
            pushed_at_ms: 1_767_225_700_500,
            last_pull_ms: None,
            tags: vec!["1.0".into(), "latest".into()],
        };
        assert_eq!(
            image_detail(&row(), &image),
            json!({
                "registryId": "123456789012",
                "repositoryName": "team/app",
                "imageDigest": "sha256:ab",
                "imageTags": ["1.0", "latest"],
                "imageSizeInBytes": 42,
                "imagePushedAt": 1_767_225_700.5,
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactMediaType": "application/vnd.oci.image.config.v1+json",
                "imageStatus": "ACTIVE",
            })
        );
        image.tags.clear();
        image.artifact_type = None;
        image.last_pull_ms = Some(1_767_229_300_000);
        let d = image_detail(&row(), &image);
        assert!(d.get("imageTags").is_none() && d.get("artifactMediaType").is_none());
        assert_eq!(d["lastRecordedPullTime"], json!(1_767_229_300.0));
    }

    #[test]
    fn tags_round_trip_and_tolerate_garbage() {
        let tags = vec![("a".to_string(), "1".to_string()), ("b".into(), "".into())];
        assert_eq!(stored_tags(&tag_list(&tags).to_string()), tags);
        assert!(stored_tags("not json").is_empty());
        assert!(stored_tags("{}").is_empty());
        assert_eq!(
            requested_id(&ImageIdInput {
                image_digest: None,
                image_tag: Some("v1".into())
            }),
            json!({"imageTag": "v1"})
        );
    }
}
