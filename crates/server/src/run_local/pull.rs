//! Pulling an image over plain HTTP from a registry on this machine (a
//! running `stratus serve`, or any OCI distribution registry on loopback):
//! anonymous, or with Basic credentials. Redirects are followed only to
//! loopback hosts, and no proxy is used, so nothing leaves the machine.

use std::time::Duration;

use async_trait::async_trait;
use blobs::{BodyStream, Digest};
use futures::StreamExt;
use registry::manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
};

use super::import::{import_manifest, Fetch, Target};
use super::source::is_loopback_host;
use super::RunError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct RemoteFetch {
    client: reqwest::Client,
    base: String,
    repository: String,
    credentials: Option<(String, String)>,
}

fn image_err(msg: impl Into<String>) -> RunError {
    RunError::Image(msg.into())
}

impl RemoteFetch {
    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    async fn get(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, RunError> {
        let send = |basic: bool| {
            let mut req = self.client.get(url);
            if let Some(a) = accept {
                req = req.header(http::header::ACCEPT, a);
            }
            if let (true, Some((user, password))) = (basic, &self.credentials) {
                req = req.basic_auth(user, Some(password));
            }
            req.send()
        };
        let unreachable = |e: reqwest::Error| {
            image_err(format!(
                "cannot reach the registry at {}: {e}; is it running (stratus serve)?",
                self.base
            ))
        };
        let mut resp = send(self.credentials.is_some())
            .await
            .map_err(unreachable)?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED && self.credentials.is_none() {
            return Err(image_err(format!(
                "the registry at {} wants credentials: pass --registry-user and --registry-password \
                 (for Stratus: --registry-user AWS --registry-password \"$(aws ecr get-login-password)\")",
                self.base
            )));
        }
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            // Some registries only challenge; send the credentials again.
            resp = send(true).await.map_err(unreachable)?;
        }
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(image_err(match status {
                reqwest::StatusCode::NOT_FOUND => format!(
                    "{url}: not found in the registry ({body}); check the repository and tag"
                ),
                reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
                    format!("{url}: the registry refused the credentials ({status}): {body}")
                }
                _ => format!("{url}: the registry answered {status}: {body}"),
            }));
        }
        Ok(resp)
    }

    /// A manifest by tag or digest, with its media type; at most 4 MiB.
    async fn manifest_ref(&self, reference: &str) -> Result<(Vec<u8>, Option<String>), RunError> {
        let accept = [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ]
        .join(", ");
        let url = self.url("manifests", reference);
        let resp = self.get(&url, Some(&accept)).await?;
        let media_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let too_large = || {
            image_err(format!(
                "{url}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes"
            ))
        };
        if resp.content_length().unwrap_or(0) > MAX_MANIFEST_BYTES as u64 {
            return Err(too_large());
        }
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| image_err(format!("{url}: {e}")))?;
            if out.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok((out, media_type))
    }
}

#[async_trait]
impl Fetch for RemoteFetch {
    async fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, RunError> {
        Ok(self.manifest_ref(digest.as_str()).await?.0)
    }

    async fn blob(&self, digest: &Digest) -> Result<BodyStream, RunError> {
        let resp = self.get(&self.url("blobs", digest.as_str()), None).await?;
        Ok(resp
            .bytes_stream()
            .map(|r| r.map_err(|e| Box::new(e) as blobs::BodyError))
            .boxed())
    }
}

/// Pulls `host/repository:reference` into the target repository.
pub(crate) async fn import_remote(
    target: &Target<'_>,
    host: &str,
    repository: &str,
    reference: &str,
    credentials: Option<&(String, String)>,
) -> Result<Digest, RunError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let loopback = attempt
                .url()
                .host_str()
                .is_some_and(|h| is_loopback_host(h) || h == "::1");
            if attempt.previous().len() > 5 || !loopback {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| RunError::Io(std::io::Error::other(e)))?;
    let fetch = RemoteFetch {
        client,
        base: format!("http://{host}"),
        repository: repository.to_string(),
        credentials: credentials.cloned(),
    };
    let what = format!("{host}/{repository}:{reference}");
    let (top, media_type) = fetch.manifest_ref(reference).await?;
    if let Ok(expected) = Digest::parse(reference) {
        let actual = Digest::of(&top);
        if actual != expected {
            return Err(image_err(format!(
                "{what}: the registry sent a manifest with digest {actual}"
            )));
        }
    }
    import_manifest(target, &fetch, top, media_type.as_deref(), &what).await
}
