//! What the executor needs to know about an image: its layers in order and
//! the process defaults from its config blob.

use blobs::Digest;

/// One layer blob, applied in order. Plain tar and gzip are supported
/// (detected from the bytes); zstd is refused as unsupported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub digest: Digest,
    pub media_type: String,
}

/// An image as the executor runs it. The unpacked root filesystem is cached
/// under the manifest digest, so two images with one manifest digest must
/// have the same layers (they do: the digest names the layer list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub manifest_digest: Digest,
    pub layers: Vec<ImageLayer>,
    pub config: ImageConfig,
}

/// The process defaults of an image (the `config` section of an OCI or
/// Docker image config blob).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, as in `USER`.
    pub user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("image config blob is not valid: {0}")]
pub struct ImageConfigError(#[from] serde_json::Error);

#[derive(serde::Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigSection {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

impl ImageConfig {
    /// Parses an image config blob (`application/vnd.oci.image.config.v1+json`
    /// or `application/vnd.docker.container.image.v1+json`). A missing
    /// `config` section means no defaults.
    pub fn from_oci_config_json(bytes: &[u8]) -> Result<ImageConfig, ImageConfigError> {
        let blob: ConfigBlob = serde_json::from_slice(bytes)?;
        let Some(c) = blob.config else {
            return Ok(ImageConfig::default());
        };
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: non_empty(c.working_dir),
            user: non_empty(c.user),
        })
    }

    /// The image's own command line: entrypoint followed by cmd.
    pub fn default_args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_lambda_base_image_config() {
        let blob = br#"{
            "architecture": "amd64", "os": "linux",
            "config": {
                "Env": ["PATH=/var/lang/bin:/usr/bin", "LAMBDA_TASK_ROOT=/var/task"],
                "Entrypoint": ["/lambda-entrypoint.sh"],
                "Cmd": ["app.handler"],
                "WorkingDir": "/var/task",
                "User": ""
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }"#;
        let c = ImageConfig::from_oci_config_json(blob).expect("parse");
        assert_eq!(c.entrypoint, ["/lambda-entrypoint.sh"]);
        assert_eq!(c.cmd, ["app.handler"]);
        assert_eq!(c.env.len(), 2);
        assert_eq!(c.working_dir.as_deref(), Some("/var/task"));
        assert_eq!(c.user, None);
        assert_eq!(c.default_args(), ["/lambda-entrypoint.sh", "app.handler"]);
    }

    #[test]
    fn null_and_missing_fields_are_empty() {
        let c = ImageConfig::from_oci_config_json(br#"{"config":{"Cmd":null,"User":"1000:1000"}}"#)
            .expect("parse");
        assert_eq!(c.cmd, Vec::<String>::new());
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(
            ImageConfig::from_oci_config_json(b"{}").expect("parse"),
            ImageConfig::default()
        );
        assert!(ImageConfig::from_oci_config_json(b"[").is_err());
    }
}
