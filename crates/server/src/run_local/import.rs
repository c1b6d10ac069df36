//! Importing an image into the local registry: blobs are streamed through
//! the registry's upload sessions (the digest is checked on commit, as for
//! a push), then the manifest is put under a tag, so the function is
//! created from the registry exactly as `CreateFunction` would.
//!
//! An image index picks its linux/amd64 manifest; only that image is
//! imported. A legacy `docker save` (`manifest.json`) gets an OCI manifest
//! written for it (its layer files are hashed first).

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use blobs::{BodyStream, Digest};
use futures::StreamExt;
use registry::manifest::{DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};
use registry::{Registry, RepositoryRow};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::source::Source;
use super::RunError;

/// The tag the imported image gets in the local repository.
pub(crate) const TAG: &str = "latest";
/// Chunk size of file reads.
const CHUNK: usize = 1 << 20;
/// Largest `manifest.json` / `index.json` / image config read.
const MAX_JSON: u64 = MAX_MANIFEST_BYTES as u64;

fn image_err(msg: impl Into<String>) -> RunError {
    RunError::Image(msg.into())
}

/// Where an image's manifests and blobs are read from.
#[async_trait]
pub(crate) trait Fetch: Send + Sync {
    /// The manifest (or index) `digest` names; its bytes are checked
    /// against the digest by the caller.
    async fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, RunError>;
    /// A blob's bytes, streamed.
    async fn blob(&self, digest: &Digest) -> Result<BodyStream, RunError>;
}

/// Streams a file in 1 MiB chunks.
pub(crate) async fn file_stream(path: &Path) -> Result<BodyStream, RunError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| image_err(format!("cannot read {}: {e}", path.display())))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, CHUNK)
        .map(|r| r.map_err(|e| Box::new(e) as blobs::BodyError));
    Ok(stream.boxed())
}

/// Reads a small file, refusing one larger than `MAX_JSON`.
fn read_small(path: &Path) -> Result<Vec<u8>, RunError> {
    let file = std::fs::File::open(path)
        .map_err(|e| image_err(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    file.take(MAX_JSON + 1)
        .read_to_end(&mut out)
        .map_err(|e| image_err(format!("cannot read {}: {e}", path.display())))?;
    if out.len() as u64 > MAX_JSON {
        return Err(image_err(format!(
            "{} is larger than {MAX_JSON} bytes",
            path.display()
        )));
    }
    Ok(out)
}

fn json_of(bytes: &[u8], what: &str) -> Result<Value, RunError> {
    serde_json::from_slice(bytes).map_err(|e| image_err(format!("{what} is not valid JSON: {e}")))
}

fn descriptor_digest(d: &Value, what: &str) -> Result<Digest, RunError> {
    let s = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| image_err(format!("{what} has a descriptor without a digest")))?;
    Digest::parse(s).map_err(|e| image_err(format!("{what}: {e}")))
}

fn is_index(v: &Value, media_type: &str) -> bool {
    media_type == OCI_INDEX
        || media_type == DOCKER_MANIFEST_LIST
        || (v.get("manifests").is_some() && v.get("layers").is_none())
}

fn media_type_of(v: &Value, fallback: Option<&str>) -> String {
    v.get("mediaType")
        .and_then(Value::as_str)
        .or(fallback)
        .unwrap_or(OCI_MANIFEST)
        .to_string()
}

/// The linux/amd64 entry of an index.
fn pick_platform(index: &Value, what: &str) -> Result<Digest, RunError> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let platform = |m: &Value, k: &str| {
        m.get("platform")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match manifests
        .iter()
        .find(|m| platform(m, "os") == "linux" && platform(m, "architecture") == "amd64")
    {
        Some(m) => descriptor_digest(m, what),
        None => {
            let found: Vec<String> = manifests
                .iter()
                .map(|m| format!("{}/{}", platform(m, "os"), platform(m, "architecture")))
                .collect();
            Err(image_err(format!(
                "{what} has no linux/amd64 image (it has: {}); this machine runs amd64 images",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            )))
        }
    }
}

fn check_digest(bytes: &[u8], expected: &Digest, what: &str) -> Result<(), RunError> {
    let actual = Digest::of(bytes);
    if actual != *expected {
        return Err(image_err(format!(
            "{what}: content has digest {actual}, not {expected}"
        )));
    }
    Ok(())
}

/// The repository the image is imported into.
pub(crate) struct Target<'a> {
    pub registry: &'a Registry,
    pub repo: &'a RepositoryRow,
}

