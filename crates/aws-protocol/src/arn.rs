//! Amazon Resource Names.

use std::fmt;
use std::str::FromStr;

/// An ARN, `arn:partition:service:region:account:resource`. The resource is
/// everything after the fifth colon, so it keeps its own colons
/// (`function:name:qualifier`). Region and account may be empty (IAM).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("arn does not start with \"arn:\"")]
    MissingPrefix,
    #[error("arn has fewer than six colon-separated parts")]
    TooFewParts,
    #[error("arn has an empty {0}")]
    Empty(&'static str),
}

impl FromStr for Arn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("arn:").ok_or(ArnError::MissingPrefix)?;
        let mut parts = rest.splitn(5, ':');
        let mut next = || parts.next().ok_or(ArnError::TooFewParts);
        let (partition, service, region, account, resource) =
            (next()?, next()?, next()?, next()?, next()?);
        for (name, value) in [
            ("partition", partition),
            ("service", service),
            ("resource", resource),
        ] {
            if value.is_empty() {
                return Err(ArnError::Empty(name));
            }
        }
        Ok(Arn {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for (input, expected) in [
            (
                "arn:aws:lambda:us-east-1:000000000000:function:name:qualifier",
                [
                    "aws",
                    "lambda",
                    "us-east-1",
                    "000000000000",
                    "function:name:qualifier",
                ],
            ),
            (
                "arn:aws:iam::123456789012:role/service-role/x",
                ["aws", "iam", "", "123456789012", "role/service-role/x"],
            ),
            (
                "arn:aws:ecr:ap-northeast-2:000000000000:repository/a/b",
                [
                    "aws",
                    "ecr",
                    "ap-northeast-2",
                    "000000000000",
                    "repository/a/b",
                ],
            ),
            (
                "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/GET/pets/*",
                [
                    "aws",
                    "execute-api",
                    "us-east-1",
                    "000000000000",
                    "abc123/prod/GET/pets/*",
                ],
            ),
            ("arn:aws:s3:::bucket", ["aws", "s3", "", "", "bucket"]),
        ] {
            let arn: Arn = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                [
                    arn.partition.as_str(),
                    &arn.service,
                    &arn.region,
                    &arn.account,
                    &arn.resource
                ],
                expected
            );
            assert_eq!(arn.to_string(), input);
        }
    }

    #[test]
    fn rejects_non_arns() {
        for (input, expected) in [
            ("", ArnError::MissingPrefix),
            ("function:name", ArnError::MissingPrefix),
            ("ARN:aws:lambda:r:a:x", ArnError::MissingPrefix),
            (
                "arn:aws:lambda:us-east-1:000000000000",
                ArnError::TooFewParts,
            ),
            ("arn:aws:lambda", ArnError::TooFewParts),
            ("arn::lambda:r:a:x", ArnError::Empty("partition")),
            ("arn:aws::r:a:x", ArnError::Empty("service")),
            ("arn:aws:lambda:r:a:", ArnError::Empty("resource")),
        ] {
            assert_eq!(input.parse::<Arn>(), Err(expected), "{input:?}");
        }
    }
}
