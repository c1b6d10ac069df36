//! Applying one image layer (an uncompressed tar stream) onto a root
//! filesystem directory, the way an overlay of the layers would look.
//!
//! Entries are streamed: memory stays bounded by the tar crate's header
//! buffers plus one copy buffer, whatever the layer's size. Hostile entries
//! are skipped, not reinterpreted: absolute paths, `..` components, device
//! nodes. Every path is resolved through [`crate::confined`], so a symlink a
//! layer planted never leads a write outside the root.
//!
//! Whiteouts follow the OCI image spec: `.wh.<name>` deletes `<name>` from
//! the lower layers, `.wh..wh..opq` empties its directory of lower-layer
//! content. "Lower" is meant literally: what this layer itself wrote stays,
//! whichever order the entries come in.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::confined::{self, Resolved};

/// Skip messages kept per layer (the count is exact).
const MAX_SKIP_MESSAGES: usize = 20;
const COPY_BUFFER: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    /// The layer stream itself failed: not a tar, bad gzip, the blob store.
    #[error("reading the layer failed: {0}")]
    Read(#[source] io::Error),
    #[error("writing {path} failed: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the image unpacks to more than the {limit}-byte limit")]
    TooLarge { limit: u64 },
}

/// What applying a layer did.
#[derive(Debug, Default)]
pub(crate) struct LayerReport {
    pub entries: u64,
    pub skipped: u64,
    /// The first few reasons for skipping, for the log.
    pub skip_messages: Vec<String>,
}

/// Bytes the whole image may still write (shared across its layers).
pub(crate) struct Budget {
    pub limit: u64,
    pub used: u64,
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Applies the tar stream `layer` onto `root`.
pub(crate) fn apply_layer(
    root: &Path,
    layer: impl Read,
    budget: &mut Budget,
) -> Result<LayerReport, UnpackError> {
    let mut archive = tar::Archive::new(layer);
    let mut state = Layer {
        root,
        written: HashSet::new(),
        dirs: Vec::new(),
        report: LayerReport::default(),
    };
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        state.report.entries += 1;
        state.apply(&mut entry, budget)?;
    }
    state.finish()?;
    Ok(state.report)
}

struct DirAttrs {
    path: PathBuf,
    mode: u32,
    owner: Option<(u32, u32)>,
}

struct Layer<'a> {
    root: &'a Path,
    /// Real paths this layer created or wrote (whiteouts spare them).
    written: HashSet<PathBuf>,
    /// Directory modes, applied at the end so a read-only directory does
    /// not stop later entries from landing in it.
    dirs: Vec<DirAttrs>,
    report: LayerReport,
}

