//! Path resolution confined to a root directory, as if the process had
//! `chroot`ed into it.
//!
//! Every path-based syscall follows symlinks in the parent components of its
//! argument. A layer that plants `etc -> /etc` and then writes `etc/passwd`
//! would otherwise write the host's file. So nothing in this crate touches a
//! path inside a root filesystem without resolving it here first: symlinks
//! are expanded by hand, absolute targets restart at the root and `..` never
//! climbs above it. The returned path consists of real directories only (at
//! the moment of return; the callers are the only writers of the tree).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before giving up (Linux: 40).
const MAX_SYMLINKS: u32 = 40;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A directory; the path has no symlink in it.
    Dir(PathBuf),
    /// A non-directory as the last component (never a symlink).
    File(PathBuf),
    /// Some component does not exist.
    Missing,
    /// A non-directory where a directory was needed.
    NotDir,
}

enum Step {
    Up,
    Name(OsString),
}

/// Splits a path from an archive into plain names. `None` if the path is
/// absolute or has a `..` component: such entries are refused outright
/// rather than reinterpreted.
pub(crate) fn plain_components(path: &Path) -> Option<Vec<OsString>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Resolves `names` under `root`, following every symlink (the last
/// component too) within the root. With `create`, missing components are
/// made as directories (mode 0755) and passed to `on_create`.
pub(crate) fn resolve(
    root: &Path,
    names: &[OsString],
    create: bool,
    on_create: &mut dyn FnMut(&Path),
) -> io::Result<Resolved> {
    let mut queue: VecDeque<Step> = names.iter().map(|n| Step::Name(n.clone())).collect();
    let mut cur = root.to_path_buf();
    let mut followed = 0u32;
    while let Some(step) = queue.pop_front() {
        let name = match step {
            Step::Up => {
                if cur != root {
                    cur.pop();
                }
                continue;
            }
            Step::Name(name) => name,
        };
        let next = cur.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {}",
                        next.display()
                    )));
                }
                let target = std::fs::read_link(&next)?;
                let mut expansion = Vec::new();
                for c in target.components() {
                    match c {
                        Component::RootDir | Component::Prefix(_) => cur = root.to_path_buf(),
                        Component::CurDir => {}
                        Component::ParentDir => expansion.push(Step::Up),
                        Component::Normal(n) => expansion.push(Step::Name(n.to_os_string())),
                    }
                }
                for step in expansion.into_iter().rev() {
                    queue.push_front(step);
                }
            }
            Ok(meta) if meta.is_dir() => cur = next,
            Ok(_) => {
                // Anything left to walk (a name or `..`) needs a directory here.
                return Ok(if queue.is_empty() {
                    Resolved::File(next)
                } else {
                    Resolved::NotDir
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(Resolved::Missing);
                }
                std::fs::DirBuilder::new().mode(0o755).create(&next)?;
                on_create(&next);
                cur = next;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Resolved::Dir(cur))
}

/// Resolves the directory that holds the last of `names` (created when
/// `create`), returning it with the last name. `None` for an empty path.
pub(crate) fn resolve_parent<'a>(
    root: &Path,
    names: &'a [OsString],
    create: bool,
    on_create: &mut dyn FnMut(&Path),
) -> io::Result<Option<(Resolved, &'a OsStr)>> {
    let Some((last, parents)) = names.split_last() else {
        return Ok(None);
    };
    Ok(Some((
        resolve(root, parents, create, on_create)?,
        last.as_os_str(),
    )))
}

/// Reads a small file at `path` (absolute, as seen inside `root`), following
/// symlinks only within the root. `None` if it is missing or not a file.
pub(crate) fn read_small_file(root: &Path, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let names: Vec<OsString> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    match resolve(root, &names, false, &mut |_| {})? {
        Resolved::File(p) => {
            let mut out = Vec::new();
            std::fs::File::open(p)?.take(limit).read_to_end(&mut out)?;
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(s: &str) -> Vec<OsString> {
        plain_components(Path::new(s)).expect("plain")
    }

    #[test]
    fn refuses_absolute_and_parent_components() {
        assert_eq!(plain_components(Path::new("/etc/passwd")), None);
        assert_eq!(plain_components(Path::new("a/../../b")), None);
        assert_eq!(plain_components(Path::new("../b")), None);
        assert_eq!(
            names("./a/./b/"),
            vec![OsString::from("a"), OsString::from("b")]
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("real/sub")).expect("mkdir");
        symlink("/real", root.join("abs")).expect("symlink");
        symlink("../../../../real", root.join("climb")).expect("symlink");
        symlink("/", root.join("slash")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");
        std::fs::write(root.join("real/file"), b"x").expect("write");
        let r = |p: &str| resolve(&root, &names(p), false, &mut |_| {}).expect("resolve");
        assert_eq!(r("abs/sub"), Resolved::Dir(root.join("real/sub")));
        assert_eq!(r("climb/sub"), Resolved::Dir(root.join("real/sub")));
        assert_eq!(r("slash"), Resolved::Dir(root.clone()));
        assert_eq!(r("abs/file"), Resolved::File(root.join("real/file")));
        assert_eq!(r("abs/file/x"), Resolved::NotDir);
        assert_eq!(r("abs/none/x"), Resolved::Missing);
        assert!(resolve(&root, &names("loop/x"), false, &mut |_| {}).is_err());
    }

    #[test]
    fn creates_missing_directories_through_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        symlink("/etc", root.join("escape")).expect("symlink");
        let mut made = Vec::new();
        let got = resolve(&root, &names("escape/deep"), true, &mut |p| {
            made.push(p.to_path_buf())
        })
        .expect("resolve");
        assert_eq!(got, Resolved::Dir(root.join("etc/deep")));
        assert_eq!(made, vec![root.join("etc"), root.join("etc/deep")]);
    }
}
