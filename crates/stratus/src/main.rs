//! The `stratus` binary: parses and validates configuration (defaults <
//! TOML file < `STRATUS_*` environment < flags) before anything is bound,
//! then runs the server until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

/// mimalloc: the invoke path allocates many small short-lived buffers (HTTP
/// heads, events, log lines); glibc malloc was ~8 % of the server's CPU under
/// load (`bench/invoke.sh`, `perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde::Deserialize;

mod run;

#[derive(Parser)]
#[command(
    name = "stratus",
    version,
    about = "Self-hosted AWS Lambda + API Gateway + ECR in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS APIs, the registry and the admin plane on one port.
    Serve(ServeArgs),
    /// Run one function from an image and serve the Lambda emulator's
    /// invoke path (POST /2015-03-31/functions/function/invocations),
    /// without Docker: the local test of `docker run -p 9000:8080 IMAGE`.
    Run(run::RunArgs),
}

#[derive(Args, Default)]
struct ServeArgs {
    /// TOML configuration file (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "STRATUS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:4566].
    #[arg(long, env = "STRATUS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (metadata database, blobs) [default: ./.stratus].
    #[arg(long, env = "STRATUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region for requests that name none [default: us-east-1].
    #[arg(long, env = "STRATUS_REGION")]
    region: Option<String>,
    /// Default account id [default: 000000000000].
    #[arg(long, env = "STRATUS_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Require SigV4 signatures with these credentials (ACCESS_KEY_ID:SECRET,
    /// repeatable or comma-separated). Without it any credentials are accepted.
    #[arg(long, env = "STRATUS_CREDENTIALS", value_delimiter = ',')]
    credentials: Vec<String>,
    /// Create a repository on first `docker push` instead of answering NAME_UNKNOWN.
    #[arg(long, env = "STRATUS_AUTO_CREATE_REPOSITORIES", num_args = 0..=1, default_missing_value = "true")]
    auto_create_repositories: Option<bool>,
    /// Require a function's role to exist and trust lambda.amazonaws.com (otherwise any well-formed role ARN is accepted; IAM policies are never enforced).
    #[arg(long, env = "STRATUS_STRICT_IAM", num_args = 0..=1, default_missing_value = "true")]
    strict_iam: Option<bool>,
    /// Form of the URLs the APIs return: `local` (localhost:PORT, works without DNS) or `aws` (AWS host names; needs /etc/hosts or DNS entries) [default: local].
    #[arg(long, env = "STRATUS_URL_STYLE")]
    url_style: Option<server::UrlStyle>,
    /// Seconds between garbage collections of unreferenced blobs; 0 disables [default: 3600].
    #[arg(long, env = "STRATUS_GC_INTERVAL_SECONDS")]
    gc_interval_seconds: Option<u64>,
    /// Blobs uploaded more recently than this are never collected [default: 3600].
    #[arg(long, env = "STRATUS_GC_GRACE_SECONDS")]
    gc_grace_seconds: Option<u64>,
    /// Seconds in-flight requests get to finish on shutdown [default: 10].
    #[arg(long, env = "STRATUS_SHUTDOWN_GRACE_SECONDS")]
    shutdown_grace_seconds: Option<u64>,
    /// Seconds an idle function instance is kept warm [default: 600].
    #[arg(long, env = "STRATUS_INSTANCE_KEEP_ALIVE_SECONDS")]
    instance_keep_alive_seconds: Option<u64>,
    /// Concurrent executions per account for functions without reserved concurrency [default: 64].
    #[arg(long, env = "STRATUS_ACCOUNT_CONCURRENCY")]
    account_concurrency: Option<usize>,
    /// Milliseconds an invoke beyond the concurrency limit waits for a free instance before TooManyRequestsException; 0 throttles at once, as Lambda does [default: 1000].
    #[arg(long, env = "STRATUS_INVOKE_QUEUE_WAIT_MS")]
    invoke_queue_wait_ms: Option<u64>,
    /// Milliseconds before the first retry of a failed asynchronous (Event) invocation; the second waits twice as long [default: 60000, as Lambda].
    #[arg(long, env = "STRATUS_ASYNC_RETRY_DELAY_MS")]
    async_retry_delay_ms: Option<u64>,
    /// What runs function instances: `oci` (an OCI runtime, runc or crun), `docker` (the Docker Engine API) or `host` (zip functions as plain local processes: no isolation, for a fast local loop) [default: oci].
    #[arg(long, env = "STRATUS_EXECUTOR")]
    executor: Option<server::Executor>,
    /// Docker engine endpoint for `--executor docker` (unix:///path or tcp://host:port) [default: $DOCKER_HOST, else unix:///var/run/docker.sock].
    #[arg(long, env = "STRATUS_DOCKER_HOST")]
    docker_host: Option<String>,
    /// For `--executor docker`: the name containers reach Stratus by, e.g. host.docker.internal on Docker Desktop; containers then use the engine's default network instead of the host network [default: none, host network].
    #[arg(long, env = "STRATUS_DOCKER_RUNTIME_API_HOST")]
    docker_runtime_api_host: Option<String>,
    /// For `--executor host`: the Python that runs python3.* zip functions (`-m awslambdaric`; needs `pip install awslambdaric`) [default: python3 on PATH].
    #[arg(long, env = "STRATUS_HOST_PYTHON")]
    host_python: Option<PathBuf>,
}

