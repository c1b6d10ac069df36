//! AWS host names: what the `Host` of a request addresses, and the form
//! of the URLs the APIs hand out (`--url-style`).
//!
//! Users who map AWS names to Stratus (in `/etc/hosts` or DNS) send
//! requests with `Host: {account}.dkr.ecr.{region}.amazonaws.com`,
//! `{service}.{region}.amazonaws.com`, `{api-id}.execute-api.{region}.
//! amazonaws.com` or `{url-id}.lambda-url.{region}.on.aws`; [`target_of`]
//! reads them. The `.localhost` twins (`{api-id}.execute-api.localhost`,
//! `{url-id}.lambda-url.{region}.localhost`, `{account}.dkr.ecr.{region}.
//! localhost`) resolve to loopback without any setup and are read the
//! same way. Every other host (`localhost`, an IP address, a custom name)
//! is [`HostTarget::Plain`]: routed by path, target and signature only.

use std::fmt;
use std::str::FromStr;

/// What a request's `Host` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostTarget {
    /// `{account}.dkr.ecr.{region}.…`: the registry of that account and
    /// region.
    Registry { account: String, region: String },
    /// `{service}.{region}.amazonaws.com`, `{service}.amazonaws.com`
    /// (global endpoints such as `iam.amazonaws.com`) and ECR's
    /// `api.ecr.{region}.amazonaws.com`: an AWS API.
    AwsApi {
        service: String,
        region: Option<String>,
    },
    /// `{api-id}.execute-api.{region}.amazonaws.com` (or `.localhost`,
    /// with or without the region): an API Gateway invoke URL.
    ExecuteApi {
        api_id: String,
        region: Option<String>,
    },
    /// `{url-id}.lambda-url.{region}.on.aws` (or `.localhost`): a Lambda
    /// function URL.
    FunctionUrl {
        url_id: String,
        region: Option<String>,
    },
    /// Anything else: routed by path, `X-Amz-Target` and SigV4 scope.
    Plain,
}

/// The target named by the request's `Host` header (or, for HTTP/2, the
/// URI's authority).
pub(crate) fn target_of(headers: &http::HeaderMap, uri: &http::Uri) -> HostTarget {
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    host.map_or(HostTarget::Plain, parse)
}

/// Whether `label` is a DNS label of lowercase letters, digits and `-`.
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a `Host` value (port ignored, case-insensitive).
pub(crate) fn parse(host: &str) -> HostTarget {
    // `[::1]:4566` and other IPv6 literals name no AWS endpoint.
    if host.starts_with('[') {
        return HostTarget::Plain;
    }
    let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    let labels: Vec<&str> = name.split('.').collect();
    if !labels.iter().all(|l| is_label(l)) {
        return HostTarget::Plain;
    }
    let some = |s: &str| Some(s.to_string());
    match labels.as_slice() {
        [account, "dkr", "ecr", region, ..] if aws_protocol::ids::is_account_id(account) => {
            HostTarget::Registry {
                account: account.to_string(),
                region: region.to_string(),
            }
        }
        [id, "execute-api", region, "amazonaws", "com"]
        | [id, "execute-api", region, "localhost"] => HostTarget::ExecuteApi {
            api_id: id.to_string(),
            region: some(region),
        },
        [id, "execute-api", "localhost"] => HostTarget::ExecuteApi {
            api_id: id.to_string(),
            region: None,
        },
        [id, "lambda-url", region, "on", "aws"] | [id, "lambda-url", region, "localhost"] => {
            HostTarget::FunctionUrl {
                url_id: id.to_string(),
                region: some(region),
            }
        }
        [id, "lambda-url", "localhost"] => HostTarget::FunctionUrl {
            url_id: id.to_string(),
            region: None,
        },
        ["api", "ecr", region, "amazonaws", "com"] => HostTarget::AwsApi {
            service: "ecr".into(),
            region: some(region),
        },
        [service, region, "amazonaws", "com"] => HostTarget::AwsApi {
            service: service.to_string(),
            region: some(region),
        },
        [service, "amazonaws", "com"] => HostTarget::AwsApi {
            service: service.to_string(),
            region: None,
        },
        _ => HostTarget::Plain,
    }
}

/// Which form of URL the APIs return (`repositoryUri`, `proxyEndpoint`,
/// and later `FunctionUrl` and invoke URLs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UrlStyle {
    /// `localhost:PORT` forms: they work without any DNS or hosts entry.
    #[default]
    Local,
    /// AWS host names (`{account}.dkr.ecr.{region}.amazonaws.com`, …):
    /// they need `/etc/hosts` or DNS entries pointing at Stratus.
    Aws,
}

