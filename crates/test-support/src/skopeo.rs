//! The skopeo CLI, with TLS verification off (test registries speak plain
//! HTTP on localhost) and a private, empty auth file per [`Skopeo`] value.

use std::fs;
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::cmd::{run_command, OutputExt, DEFAULT_COMMAND_TIMEOUT};

const INSTALL_HINT: &str = "install skopeo: `apt-get install skopeo` (scripts/install-deps.sh)";

/// Options of [`Skopeo::copy_with`].
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyOptions<'a> {
    /// `--src-creds USER:PASSWORD`.
    pub src_creds: Option<&'a str>,
    /// `--dest-creds USER:PASSWORD`.
    pub dest_creds: Option<&'a str>,
    /// `--preserve-digests`: fail rather than change the image. Without it
    /// skopeo may rewrite the manifest (it gzips uncompressed layers, and
    /// converts OCI to Docker schema 2 for `docker-daemon:`), so the digests
    /// of a [`crate::BuiltImage`] would not be the ones that arrive.
    pub preserve_digests: bool,
    /// More `skopeo copy` flags, e.g. `["--format", "v2s2"]`.
    pub extra_args: &'a [&'a str],
}

/// A skopeo CLI whose credentials come only from the arguments given.
pub struct Skopeo {
    auth: TempDir,
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}

impl Skopeo {
    pub fn new() -> Self {
        let auth = TempDir::with_prefix("stratus-skopeo-").expect("create temp dir");
        fs::write(auth.path().join("auth.json"), "{\"auths\":{}}\n").expect("write auth.json");
        fs::write(auth.path().join("config.json"), "{\"auths\":{}}\n").expect("write config.json");
        Skopeo { auth }
    }

    /// A `skopeo --insecure-policy` command with this value's environment
    /// (the signature policy is for production pulls, not tests).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.env("REGISTRY_AUTH_FILE", self.auth.path().join("auth.json"))
            .env("DOCKER_CONFIG", self.auth.path())
            .arg("--insecure-policy");
        cmd
    }

    /// Runs `skopeo --insecure-policy ARGS…`.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Output {
        run_command(
            self.command().args(args),
            DEFAULT_COMMAND_TIMEOUT,
            INSTALL_HINT,
        )
    }

    /// `skopeo copy --src-tls-verify=false --dest-tls-verify=false SRC DEST`
    /// with references like `oci:DIR:TAG` or `docker://localhost:PORT/repo:tag`.
    #[track_caller]
    pub fn copy(&self, src: &str, dest: &str) -> Output {
        self.copy_with(src, dest, CopyOptions::default())
    }

    /// [`Skopeo::copy`] with credentials and extra flags.
    #[track_caller]
    pub fn copy_with(&self, src: &str, dest: &str, opts: CopyOptions<'_>) -> Output {
        let mut args = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
        if let Some(creds) = opts.src_creds {
            args.extend(["--src-creds", creds]);
        }
        if let Some(creds) = opts.dest_creds {
            args.extend(["--dest-creds", creds]);
        }
        if opts.preserve_digests {
            args.push("--preserve-digests");
        }
        args.extend_from_slice(opts.extra_args);
        args.extend([src, dest]);
        self.cmd(&args)
    }

    /// `skopeo inspect --tls-verify=false [--creds C] IMAGE` parsed as JSON;
    /// asserts success.
    #[track_caller]
    pub fn inspect(&self, image: &str, creds: Option<&str>) -> serde_json::Value {
        self.inspect_json(image, creds, false)
    }

    /// The raw manifest of IMAGE (`skopeo inspect --raw`); asserts success.
    #[track_caller]
    pub fn raw_manifest(&self, image: &str, creds: Option<&str>) -> Vec<u8> {
        self.inspect_output(image, creds, true)
            .assert_success(&format!("skopeo inspect --raw {image}"))
            .stdout
    }

    #[track_caller]
    fn inspect_json(&self, image: &str, creds: Option<&str>, raw: bool) -> serde_json::Value {
        let out = self
            .inspect_output(image, creds, raw)
            .assert_success(&format!("skopeo inspect {image}"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "skopeo inspect {image}: invalid JSON ({e}): {}",
                out.stdout_str()
            )
        })
    }

    #[track_caller]
    fn inspect_output(&self, image: &str, creds: Option<&str>, raw: bool) -> Output {
        let mut args = vec!["inspect", "--tls-verify=false"];
        if raw {
            args.push("--raw");
        }
        if let Some(creds) = creds {
            args.extend(["--creds", creds]);
        }
        args.push(image);
        self.cmd(&args)
    }
}

/// One-off [`Skopeo::copy_with`] with optional `USER:PASSWORD` credentials.
#[track_caller]
pub fn skopeo_copy(
    src: &str,
    dest: &str,
    src_creds: Option<&str>,
    dest_creds: Option<&str>,
) -> Output {
    Skopeo::new().copy_with(
        src,
        dest,
        CopyOptions {
            src_creds,
            dest_creds,
            ..CopyOptions::default()
        },
    )
}
