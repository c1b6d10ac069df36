//! Reading what a pushed manifest references. The bytes themselves are
//! stored untouched; this only extracts descriptors.

use blobs::Digest;
use serde_json::Value;

use crate::RegistryError;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// The largest manifest accepted (ECR's `imageManifest` limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub is_index: bool,
    /// Config and distributable layer blobs (image manifests).
    pub blobs: Vec<String>,
    /// Child manifests (indexes).
    pub children: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    /// Sum of layer sizes (image manifests).
    pub layers_size: i64,
    pub annotations: Option<String>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

fn descriptor(v: &Value, what: &str) -> Result<(String, i64, Option<String>), RegistryError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(format!("{what} is not a descriptor object")))?;
    let digest = obj
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    let digest = Digest::parse(digest).map_err(|e| invalid(format!("{what}: {e}")))?;
    let size = obj
        .get("size")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .ok_or_else(|| invalid(format!("{what} has no valid size")))?;
    let media_type = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((digest.to_string(), size, media_type))
}

/// Parses a manifest body, given the `Content-Type` it was pushed with.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, RegistryError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::ManifestTooLarge {
            size: bytes.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("manifest is not a JSON object"))?;
    let body_type = obj.get("mediaType").and_then(Value::as_str);
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/octet-stream" && *c != "application/json");
    if let Some(t) = body_type.or(header_type) {
        if DOCKER_SCHEMA1.contains(&t) {
            return Err(invalid("Docker image manifest schema 1 is not supported; push with a current Docker (schema 2) or OCI client"));
        }
    }
    match obj.get("schemaVersion").and_then(Value::as_i64) {
        Some(2) => {}
        Some(1) => {
            return Err(invalid(
                "Docker image manifest schema 1 is not supported; push with a current Docker (schema 2) or OCI client",
            ))
        }
        _ => return Err(invalid("manifest must have schemaVersion 2")),
    }
    if let (Some(b), Some(h)) = (body_type, header_type) {
        if b != h {
            return Err(invalid(format!(
                "manifest mediaType {b} does not match the Content-Type {h} it was pushed with"
            )));
        }
    }
    let media_type = match body_type.or(header_type) {
        Some(t) => t.to_string(),
        None if obj.contains_key("manifests") => OCI_INDEX.to_string(),
        None if obj.contains_key("config") => OCI_MANIFEST.to_string(),
        None => {
            return Err(invalid(
                "manifest has no mediaType and no Content-Type names one",
            ))
        }
    };
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_MANIFEST_LIST
        || obj.contains_key("manifests");
    let subject = match obj.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor(s, "subject")?.0),
    };
    let annotations = obj
        .get("annotations")
        .filter(|a| a.is_object())
        .map(|a| a.to_string());
    let mut parsed = ParsedManifest {
        media_type,
        is_index,
        blobs: Vec::new(),
        children: Vec::new(),
        subject,
        artifact_type: obj
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        config_media_type: None,
        layers_size: 0,
        annotations,
    };
    if is_index {
        let manifests = obj
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("image index has no manifests array"))?;
        for (i, m) in manifests.iter().enumerate() {
            parsed
                .children
                .push(descriptor(m, &format!("manifests[{i}]"))?.0);
        }
    } else {
        let config = obj
            .get("config")
            .ok_or_else(|| invalid("image manifest has no config descriptor"))?;
        let (config_digest, _, config_type) = descriptor(config, "config")?;
        parsed.blobs.push(config_digest);
        parsed.config_media_type = config_type;
        let layers = match obj.get("layers") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err(invalid("layers is not an array")),
        };
        for (i, l) in layers.iter().enumerate() {
            let (digest, size, media) = descriptor(l, &format!("layers[{i}]"))?;
            parsed.layers_size = parsed.layers_size.saturating_add(size);
            let foreign = media
                .as_deref()
                .is_some_and(|m| m.contains("foreign") || m.contains("nondistributable"))
                || l.get("urls")
                    .is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()));
            if !foreign {
                parsed.blobs.push(digest);
            }
        }
    }
    parsed.blobs.sort();
    parsed.blobs.dedup();
    parsed.children.sort();
    parsed.children.dedup();
    Ok(parsed)
}

/// Whether a stored manifest of `media_type` satisfies an `Accept`-style
/// list; an empty list accepts everything.
pub fn accepted(media_type: &str, accepted: &[String]) -> bool {
    accepted.is_empty() || accepted.iter().any(|a| a == media_type || a == "*/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":7}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D2}","size":10}}]}}"#
        );
        let p = parse(m.as_bytes(), Some(DOCKER_MANIFEST)).expect("parse");
        assert_eq!(p.blobs, vec![D1.to_string(), D2.to_string()]);
        assert_eq!(p.layers_size, 10);
        assert!(!p.is_index);
    }

    #[test]
    fn index_lists_children_and_media_type_comes_from_header() {
        let m = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}","size":3}}]}}"#);
        let p = parse(m.as_bytes(), Some(OCI_INDEX)).expect("parse");
        assert!(p.is_index);
        assert_eq!(p.children, vec![D1.to_string()]);
        assert_eq!(p.media_type, OCI_INDEX);
    }

    #[test]
    fn bad_manifests_are_invalid() {
        for (body, ct) in [
            ("not json", None),
            ("[]", None),
            (r#"{"schemaVersion":1}"#, None),
            (r#"{"schemaVersion":2}"#, None),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:x","size":1}}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                Some(DOCKER_MANIFEST),
            ),
        ] {
            assert!(
                matches!(
                    parse(body.as_bytes(), ct),
                    Err(RegistryError::ManifestInvalid(_))
                ),
                "{body} should be invalid"
            );
        }
    }
}