impl FromStr for UrlStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(UrlStyle::Local),
            "aws" => Ok(UrlStyle::Aws),
            other => Err(format!(
                "unknown url style {other:?}; use `local` (localhost:PORT URLs) or `aws` (AWS host names)"
            )),
        }
    }
}

impl fmt::Display for UrlStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlStyle::Local => "local",
            UrlStyle::Aws => "aws",
        })
    }
}

/// Something Stratus serves under a host name of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint<'a> {
    /// The registry of an account in a region.
    Registry { account: &'a str, region: &'a str },
    /// An API Gateway API (its invoke URL without the stage).
    #[allow(dead_code)] // used by the gateway once it exists
    ExecuteApi { api_id: &'a str, region: &'a str },
    /// A Lambda function URL (without the trailing `/`).
    #[allow(dead_code)] // used by function URLs once they exist
    FunctionUrl { url_id: &'a str, region: &'a str },
}

/// The `host[:port]` under which `endpoint` is reached, in `style`, for a
/// server listening on `port`. The port is left out where the scheme
/// implies it (80, 443).
pub(crate) fn public_host(style: UrlStyle, port: u16, endpoint: Endpoint<'_>) -> String {
    let name = match (style, endpoint) {
        (UrlStyle::Local, Endpoint::Registry { .. }) => "localhost".to_string(),
        (UrlStyle::Local, Endpoint::ExecuteApi { api_id, .. }) => {
            format!("{api_id}.execute-api.localhost")
        }
        (UrlStyle::Local, Endpoint::FunctionUrl { url_id, region }) => {
            format!("{url_id}.lambda-url.{region}.localhost")
        }
        (UrlStyle::Aws, Endpoint::Registry { account, region }) => {
            format!("{account}.dkr.ecr.{region}.amazonaws.com")
        }
        (UrlStyle::Aws, Endpoint::ExecuteApi { api_id, region }) => {
            format!("{api_id}.execute-api.{region}.amazonaws.com")
        }
        (UrlStyle::Aws, Endpoint::FunctionUrl { url_id, region }) => {
            format!("{url_id}.lambda-url.{region}.on.aws")
        }
    };
    match port {
        80 | 443 => name,
        _ => format!("{name}:{port}"),
    }
}