impl Layer<'_> {
    fn skip(&mut self, what: &Path, why: &str) {
        self.report.skipped += 1;
        tracing::debug!(entry = %what.display(), why, "skipped layer entry");
        if self.report.skip_messages.len() < MAX_SKIP_MESSAGES {
            self.report
                .skip_messages
                .push(format!("{}: {why}", what.display()));
        }
    }

    fn resolve_parent(
        &mut self,
        names: &[OsString],
        create: bool,
    ) -> Result<Option<(PathBuf, OsString)>, UnpackError> {
        let written = &mut self.written;
        let got = confined::resolve_parent(self.root, names, create, &mut |p| {
            written.insert(p.to_path_buf());
        })
        .map_err(write_err(self.root))?;
        Ok(match got {
            Some((Resolved::Dir(dir), name)) => Some((dir, name.to_os_string())),
            _ => None,
        })
    }

    fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        budget: &mut Budget,
    ) -> Result<(), UnpackError> {
        let raw = entry.path().map_err(UnpackError::Read)?.into_owned();
        let Some(names) = confined::plain_components(&raw) else {
            self.skip(&raw, "absolute path or `..` component");
            return Ok(());
        };
        let Some(last) = names.last() else {
            // The root itself ("./"): its attributes stay ours.
            return Ok(());
        };
        if let Some(hidden) = last.as_bytes().strip_prefix(b".wh.") {
            return self.whiteout(&raw, &names, hidden);
        }

        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        match kind {
            T::Regular | T::Continuous | T::GNUSparse | T::Directory | T::Symlink | T::Link => {}
            T::Char | T::Block | T::Fifo => {
                self.skip(&raw, "device node or fifo");
                return Ok(());
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            _ => {
                self.skip(&raw, "unsupported entry type");
                return Ok(());
            }
        }
        let Some((parent, name)) = self.resolve_parent(&names, true)? else {
            self.skip(&raw, "a parent is not a directory");
            return Ok(());
        };
        let target = parent.join(&name);
        let header = entry.header();
        let mode = header.mode().map_err(UnpackError::Read)? & 0o7777;
        let owner = match (header.uid(), header.gid()) {
            (Ok(uid), Ok(gid)) => u32::try_from(uid).ok().zip(u32::try_from(gid).ok()),
            _ => None,
        };

        match kind {
            T::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(meta) if meta.is_dir() => {}
                    _ => {
                        remove_existing(&target)?;
                        fs::DirBuilder::new()
                            .mode(0o755)
                            .create(&target)
                            .map_err(write_err(&target))?;
                    }
                }
                self.dirs.push(DirAttrs {
                    path: target.clone(),
                    mode,
                    owner,
                });
            }
            T::Symlink => {
                let Some(link) = entry.link_name().map_err(UnpackError::Read)? else {
                    self.skip(&raw, "symlink without a target");
                    return Ok(());
                };
                remove_existing(&target)?;
                std::os::unix::fs::symlink(&link, &target).map_err(write_err(&target))?;
                if let Some((uid, gid)) = owner {
                    chown_tolerant(std::os::unix::fs::lchown(&target, Some(uid), Some(gid)))
                        .map_err(write_err(&target))?;
                }
            }
            T::Link => {
                let link = entry.link_name().map_err(UnpackError::Read)?;
                let Some(link_names) = link.as_deref().and_then(confined::plain_components) else {
                    self.skip(&raw, "hard link target outside the root");
                    return Ok(());
                };
                let source = match self.resolve_parent(&link_names, false)? {
                    Some((dir, name)) => dir.join(name),
                    None => {
                        self.skip(&raw, "hard link target does not exist");
                        return Ok(());
                    }
                };
                match fs::symlink_metadata(&source) {
                    Ok(meta) if !meta.is_dir() => {}
                    _ => {
                        self.skip(&raw, "hard link target is missing or a directory");
                        return Ok(());
                    }
                }
                if source == target {
                    return Ok(());
                }
                remove_existing(&target)?;
                // linkat(2) without AT_SYMLINK_FOLLOW: a link to a symlink
                // links the symlink itself.
                fs::hard_link(&source, &target).map_err(write_err(&target))?;
            }
            _ => {
                remove_existing(&target)?;
                let size = header.size().map_err(UnpackError::Read)?;
                if budget.used.saturating_add(size) > budget.limit {
                    return Err(UnpackError::TooLarge {
                        limit: budget.limit,
                    });
                }
                let mtime = header.mtime().ok();
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(write_err(&target))?;
                let written = copy(entry, &mut file, &target)?;
                budget.used = budget.used.saturating_add(written);
                if budget.used > budget.limit {
                    return Err(UnpackError::TooLarge {
                        limit: budget.limit,
                    });
                }
                if let Some((uid, gid)) = owner {
                    // Before chmod: chown clears setuid bits.
                    chown_tolerant(std::os::unix::fs::fchown(&file, Some(uid), Some(gid)))
                        .map_err(write_err(&target))?;
                }
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(write_err(&target))?;
                if let Some(secs) = mtime {
                    // Python compares a module's mtime with its .pyc.
                    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
                    file.set_modified(t).map_err(write_err(&target))?;
                }
            }
        }
        self.written.insert(target);
        Ok(())
    }

    fn whiteout(
        &mut self,
        raw: &Path,
        names: &[OsString],
        hidden: &[u8],
    ) -> Result<(), UnpackError> {
        let parent_names = &names[..names.len() - 1];
        let parent = match confined::resolve(self.root, parent_names, false, &mut |_| {})
            .map_err(write_err(self.root))?
        {
            Resolved::Dir(dir) => dir,
            // Nothing below to hide.
            _ => return Ok(()),
        };
        if hidden == b".wh..opq" {
            for child in fs::read_dir(&parent).map_err(write_err(&parent))? {
                let child = child.map_err(write_err(&parent))?;
                self.delete_lower(&child.path())?;
            }
        } else if hidden.starts_with(b".wh.") || hidden.is_empty() {
            // Other `.wh..wh.*` names are aufs bookkeeping.
            self.skip(raw, "unknown whiteout");
        } else {
            let name = std::ffi::OsStr::from_bytes(hidden);
            self.delete_lower(&parent.join(name))?;
        }
        Ok(())
    }

    /// Deletes what lower layers put at `path` (a real path, parents
    /// resolved), sparing what this layer wrote.
    fn delete_lower(&self, path: &Path) -> Result<(), UnpackError> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(write_err(path)(e)),
        };
        if self.written.contains(path) {
            if meta.is_dir() {
                for child in fs::read_dir(path).map_err(write_err(path))? {
                    let child = child.map_err(write_err(path))?;
                    self.delete_lower(&child.path())?;
                }
            }
            return Ok(());
        }
        remove_existing(path)
    }

    fn finish(&mut self) -> Result<(), UnpackError> {
        // Deepest first does not matter for root; re-resolve because a later
        // entry may have replaced a parent with a symlink.
        for dir in self.dirs.drain(..).rev() {
            let Ok(rel) = dir.path.strip_prefix(self.root) else {
                continue;
            };
            let Some(names) = confined::plain_components(rel) else {
                continue;
            };
            let Resolved::Dir(real) = confined::resolve(self.root, &names, false, &mut |_| {})
                .map_err(write_err(&dir.path))?
            else {
                continue;
            };
            if real != dir.path {
                // Replaced by a symlink meanwhile; the entry's attributes
                // belonged to the directory that is gone.
                continue;
            }
            if let Some((uid, gid)) = dir.owner {
                chown_tolerant(std::os::unix::fs::lchown(&real, Some(uid), Some(gid)))
                    .map_err(write_err(&real))?;
            }
            fs::set_permissions(&real, fs::Permissions::from_mode(dir.mode))
                .map_err(write_err(&real))?;
        }
        Ok(())
    }
}

