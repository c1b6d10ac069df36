//! Instances under the real runtime. These run only as root with runc
//! installed (CI has both); elsewhere each test says why it skipped.
//! The image is `/bin/busybox` (Debian `busybox-static`) packed as a gzip
//! layer and written into a real `FsBlobStore`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blobs::{BlobStore, BodyStream, Digest, FsBlobStore, SharedBlobStore};
use bytes::Bytes;
use executor_oci::{
    ExitStatus, ImageConfig, ImageLayer, ImageSpec, InstanceSpec, OciExecutor, OciExecutorConfig,
    OciInstance, OutputStream,
};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "touch", "cat", "sleep", "head", "tr", "wget", "id", "grep", "ls",
];
const DEADLINE: Duration = Duration::from_secs(30);

fn runc_usable() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let runc = executor_oci::DEFAULT_SEARCH_PATH
        .iter()
        .any(|d| Path::new(d).join("runc").is_file());
    if !(root && runc) {
        eprintln!("skipping: needs root and runc (root: {root}, runc: {runc})");
    }
    root && runc
}

fn busybox_layer() -> Vec<u8> {
    let mut busybox = Vec::new();
    std::fs::File::open(BUSYBOX)
        .and_then(|mut f| f.read_to_end(&mut busybox))
        .expect("read /bin/busybox (apt-get install -y busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    b.append_data(&mut dir, "bin", &[][..]).expect("dir");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_cksum();
    b.append_data(&mut h, "bin/busybox", &busybox[..])
        .expect("busybox");
    for applet in APPLETS {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_mode(0o777);
        l.set_size(0);
        b.append_link(&mut l, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

async fn put(store: &dyn BlobStore, bytes: Vec<u8>) -> Digest {
    let digest = Digest::of(&bytes);
    let id = uuid::Uuid::new_v4().simple().to_string();
    store.upload_start(&id).await.expect("upload_start");
    let body: BodyStream = Box::pin(futures::stream::once(async move { Ok(Bytes::from(bytes)) }));
    store
        .upload_append(&id, None, body, u64::MAX)
        .await
        .expect("upload_append");
    store
        .upload_commit(&id, &digest)
        .await
        .expect("upload_commit");
    digest
}

struct Fixture {
    dir: tempfile::TempDir,
    store: SharedBlobStore,
    image: ImageSpec,
    executor: OciExecutor,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: SharedBlobStore =
            Arc::new(FsBlobStore::open(&dir.path().join("blobs")).expect("blob store"));
        let layer = put(&*store, busybox_layer()).await;
        let image = ImageSpec {
            manifest_digest: Digest::of(format!("manifest of {layer}").as_bytes()),
            layers: vec![ImageLayer {
                digest: layer,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            }],
            config: ImageConfig::default(),
        };
        let executor = Self::executor(dir.path(), store.clone()).await;
        Fixture {
            dir,
            store,
            image,
            executor,
        }
    }

    async fn executor(dir: &Path, store: SharedBlobStore) -> OciExecutor {
        OciExecutor::new(OciExecutorConfig::new(dir.join("oci")), store)
            .await
            .expect("executor")
    }

    fn spec(&self, args: &[&str]) -> InstanceSpec {
        InstanceSpec {
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
            image: self.image.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/bin".into())],
            working_dir: "/".into(),
            user: None,
            memory_limit_bytes: 128 << 20,
            tmp_size_bytes: 16 << 20,
            read_only_dirs: Vec::new(),
        }
    }

    fn sh(&self, script: &str) -> InstanceSpec {
        self.spec(&["/bin/sh", "-c", script])
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    /// Container ids the runtime knows in our state directory.
    fn containers(&self) -> Vec<String> {
        let out = std::process::Command::new(self.executor.runtime_path())
            .arg("--root")
            .arg(self.state().join("runtime"))
            .args(["list", "-q"])
            .output()
            .expect("runc list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// All stdout lines until the instance's output closes.
async fn stdout_of(instance: &mut OciInstance) -> Vec<String> {
    let mut rx = instance.take_output().expect("output");
    let mut lines = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = rx.recv().await {
            match line.stream {
                OutputStream::Stdout => lines.push(line.line),
                OutputStream::Stderr => eprintln!("instance stderr: {}", line.line),
            }
        }
    })
    .await
    .expect("output closes");
    lines
}

async fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_runs_and_start_is_timed() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let t = Instant::now();
    f.executor.prepare(&f.image).await.expect("prepare");
    eprintln!("first prepare (unpack busybox): {:?}", t.elapsed());

    let mut spawn = Vec::new();
    let mut first_line = Vec::new();
    let mut total = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut instance = f
            .executor
            .start(f.spec(&["/bin/busybox", "echo", "hi"]))
            .await
            .expect("start");
        spawn.push(t.elapsed());
        let mut rx = instance.take_output().expect("output");
        let line = tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("line")
            .expect("line");
        first_line.push(t.elapsed());
        assert_eq!(
            (line.stream, line.line.as_str()),
            (OutputStream::Stdout, "hi")
        );
        let exit = instance.wait().await;
        total.push(t.elapsed());
        assert_eq!(exit.status, ExitStatus::Code(0), "{exit:?}");
        assert!(!exit.oom_killed);
        assert_eq!(exit.runtime_error, None);
        assert!(
            exit.max_memory_used_bytes.is_some_and(|b| b > 0),
            "{exit:?}"
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "start() returned after {:?}, first output line after {:?}, exited and removed after {:?} (medians of 7, runtime {})",
        median(&mut spawn),
        median(&mut first_line),
        median(&mut total),
        f.executor.runtime_path().display()
    );
    assert!(f.containers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_read_only_and_tmp_is_writable_and_sized() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut spec = f.sh("touch /x 2>/dev/null; echo root=$?; \
         echo data > /tmp/y && cat /tmp/y; \
         head -c 3000000 /dev/zero > /tmp/big 2>/dev/null; echo big=$?");
    spec.tmp_size_bytes = 1 << 20;
    let mut instance = f.executor.start(spec).await.expect("start");
    let lines = stdout_of(&mut instance).await;
    assert_eq!(lines, ["root=1", "data", "big=1"]);
    assert_eq!(instance.wait().await.status, ExitStatus::Code(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_directory_is_mounted_read_only() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let code = f.dir.path().join("code");
    std::fs::create_dir_all(&code).expect("code dir");
    std::fs::write(code.join("app.txt"), "hello from the code\n").expect("write");
    // The image has no /var/task: the mount point is made.
    let mut spec = f.sh("cat /var/task/app.txt; touch /var/task/new 2>/dev/null; echo write=$?");
    spec.read_only_dirs = vec![(code.clone(), "/var/task".into())];
    let mut instance = f.executor.start(spec).await.expect("start");
    let lines = stdout_of(&mut instance).await;
    assert_eq!(lines, ["hello from the code", "write=1"]);
    assert_eq!(instance.wait().await.status, ExitStatus::Code(0));
    assert!(!code.join("new").exists());

    let mut bad = f.sh("true");
    bad.read_only_dirs = vec![(code, "var/task".into())];
    assert!(f.executor.start(bad).await.is_err(), "relative destination");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_its_own_pid_namespace() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f
        .executor
        .start(f.sh("echo $$; ls /proc | grep -c '^[0-9]'"))
        .await
        .expect("start");
    let lines = stdout_of(&mut instance).await;
    // The shell is pid 1; only it and `ls`/`grep` are visible.
    assert_eq!(lines[0], "1");
    let visible: u32 = lines[1].parse().expect("count");
    assert!(visible <= 3, "{lines:?}");
    instance.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_a_listener_on_host_loopback() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nhello-from-host")
            .expect("respond");
    });
    let mut instance = f
        .executor
        .start(f.sh(&format!("wget -q -O - http://127.0.0.1:{port}/; echo")))
        .await
        .expect("start");
    assert_eq!(stdout_of(&mut instance).await, ["hello-from-host"]);
    assert_eq!(instance.wait().await.status, ExitStatus::Code(0));
    server.join().expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_oom_killed_and_reported() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut spec = f.sh("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived");
    spec.memory_limit_bytes = 32 << 20;
    let mut instance = f.executor.start(spec).await.expect("start");
    let lines = stdout_of(&mut instance).await;
    let exit = instance.wait().await;
    eprintln!("memory hog: {exit:?}, output {lines:?}");
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.status, ExitStatus::Signal(9), "{exit:?}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(
        exit.max_memory_used_bytes
            .is_some_and(|b| b <= 32 << 20 && b > 16 << 20),
        "{exit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_the_instance_and_leaves_no_container() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    // Killed right after the start, while runc may still be creating it.
    let mut early = f.executor.start(f.sh("sleep 1000")).await.expect("start");
    let exit = early.kill().await;
    assert_eq!(exit.status, ExitStatus::Signal(9), "{exit:?}");

    let mut instance = f
        .executor
        .start(f.sh("echo up; sleep 1000"))
        .await
        .expect("start");
    let mut rx = instance.take_output().expect("output");
    let line = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("up")
        .expect("up");
    assert_eq!(line.line, "up");
    assert_eq!(f.containers(), [instance.container_id()]);
    let t = Instant::now();
    let exit = instance.kill().await;
    eprintln!("kill took {:?}", t.elapsed());
    assert_eq!(exit.status, ExitStatus::Signal(9), "{exit:?}");
    assert!(!exit.oom_killed);
    assert_eq!(instance.kill().await, exit, "idempotent");
    assert_eq!(instance.wait().await, exit);
    assert!(f.containers().is_empty());
    let bundles = std::fs::read_dir(f.state().join("bundles"))
        .expect("bundles")
        .count();
    assert_eq!(bundles, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_instance_removes_its_container() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f
        .executor
        .start(f.sh("echo up; sleep 1000"))
        .await
        .expect("start");
    let mut rx = instance.take_output().expect("output");
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("up")
        .expect("up");
    drop(instance);
    poll_until("the container to go", || f.containers().is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_crashed_process_are_removed() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f
        .executor
        .start(f.sh("echo up; sleep 1000"))
        .await
        .expect("start");
    let mut rx = instance.take_output().expect("output");
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("up")
        .expect("up");
    let id = instance.container_id().to_string();
    // A crash: no kill, no Drop.
    std::mem::forget(instance);
    assert_eq!(f.containers(), [id]);

    let restarted = Fixture::executor(f.dir.path(), f.store.clone()).await;
    let left = restarted.cleanup_leftovers().await.expect("cleanup");
    assert_eq!((left.containers, left.bundles), (1, 1), "{left:?}");
    assert!(f.containers().is_empty());
    // And the restarted executor runs instances as usual.
    let mut again = restarted.start(f.sh("echo again")).await.expect("start");
    assert_eq!(stdout_of(&mut again).await, ["again"]);
    again.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_executable_is_reported_by_the_runtime() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f
        .executor
        .start(f.spec(&["/no/such/bootstrap"]))
        .await
        .expect("start");
    let exit = instance.wait().await;
    assert_ne!(exit.status, ExitStatus::Code(0));
    let error = exit.runtime_error.expect("runtime error");
    assert!(error.contains("/no/such/bootstrap"), "{error}");
    assert!(f.containers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_root_user_has_no_capabilities() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut spec = f.sh("id -u; id -g; grep CapEff /proc/self/status");
    spec.user = Some("1000:1000".into());
    let mut instance = f.executor.start(spec).await.expect("start");
    assert_eq!(
        stdout_of(&mut instance).await,
        ["1000", "1000", "CapEff:\t0000000000000000"]
    );
    instance.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_invalid_instances_are_refused() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let spec = f.sh("sleep 1000");
    let mut first = f.executor.start(spec.clone()).await.expect("start");
    let err = f.executor.start(spec).await.expect_err("duplicate");
    assert!(err.to_string().contains("already exists"), "{err}");
    let mut bad = f.sh("true");
    bad.instance_id = "../escape".into();
    let err = f.executor.start(bad).await.expect_err("invalid id");
    assert!(err.to_string().contains("instance id"), "{err}");
    first.kill().await;
}

/// The memory probe is taken right after `start` (before the runtime has
/// created the cgroup) and still reads the peak once the instance runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_probe_taken_at_start_reads_the_peak() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f
        .executor
        .start(f.sh("echo up; sleep 1000"))
        .await
        .expect("start");
    let probe = instance.memory_probe().expect("a memory cgroup");
    let mut rx = instance.take_output().expect("output");
    let line = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("up")
        .expect("up");
    assert_eq!(line.line, "up");
    let peak = probe().expect("the probe reads the peak");
    assert!(peak > 0, "{peak}");
    assert_eq!(
        Some(peak).map(|p| p > 0),
        instance.max_memory_used_bytes().map(|p| p > 0)
    );
    instance.kill().await;
}

/// A created instance runs nothing until `begin`; `begin` starts it, and
/// a created instance that is never begun can be killed and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_instance_starts_on_begin() {
    if !runc_usable() {
        return;
    }
    let f = Fixture::new().await;
    let mut instance = f.executor.create(f.sh("echo began")).await.expect("create");
    let mut rx = instance.take_output().expect("output");
    // Created, not started: no output, the container is there.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "a created instance printed before begin"
    );
    assert_eq!(f.containers(), [instance.container_id()]);
    let t = Instant::now();
    instance.begin().await.expect("begin");
    eprintln!("begin took {:?}", t.elapsed());
    let line = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("line")
        .expect("line");
    assert_eq!(line.line, "began");
    let exit = instance.wait().await;
    assert_eq!(exit.status, ExitStatus::Code(0), "{exit:?}");
    assert!(f.containers().is_empty());

    let mut parked = f.executor.create(f.sh("echo never")).await.expect("create");
    let exit = parked.kill().await;
    assert_ne!(exit.status, ExitStatus::Code(0), "{exit:?}");
    assert!(f.containers().is_empty());
}
