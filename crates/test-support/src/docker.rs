//! The docker CLI, with a private `DOCKER_CONFIG` per [`Docker`] value.
//!
//! Nothing may come from a public registry: images are built `FROM scratch`
//! with the classic builder (`DOCKER_BUILDKIT=0`, `--pull=false`), `run`
//! never pulls, and `pull` only takes loopback registries.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};
use std::process::{Command, Output};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::cmd::{run_command, OutputExt, DEFAULT_COMMAND_TIMEOUT};

/// The variable that enables suites needing the Docker engine (`=1`).
pub const DOCKER_ENV: &str = "STRATUS_TEST_DOCKER";

const INSTALL_HINT: &str =
    "install Docker: `apt-get install docker.io` and start dockerd (scripts/install-deps.sh, .ci/run)";

/// Whether the Docker suites run: `STRATUS_TEST_DOCKER=1`.
pub fn docker_enabled() -> bool {
    std::env::var(DOCKER_ENV).is_ok_and(|v| v == "1")
}

/// A docker CLI with its own config dir (so `docker login` credentials stay
/// with this value). Images it built, tagged or pulled are removed when it
/// is dropped; give them names unique to the test.
pub struct Docker {
    config: TempDir,
    images: Mutex<Vec<String>>,
}

impl Default for Docker {
    fn default() -> Self {
        Self::new()
    }
}

impl Docker {
    pub fn new() -> Self {
        let config = TempDir::with_prefix("stratus-docker-config-").expect("create temp dir");
        fs::write(config.path().join("config.json"), "{\"auths\":{}}\n")
            .expect("write docker config.json");
        Docker {
            config,
            images: Mutex::new(Vec::new()),
        }
    }