/// Removes whatever is at `path` without following a symlink there.
fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(write_err(path)),
        Ok(_) => fs::remove_file(path).map_err(write_err(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(write_err(path)(e)),
    }
}

/// Ownership is best effort when not running as root (tests, rootless).
fn chown_tolerant(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

fn copy(from: &mut impl Read, to: &mut fs::File, path: &Path) -> Result<u64, UnpackError> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(write_err(path))?;
        total += n as u64;
    }
}

/// Makes the mount points the runtime needs, so that it never has to write
/// into the shared, cached root filesystem: `/proc`, `/sys`, `/dev`, `/tmp`,
/// and the files bind-mounted from the host.
pub(crate) fn make_mount_points(root: &Path, files: &[&str]) -> io::Result<()> {
    for dir in ["proc", "sys", "dev", "tmp"] {
        confined::resolve(root, &[OsString::from(dir)], true, &mut |_| {})?;
    }
    for file in files {
        let Some(names) = confined::plain_components(Path::new(file.trim_start_matches('/')))
        else {
            continue;
        };
        if let Some((Resolved::Dir(dir), name)) =
            confined::resolve_parent(root, &names, true, &mut |_| {})?
        {
            let path = dir.join(name);
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&path)?;
                }
                Err(e) => return Err(e),
                // An existing file or symlink: the runtime resolves
                // symlinks inside the root itself.
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Builds a tar from entries, writing names raw so hostile paths survive.
    struct TarBuilder(tar::Builder<Vec<u8>>);

    impl TarBuilder {
        fn new() -> Self {
            Self(tar::Builder::new(Vec::new()))
        }
        fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h
        }
        fn file(mut self, name: &str, data: &str) -> Self {
            self.file_mode(name, data, 0o644);
            self
        }
        fn file_mode(&mut self, name: &str, data: &str, mode: u32) {
            let mut h = Self::header(name, tar::EntryType::Regular, mode, data.len() as u64);
            h.set_cksum();
            self.0.append(&h, data.as_bytes()).expect("append");
        }
        fn dir(mut self, name: &str, mode: u32) -> Self {
            let mut h = Self::header(name, tar::EntryType::Directory, mode, 0);
            h.set_cksum();
            self.0.append(&h, &[][..]).expect("append");
            self
        }
        fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
            let mut h = Self::header(name, kind, 0o777, 0);
            let t = target.as_bytes();
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
            h.set_cksum();
            self.0.append(&h, &[][..]).expect("append");
            self
        }
        fn symlink(self, name: &str, target: &str) -> Self {
            self.link(tar::EntryType::Symlink, name, target)
        }
        fn hardlink(self, name: &str, target: &str) -> Self {
            self.link(tar::EntryType::Link, name, target)
        }
        fn device(mut self, name: &str) -> Self {
            let mut h = Self::header(name, tar::EntryType::Char, 0o666, 0);
            h.set_cksum();
            self.0.append(&h, &[][..]).expect("append");
            self
        }
        fn build(self) -> Vec<u8> {
            self.0.into_inner().expect("finish")
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).expect("mkdir");
        fs::create_dir(&outside).expect("mkdir");
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    fn apply(root: &Path, tar: Vec<u8>) -> LayerReport {
        let mut budget = Budget {
            limit: 1 << 30,
            used: 0,
        };
        apply_layer(root, &tar[..], &mut budget).expect("apply")
    }

    /// Every path under `root` with a short description, sorted.
    fn listing(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).expect("read_dir") {
                let p = e.expect("entry").path();
                let rel = p.strip_prefix(root).expect("prefix").display().to_string();
                let meta = fs::symlink_metadata(&p).expect("meta");
                if meta.file_type().is_symlink() {
                    let t = fs::read_link(&p).expect("readlink");
                    out.push(format!("{rel} -> {}", t.display()));
                } else if meta.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &p, out);
                } else {
                    let data = fs::read_to_string(&p).unwrap_or_default();
                    out.push(format!("{rel} = {data:?}"));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn check(layers: Vec<Vec<u8>>, expected: &[&str]) -> (Fixture, Vec<LayerReport>) {
        let f = fixture();
        let reports = layers.into_iter().map(|l| apply(&f.root, l)).collect();
        assert_eq!(listing(&f.root), expected);
        assert_eq!(listing(&f.outside), Vec::<String>::new(), "nothing escaped");
        (f, reports)
    }

    #[test]
    fn plain_layer_with_modes_and_links() {
        let mut t = TarBuilder::new().dir("bin", 0o755);
        t.file_mode("bin/tool", "#!", 0o4755);
        let t = t
            .symlink("bin/alias", "tool")
            .hardlink("bin/hard", "bin/tool")
            .dir("ro", 0o555)
            .file("ro/inside", "x");
        let (f, reports) = check(
            vec![t.build()],
            &[
                "bin/",
                "bin/alias -> tool",
                "bin/hard = \"#!\"",
                "bin/tool = \"#!\"",
                "ro/",
                "ro/inside = \"x\"",
            ],
        );
        assert_eq!(reports[0].skipped, 0);
        let tool = fs::metadata(f.root.join("bin/tool")).expect("meta");
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(tool.mtime(), 1_700_000_000);
        assert_eq!(tool.nlink(), 2);
        let ro = fs::metadata(f.root.join("ro")).expect("meta");
        assert_eq!(ro.mode() & 0o7777, 0o555);
    }

    #[test]
    fn refuses_parent_escapes_and_absolute_paths() {
        let t = TarBuilder::new()
            .file("../outside/evil", "x")
            .file("a/../../outside/evil2", "x")
            .file("/abs", "x")
            .file("ok", "fine");
        let (_f, reports) = check(vec![t.build()], &["ok = \"fine\""]);
        assert_eq!(reports[0].skipped, 3);
    }

    #[test]
    fn symlinked_parents_stay_inside_the_root() {
        let f = fixture();
        let outside = f.outside.display().to_string();
        let t = TarBuilder::new()
            .symlink("esc", &outside)
            .file("esc/evil", "x")
            .symlink("up", "../../../../..")
            .file("up/evil2", "y")
            .build();
        apply(&f.root, t);
        assert_eq!(listing(&f.outside), Vec::<String>::new(), "nothing escaped");
        // The writes landed where the link points when the root is `/`.
        let inside = f.root.join(outside.trim_start_matches('/')).join("evil");
        assert_eq!(fs::read_to_string(inside).expect("read"), "x");
        assert_eq!(fs::read_to_string(f.root.join("evil2")).expect("read"), "y");
    }

    #[test]
    fn a_later_layer_symlink_does_not_redirect_writes() {
        let f = fixture();
        let outside = f.outside.display().to_string();
        apply(&f.root, TarBuilder::new().symlink("etc", &outside).build());
        apply(
            &f.root,
            TarBuilder::new().file("etc/passwd", "root").build(),
        );
        assert_eq!(listing(&f.outside), Vec::<String>::new());
    }

    #[test]
    fn existing_symlink_target_is_replaced_not_followed() {
        let f = fixture();
        fs::write(f.outside.join("victim"), "safe").expect("write");
        let victim = f.outside.join("victim").display().to_string();
        apply(
            &f.root,
            TarBuilder::new()
                .symlink("x", &victim)
                .file("x", "overwritten?")
                .build(),
        );
        assert_eq!(
            fs::read_to_string(f.outside.join("victim")).expect("read"),
            "safe"
        );
        assert_eq!(
            fs::read_to_string(f.root.join("x")).expect("read"),
            "overwritten?"
        );
    }

    #[test]
    fn hard_links_outside_the_root_are_refused() {
        let f = fixture();
        fs::write(f.outside.join("secret"), "s").expect("write");
        let secret = f.outside.join("secret").display().to_string();
        let report = apply(
            &f.root,
            TarBuilder::new()
                .hardlink("h1", &secret)
                .hardlink("h2", "../outside/secret")
                .symlink("l", &f.outside.display().to_string())
                .hardlink("h3", "l/secret")
                .build(),
        );
        assert_eq!(report.skipped, 3);
        assert_eq!(
            listing(&f.root),
            vec![format!("l -> {}", f.outside.display())]
        );
    }

    #[test]
    fn whiteouts_delete_lower_files_and_directories() {
        let lower = TarBuilder::new()
            .dir("etc", 0o755)
            .file("etc/a", "a")
            .file("etc/b", "b")
            .dir("var/cache", 0o755)
            .file("var/cache/x", "x")
            .build();
        let upper = TarBuilder::new()
            .file("etc/.wh.a", "")
            .file("var/.wh.cache", "")
            .file("none/.wh.missing", "")
            .build();
        check(vec![lower, upper], &["etc/", "etc/b = \"b\"", "var/"]);
    }

    #[test]
    fn opaque_directory_hides_lower_content_only() {
        let lower = TarBuilder::new()
            .dir("app", 0o755)
            .file("app/old", "old")
            .dir("app/sub", 0o755)
            .file("app/sub/old", "old")
            .file("keep", "k")
            .build();
        // The opaque marker comes after this layer's own entries on purpose.
        let upper = TarBuilder::new()
            .dir("app", 0o755)
            .dir("app/sub", 0o755)
            .file("app/sub/new", "new")
            .file("app/new", "new")
            .file("app/.wh..wh..opq", "")
            .build();
        check(
            vec![lower, upper],
            &[
                "app/",
                "app/new = \"new\"",
                "app/sub/",
                "app/sub/new = \"new\"",
                "keep = \"k\"",
            ],
        );
    }

    #[test]
    fn whiteout_through_symlink_stays_inside() {
        let f = fixture();
        fs::write(f.outside.join("victim"), "safe").expect("write");
        let outside = f.outside.display().to_string();
        apply(
            &f.root,
            TarBuilder::new()
                .symlink("d", &outside)
                .file("d/.wh.victim", "")
                .file("d/.wh..wh..opq", "")
                .build(),
        );
        assert_eq!(
            fs::read_to_string(f.outside.join("victim")).expect("read"),
            "safe"
        );
    }

    #[test]
    fn replacing_types_and_skipping_devices() {
        let lower = TarBuilder::new()
            .dir("d", 0o755)
            .file("d/x", "x")
            .file("f", "file")
            .build();
        let upper = TarBuilder::new()
            .file("d", "now a file")
            .dir("f", 0o700)
            .device("null")
            .build();
        let (_f, reports) = check(vec![lower, upper], &["d = \"now a file\"", "f/"]);
        assert_eq!(reports[1].skipped, 1);
    }

    #[test]
    fn stops_at_the_size_budget() {
        let f = fixture();
        let t = TarBuilder::new()
            .file("a", "12345")
            .file("b", "67890")
            .build();
        let mut budget = Budget { limit: 7, used: 0 };
        let err = apply_layer(&f.root, &t[..], &mut budget).expect_err("too large");
        assert!(matches!(err, UnpackError::TooLarge { limit: 7 }), "{err}");
    }

    #[test]
    fn garbage_is_a_read_error() {
        let f = fixture();
        let mut budget = Budget {
            limit: 1 << 20,
            used: 0,
        };
        let junk = vec![0x42u8; 1024];
        let err = apply_layer(&f.root, &junk[..], &mut budget).expect_err("garbage");
        assert!(matches!(err, UnpackError::Read(_)), "{err}");
    }

    #[test]
    fn mount_points_are_made_inside_the_root() {
        let f = fixture();
        let outside = f.outside.display().to_string();
        apply(&f.root, TarBuilder::new().symlink("etc", &outside).build());
        make_mount_points(&f.root, &["/etc/resolv.conf", "/etc/hosts"]).expect("mount points");
        assert_eq!(listing(&f.outside), Vec::<String>::new());
        let etc = f.root.join(outside.trim_start_matches('/'));
        assert!(etc.join("hosts").is_file());
        for d in ["proc", "sys", "dev", "tmp"] {
            assert!(f.root.join(d).is_dir(), "{d}");
        }
    }
}