impl Target<'_> {
    async fn has(&self, digest: &Digest) -> Result<bool, RunError> {
        Ok(self.registry.blob_size(self.repo, digest).await?.is_some())
    }

    /// Stores a blob; the registry checks its digest before it is visible.
    async fn put_blob(&self, digest: &Digest, body: BodyStream) -> Result<(), RunError> {
        let id = self.registry.upload_start(self.repo).await?;
        match self
            .registry
            .upload_finish(self.repo, &id, digest, Some((None, body)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.registry.upload_cancel(self.repo, &id).await;
                Err(match e {
                    registry::RegistryError::DigestMismatch { expected, computed } => image_err(
                        format!("blob {expected} of the image has digest {computed}: the image is corrupt"),
                    ),
                    registry::RegistryError::BodyFailed(m) => {
                        image_err(format!("reading blob {digest} failed: {m}"))
                    }
                    other => other.into(),
                })
            }
        }
    }

    async fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest, RunError> {
        let r = self
            .registry
            .put_manifest(self.repo, Some(TAG), None, bytes, Some(media_type))
            .await
            .map_err(|e| match e {
                registry::RegistryError::ManifestInvalid(m) => {
                    image_err(format!("the image manifest is not valid: {m}"))
                }
                other => other.into(),
            })?;
        Ok(r.digest)
    }
}

/// Imports the image whose top manifest (or index) is `top`: picks the
/// linux/amd64 image of an index, stores its config and layers, then the
/// manifest. Returns the manifest digest.
pub(crate) async fn import_manifest(
    target: &Target<'_>,
    fetch: &dyn Fetch,
    top: Vec<u8>,
    top_media_type: Option<&str>,
    what: &str,
) -> Result<Digest, RunError> {
    let mut bytes = top;
    let mut v = json_of(&bytes, what)?;
    let mut media_type = media_type_of(&v, top_media_type);
    if is_index(&v, &media_type) {
        let child = pick_platform(&v, what)?;
        bytes = fetch.manifest(&child).await?;
        check_digest(&bytes, &child, what)?;
        v = json_of(&bytes, what)?;
        media_type = media_type_of(&v, None);
        if is_index(&v, &media_type) {
            return Err(image_err(format!(
                "{what}: the linux/amd64 entry is itself an index"
            )));
        }
    }
    let config = v
        .get("config")
        .ok_or_else(|| image_err(format!("{what}: the manifest has no image config")))?;
    let mut digests = vec![descriptor_digest(config, what)?];
    for layer in v
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        digests.push(descriptor_digest(layer, what)?);
    }
    for d in &digests {
        if !target.has(d).await? {
            let body = fetch.blob(d).await?;
            target.put_blob(d, body).await?;
        }
    }
    target.put_manifest(&bytes, &media_type).await
}

// ----- OCI image layout --------------------------------------------------------

struct LayoutFetch {
    dir: PathBuf,
}

impl LayoutFetch {
    fn path(&self, digest: &Digest) -> PathBuf {
        let (alg, _) = digest.as_str().split_once(':').unwrap_or(("sha256", ""));
        self.dir.join("blobs").join(alg).join(digest.hex())
    }
}

#[async_trait]
impl Fetch for LayoutFetch {
    async fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, RunError> {
        let path = self.path(digest);
        tokio::task::spawn_blocking(move || read_small(&path))
            .await
            .map_err(|e| RunError::Io(std::io::Error::other(e)))?
    }

    async fn blob(&self, digest: &Digest) -> Result<BodyStream, RunError> {
        file_stream(&self.path(digest)).await
    }
}