    /// The `DOCKER_CONFIG` dir (holds `config.json` with any logins).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// A `docker` command with this value's environment, for cases the
    /// wrappers below do not cover.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    /// Runs `docker ARGS…`.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Output {
        run_command(
            self.command().args(args),
            DEFAULT_COMMAND_TIMEOUT,
            INSTALL_HINT,
        )
    }

    /// Runs `docker ARGS…` and asserts success (showing stderr otherwise).
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .assert_success(&format!("docker {}", args.join(" ")))
    }

    /// Builds `tag` from scratch holding `files` (path in the image, bytes;
    /// all mode 0755, owned by root). Returns the image id.
    #[track_caller]
    pub fn build_scratch_image(&self, tag: &str, files: &[(&str, &[u8])]) -> String {
        self.build_scratch_image_with(tag, files, &[])
    }

    /// Like [`Docker::build_scratch_image`], with Dockerfile `instructions`
    /// after the files are copied, e.g. `CMD ["/bin/app"]`, `ENV A=b`.
    #[track_caller]
    pub fn build_scratch_image_with(
        &self,
        tag: &str,
        files: &[(&str, &[u8])],
        instructions: &[&str],
    ) -> String {
        let ctx = TempDir::with_prefix("stratus-docker-build-").expect("create temp dir");
        let rootfs = ctx.path().join("rootfs");
        fs::create_dir(&rootfs).expect("create rootfs");
        for (path, bytes) in files {
            let dest = rootfs.join(relative_image_path(path));
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).expect("create dirs in build context");
            }
            fs::write(&dest, bytes).expect("write file in build context");
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let mut dockerfile = String::from("FROM scratch\n");
        if !files.is_empty() {
            dockerfile.push_str("COPY rootfs/ /\n");
        }
        for line in instructions {
            dockerfile.push_str(line);
            dockerfile.push('\n');
        }
        fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");

        let context = ctx.path().to_str().expect("utf-8 temp path");
        self.remove_on_drop(tag);
        self.ok(&[
            "build",
            "--pull=false",
            "--network=host",
            "--tag",
            tag,
            context,
        ]);
        self.image_id(tag)
            .unwrap_or_else(|| panic!("docker build succeeded but {tag} is not there"))
    }

    /// The local image id (`sha256:…`) of `image`, if it exists.
    pub fn image_id(&self, image: &str) -> Option<String> {
        let out = self.cmd(&["image", "inspect", "--format", "{{.Id}}", image]);
        out.status
            .success()
            .then(|| out.stdout_str().trim().to_string())
    }

    /// `docker run --rm --network host --pull never ARGS…` (ARGS hold the
    /// image and command): host networking only, and never a pull.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["run", "--rm", "--network", "host", "--pull", "never"];
        full.extend_from_slice(args);
        self.cmd(&full)
    }

    /// `docker push IMAGE`.
    #[track_caller]
    pub fn push(&self, image: &str) -> Output {
        self.cmd(&["push", image])
    }

    /// `docker pull IMAGE`; panics unless IMAGE is on a loopback registry
    /// (`localhost:PORT/…` or `127.0.0.1:PORT/…`).
    #[track_caller]
    pub fn pull(&self, image: &str) -> Output {
        assert!(
            is_loopback_reference(image),
            "refusing to pull {image}: only localhost registries may be used in tests"
        );
        self.remove_on_drop(image);
        self.cmd(&["pull", image])
    }

    /// `docker tag SOURCE TARGET`.
    #[track_caller]
    pub fn tag(&self, source: &str, target: &str) -> Output {
        self.remove_on_drop(target);
        self.cmd(&["tag", source, target])
    }

    /// `docker rmi IMAGE`.
    #[track_caller]
    pub fn rmi(&self, image: &str) -> Output {
        self.cmd(&["rmi", image])
    }

    /// `docker login REGISTRY -u USER -p PASSWORD`; the credentials land
    /// in this value's config dir only.
    #[track_caller]
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Output {
        self.cmd(&[
            "login",
            registry,
            "--username",
            user,
            "--password",
            password,
        ])
    }

    /// `docker logout REGISTRY`.
    #[track_caller]
    pub fn logout(&self, registry: &str) -> Output {
        self.cmd(&["logout", registry])
    }

    /// The manifest digest `docker push` reported (`…: digest: sha256:… size: N`).
    pub fn pushed_digest(push_output: &Output) -> Option<String> {
        let stdout = push_output.stdout_str();
        stdout.lines().rev().find_map(|line| {
            let rest = &line[line.find("digest: ")? + "digest: ".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
    }

    /// Has `image` removed (`docker rmi --force`) when this value drops;
    /// the wrappers above do so for what they build, tag and pull.
    pub fn remove_on_drop(&self, image: &str) {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(image.to_string());
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let mut images = std::mem::take(self.images.get_mut().unwrap_or_else(|e| e.into_inner()));
        if images.is_empty() {
            return;
        }
        images.sort();
        images.dedup();
        let mut cmd = self.command();
        cmd.args(["rmi", "--force"]).args(&images);
        // Best effort: the test may have removed them itself.
        let _ = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `path` as a relative path inside an image; panics on `..`.
pub(crate) fn relative_image_path(path: &str) -> &Path {
    let rel = Path::new(path.trim_start_matches('/'));
    assert!(
        rel.components().all(|c| matches!(c, Component::Normal(_))) && !path.is_empty(),
        "bad path in image: {path:?}"
    );
    rel
}

fn is_loopback_reference(image: &str) -> bool {
    let host = image.split('/').next().unwrap_or_default();
    image.contains('/')
        && ["localhost:", "127.0.0.1:", "[::1]:"]
            .iter()
            .any(|prefix| host.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_registries_are_pulled_from() {
        assert!(is_loopback_reference("localhost:5000/app:1"));
        assert!(is_loopback_reference("127.0.0.1:5000/a/b@sha256:00"));
        assert!(!is_loopback_reference("busybox"));
        assert!(!is_loopback_reference("library/busybox:latest"));
        assert!(!is_loopback_reference("docker.io/library/busybox"));
        assert!(!is_loopback_reference("localhost.example.com/app"));
    }

    #[test]
    fn reads_the_pushed_digest() {
        let out = Output {
            status: std::process::ExitStatus::default(),
            stdout: b"The push refers to repository [localhost:1/a]\n5f70bf18a086: Pushed\n\
                      latest: digest: sha256:abcd size: 527\n"
                .to_vec(),
            stderr: Vec::new(),
        };
        assert_eq!(Docker::pushed_digest(&out).as_deref(), Some("sha256:abcd"));
    }

    #[test]
    fn image_paths_are_relative() {
        assert_eq!(relative_image_path("/bin/app"), Path::new("bin/app"));
        assert_eq!(relative_image_path("bootstrap"), Path::new("bootstrap"));
    }

    #[test]
    #[should_panic(expected = "bad path")]
    fn image_paths_cannot_escape() {
        relative_image_path("../etc/passwd");
    }

    #[test]
    fn builds_and_runs_a_scratch_image() {
        crate::require_docker!();
        let busybox = fs::read("/bin/busybox").expect("busybox-static is installed");
        let docker = Docker::new();
        let tag = format!("stratus-test-support/scratch:{}", std::process::id());
        let id = docker.build_scratch_image_with(
            &tag,
            &[
                ("/bin/busybox", &busybox),
                ("/etc/greeting", b"hello from scratch\n"),
            ],
            &[r#"ENTRYPOINT ["/bin/busybox"]"#],
        );
        assert!(id.starts_with("sha256:"), "{id}");
        let out = docker.run(&[&tag, "cat", "/etc/greeting"]);
        let out = out.assert_success("docker run");
        assert_eq!(out.stdout_str(), "hello from scratch\n");
        let out = docker.run(&[&tag, "stat", "-c", "%a %u", "/etc/greeting"]);
        assert_eq!(
            out.assert_success("docker run stat").stdout_str(),
            "755 0\n"
        );
    }

    #[test]
    fn logins_stay_in_their_own_config() {
        crate::require_docker!();
        let registry = fake_registry();
        let a = Docker::new();
        let b = Docker::new();
        a.login(&registry, "alice", "secret")
            .assert_success("docker login");
        let a_config = fs::read_to_string(a.config_dir().join("config.json")).expect("config");
        assert!(a_config.contains(&registry), "{a_config}");
        let b_config = fs::read_to_string(b.config_dir().join("config.json")).expect("config");
        assert!(!b_config.contains(&registry), "{b_config}");
        a.logout(&registry).assert_success("docker logout");
    }

    /// `localhost:PORT` of a registry that accepts any request with 200.
    fn fake_registry() -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nDocker-Distribution-API-Version: registry/2.0\r\n\
                      Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            }
        });
        format!("localhost:{port}")
    }
}
