//! Writing OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/…`)
//! from Rust, byte for byte the same on every run: fixed mtimes, owners and
//! modes in the layer tars, gzip without timestamps, and JSON without
//! varying fields.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::docker::relative_image_path;

pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Every entry of a built layer has this mtime (2000-01-01T00:00:00Z).
pub const LAYER_MTIME: u64 = 946_684_800;
const CREATED: &str = "2000-01-01T00:00:00Z";

#[derive(Debug, Clone)]
struct Layer {
    blob: Vec<u8>,
    diff_id: String,
    media_type: &'static str,
}

/// Builds an image (config, layers, manifest) and writes it into an OCI
/// image layout under a tag.
///
/// ```no_run
/// # use test_support::OciImageBuilder;
/// let image = OciImageBuilder::new()
///     .layer(vec![("bootstrap", b"#!/bin/sh\n".to_vec())])
///     .cmd(&["handler.run"])
///     .write(std::path::Path::new("/tmp/layout"), "v1");
/// // skopeo copy oci:/tmp/layout:v1 docker://localhost:PORT/repo:v1
/// # let _ = image.oci_ref();
/// ```
#[derive(Debug, Clone)]
pub struct OciImageBuilder {
    layers: Vec<Layer>,
    architecture: String,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<String>,
    working_dir: Option<String>,
}