/// The TOML file; unknown keys are errors.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    account_id: Option<String>,
    credentials: Option<Vec<String>>,
    auto_create_repositories: Option<bool>,
    strict_iam: Option<bool>,
    url_style: Option<String>,
    gc_interval_seconds: Option<u64>,
    gc_grace_seconds: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    instance_keep_alive_seconds: Option<u64>,
    account_concurrency: Option<usize>,
    invoke_queue_wait_ms: Option<u64>,
    async_retry_delay_ms: Option<u64>,
    executor: Option<String>,
    docker_host: Option<String>,
    docker_runtime_api_host: Option<String>,
    host_python: Option<PathBuf>,
}

fn resolve(args: ServeArgs) -> anyhow::Result<server::Config> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let d = server::Config::default();
    let credentials = if args.credentials.is_empty() {
        file.credentials.unwrap_or_default()
    } else {
        args.credentials
    };
    let credentials = credentials
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| match c.split_once(':') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => Ok(server::Credential {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
            }),
            _ => bail!("credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY, got {c:?}"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let account_id = args.account_id.or(file.account_id).unwrap_or(d.account_id);
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("account id must be 12 digits, got {account_id:?}");
    }
    let region = args.region.or(file.region).unwrap_or(d.region);
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!("region must look like us-east-1, got {region:?}");
    }
    let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
        flag.or(file).map(Duration::from_secs).unwrap_or(default)
    };
    Ok(server::Config {
        listen: args.listen.or(file.listen).unwrap_or(d.listen),
        data_dir: args.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
        region,
        account_id,
        credentials,
        auto_create_repositories: args
            .auto_create_repositories
            .or(file.auto_create_repositories)
            .unwrap_or(d.auto_create_repositories),
        url_style: match (args.url_style, file.url_style) {
            (Some(style), _) => style,
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow::anyhow!("url_style in the config file: {e}"))?,
            (None, None) => d.url_style,
        },
        gc_interval: secs(
            args.gc_interval_seconds,
            file.gc_interval_seconds,
            d.gc_interval,
        ),
        gc_grace: secs(args.gc_grace_seconds, file.gc_grace_seconds, d.gc_grace),
        shutdown_grace: secs(
            args.shutdown_grace_seconds,
            file.shutdown_grace_seconds,
            d.shutdown_grace,
        ),
        instance_keep_alive: secs(
            args.instance_keep_alive_seconds,
            file.instance_keep_alive_seconds,
            d.instance_keep_alive,
        ),
        account_concurrency: args
            .account_concurrency
            .or(file.account_concurrency)
            .unwrap_or(d.account_concurrency),
        strict_iam: args.strict_iam.or(file.strict_iam).unwrap_or(d.strict_iam),
        invoke_queue_wait: args
            .invoke_queue_wait_ms
            .or(file.invoke_queue_wait_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.invoke_queue_wait),
        async_retry_delay: args
            .async_retry_delay_ms
            .or(file.async_retry_delay_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.async_retry_delay),
        executor: match (args.executor, file.executor) {
            (Some(e), _) => e,
            (None, Some(text)) => text
                .parse()
                .map_err(|e| anyhow::anyhow!("executor in the config file: {e}"))?,
            (None, None) => d.executor,
        },
        docker_host: args
            .docker_host
            .or(file.docker_host)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .filter(|h| !h.is_empty())
            .unwrap_or(d.docker_host),
        docker_runtime_api_host: args
            .docker_runtime_api_host
            .or(file.docker_runtime_api_host)
            .filter(|h| !h.is_empty()),
        host_python: args
            .host_python
            .or(file.host_python)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(d.host_python),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
}

fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match cli.command {
        Command::Serve(args) => {
            let config = resolve(args)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("stratus")
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(config, started))
        }
        Command::Run(args) => run::run(args),
    }
}

async fn serve(mut config: server::Config, started: std::time::Instant) -> anyhow::Result<()> {
    // Instances' bundles name paths inside the data directory, which the
    // OCI runtime resolves from elsewhere: make it absolute once, here.
    config.data_dir = std::path::absolute(&config.data_dir).with_context(|| {
        format!(
            "cannot resolve data directory {}",
            config.data_dir.display()
        )
    })?;
    let dev_auth = config.credentials.is_empty();
    let data_dir = config.data_dir.clone();
    let server = server::Server::bind(config).await?;
    let addr = server.local_addr()?;
    if dev_auth {
        tracing::warn!("development mode: any AWS credentials are accepted and signatures are not checked; pass --credentials ID:SECRET to require them");
    }
    tracing::info!(
        data_dir = %data_dir.display(),
        ready_ms = started.elapsed().as_secs_f64() * 1000.0,
        "ready"
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "stratus listening on http://{addr}")?;
        out.flush()?;
    }
    server.serve(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "region = \"eu-west-1\"\nlisten = \"127.0.0.1:5000\"\ngc_interval_seconds = 5\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let c = resolve(args).expect("resolve");
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.gc_interval, Duration::from_secs(5));
        assert_eq!(c.account_id, "000000000000");

        std::fs::write(&path, "regoin = \"x\"\n").expect("write");
        let err = resolve(ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .expect_err("unknown key");
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn bad_values_are_refused_before_binding() {
        for args in [
            ServeArgs {
                account_id: Some("123".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                region: Some("Not A Region".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                credentials: vec!["nosecret".into()],
                ..ServeArgs::default()
            },
        ] {
            assert!(resolve(args).is_err());
        }
    }
}
