//! `nextToken` pagination. A token is opaque to clients: base64url of a
//! small JSON cursor naming the operation it belongs to and where the next
//! page starts. A token from another operation, or one that does not
//! decode, is an `InvalidParameterException`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use registry::{ImageSummary, Registry, RegistryError, RepositoryRow};
use serde::{Deserialize, Serialize};

use super::errors::constraint;
use aws_protocol::error::AwsError;

/// Page size when a request gives no `maxResults`.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// Longest token accepted (ours are far shorter).
const MAX_TOKEN_CHARS: usize = 2048;

/// How many images one store query fetches while filling a page.
const FETCH_BATCH: i64 = 200;

/// Where a page starts: after the key `after`; when `resume` names the
/// first item after it, that item's first `skip` entries were already
/// returned (an image with several tags spans pages in ListImages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    #[serde(rename = "o")]
    operation: String,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "is_zero")]
    pub skip: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Cursor {
    pub(crate) fn new(operation: &str) -> Cursor {
        Cursor {
            operation: operation.to_string(),
            ..Cursor::default()
        }
    }

    pub(crate) fn after(operation: &str, key: &str) -> Cursor {
        Cursor {
            after: Some(key.to_string()),
            ..Cursor::new(operation)
        }
    }

    pub(crate) fn encode(&self) -> String {
        // Serialising a struct of strings and an integer cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes `token` for `operation`; absent or empty means the first page.
    pub(crate) fn decode(token: Option<&str>, operation: &str) -> Result<Cursor, AwsError> {
        let token = match token {
            None | Some("") => return Ok(Cursor::new(operation)),
            Some(t) => t,
        };
        let invalid = || {
            constraint(
                "nextToken",
                &format!("must be a nextToken returned by a previous {operation} call"),
            )
        };
        if token.len() > MAX_TOKEN_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.operation != operation {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// Fills one page of at most `limit` entries from a repository's images in
/// digest order, `expand` turning each image into zero or more entries.
/// Returns the entries and, only when more entries exist, the cursor of
/// the next page.
pub(crate) async fn image_page<T>(
    registry: &Registry,
    repo: &RepositoryRow,
    start: Cursor,
    limit: usize,
    mut expand: impl FnMut(&ImageSummary) -> Vec<T>,
) -> Result<(Vec<T>, Option<Cursor>), RegistryError> {
    let operation = start.operation.clone();
    let mut out = Vec::new();
    let mut after = start.after;
    let mut resume = start.resume.map(|d| (d, start.skip));
    loop {
        let batch = registry
            .images_page(repo, after.as_deref(), FETCH_BATCH)
            .await?;
        let exhausted = (batch.len() as i64) < FETCH_BATCH;
        for image in &batch {
            let skip = match resume.take() {
                Some((digest, skip)) if digest == image.digest => skip,
                _ => 0,
            };
            for (i, entry) in expand(image).into_iter().enumerate().skip(skip) {
                if out.len() == limit {
                    let next = Cursor {
                        operation,
                        after,
                        resume: Some(image.digest.clone()),
                        skip: i,
                    };
                    return Ok((out, Some(next)));
                }
                out.push(entry);
            }
            after = Some(image.digest.clone());
        }
        if exhausted {
            return Ok((out, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_operation() {
        let c = Cursor {
            operation: "ListImages".into(),
            after: Some("sha256:aa".into()),
            resume: Some("sha256:bb".into()),
            skip: 3,
        };
        let token = c.encode();
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(Some(&token), "ListImages").ok(), Some(c));
        assert_eq!(
            Cursor::decode(Some(&token), "DescribeImages").map_err(|e| e.code),
            Err("InvalidParameterException".into())
        );
        assert_eq!(
            Cursor::decode(None, "ListImages").ok(),
            Some(Cursor::new("ListImages"))
        );
        assert_eq!(
            Cursor::decode(Some(""), "ListImages").ok(),
            Some(Cursor::new("ListImages"))
        );
        let first = Cursor::after("DescribeRepositories", "team/app");
        assert_eq!(
            Cursor::decode(Some(&first.encode()), "DescribeRepositories")
                .ok()
                .and_then(|c| c.after),
            Some("team/app".into())
        );
        for bad in ["garbage!", "e30", "bm90IGpzb24", &"A".repeat(3000)] {
            let e = Cursor::decode(Some(bad), "ListImages").expect_err(bad);
            assert_eq!(
                e.message,
                "Invalid parameter at 'nextToken' failed to satisfy constraint: 'must be a nextToken returned by a previous ListImages call'"
            );
        }
    }
}