impl Default for OciImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OciImageBuilder {
    /// An image with no layers, for this machine's architecture and Linux.
    pub fn new() -> Self {
        OciImageBuilder {
            layers: Vec::new(),
            architecture: go_arch().to_string(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            working_dir: None,
        }
    }

    /// Adds a gzipped tar layer holding `files` (path in the image, bytes),
    /// in the order given, each preceded by any parent directories not yet
    /// in the layer. Files are mode 0755, directories 0755, all owned by
    /// 0:0 with mtime [`LAYER_MTIME`].
    pub fn layer<P: AsRef<str>, B: AsRef<[u8]>>(
        mut self,
        files: impl IntoIterator<Item = (P, B)>,
    ) -> Self {
        let tar = tar_bytes(files);
        let diff_id = sha256_digest(&tar);
        self.layers.push(Layer {
            blob: gzip(&tar),
            diff_id,
            media_type: OCI_LAYER_GZIP_MEDIA_TYPE,
        });
        self
    }

    /// Adds `bytes` as a layer blob as they are. Gzip data (by its magic
    /// number) is typed `tar+gzip` and its diff id is the digest of the
    /// decompressed bytes; anything else is typed `tar` and is its own
    /// diff id. Random bytes make incompressible layers for size tests.
    pub fn raw_layer(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        let blob = bytes.into();
        let layer = if blob.starts_with(&[0x1f, 0x8b]) {
            let mut tar = Vec::new();
            let diff_id = match GzDecoder::new(&blob[..]).read_to_end(&mut tar) {
                Ok(_) => sha256_digest(&tar),
                Err(_) => sha256_digest(&blob),
            };
            Layer {
                blob,
                diff_id,
                media_type: OCI_LAYER_GZIP_MEDIA_TYPE,
            }
        } else {
            Layer {
                diff_id: sha256_digest(&blob),
                blob,
                media_type: OCI_LAYER_TAR_MEDIA_TYPE,
            }
        };
        self.layers.push(layer);
        self
    }

    /// Adds a gzipped tar layer holding one file, `random-SEED.bin`, of
    /// `len` [`random_bytes`]: a valid, incompressible layer whose blob is a
    /// little larger than `len`, for size and quota tests.
    pub fn random_layer(self, seed: u64, len: usize) -> Self {
        self.layer([(format!("random-{seed}.bin"), random_bytes(seed, len))])
    }

    /// The config's `Entrypoint`.
    pub fn entrypoint(mut self, args: &[&str]) -> Self {
        self.entrypoint = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The config's `Cmd` (for a Lambda image: the handler).
    pub fn cmd(mut self, args: &[&str]) -> Self {
        self.cmd = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Adds `KEY=VALUE` to the config's `Env`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// The config's `WorkingDir`.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.working_dir = Some(dir.to_string());
        self
    }

    /// The config's `architecture` (Go names: `amd64`, `arm64`).
    pub fn architecture(mut self, arch: &str) -> Self {
        self.architecture = arch.to_string();
        self
    }

    /// The image config JSON.
    pub fn config_bytes(&self) -> Vec<u8> {
        let mut config = serde_json::Map::new();
        if let Some(entrypoint) = &self.entrypoint {
            config.insert("Entrypoint".into(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            config.insert("Cmd".into(), json!(cmd));
        }
        if !self.env.is_empty() {
            config.insert("Env".into(), json!(self.env));
        }
        if let Some(dir) = &self.working_dir {
            config.insert("WorkingDir".into(), json!(dir));
        }
        let diff_ids: Vec<&str> = self.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let history: Vec<Value> = self
            .layers
            .iter()
            .map(|_| json!({ "created": CREATED, "created_by": "test-support" }))
            .collect();
        let doc = json!({
            "created": CREATED,
            "architecture": self.architecture,
            "os": "linux",
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        serde_json::to_vec(&doc).expect("serialize config")
    }

    /// Writes the blobs into the layout at `dir` (created if needed) and
    /// points `tag` at the manifest in `index.json`, replacing an entry with
    /// the same tag and keeping others, so one layout can hold many images.
    #[track_caller]
    pub fn write(&self, dir: &Path, tag: &str) -> BuiltImage {
        let config_bytes = self.config_bytes();
        let config_digest = sha256_digest(&config_bytes);
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                json!({
                    "mediaType": l.media_type,
                    "digest": sha256_digest(&l.blob),
                    "size": l.blob.len(),
                })
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": OCI_CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("serialize manifest");
        let manifest_digest = sha256_digest(&manifest_bytes);

        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("create {}: {e}", blobs.display()));
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        write_blob(dir, &config_digest, &config_bytes);
        for layer in &self.layers {
            write_blob(dir, &sha256_digest(&layer.blob), &layer.blob);
        }
        write_blob(dir, &manifest_digest, &manifest_bytes);
        add_to_index(dir, tag, &manifest_digest, manifest_bytes.len());

        let layer_digests = self.layers.iter().map(|l| sha256_digest(&l.blob)).collect();
        let layer_sizes: Vec<u64> = self.layers.iter().map(|l| l.blob.len() as u64).collect();
        BuiltImage {
            layout_dir: dir.to_path_buf(),
            tag: tag.to_string(),
            total_size: layer_sizes.iter().sum(),
            manifest_digest,
            manifest_bytes,
            config_digest,
            config_bytes,
            layer_digests,
            layer_sizes,
        }
    }
}

/// What [`OciImageBuilder::write`] wrote. Digests are `sha256:<hex>`.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub layout_dir: PathBuf,
    pub tag: String,
    pub manifest_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub config_digest: String,
    pub config_bytes: Vec<u8>,
    /// In manifest order.
    pub layer_digests: Vec<String>,
    /// Compressed (blob) sizes, in manifest order.
    pub layer_sizes: Vec<u64>,
    /// The sum of the layer blob sizes (what ECR reports as
    /// `imageSizeInBytes`); config and manifest are not included.
    pub total_size: u64,
}

impl BuiltImage {
    /// `oci:DIR:TAG`, the skopeo reference of this image.
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{}", self.layout_dir.display(), self.tag)
    }

    /// The path of a blob of the layout.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.layout_dir, digest)
    }

    /// The bytes of a blob of the layout.
    #[track_caller]
    pub fn read_blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Manifest, config and layer sizes added up.
    pub fn blobs_size(&self) -> u64 {
        self.total_size + self.config_bytes.len() as u64 + self.manifest_bytes.len() as u64
    }
}

/// `len` bytes from a xorshift64* generator seeded with `seed`: the same
/// for the same arguments, and incompressible.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    // splitmix64 turns any seed (0 included) into a good non-zero state.
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    state = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    state ^= state >> 31;
    if state == 0 {
        state = 0x2545_F491_4F6C_DD1D;
    }
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// `sha256:<hex>` of the file at `path`, read as a stream.
#[track_caller]
pub fn digest_of_file(path: &Path) -> String {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn tar_bytes<P: AsRef<str>, B: AsRef<[u8]>>(files: impl IntoIterator<Item = (P, B)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for (path, bytes) in files {
        let rel = relative_image_path(path.as_ref());
        let ancestors: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        for dir in ancestors.into_iter().rev() {
            if dirs.insert(dir.to_path_buf()) {
                let mut header = header(tar::EntryType::Directory, 0);
                builder
                    .append_data(&mut header, dir, io::empty())
                    .expect("append dir to tar");
            }
        }
        let bytes = bytes.as_ref();
        let mut header = header(tar::EntryType::Regular, bytes.len() as u64);
        builder
            .append_data(&mut header, rel, bytes)
            .expect("append file to tar");
    }
    builder.into_inner().expect("finish tar")
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(LAYER_MTIME);
    header
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // flate2 writes a gzip header with mtime 0 and no file name.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    dir.join("blobs").join("sha256").join(hex)
}

#[track_caller]
fn write_blob(dir: &Path, digest: &str, bytes: &[u8]) {
    let path = blob_path(dir, digest);
    if !path.exists() {
        write_file(&path, bytes);
    }
}

#[track_caller]
fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[track_caller]
fn add_to_index(dir: &Path, tag: &str, digest: &str, size: usize) {
    let path = dir.join("index.json");
    let mut index: Value = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            json!({ "schemaVersion": 2, "mediaType": OCI_INDEX_MEDIA_TYPE, "manifests": [] })
        }
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    let manifests = index["manifests"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("{} has no manifests array", path.display()));
    manifests.retain(|m| m["annotations"][REF_NAME_ANNOTATION] != tag);
    manifests.push(json!({
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "digest": digest,
        "size": size,
        "annotations": { REF_NAME_ANNOTATION: tag },
    }));
    write_file(&path, &serde_json::to_vec(&index).expect("serialize index"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{docker_enabled, Docker, OutputExt, Skopeo};
    use tempfile::TempDir;

    fn sample() -> OciImageBuilder {
        OciImageBuilder::new()
            .layer(vec![
                ("bootstrap", b"#!/bin/sh\necho hi\n".to_vec()),
                ("/opt/app/data/x.txt", b"x".to_vec()),
            ])
            .raw_layer(random_bytes(7, 4096))
            .cmd(&["handler"])
            .env("A", "b")
    }

    fn index(dir: &Path) -> Value {
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index")).expect("json")
    }

    #[test]
    fn writes_a_consistent_layout() {
        let dir = TempDir::new().expect("tmp");
        let image = sample().write(dir.path(), "v1");

        assert_eq!(
            fs::read_to_string(dir.path().join("oci-layout")).expect("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        // Every blob is stored under its own digest.
        for entry in fs::read_dir(dir.path().join("blobs/sha256")).expect("blobs") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            assert_eq!(digest_of_file(&path), format!("sha256:{name}"));
        }
        let index = index(dir.path());
        assert_eq!(
            index["manifests"][0]["digest"],
            image.manifest_digest.as_str()
        );
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            "v1"
        );

        let manifest: Value = serde_json::from_slice(&image.read_blob(&image.manifest_digest))
            .expect("manifest json");
        assert_eq!(
            image.manifest_bytes,
            image.read_blob(&image.manifest_digest)
        );
        assert_eq!(manifest["config"]["digest"], image.config_digest.as_str());
        let layer_digests: Vec<&str> = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("digest"))
            .collect();
        assert_eq!(layer_digests, image.layer_digests);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            OCI_LAYER_GZIP_MEDIA_TYPE
        );
        assert_eq!(manifest["layers"][1]["mediaType"], OCI_LAYER_TAR_MEDIA_TYPE);
        assert_eq!(image.layer_sizes[1], 4096);
        assert_eq!(image.total_size, image.layer_sizes.iter().sum::<u64>());

        // The config's diff ids are the digests of the uncompressed layers.
        let config: Value = serde_json::from_slice(&image.config_bytes).expect("config json");
        assert_eq!(config["config"]["Cmd"], json!(["handler"]));
        assert_eq!(config["config"]["Env"], json!(["A=b"]));
        let mut tar = Vec::new();
        GzDecoder::new(&image.read_blob(&image.layer_digests[0])[..])
            .read_to_end(&mut tar)
            .expect("gunzip");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            sha256_digest(&tar).as_str()
        );
        assert_eq!(
            config["rootfs"]["diff_ids"][1],
            image.layer_digests[1].as_str()
        );

        // Parent directories come first; owners and times are fixed.
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<(String, u64, u64, u32)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                let path = e.path().expect("path").to_string_lossy().into_owned();
                (
                    path,
                    h.mtime().expect("mtime"),
                    h.uid().expect("uid"),
                    h.mode().expect("mode"),
                )
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bootstrap",
                "opt",
                "opt/app",
                "opt/app/data",
                "opt/app/data/x.txt"
            ]
        );
        assert!(entries
            .iter()
            .all(|e| e.1 == LAYER_MTIME && e.2 == 0 && e.3 == 0o755));
    }

    #[test]
    fn the_same_image_gives_the_same_digests() {
        let a = TempDir::new().expect("tmp");
        let b = TempDir::new().expect("tmp");
        let one = sample().write(a.path(), "x");
        let two = sample().write(b.path(), "y");
        assert_eq!(one.manifest_digest, two.manifest_digest);
        assert_eq!(one.layer_digests, two.layer_digests);
        let other = sample().env("C", "d").write(b.path(), "z");
        assert_ne!(one.manifest_digest, other.manifest_digest);
        assert_eq!(one.layer_digests, other.layer_digests);
    }

    #[test]
    fn one_layout_holds_many_tags() {
        let dir = TempDir::new().expect("tmp");
        let first = sample().write(dir.path(), "a");
        let second = OciImageBuilder::new()
            .raw_layer(vec![1, 2, 3])
            .write(dir.path(), "b");
        let third = OciImageBuilder::new()
            .raw_layer(vec![4])
            .write(dir.path(), "a");
        let index = index(dir.path());
        let tags: Vec<(String, String)> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| {
                (
                    m["annotations"][REF_NAME_ANNOTATION]
                        .as_str()
                        .expect("tag")
                        .to_string(),
                    m["digest"].as_str().expect("digest").to_string(),
                )
            })
            .collect();
        assert_eq!(
            tags,
            [
                ("b".to_string(), second.manifest_digest),
                ("a".to_string(), third.manifest_digest)
            ]
        );
        // Blobs of the replaced image stay (a layout is content-addressed).
        assert!(first.blob_path(&first.manifest_digest).exists());
    }

    #[test]
    fn gzip_raw_layers_get_their_uncompressed_diff_id() {
        let tar = b"not really a tar, but gzip all the same".to_vec();
        let builder = OciImageBuilder::new().raw_layer(gzip(&tar));
        assert_eq!(builder.layers[0].diff_id, sha256_digest(&tar));
        assert_eq!(builder.layers[0].media_type, OCI_LAYER_GZIP_MEDIA_TYPE);
    }

    #[test]
    fn random_bytes_are_repeatable_and_incompressible() {
        assert_eq!(random_bytes(1, 1000), random_bytes(1, 1000));
        assert_eq!(random_bytes(1, 10)[..], random_bytes(1, 1000)[..10]);
        assert_ne!(random_bytes(1, 64), random_bytes(2, 64));
        assert_ne!(random_bytes(0, 64), vec![0; 64]);
        assert_eq!(random_bytes(3, 13).len(), 13);
        let layer = &OciImageBuilder::new().random_layer(5, 100_000).layers[0];
        assert!(
            (100_000..101_000).contains(&layer.blob.len()),
            "{}",
            layer.blob.len()
        );
        let data = random_bytes(42, 1 << 20);
        assert!(gzip(&data).len() >= data.len(), "random bytes compressed");
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let dir = TempDir::new().expect("tmp");
        let path = dir.path().join("f");
        fs::write(&path, b"abc").expect("write");
        assert_eq!(digest_of_file(&path), sha256_digest(b"abc"));
    }

    /// skopeo reads the layout and copies it to another one unchanged.
    #[test]
    fn skopeo_copies_the_layout() {
        let a = TempDir::new().expect("tmp");
        let b = TempDir::new().expect("tmp");
        let image = sample().write(a.path(), "v1");
        let skopeo = Skopeo::new();

        let inspected = skopeo.inspect(&image.oci_ref(), None);
        assert_eq!(inspected["Digest"], image.manifest_digest.as_str());
        assert_eq!(inspected["Layers"], json!(image.layer_digests));
        assert_eq!(
            skopeo.raw_manifest(&image.oci_ref(), None),
            image.manifest_bytes
        );

        let dest = format!("oci:{}:copied", b.path().display());
        // Without --preserve-digests skopeo would gzip the uncompressed
        // raw layer and so change the manifest.
        let opts = crate::CopyOptions {
            preserve_digests: true,
            ..Default::default()
        };
        skopeo
            .copy_with(&image.oci_ref(), &dest, opts)
            .assert_success("skopeo copy");
        let index = index(b.path());
        assert_eq!(
            index["manifests"][0]["digest"],
            image.manifest_digest.as_str()
        );
        for digest in image.layer_digests.iter().chain([&image.config_digest]) {
            assert_eq!(digest_of_file(&blob_path(b.path(), digest)), *digest);
        }
    }

    /// The docker engine loads a layout-built image and runs it.
    #[test]
    fn docker_runs_a_layout_built_image() {
        if !docker_enabled() {
            eprintln!("skipping: needs STRATUS_TEST_DOCKER=1");
            return;
        }
        let busybox = fs::read("/bin/busybox").expect("busybox-static is installed");
        let dir = TempDir::new().expect("tmp");
        let image = OciImageBuilder::new()
            .layer(vec![("bin/busybox", busybox)])
            .layer(vec![("etc/motd", b"from an oci layout\n".to_vec())])
            .entrypoint(&["/bin/busybox"])
            .cmd(&["cat", "/etc/motd"])
            .write(dir.path(), "v1");
        let docker = Docker::new();
        let tag = format!("stratus-test-support/oci:{}", std::process::id());
        docker.remove_on_drop(&tag);
        Skopeo::new()
            .copy(&image.oci_ref(), &format!("docker-daemon:{tag}"))
            .assert_success("skopeo copy to docker-daemon");
        let out = docker.run(&[&tag]).assert_success("docker run");
        assert_eq!(out.stdout_str(), "from an oci layout\n");
    }
}