/// The base URL (`scheme://host[:port]`, no trailing `/`) of `endpoint`:
/// `https` when the server is reached on 443 (behind a TLS proxy), plain
/// `http` otherwise. Every URL an API returns is built here.
pub(crate) fn public_url(style: UrlStyle, port: u16, endpoint: Endpoint<'_>) -> String {
    let scheme = if port == 443 { "https" } else { "http" };
    format!("{scheme}://{}", public_host(style, port, endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(account: &str, region: &str) -> HostTarget {
        HostTarget::Registry {
            account: account.into(),
            region: region.into(),
        }
    }

    fn api(service: &str, region: Option<&str>) -> HostTarget {
        HostTarget::AwsApi {
            service: service.into(),
            region: region.map(Into::into),
        }
    }

    fn gateway(id: &str, region: Option<&str>) -> HostTarget {
        HostTarget::ExecuteApi {
            api_id: id.into(),
            region: region.map(Into::into),
        }
    }

    fn url(id: &str, region: Option<&str>) -> HostTarget {
        HostTarget::FunctionUrl {
            url_id: id.into(),
            region: region.map(Into::into),
        }
    }

    #[track_caller]
    fn check(host: &str, expected: HostTarget) {
        assert_eq!(parse(host), expected, "Host: {host}");
    }

    #[test]
    fn host_names() {
        use HostTarget::Plain;
        let cases = [
            // The registry, with any suffix (docker needs a resolvable name).
            (
                "000000000000.dkr.ecr.eu-west-1.amazonaws.com",
                registry("000000000000", "eu-west-1"),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com:4566",
                registry("123456789012", "us-east-1"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.localhost:4566",
                registry("123456789012", "eu-west-1"),
            ),
            (
                "123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM",
                registry("123456789012", "eu-west-1"),
            ),
            ("12.dkr.ecr.eu-west-1.amazonaws.com", Plain),
            ("1234567890ab.dkr.ecr.eu-west-1.amazonaws.com", Plain),
            // AWS API endpoints.
            (
                "lambda.us-east-1.amazonaws.com",
                api("lambda", Some("us-east-1")),
            ),
            (
                "sts.eu-west-1.amazonaws.com:4566",
                api("sts", Some("eu-west-1")),
            ),
            (
                "api.ecr.ap-south-1.amazonaws.com",
                api("ecr", Some("ap-south-1")),
            ),
            (
                "logs.us-west-2.amazonaws.com",
                api("logs", Some("us-west-2")),
            ),
            ("iam.amazonaws.com", api("iam", None)),
            ("sts.amazonaws.com", api("sts", None)),
            // API Gateway invoke URLs.
            (
                "abc123.execute-api.us-east-1.amazonaws.com",
                gateway("abc123", Some("us-east-1")),
            ),
            (
                "abc123.execute-api.eu-west-1.localhost:4566",
                gateway("abc123", Some("eu-west-1")),
            ),
            ("abc123.execute-api.localhost:4566", gateway("abc123", None)),
            // Function URLs.
            (
                "a1b2c3.lambda-url.us-east-1.on.aws",
                url("a1b2c3", Some("us-east-1")),
            ),
            (
                "a1b2c3.lambda-url.eu-west-1.localhost:4566",
                url("a1b2c3", Some("eu-west-1")),
            ),
            ("a1b2c3.lambda-url.localhost", url("a1b2c3", None)),
            // Everything else keeps today's routing.
            ("localhost", Plain),
            ("localhost:4566", Plain),
            ("127.0.0.1:4566", Plain),
            ("[::1]:4566", Plain),
            ("stratus.example.com", Plain),
            ("amazonaws.com", Plain),
            ("a.b.c.amazonaws.com", Plain),
            ("lambda.us-east-1.amazonaws.com.evil.example", Plain),
            (".execute-api.us-east-1.amazonaws.com", Plain),
            ("a_b.execute-api.us-east-1.amazonaws.com", Plain),
            ("", Plain),
            ("😀.amazonaws.com", Plain),
        ];
        for (host, expected) in cases {
            check(host, expected);
        }
    }

    #[test]
    fn public_urls() {
        let reg = Endpoint::Registry {
            account: "123456789012",
            region: "eu-west-1",
        };
        let gw = Endpoint::ExecuteApi {
            api_id: "abc123",
            region: "eu-west-1",
        };
        let fu = Endpoint::FunctionUrl {
            url_id: "xyz",
            region: "eu-west-1",
        };
        let cases = [
            (UrlStyle::Local, 4566, reg, "http://localhost:4566"),
            (
                UrlStyle::Aws,
                4566,
                reg,
                "http://123456789012.dkr.ecr.eu-west-1.amazonaws.com:4566",
            ),
            (
                UrlStyle::Aws,
                443,
                reg,
                "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            ),
            (UrlStyle::Local, 80, reg, "http://localhost"),
            (
                UrlStyle::Local,
                4566,
                gw,
                "http://abc123.execute-api.localhost:4566",
            ),
            (
                UrlStyle::Aws,
                4566,
                gw,
                "http://abc123.execute-api.eu-west-1.amazonaws.com:4566",
            ),
            (
                UrlStyle::Local,
                4566,
                fu,
                "http://xyz.lambda-url.eu-west-1.localhost:4566",
            ),
            (
                UrlStyle::Aws,
                443,
                fu,
                "https://xyz.lambda-url.eu-west-1.on.aws",
            ),
        ];
        for (style, port, endpoint, expected) in cases {
            assert_eq!(public_url(style, port, endpoint), expected, "{endpoint:?}");
            // Every URL handed out is read back as what it names.
            let host = public_host(style, port, endpoint);
            let target = parse(&host);
            assert!(
                match endpoint {
                    Endpoint::Registry { .. } =>
                        style == UrlStyle::Local || matches!(target, HostTarget::Registry { .. }),
                    Endpoint::ExecuteApi { .. } => matches!(target, HostTarget::ExecuteApi { .. }),
                    Endpoint::FunctionUrl { .. } =>
                        matches!(target, HostTarget::FunctionUrl { .. }),
                },
                "{host} reads as {target:?}"
            );
        }
    }

    #[test]
    fn url_style_names() {
        assert_eq!("local".parse::<UrlStyle>(), Ok(UrlStyle::Local));
        assert_eq!("aws".parse::<UrlStyle>(), Ok(UrlStyle::Aws));
        assert!("AWS".parse::<UrlStyle>().is_err());
        assert_eq!(UrlStyle::Aws.to_string(), "aws");
    }
}
