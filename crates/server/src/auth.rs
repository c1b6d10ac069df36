//! Who a registry request acts as. ECR-style: `docker login` sends
//! `Basic base64("AWS:<password>")` with the password from
//! `GetAuthorizationToken`; the password is a signed token naming the
//! account. An ECR-style host (`{account}.dkr.ecr.{region}.…`) pins the
//! account and region.

use aws_protocol::token;
use http::HeaderMap;

use crate::App;

/// The account (and, from an ECR-style host, the region) a registry
/// request acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryIdentity {
    pub account: String,
    pub region: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No or unusable credentials: answer 401 with a Basic challenge.
    Unauthorized(&'static str),
    /// Valid credentials for another account than the host names.
    WrongAccount,
}

/// `{account}.dkr.ecr.{region}.{anything}` → (account, region).
fn ecr_host(headers: &HeaderMap) -> Option<(String, String)> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    match crate::hosts::parse(host) {
        crate::hosts::HostTarget::Registry { account, region } => Some((account, region)),
        _ => None,
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn registry_identity(
    app: &App,
    headers: &HeaderMap,
) -> Result<RegistryIdentity, Denied> {
    let host = ecr_host(headers);
    let claims = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(token::parse_basic_auth)
        .map(|(_user, password)| token::verify(&app.token_secret, &password, now_unix()));
    let auth_required = !app.config.credentials.is_empty();
    let token_account = match claims {
        Some(Ok(c)) => Some(c.account),
        Some(Err(token::TokenError::Expired { .. })) if auth_required => {
            return Err(Denied::Unauthorized(
                "the registry token has expired; run `aws ecr get-login-password | docker login` again",
            ))
        }
        _ if auth_required => {
            return Err(Denied::Unauthorized(
                "authentication required; log in with `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`",
            ))
        }
        // Development mode: any or no credentials are accepted.
        _ => None,
    };
    match (host, token_account) {
        (Some((host_account, _)), Some(t)) if host_account != t && auth_required => {
            Err(Denied::WrongAccount)
        }
        (Some((account, region)), _) => Ok(RegistryIdentity {
            account,
            region: Some(region),
        }),
        (None, Some(account)) => Ok(RegistryIdentity {
            account,
            region: None,
        }),
        (None, None) => Ok(RegistryIdentity {
            account: app.config.account_id.clone(),
            region: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_pin_account_and_region() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::HOST,
            http::HeaderValue::from_static("123456789012.dkr.ecr.eu-west-1.localhost:4566"),
        );
        assert_eq!(
            ecr_host(&h),
            Some(("123456789012".into(), "eu-west-1".into()))
        );
        h.insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost:4566"),
        );
        assert_eq!(ecr_host(&h), None);
        h.insert(
            http::header::HOST,
            http::HeaderValue::from_static("12.dkr.ecr.x.y"),
        );
        assert_eq!(ecr_host(&h), None);
    }
}
