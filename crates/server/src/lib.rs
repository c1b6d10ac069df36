//! The composition root and the edge: builds the store, blob store and
//! registry from a typed [`Config`], binds the one HTTP port and routes
//! every request to its surface (AWS APIs, OCI registry, admin).
//!
//! This is the only crate that names concrete back ends
//! (`Store::open_sqlite`, `FsBlobStore`). Surfaces live in their own
//! modules, each with one error→wire mapping.

mod admin;
mod auth;
mod aws;
mod code_location;
mod ecr;
mod edge;
mod executors;
mod hosts;
mod iam;
mod lambda;
mod lambda_images;
mod lambda_more;
mod logs;
mod metrics;
mod oci;
mod run_local;
mod sandbox;
mod sandbox_docker;
mod sandbox_host;
mod sts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blobs::FsBlobStore;
use registry::{Registry, RegistryConfig};
use store::Store;

pub use executors::Executor;
pub use hosts::UrlStyle;
pub use metrics::Metrics;
pub use run_local::{run_local, RunError, RunOptions, RunningLocal};

/// A pair of AWS credentials the server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Everything the server needs, resolved and validated by the binary.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Region for requests that carry none (unsigned registry requests).
    pub region: String,
    pub account_id: String,
    /// Empty: accept any credentials (development default). Otherwise
    /// SigV4 signatures are verified and the registry requires a token
    /// from `GetAuthorizationToken`.
    pub credentials: Vec<Credential>,
    pub auto_create_repositories: bool,
    /// Form of the URLs the APIs return (`repositoryUri`, …).
    pub url_style: UrlStyle,
    /// How often the blob garbage collector runs; zero disables it.
    pub gc_interval: Duration,
    /// Blobs linked more recently than this are never collected.
    pub gc_grace: Duration,
    /// Time given to in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Idle function instances are stopped after this long.
    pub instance_keep_alive: Duration,
    /// Concurrent executions per account for functions without reserved
    /// concurrency.
    pub account_concurrency: usize,
    /// Check a function's role: it must exist in the caller's account and
    /// trust `lambda.amazonaws.com` (otherwise any well-formed ARN goes).
    pub strict_iam: bool,
    /// How long an invoke beyond the concurrency limit waits for an
    /// instance before it is throttled (zero: at once, as Lambda does).
    pub invoke_queue_wait: Duration,
    /// Before the first retry of a failed asynchronous invocation (the
    /// second waits twice as long). Lambda waits about a minute.
    pub async_retry_delay: Duration,
    /// What runs function instances.
    pub executor: Executor,
    /// The Docker engine's endpoint (`unix://…`, `tcp://…`) for the
    /// `docker` executor.
    pub docker_host: String,
    /// For the `docker` executor: `None` runs containers on the host
    /// network; `Some(host)` on the engine's default network, reaching
    /// Stratus as `host` (e.g. `host.docker.internal` on Docker Desktop).
    pub docker_runtime_api_host: Option<String>,
    /// For the `host` executor: the Python that runs `python3.*` zip
    /// functions (`-m awslambdaric`); a name is looked up on PATH.
    pub host_python: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            data_dir: PathBuf::from(".stratus"),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            credentials: Vec::new(),
            auto_create_repositories: false,
            url_style: UrlStyle::Local,
            gc_interval: Duration::from_secs(3600),
            gc_grace: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(10),
            instance_keep_alive: Duration::from_secs(600),
            account_concurrency: 64,
            strict_iam: false,
            invoke_queue_wait: Duration::from_millis(1000),
            async_retry_delay: Duration::from_secs(60),
            executor: Executor::Oci,
            docker_host: executor_docker::DEFAULT_ENDPOINT.into(),
            docker_runtime_api_host: None,
            host_python: PathBuf::from("python3"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot open blob storage: {0}")]
    Blobs(#[from] blobs::BlobError),
    #[error("cannot recover registry state: {0}")]
    Registry(#[from] registry::RegistryError),
    #[error("cannot listen on {addr}: {source}; pick another address with --listen (port 0 picks a free port)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot recover functions: {0}")]
    Functions(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of every surface.
pub(crate) struct App {
    pub config: Config,
    pub registry: Arc<Registry>,
    pub store: Arc<Store>,
    /// Signs registry tokens; generated once per data directory.
    pub token_secret: Vec<u8>,
    pub metrics: Arc<Metrics>,
    /// The port the edge is bound to (for URIs the APIs return).
    pub port: u16,
    pub functions: Arc<functions::Functions>,
    /// The function log files, read as CloudWatch Logs.
    pub logs: Arc<::logs::LogStore>,
}

/// A bound, ready server.
pub struct Server {
    app: Arc<App>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Opens the data directory and binds the port. Nothing is served
    /// until [`Server::serve`].
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let started = Instant::now();
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Arc::new(Store::open_sqlite(&config.data_dir.join("metadata.db")).await?);
        let blobs: blobs::SharedBlobStore =
            Arc::new(FsBlobStore::open(&config.data_dir.join("blobs"))?);
        let registry = Registry::new(
            store.clone(),
            blobs.clone(),
            RegistryConfig {
                auto_create_repositories: config.auto_create_repositories,
                default_region: config.region.clone(),
                ..RegistryConfig::default()
            },
        );
        registry.recover().await?;
        let secret_hex = store
            .setting_get_or_init(
                "registry_token_secret",
                &aws_protocol::ids::random_alnum(64),
            )
            .await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let port = listener.local_addr()?.port();
        let registry = Arc::new(registry);
        let sandbox = executors::sandbox(&config, blobs.clone(), port, secret_hex.as_bytes());
        let other_executors = executors::alternates(&config, blobs, port, secret_hex.as_bytes());
        let functions = functions::Functions::new(
            store.clone(),
            Arc::new(lambda_images::RegistryImages {
                registry: registry.clone(),
            }),
            sandbox.clone(),
            functions::FunctionsConfig {
                pool: functions::PoolConfig {
                    keep_alive: config.instance_keep_alive,
                    init_timeout: Duration::from_secs(10),
                    logs_dir: config.data_dir.join("logs"),
                    endpoint_url: format!("http://127.0.0.1:{port}"),
                    queue_wait: config.invoke_queue_wait,
                },
                account_concurrency: config.account_concurrency,
                max_sync_payload: 6 * 1024 * 1024,
                max_async_payload: 1024 * 1024,
                code_dir: config.data_dir.join("code"),
                async_retry_delay: config.async_retry_delay,
            },
        );
        for executor in other_executors {
            functions.add_executor(executor);
        }
        functions
            .recover()
            .await
            .map_err(|e| ServeError::Functions(e.to_string()))?;
        let logs = Arc::new(::logs::LogStore::new(config.data_dir.join("logs")));
        let app = Arc::new(App {
            logs,
            token_secret: secret_hex.into_bytes(),
            registry,
            functions,
            store,
            metrics: Arc::new(Metrics::default()),
            config,
            port,
        });
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server bound"
        );
        Ok(Server { app, listener })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then stops accepting, drains
    /// in-flight requests within the grace period and closes the store.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = self.app.clone();
        let gc = admin::spawn_gc_loop(app.clone());
        let log_sweep = logs::spawn_retention_sweep(app.clone());
        let router = edge::router(app.clone());
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
        let grace = app.config.shutdown_grace;
        let signal = async move {
            shutdown.await;
            let _ = drained_tx.send(());
        };
        let serving = axum::serve(self.listener, router).with_graceful_shutdown(signal);
        let serving = tokio::spawn(async move { serving.await });
        // Once shutdown begins, in-flight requests get `grace` to finish.
        let result = tokio::select! {
            r = serving => r.map_err(|e| std::io::Error::other(e.to_string()))?,
            _ = async {
                let _ = drained_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("shutdown grace period over; dropping remaining connections");
                Ok(())
            }
        };
        gc.abort();
        log_sweep.abort();
        app.functions.shutdown().await;
        app.store.close().await;
        result.map_err(ServeError::Io)
    }
}
