//! `stratus run IMAGE`: one function from an image, served on the AWS
//! Runtime Interface Emulator's surface, without a Docker engine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// The image: an OCI layout directory (oci:DIR[:TAG], or a directory
    /// holding oci-layout), a `docker save` tarball (FILE.tar or
    /// docker-archive:FILE[:TAG]), or HOST:PORT/REPO[:TAG|@sha256:…] in a
    /// registry on this machine (e.g. a running `stratus serve`).
    pub image: String,
    /// Port on 127.0.0.1 to serve the invocations on [default: 9000].
    #[arg(long, short = 'p', conflicts_with = "listen")]
    pub port: Option<u16>,
    /// Address to listen on instead of 127.0.0.1:PORT (port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// An environment variable of the function, KEY=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The function's memory (MB); also its memory limit.
    #[arg(long, default_value_t = 128)]
    pub memory_mb: u32,
    /// The function's timeout (seconds).
    #[arg(long, default_value_t = 3)]
    pub timeout_seconds: u32,
    /// Instances running at once; invokes beyond wait for a free one.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds an invoke beyond --concurrency waits for an instance before 429.
    #[arg(long, default_value_t = 60)]
    pub queue_wait_seconds: u64,
    /// The handler, overriding the image's CMD (e.g. app.handler).
    #[arg(long)]
    pub handler: Option<String>,
    /// Data directory to keep (image, unpacked rootfs, logs) [default: a temporary directory, removed on exit].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// User for a registry that wants Basic credentials (Stratus: AWS).
    #[arg(long, requires = "registry_password")]
    pub registry_user: Option<String>,
    /// Password for --registry-user (Stratus: `aws ecr get-login-password`).
    #[arg(long, requires = "registry_user")]
    pub registry_password: Option<String>,
}

fn options(args: RunArgs, data_dir: PathBuf) -> anyhow::Result<server::RunOptions> {
    let mut opts = server::RunOptions::new(args.image, data_dir);
    opts.listen = match (args.listen, args.port) {
        (Some(addr), _) => addr,
        (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        (None, None) => opts.listen,
    };
    let mut env = BTreeMap::new();
    for kv in args.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                env.insert(k.to_string(), v.to_string());
            }
            _ => bail!("--env takes KEY=VALUE, got {kv:?}"),
        }
    }
    if let Some(url) = env.get("AWS_ENDPOINT_URL") {
        opts.endpoint_url = url.clone();
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    opts.env = env;
    opts.memory_mb = args.memory_mb;
    opts.timeout_s = args.timeout_seconds;
    opts.concurrency = args.concurrency;
    opts.queue_wait = Duration::from_secs(args.queue_wait_seconds);
    opts.handler = args.handler.filter(|h| !h.is_empty());
    opts.registry_credentials = args.registry_user.zip(args.registry_password);
    Ok(opts)
}

/// Runs until SIGTERM/SIGINT; the temporary data directory (if any) is
/// removed afterwards.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (data_dir, _temporary) = match &args.data_dir {
        Some(d) => (
            std::path::absolute(d)
                .with_context(|| format!("cannot resolve data directory {}", d.display()))?,
            None,
        ),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("stratus-run-")
                .tempdir()
                .context("cannot create a temporary data directory (or pass --data-dir)")?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let opts = options(args, data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stratus")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let image = opts.image.clone();
        let running = server::run_local(opts)
            .await
            .with_context(|| format!("stratus run {image}"))?;
        let addr = running.local_addr()?;
        tracing::info!(image = %image, digest = running.image_digest(), "ready");
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "stratus run listening on http://{addr}")?;
            writeln!(
                out,
                "invoke: curl -d '{{}}' http://{addr}/2015-03-31/functions/function/invocations"
            )?;
            out.flush()?;
        }
        running.serve(crate::shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
    // `_temporary` (the data directory) is removed here, after every
    // instance is stopped.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_env_and_credentials() {
        let args = RunArgs {
            image: "img.tar".into(),
            port: Some(9100),
            env: vec![
                "A=1".into(),
                "AWS_ENDPOINT_URL=http://127.0.0.1:5000".into(),
            ],
            concurrency: 2,
            registry_user: Some("AWS".into()),
            registry_password: Some("t".into()),
            ..RunArgs::default()
        };
        let o = options(args, PathBuf::from("/tmp/x")).expect("valid");
        assert_eq!(o.listen, SocketAddr::from(([127, 0, 0, 1], 9100)));
        assert_eq!(o.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(o.endpoint_url, "http://127.0.0.1:5000");
        assert_eq!(o.registry_credentials, Some(("AWS".into(), "t".into())));
        let bad = RunArgs {
            image: "x".into(),
            env: vec!["NOEQUALS".into()],
            concurrency: 1,
            ..RunArgs::default()
        };
        assert!(options(bad, PathBuf::from("/tmp/x")).is_err());
        let zero = RunArgs {
            image: "x".into(),
            ..RunArgs::default()
        };
        assert!(options(zero, PathBuf::from("/tmp/x")).is_err());
    }
}
