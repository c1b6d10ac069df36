//! What `stratus run IMAGE` names: an OCI image layout directory, a
//! `docker save` tarball (or its unpacked directory), or a reference to a
//! registry on this machine. Decided from the argument and the file system
//! only; nothing is read or contacted here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::RunError;

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/`); `tag`
    /// picks the manifest by its `org.opencontainers.image.ref.name`.
    Layout { dir: PathBuf, tag: Option<String> },
    /// A `docker save` tarball (legacy `manifest.json` or OCI layout
    /// inside, optionally gzip-compressed); `tag` picks by `RepoTags`.
    Archive { file: PathBuf, tag: Option<String> },
    /// A `docker save` tarball already unpacked into a directory.
    DockerDir { dir: PathBuf, tag: Option<String> },
    /// A registry on this machine, pulled over plain HTTP.
    Remote {
        host: String,
        repository: String,
        reference: String,
    },
}

fn advice() -> &'static str {
    "stratus run takes an OCI image layout directory (oci:DIR[:TAG]), a `docker save` tarball \
     (docker save IMAGE -o image.tar; docker-archive:FILE), or an image in a registry on this \
     machine (localhost:PORT/REPO:TAG, e.g. pushed to a running `stratus serve`)"
}

/// Splits `PATH[:TAG]` the way skopeo's `oci:` and `docker-archive:`
/// transports do, preferring an existing path that contains a colon.
fn path_and_tag(rest: &str) -> (PathBuf, Option<String>) {
    if Path::new(rest).exists() {
        return (PathBuf::from(rest), None);
    }
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !path.is_empty() => {
            (PathBuf::from(path), Some(tag.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

/// Whether a registry host (with its port) is this machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_registry_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

/// A directory holding a layout or an unpacked `docker save`.
fn directory(dir: PathBuf, tag: Option<String>, arg: &str) -> Result<Source, RunError> {
    if dir.join("oci-layout").is_file() {
        Ok(Source::Layout { dir, tag })
    } else if dir.join("manifest.json").is_file() {
        Ok(Source::DockerDir { dir, tag })
    } else {
        Err(RunError::Image(format!(
            "{arg} is a directory but neither an OCI image layout (no oci-layout file) nor an unpacked `docker save` (no manifest.json); {}",
            advice()
        )))
    }
}

fn missing(path: &Path, arg: &str) -> RunError {
    RunError::Image(format!(
        "{arg}: {} does not exist; {}",
        path.display(),
        advice()
    ))
}

/// Decides what `arg` names.
pub(crate) fn parse(arg: &str) -> Result<Source, RunError> {
    if arg.trim().is_empty() {
        return Err(RunError::Image(format!("no image given; {}", advice())));
    }
    if let Some(rest) = arg.strip_prefix("oci:") {
        let (dir, tag) = path_and_tag(rest);
        if !dir.is_dir() {
            return Err(missing(&dir, arg));
        }
        return match directory(dir, tag, arg)? {
            s @ Source::Layout { .. } => Ok(s),
            _ => Err(RunError::Image(format!(
                "{arg} is not an OCI image layout (no oci-layout file); {}",
                advice()
            ))),
        };
    }
    if let Some(rest) = arg.strip_prefix("docker-archive:") {
        let (file, tag) = path_and_tag(rest);
        if !file.exists() {
            return Err(missing(&file, arg));
        }
        if file.is_dir() {
            return directory(file, tag, arg);
        }
        return Ok(Source::Archive { file, tag });
    }
    let reference = arg.strip_prefix("docker://");
    let path = Path::new(arg);
    if reference.is_none() && path.exists() {
        return if path.is_dir() {
            directory(path.to_path_buf(), None, arg)
        } else {
            Ok(Source::Archive {
                file: path.to_path_buf(),
                tag: None,
            })
        };
    }
    let reference = reference.unwrap_or(arg);
    let looks_like_path = arg.starts_with('/')
        || arg.starts_with("./")
        || arg.starts_with("../")
        || arg.ends_with(".tar")
        || arg.ends_with(".tar.gz")
        || arg.ends_with(".tgz");
    match reference.split_once('/') {
        Some((host, rest)) if is_registry_host(host) && !looks_like_path => {
            if !is_loopback_host(host) {
                return Err(RunError::Image(format!(
                    "{arg} is in the registry {host}; stratus run never contacts a registry that is not on this machine. \
                     Save the image (docker pull {reference} && docker save {reference} -o image.tar, then stratus run image.tar) \
                     or push it to a local `stratus serve` (then stratus run localhost:4566/REPO:TAG)"
                )));
            }
            let (repository, reference) = match rest.split_once('@') {
                Some((repo, digest)) => (repo, digest),
                None => match rest.rsplit_once(':') {
                    Some((repo, tag)) if !tag.contains('/') => (repo, tag),
                    _ => (rest, "latest"),
                },
            };
            if !registry::is_valid_repository_name(repository)
                || !(registry::is_valid_tag(reference) || blobs::Digest::parse(reference).is_ok())
            {
                return Err(RunError::Image(format!(
                    "{arg} is not a valid image reference (HOST:PORT/REPOSITORY[:TAG|@sha256:DIGEST])"
                )));
            }
            Ok(Source::Remote {
                host: host.to_string(),
                repository: repository.to_string(),
                reference: reference.to_string(),
            })
        }
        _ if looks_like_path => Err(missing(path, arg)),
        _ => Err(RunError::Image(format!(
            "{arg} is not a file or directory here, nor an image in a registry on this machine; {}. \
             For an image in Docker: docker save {arg} -o image.tar && stratus run image.tar",
            advice()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost:4566",
            "127.0.0.1:5000",
            "[::1]:4566",
            "registry.localhost:4566",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "public.ecr.aws",
            "10.0.0.1:5000",
            "docker.io",
            "localhost.example.com:80",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn references_and_paths() {
        let remote = parse("localhost:4566/team/app:v1").expect("remote");
        assert_eq!(
            remote,
            Source::Remote {
                host: "localhost:4566".into(),
                repository: "team/app".into(),
                reference: "v1".into()
            }
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let remote = parse(&format!("127.0.0.1:5000/app@{digest}")).expect("digest");
        assert!(matches!(remote, Source::Remote { reference, .. } if reference == digest));
        let remote = parse("docker://localhost:1/app").expect("docker://");
        assert!(matches!(remote, Source::Remote { reference, .. } if reference == "latest"));

        let err = parse("public.ecr.aws/lambda/python:3.11").expect_err("public");
        assert!(err.to_string().contains("docker save"), "{err}");
        let err = parse("my_lambda:latest").expect_err("bare name");
        assert!(err.to_string().contains("docker save"), "{err}");
        let err = parse("/nonexistent/image.tar").expect_err("missing file");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = parse("oci:/nonexistent/layout:v1").expect_err("missing layout");
        assert!(err.to_string().contains("/nonexistent/layout"), "{err}");
        assert!(parse("localhost:1/Bad Name").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn directories_and_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let layout = tmp.path().join("layout");
        std::fs::create_dir(&layout).expect("mkdir");
        let arg = layout.display().to_string();
        assert!(parse(&arg).is_err(), "empty directory");
        std::fs::write(layout.join("oci-layout"), "{}").expect("write");
        assert!(matches!(parse(&arg), Ok(Source::Layout { tag: None, .. })));
        assert!(matches!(
            parse(&format!("oci:{arg}:v2")),
            Ok(Source::Layout { tag: Some(t), .. }) if t == "v2"
        ));
        let tar = tmp.path().join("image.tar");
        std::fs::write(&tar, b"x").expect("write");
        assert!(matches!(
            parse(&tar.display().to_string()),
            Ok(Source::Archive { .. })
        ));
        assert!(matches!(
            parse(&format!("docker-archive:{}", tar.display())),
            Ok(Source::Archive { tag: None, .. })
        ));
    }
}