/// The `index.json` entry a layout import starts from.
fn pick_tag(index: &Value, tag: Option<&str>, what: &str) -> Result<Value, RunError> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let name_of = |m: &Value| {
        let a = m.get("annotations");
        a.and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .and_then(Value::as_str)
            .or_else(|| {
                a.and_then(|a| a.get("io.containerd.image.name"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string)
    };
    let matches = |m: &Value, t: &str| {
        name_of(m).is_some_and(|n| n == t || n.rsplit_once(':').is_some_and(|(_, tag)| tag == t))
    };
    match tag {
        Some(t) => manifests
            .iter()
            .find(|m| matches(m, t))
            .cloned()
            .ok_or_else(|| {
                let names: Vec<String> = manifests.iter().filter_map(name_of).collect();
                image_err(format!(
                    "{what} has no image tagged {t:?} (tags: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ))
            }),
        None => match manifests.as_slice() {
            [] => Err(image_err(format!("{what} holds no image"))),
            [one] => Ok(one.clone()),
            many => {
                let names: Vec<String> = many.iter().filter_map(name_of).collect();
                Err(image_err(format!(
                    "{what} holds {} images; name one with oci:DIR:TAG (tags: {})",
                    many.len(),
                    names.join(", ")
                )))
            }
        },
    }
}

async fn import_layout(
    target: &Target<'_>,
    dir: &Path,
    tag: Option<&str>,
    what: &str,
) -> Result<Digest, RunError> {
    let index_path = dir.join("index.json");
    let index = tokio::task::spawn_blocking(move || read_small(&index_path))
        .await
        .map_err(|e| RunError::Io(std::io::Error::other(e)))??;
    let index = json_of(&index, &format!("{what}/index.json"))?;
    let entry = pick_tag(&index, tag, what)?;
    let digest = descriptor_digest(&entry, what)?;
    let fetch = LayoutFetch {
        dir: dir.to_path_buf(),
    };
    let top = fetch.manifest(&digest).await?;
    check_digest(&top, &digest, what)?;
    let media_type = entry.get("mediaType").and_then(Value::as_str);
    import_manifest(target, &fetch, top, media_type, what).await
}

// ----- docker save ------------------------------------------------------------------

/// A file of an unpacked archive, resolved (symlinks included) and
/// required to stay inside `root`.
fn confined_file(root: &Path, relative: &str, what: &str) -> Result<PathBuf, RunError> {
    let bad = || {
        image_err(format!(
            "{what}: {relative:?} is not a file inside the archive"
        ))
    };
    if relative.is_empty() || Path::new(relative).is_absolute() {
        return Err(bad());
    }
    let root = root
        .canonicalize()
        .map_err(|e| image_err(format!("{what}: {e}")))?;
    let path = root.join(relative).canonicalize().map_err(|_| bad())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(bad());
    }
    Ok(path)
}

/// sha256 and size of a file, read in chunks.
fn hash_file(path: &Path) -> Result<(Digest, u64, String), RunError> {
    let err = |e: std::io::Error| image_err(format!("cannot read {}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    let mut head = Vec::new();
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        if head.len() < 4 {
            head.extend_from_slice(&buf[..n.min(4 - head.len())]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = Digest::parse(&format!("sha256:{hex}"))
        .map_err(|e| RunError::Io(std::io::Error::other(e.to_string())))?;
    let media_type = if head.starts_with(&[0x1f, 0x8b]) {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    };
    Ok((digest, size, media_type.to_string()))
}

struct DockerDirFetch {
    files: Vec<(Digest, PathBuf)>,
    config: (Digest, Vec<u8>),
}

#[async_trait]
impl Fetch for DockerDirFetch {
    async fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, RunError> {
        Err(image_err(format!(
            "manifest {digest} is not in the archive"
        )))
    }

    async fn blob(&self, digest: &Digest) -> Result<BodyStream, RunError> {
        if *digest == self.config.0 {
            let bytes = bytes::Bytes::from(self.config.1.clone());
            return Ok(futures::stream::once(async move { Ok(bytes) }).boxed());
        }
        match self.files.iter().find(|(d, _)| d == digest) {
            Some((_, path)) => file_stream(path).await,
            None => Err(image_err(format!("blob {digest} is not in the archive"))),
        }
    }
}

/// An unpacked legacy `docker save`: `manifest.json` names the config
/// and the layer files; an OCI manifest is written for them.
async fn import_docker_dir(
    target: &Target<'_>,
    dir: &Path,
    tag: Option<&str>,
    what: &str,
) -> Result<Digest, RunError> {
    let dir = dir.to_path_buf();
    let what_owned = what.to_string();
    let tag = tag.map(str::to_string);
    let (manifest, fetch) = tokio::task::spawn_blocking(move || {
        let what = what_owned.as_str();
        let list = json_of(&read_small(&dir.join("manifest.json"))?, "manifest.json")?;
        let entries = list.as_array().cloned().unwrap_or_default();
        let tags_of = |e: &Value| -> Vec<String> {
            e.get("RepoTags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let entry = match tag.as_deref() {
            Some(t) => entries
                .iter()
                .find(|e| {
                    tags_of(e)
                        .iter()
                        .any(|n| n == t || n.rsplit_once(':').is_some_and(|(_, x)| x == t))
                })
                .cloned()
                .ok_or_else(|| image_err(format!("{what} has no image tagged {t:?}")))?,
            None => match entries.as_slice() {
                [] => return Err(image_err(format!("{what} holds no image"))),
                [one] => one.clone(),
                many => {
                    let tags: Vec<String> = many.iter().flat_map(tags_of).collect();
                    return Err(image_err(format!(
                        "{what} holds {} images; name one with docker-archive:FILE:TAG (tags: {})",
                        many.len(),
                        tags.join(", ")
                    )));
                }
            },
        };
        let config_path = entry
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| image_err(format!("{what}: manifest.json names no Config")))?;
        let config = read_small(&confined_file(&dir, config_path, what)?)?;
        json_of(&config, &format!("{what}: the image config"))?;
        let config_digest = Digest::of(&config);
        let mut layers = Vec::new();
        let mut files = Vec::new();
        for l in entry
            .get("Layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rel = l
                .as_str()
                .ok_or_else(|| image_err(format!("{what}: a layer entry is not a path")))?;
            let path = confined_file(&dir, rel, what)?;
            let (digest, size, media_type) = hash_file(&path)?;
            layers.push(json!({"mediaType": media_type, "digest": digest.as_str(), "size": size}));
            files.push((digest, path));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.as_str(),
                "size": config.len(),
            },
            "layers": layers,
        });
        let manifest =
            serde_json::to_vec(&manifest).map_err(|e| RunError::Io(std::io::Error::other(e)))?;
        Ok((
            manifest,
            DockerDirFetch {
                files,
                config: (config_digest, config),
            },
        ))
    })
    .await
    .map_err(|e| RunError::Io(std::io::Error::other(e)))??;
    import_manifest(target, &fetch, manifest, Some(OCI_MANIFEST), what).await
}

/// Unpacks a `docker save` tarball (plain or gzip) into `into`: regular
/// files, directories and symlinks only; paths that would leave `into`
/// are refused by the tar crate.
fn unpack_archive(file: &Path, into: &Path) -> Result<(), RunError> {
    let what = file.display().to_string();
    let open =
        || std::fs::File::open(file).map_err(|e| image_err(format!("cannot read {what}: {e}")));
    let mut head = [0u8; 2];
    let gzip = open()?.read_exact(&mut head).is_ok() && head == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(
            open()?
        )))
    } else {
        Box::new(std::io::BufReader::new(open()?))
    };
    let not_tar = |e: std::io::Error| {
        image_err(format!(
            "{what} is not a `docker save` tarball ({e}); {}",
            "create one with docker save IMAGE -o image.tar, or skopeo copy … docker-archive:image.tar"
        ))
    };
    std::fs::create_dir_all(into)?;
    let mut archive = tar::Archive::new(reader);
    let mut count = 0u64;
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            continue;
        }
        entry.unpack_in(into).map_err(not_tar)?;
        count += 1;
    }
    if count == 0 {
        return Err(not_tar(std::io::Error::other("it holds no files")));
    }
    Ok(())
}

