//! The cache of unpacked root filesystems, one directory per image manifest
//! digest.
//!
//! An image is unpacked into `.tmp-<hex>-<uuid>` and renamed to `<hex>` when
//! complete, so a directory named after a digest is always whole, across
//! crashes and restarts. Within the process, concurrent `prepare` calls for
//! one digest wait for a single unpack. The trees are shared read-only by
//! every instance of the image (the runtime mounts them read-only), so
//! nothing is copied per instance.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use blobs::{Digest, SharedBlobStore};
use bytes::{Buf, Bytes};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::unpack::{self, Budget, UnpackError};
use crate::{ImageLayer, ImageSpec, PrepareError};

const TMP_PREFIX: &str = ".tmp-";

pub(crate) struct RootfsCache {
    dir: PathBuf,
    blobs: SharedBlobStore,
    max_unpacked_bytes: u64,
    /// Host files bind-mounted into instances; their mount points are made
    /// at unpack time.
    mount_files: Vec<String>,
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    ready: Mutex<HashSet<Digest>>,
}

impl RootfsCache {
    pub(crate) fn open(
        dir: PathBuf,
        blobs: SharedBlobStore,
        max_unpacked_bytes: u64,
        mount_files: Vec<String>,
    ) -> io::Result<RootfsCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(RootfsCache {
            dir,
            blobs,
            max_unpacked_bytes,
            mount_files,
            locks: Mutex::new(HashMap::new()),
            ready: Mutex::new(HashSet::new()),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    fn is_ready(&self, digest: &Digest) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(digest)
    }

    /// The unpacked root filesystem of `image`, unpacking it if needed.
    pub(crate) async fn prepare(&self, image: &ImageSpec) -> Result<PathBuf, PrepareError> {
        let digest = &image.manifest_digest;
        let path = self.path_of(digest);
        if self.is_ready(digest) {
            return Ok(path);
        }
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        if self.is_ready(digest) {
            return Ok(path);
        }
        let exists = tokio::fs::try_exists(&path)
            .await
            .map_err(|source| PrepareError::Io {
                path: path.clone(),
                source,
            })?;
        if !exists {
            let tmp = self.dir.join(format!(
                "{TMP_PREFIX}{}-{}",
                digest.hex(),
                uuid::Uuid::new_v4().simple()
            ));
            let started = std::time::Instant::now();
            let job = UnpackJob {
                handle: tokio::runtime::Handle::current(),
                blobs: self.blobs.clone(),
                layers: image.layers.clone(),
                tmp: tmp.clone(),
                max_unpacked_bytes: self.max_unpacked_bytes,
                mount_files: self.mount_files.clone(),
            };
            let result = tokio::task::spawn_blocking(move || job.run())
                .await
                .unwrap_or_else(|e| {
                    Err(PrepareError::Io {
                        path: tmp.clone(),
                        source: io::Error::other(format!("unpack task failed: {e}")),
                    })
                })
                .and_then(|()| {
                    std::fs::rename(&tmp, &path).map_err(|source| PrepareError::Io {
                        path: path.clone(),
                        source,
                    })
                });
            if let Err(e) = result {
                let tmp = tmp.clone();
                // Best effort; leftovers are also swept at startup.
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(tmp)).await;
                return Err(e);
            }
            tracing::info!(
                image = %digest,
                layers = image.layers.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "unpacked image"
            );
        }
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone());
        Ok(path)
    }

    /// Removes unpack directories an interrupted process left behind.
    pub(crate) fn sweep_temporaries(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

struct UnpackJob {
    handle: tokio::runtime::Handle,
    blobs: SharedBlobStore,
    layers: Vec<ImageLayer>,
    tmp: PathBuf,
    max_unpacked_bytes: u64,
    mount_files: Vec<String>,
}

enum Compression {
    None,
    Gzip,
    Zstd,
}

fn sniff(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

impl UnpackJob {
    fn run(self) -> Result<(), PrepareError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PrepareError::Io { path, source }
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&self.tmp)
                .map_err(io_err(&self.tmp))?;
        }
        let mut budget = Budget {
            limit: self.max_unpacked_bytes,
            used: 0,
        };
        for layer in &self.layers {
            let layer_err = |e: UnpackError| match e {
                UnpackError::TooLarge { limit } => PrepareError::TooLarge { limit },
                other => PrepareError::Layer {
                    digest: layer.digest.clone(),
                    message: other.to_string(),
                },
            };
            if layer.media_type.contains("zstd") {
                return Err(PrepareError::UnsupportedMediaType {
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
            let read = self
                .handle
                .block_on(self.blobs.read(&layer.digest, None))
                .map_err(PrepareError::Blob)?
                .ok_or_else(|| PrepareError::BlobMissing(layer.digest.clone()))?;
            let mut reader = BufReader::with_capacity(
                64 << 10,
                BlobReader {
                    handle: self.handle.clone(),
                    stream: read.stream,
                    chunk: Bytes::new(),
                },
            );
            let head = reader
                .fill_buf()
                .map_err(|e| layer_err(UnpackError::Read(e)))?;
            let report = match sniff(head) {
                Compression::Zstd => {
                    return Err(PrepareError::UnsupportedMediaType {
                        digest: layer.digest.clone(),
                        media_type: layer.media_type.clone(),
                    })
                }
                Compression::Gzip => unpack::apply_layer(
                    &self.tmp,
                    flate2::bufread::MultiGzDecoder::new(reader),
                    &mut budget,
                ),
                Compression::None => unpack::apply_layer(&self.tmp, reader, &mut budget),
            }
            .map_err(layer_err)?;
            if report.skipped > 0 {
                tracing::warn!(
                    layer = %layer.digest,
                    skipped = report.skipped,
                    examples = ?report.skip_messages,
                    "skipped layer entries that cannot be unpacked safely"
                );
            }
        }
        let files: Vec<&str> = self.mount_files.iter().map(String::as_str).collect();
        unpack::make_mount_points(&self.tmp, &files).map_err(io_err(&self.tmp))?;
        Ok(())
    }
}

/// A blob's byte stream as a blocking reader (used on a blocking thread).
struct BlobReader {
    handle: tokio::runtime::Handle,
    stream: BoxStream<'static, io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(e),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageConfig;
    use blobs::{BlobError, BlobRead, BlobStore, BodyStream, FsBlobStore};
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts reads, to see how often layers are unpacked.
    struct Counting {
        inner: FsBlobStore,
        reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl BlobStore for Counting {
        async fn size(&self, d: &Digest) -> Result<Option<u64>, BlobError> {
            self.inner.size(d).await
        }
        async fn read(
            &self,
            d: &Digest,
            r: Option<(u64, u64)>,
        ) -> Result<Option<BlobRead>, BlobError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read(d, r).await
        }
        async fn delete(&self, d: &Digest) -> Result<bool, BlobError> {
            self.inner.delete(d).await
        }
        async fn upload_start(&self, id: &str) -> Result<(), BlobError> {
            self.inner.upload_start(id).await
        }
        async fn upload_len(&self, id: &str) -> Result<Option<u64>, BlobError> {
            self.inner.upload_len(id).await
        }
        async fn upload_append(
            &self,
            id: &str,
            o: Option<u64>,
            b: BodyStream,
            m: u64,
        ) -> Result<u64, BlobError> {
            self.inner.upload_append(id, o, b, m).await
        }
        async fn upload_commit(&self, id: &str, d: &Digest) -> Result<u64, BlobError> {
            self.inner.upload_commit(id, d).await
        }
        async fn upload_abort(&self, id: &str) -> Result<(), BlobError> {
            self.inner.upload_abort(id).await
        }
        async fn upload_ids(&self) -> Result<Vec<String>, BlobError> {
            self.inner.upload_ids().await
        }
    }

    async fn put(store: &dyn BlobStore, bytes: Vec<u8>) -> Digest {
        let digest = Digest::of(&bytes);
        let id = uuid::Uuid::new_v4().simple().to_string();
        store.upload_start(&id).await.expect("start");
        let body: BodyStream =
            Box::pin(futures::stream::once(async move { Ok(Bytes::from(bytes)) }));
        store
            .upload_append(&id, None, body, u64::MAX)
            .await
            .expect("append");
        store.upload_commit(&id, &digest).await.expect("commit");
        digest
    }

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
        b.into_inner().expect("finish")
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    fn image(manifest: &[u8], layers: Vec<(Digest, &str)>) -> ImageSpec {
        ImageSpec {
            manifest_digest: Digest::of(manifest),
            layers: layers
                .into_iter()
                .map(|(digest, media_type)| ImageLayer {
                    digest,
                    media_type: media_type.to_string(),
                })
                .collect(),
            config: ImageConfig::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unpacks_once_concurrently_and_reuses_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Counting {
            inner: FsBlobStore::open(&dir.path().join("blobs")).expect("store"),
            reads: AtomicUsize::new(0),
        });
        let l1 = put(&*store, gzip(&tar_with("a", b"one"))).await;
        let l2 = put(&*store, tar_with("b", b"two")).await;
        let img = image(
            b"m1",
            vec![
                (l1, "application/vnd.oci.image.layer.v1.tar+gzip"),
                (l2, "application/vnd.oci.image.layer.v1.tar"),
            ],
        );
        let open = || {
            RootfsCache::open(
                dir.path().join("rootfs"),
                store.clone(),
                1 << 20,
                vec!["/etc/hosts".into()],
            )
            .expect("open")
        };
        let cache = Arc::new(open());
        let calls = (0..4).map(|_| {
            let cache = cache.clone();
            let img = img.clone();
            tokio::spawn(async move { cache.prepare(&img).await })
        });
        let paths: Vec<PathBuf> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("join").expect("prepare"))
            .collect();
        assert!(paths.iter().all(|p| p == &paths[0]));
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            2,
            "each layer read once"
        );
        let root = &paths[0];
        assert_eq!(std::fs::read_to_string(root.join("a")).expect("a"), "one");
        assert_eq!(std::fs::read_to_string(root.join("b")).expect("b"), "two");
        assert!(root.join("etc/hosts").is_file() && root.join("proc").is_dir());

        let again = open();
        assert_eq!(again.prepare(&img).await.expect("prepare"), paths[0]);
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            2,
            "cached across restarts"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_leave_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: SharedBlobStore =
            Arc::new(FsBlobStore::open(&dir.path().join("blobs")).expect("store"));
        let cache = RootfsCache::open(dir.path().join("rootfs"), store.clone(), 1 << 20, vec![])
            .expect("open");
        let missing = image(
            b"m2",
            vec![(
                Digest::of(b"absent"),
                "application/vnd.oci.image.layer.v1.tar",
            )],
        );
        let err = cache.prepare(&missing).await.expect_err("missing");
        assert!(matches!(err, PrepareError::BlobMissing(_)), "{err}");

        let zstd = put(&*store, vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0]).await;
        let img = image(
            b"m3",
            vec![(zstd, "application/vnd.oci.image.layer.v1.tar")],
        );
        let err = cache.prepare(&img).await.expect_err("zstd");
        assert!(err.to_string().contains("unsupported"), "{err}");

        let junk = put(
            &*store,
            gzip(b"not a tar at all, just text that is long enough"),
        )
        .await;
        let img = image(
            b"m4",
            vec![(junk, "application/vnd.oci.image.layer.v1.tar+gzip")],
        );
        let err = cache.prepare(&img).await.expect_err("junk");
        assert!(matches!(err, PrepareError::Layer { .. }), "{err}");

        let big = put(&*store, tar_with("big", &[7u8; 4096])).await;
        let img = image(b"m5", vec![(big, "application/vnd.oci.image.layer.v1.tar")]);
        let small = RootfsCache::open(dir.path().join("rootfs"), store.clone(), 1000, vec![])
            .expect("open");
        let err = small.prepare(&img).await.expect_err("too large");
        assert!(
            matches!(err, PrepareError::TooLarge { limit: 1000 }),
            "{err}"
        );

        let left: Vec<_> = std::fs::read_dir(dir.path().join("rootfs"))
            .expect("read_dir")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
