use std::time::{Duration, Instant};

use super::*;

fn spec(script: &str) -> ProcessSpec {
    ProcessSpec {
        instance_id: "t".into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: std::env::temp_dir(),
    }
}

async fn all_lines(instance: &mut HostInstance) -> Vec<(OutputStream, String)> {
    let mut rx = instance.take_output().expect("output");
    let mut out = Vec::new();
    while let Some(l) = rx.recv().await {
        out.push((l.stream, l.line));
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: it has ended and waits to be reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (bounded) until `pid` is gone.
async fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn runs_a_process_with_its_environment_and_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s =
        spec("echo out; echo err >&2; echo \"$GREETING\"; pwd; echo \"${HOME:-nohome}\"; exit 3");
    s.env.push(("GREETING".into(), "hello".into()));
    s.cwd = dir.path().to_path_buf();
    let mut i = HostExecutor::default().start(s).expect("start");
    let lines = all_lines(&mut i).await;
    assert_eq!(i.wait().await, ExitStatus::Code(3));
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == OutputStream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    let cwd = dir.path().canonicalize().expect("canonical");
    assert_eq!(
        stdout,
        ["out", "hello", cwd.to_str().expect("utf-8"), "nohome"],
        "only the given environment"
    );
    assert!(lines.contains(&(OutputStream::Stderr, "err".into())));
    // Idempotent.
    assert_eq!(i.wait().await, ExitStatus::Code(3));
    assert_eq!(i.kill().await, ExitStatus::Code(3));
}

#[tokio::test]
async fn a_missing_program_is_a_start_error() {
    let mut s = spec("");
    s.program = "/nonexistent/bootstrap".into();
    let err = HostExecutor::default().start(s).expect_err("no program");
    assert!(err.to_string().contains("/nonexistent/bootstrap"), "{err}");
}

#[tokio::test]
async fn kill_stops_the_whole_group() {
    let mut i = HostExecutor::default()
        .start(spec("sleep 100 & echo $!; wait"))
        .expect("start");
    let mut rx = i.take_output().expect("output");
    let child: u32 = rx.recv().await.expect("line").line.parse().expect("pid");
    assert!(alive(child));
    assert!(alive(i.pid()));
    assert_eq!(i.kill().await, ExitStatus::Signal(9));
    assert!(gone(child).await, "the background child survived");
    assert!(!alive(i.pid()));
    assert_eq!(i.kill().await, ExitStatus::Signal(9), "idempotent");
}

#[tokio::test]
async fn the_group_ends_with_its_main_process() {
    let mut i = HostExecutor::default()
        .start(spec("sleep 100 & echo $!"))
        .expect("start");
    let mut rx = i.take_output().expect("output");
    let child: u32 = rx.recv().await.expect("line").line.parse().expect("pid");
    assert_eq!(i.wait().await, ExitStatus::Code(0));
    assert!(gone(child).await, "the background child survived");
    // The output ends with the group (nobody holds the pipes any more).
    let rest = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(rest.expect("output closes"), None);
}

#[tokio::test]
async fn drop_kills() {
    let i = HostExecutor::default()
        .start(spec("sleep 100"))
        .expect("start");
    let pid = i.pid();
    assert!(alive(pid));
    drop(i);
    assert!(gone(pid).await, "a dropped instance survived");
}

#[tokio::test]
async fn a_signal_is_reported() {
    let mut i = HostExecutor::default()
        .start(spec("kill -TERM $$"))
        .expect("start");
    assert_eq!(i.wait().await, ExitStatus::Signal(15));
}

#[tokio::test]
async fn peak_memory_is_read_while_alive_and_kept_after() {
    let mut i = HostExecutor::default()
        .start(spec("sleep 100"))
        .expect("start");
    // Right after the fork the child has not exec'd yet (a few KiB): wait
    // until it runs its program.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let m = i.max_memory_used_bytes().expect("VmHWM");
        if m > 64 * 1024 || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::task::yield_now().await;
    };
    assert!(m > 64 * 1024 && m < 1 << 30, "{m}");
    i.kill().await;
    assert_eq!(i.max_memory_used_bytes(), Some(m), "the last reading");
}

#[tokio::test]
async fn long_lines_arrive_in_pieces() {
    let config = HostExecutorConfig {
        max_output_line_bytes: 4,
        ..HostExecutorConfig::default()
    };
    let mut i = HostExecutor::new(config)
        .start(spec("printf 'abcdefghij\\nxy\\nabcé\\nlast'"))
        .expect("start");
    let lines: Vec<String> = all_lines(&mut i)
        .await
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(lines, ["abcd", "efgh", "ij", "xy", "abc", "é", "last"]);
}

#[tokio::test]
async fn output_is_drained_after_the_receiver_is_gone() {
    let mut i = HostExecutor::default()
        .start(spec(
            "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done",
        ))
        .expect("start");
    drop(i.take_output());
    let status = tokio::time::timeout(Duration::from_secs(20), i.wait()).await;
    assert_eq!(
        status.expect("not blocked on a full pipe"),
        ExitStatus::Code(0)
    );
}

#[test]
fn vm_hwm_parses() {
    let status = "Name:\tx\nVmPeak:\t  10 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1 kB\n";
    assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
    assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    assert_eq!(parse_vm_hwm("VmHWM:\tlots kB\n"), None);
}
