//! The code of zip functions: deployment packages checked, kept and
//! unpacked once per content hash, for instances to mount read-only at
//! `/var/task`.
//!
//! Layout under the code directory (given by the server):
//! `zips/<sha256 hex>.zip` (the package as uploaded, for `Code.Location`)
//! and `unpacked/<sha256 hex>/` (its files). Both are written under a
//! temporary name and renamed into place, so a crash never leaves a
//! half-written package that looks complete.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Lambda's limit on a function's unzipped code.
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;
/// Files in one package, at most (a guard against entry-count bombs).
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The package is not a usable zip (the message is shown to the user).
    #[error("{0}")]
    Invalid(String),
    #[error("function code storage error: {0}")]
    Internal(String),
}

/// A stored package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredZip {
    /// Hex SHA-256 of the zip: its name in the store.
    pub sha256_hex: String,
    /// What Lambda reports as `CodeSha256` (base64 of the SHA-256).
    pub code_sha256: String,
    /// Bytes of the zip (`CodeSize`).
    pub size: i64,
}

/// Zip packages on local disk.
#[derive(Debug, Clone)]
pub struct CodeStore {
    root: PathBuf,
}

const UNZIP_FAILED: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

impl CodeStore {
    pub fn new(root: impl Into<PathBuf>) -> CodeStore {
        CodeStore { root: root.into() }
    }

    /// The unpacked files of package `sha256_hex`.
    pub fn dir(&self, sha256_hex: &str) -> PathBuf {
        self.root.join("unpacked").join(sha256_hex)
    }

    /// The package itself.
    pub fn zip_path(&self, sha256_hex: &str) -> Option<PathBuf> {
        is_hex_digest(sha256_hex).then(|| self.root.join("zips").join(format!("{sha256_hex}.zip")))
    }

    /// Checks, keeps and unpacks a package (once per content).
    pub async fn put(&self, zip: Bytes) -> Result<StoredZip, CodeError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&zip))
            .await
            .map_err(|e| CodeError::Internal(e.to_string()))?
    }

    fn put_blocking(&self, zip: &[u8]) -> Result<StoredZip, CodeError> {
        let digest = Sha256::digest(zip);
        let stored = StoredZip {
            sha256_hex: hex::encode(digest),
            code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
            size: zip.len() as i64,
        };
        let dir = self.dir(&stored.sha256_hex);
        let zips = self.root.join("zips");
        let unpacked = self.root.join("unpacked");
        for d in [&zips, &unpacked] {
            std::fs::create_dir_all(d).map_err(|e| internal(d, e))?;
        }
        if !dir.exists() {
            let tmp = tempfile::Builder::new()
                .prefix(".unpacking-")
                .tempdir_in(&unpacked)
                .map_err(|e| internal(&unpacked, e))?;
            unzip(zip, tmp.path())?;
            match std::fs::rename(tmp.path(), &dir) {
                Ok(()) => {}
                // Another upload of the same package won the race.
                Err(_) if dir.exists() => {}
                Err(e) => return Err(internal(&dir, e)),
            }
        }
        let path = zips.join(format!("{}.zip", stored.sha256_hex));
        if !path.exists() {
            let mut tmp = tempfile::NamedTempFile::new_in(&zips).map_err(|e| internal(&zips, e))?;
            std::io::Write::write_all(&mut tmp, zip).map_err(|e| internal(&path, e))?;
            tmp.as_file().sync_all().map_err(|e| internal(&path, e))?;
            tmp.persist(&path).map_err(|e| internal(&path, e.error))?;
        }
        Ok(stored)
    }
}

fn internal(path: &Path, e: std::io::Error) -> CodeError {
    CodeError::Internal(format!("{}: {e}", path.display()))
}

fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Unpacks `zip` into the empty directory `into`. Entries that would land
/// outside it, and more than [`MAX_UNZIPPED_BYTES`] of content (counted as
/// it inflates, not as the headers claim), are refused.
fn unzip(zip: &[u8], into: &Path) -> Result<(), CodeError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|_| CodeError::Invalid(UNZIP_FAILED.into()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(CodeError::Invalid(format!(
            "Your deployment package has {} files; at most {MAX_ENTRIES} are supported.",
            archive.len()
        )));
    }
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|_| CodeError::Invalid(UNZIP_FAILED.into()))?;
        let name = entry.name().to_string();
        let Some(relative) = safe_relative(&name) else {
            return Err(CodeError::Invalid(format!(
                "{UNZIP_FAILED} The entry {name:?} points outside the package."
            )));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = into.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| internal(&target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| internal(parent, e))?;
        }
        let mode = entry.unix_mode();
        if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            // A symlink: its target is the content; it must stay inside.
            let mut link = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut link)
                .map_err(|_| CodeError::Invalid(UNZIP_FAILED.into()))?;
            let resolved = relative.parent().unwrap_or(Path::new("")).join(&link);
            if link.starts_with('/') || safe_relative(&resolved.to_string_lossy()).is_none() {
                return Err(CodeError::Invalid(format!(
                    "{UNZIP_FAILED} The symbolic link {name:?} points outside the package."
                )));
            }
            std::os::unix::fs::symlink(&link, &target).map_err(|e| internal(&target, e))?;
            continue;
        }
        let mut out = std::fs::File::create(&target).map_err(|e| internal(&target, e))?;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|_| CodeError::Invalid(UNZIP_FAILED.into()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_UNZIPPED_BYTES {
                return Err(CodeError::Invalid(format!(
                    "Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
                )));
            }
            std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| internal(&target, e))?;
        }
        // Lambda keeps the owner's permission bits; files without any
        // are readable by all (the function may not run as root).
        let perm = mode.map(|m| m & 0o777).filter(|m| *m != 0).unwrap_or(0o644) | 0o444;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(perm))
            .map_err(|e| internal(&target, e))?;
    }
    Ok(())
}

/// `name` as a path inside the package, or `None` if it leaves it.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(&name.replace('\\', "/")).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data, mode) in entries {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(*name, opts).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[tokio::test]
    async fn stores_and_unpacks_once_with_lambda_hashes() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = CodeStore::new(dir.path());
        let zip = zip_of(&[
            ("app.py", b"print(1)\n", 0o644),
            ("bin/run", b"#!/bin/sh\n", 0o755),
        ]);
        let stored = store.put(Bytes::from(zip.clone())).await.expect("put");
        let digest = Sha256::digest(&zip);
        assert_eq!(stored.sha256_hex, hex::encode(digest));
        assert_eq!(
            stored.code_sha256,
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(stored.size, zip.len() as i64);
        let code = store.dir(&stored.sha256_hex);
        assert_eq!(
            std::fs::read(code.join("app.py")).expect("app"),
            b"print(1)\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(code.join("bin/run"))
            .expect("run")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let kept = store.zip_path(&stored.sha256_hex).expect("path");
        assert_eq!(std::fs::read(kept).expect("zip"), zip);
        // Again: same answer, nothing rewritten.
        assert_eq!(store.put(Bytes::from(zip)).await.expect("again"), stored);
    }

    #[tokio::test]
    async fn refuses_traversal_garbage_and_bombs() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = CodeStore::new(dir.path());
        let invalid = |r: Result<StoredZip, CodeError>| match r {
            Err(CodeError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let m = invalid(
            store
                .put(Bytes::from(zip_of(&[("../evil", b"x", 0o644)])))
                .await,
        );
        assert!(m.contains("outside the package"), "{m}");
        let m = invalid(
            store
                .put(Bytes::from(zip_of(&[("a/../../evil", b"x", 0o644)])))
                .await,
        );
        assert!(m.contains("outside the package"), "{m}");
        assert!(!dir.path().join("evil").exists());
        let m = invalid(store.put(Bytes::from_static(b"not a zip at all")).await);
        assert_eq!(m, UNZIP_FAILED);
        // 300 MB of zeros deflate to a few hundred KB.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("zeros", zip::write::SimpleFileOptions::default())
            .expect("start");
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..300 {
            w.write_all(&chunk).expect("write");
        }
        let bomb = w.finish().expect("finish").into_inner();
        assert!(bomb.len() < 2 << 20);
        let m = invalid(store.put(Bytes::from(bomb)).await);
        assert!(
            m.contains("Unzipped size must be smaller than 262144000 bytes"),
            "{m}"
        );
        // Nothing half-unpacked is left looking complete.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("unpacked"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative("a/b.py"), Some(PathBuf::from("a/b.py")));
        assert_eq!(safe_relative("./a/../b"), Some(PathBuf::from("b")));
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("../x"), None);
        assert_eq!(safe_relative("a\\..\\..\\x"), None);
    }
}