/// Imports `source` into the target repository under [`TAG`]; `scratch`
/// is a directory for unpacking an archive (removed afterwards).
pub(crate) async fn import(
    target: &Target<'_>,
    source: &Source,
    scratch: &Path,
    credentials: Option<&(String, String)>,
) -> Result<Digest, RunError> {
    match source {
        Source::Layout { dir, tag } => {
            import_layout(target, dir, tag.as_deref(), &dir.display().to_string()).await
        }
        Source::DockerDir { dir, tag } => {
            import_docker_dir(target, dir, tag.as_deref(), &dir.display().to_string()).await
        }
        Source::Archive { file, tag } => {
            let what = file.display().to_string();
            let into = scratch.join(format!("import-{}", uuid::Uuid::new_v4().simple()));
            let result = async {
                let (f, i) = (file.clone(), into.clone());
                tokio::task::spawn_blocking(move || unpack_archive(&f, &i))
                    .await
                    .map_err(|e| RunError::Io(std::io::Error::other(e)))??;
                if into.join("oci-layout").is_file() && into.join("index.json").is_file() {
                    import_layout(target, &into, tag.as_deref(), &what).await
                } else if into.join("manifest.json").is_file() {
                    import_docker_dir(target, &into, tag.as_deref(), &what).await
                } else {
                    Err(image_err(format!(
                        "{what} is a tarball but not a `docker save` (no manifest.json or index.json inside)"
                    )))
                }
            }
            .await;
            let _ = tokio::fs::remove_dir_all(&into).await;
            result
        }
        Source::Remote {
            host,
            repository,
            reference,
        } => super::pull::import_remote(target, host, repository, reference, credentials).await,
    }
}
