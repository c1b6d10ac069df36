//! ECR's error vocabulary: the exceptions of the `AmazonEC2ContainerRegistry`
//! model with AWS's message wording, and the one mapping from
//! [`RegistryError`] to them.

use aws_protocol::error::AwsError;
use http::StatusCode;
use registry::{RegistryError, Scope};

/// AWS's pattern for `repositoryName`, as it names it in the refusal.
pub(crate) const REPOSITORY_NAME_PATTERN: &str =
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*";

/// AWS's pattern for an image digest in a request.
pub(crate) const IMAGE_DIGEST_PATTERN: &str = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+";

/// The OCI tag grammar, which is what this registry stores.
pub(crate) const IMAGE_TAG_PATTERN: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";

pub(crate) fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidParameterException", message)
}

/// `Invalid parameter at '{field}' failed to satisfy constraint: '{constraint}'`,
/// the shape of every ECR input-validation refusal.
pub(crate) fn constraint(field: &str, constraint: &str) -> AwsError {
    invalid_parameter(format!(
        "Invalid parameter at '{field}' failed to satisfy constraint: '{constraint}'"
    ))
}

pub(crate) fn required(field: &str) -> AwsError {
    constraint(field, "Member must not be null")
}

pub(crate) fn enum_value(field: &str, allowed: &[&str]) -> AwsError {
    constraint(
        field,
        &format!(
            "Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
    )
}

pub(crate) fn invalid_repository_name() -> AwsError {
    constraint(
        "repositoryName",
        &format!("must satisfy regular expression '{REPOSITORY_NAME_PATTERN}'"),
    )
}

/// A body that is not JSON, or whose members have the wrong JSON types.
pub(crate) fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::client("SerializationException", message)
}

pub(crate) fn unknown_operation(operation: &str) -> AwsError {
    AwsError::client(
        "UnknownOperationException",
        format!("Stratus does not serve the ECR operation {operation:?}"),
    )
}

pub(crate) fn access_denied(registry_id: &str, account: &str) -> AwsError {
    AwsError::client(
        "AccessDeniedException",
        format!(
            "The caller in account '{account}' is not authorized to access the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn image_not_found(
    digest: Option<&str>,
    tag: Option<&str>,
    repository: &str,
    account: &str,
) -> AwsError {
    AwsError::client(
        "ImageNotFoundException",
        format!(
            "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{repository}' in the registry with id '{account}'",
            digest.unwrap_or("null"),
            tag.unwrap_or("null"),
        ),
    )
}

pub(crate) fn image_already_exists(
    digest: &str,
    tag: Option<&str>,
    repository: &str,
    account: &str,
) -> AwsError {
    AwsError::client(
        "ImageAlreadyExistsException",
        format!(
            "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{repository}' in registry with id '{account}'",
            tag.unwrap_or("null"),
        ),
    )
}

pub(crate) fn lifecycle_policy_not_found(repository: &str, account: &str) -> AwsError {
    AwsError::client(
        "LifecyclePolicyNotFoundException",
        format!(
            "Lifecycle policy does not exist for the repository with name '{repository}' in the registry with id '{account}'"
        ),
    )
}

pub(crate) fn repository_policy_not_found(repository: &str, account: &str) -> AwsError {
    AwsError::client(
        "RepositoryPolicyNotFoundException",
        format!(
            "Repository policy does not exist for the repository with name '{repository}' in the registry with id '{account}'"
        ),
    )
}

/// What a registry error is about, beyond what the error itself carries.
pub(crate) struct ErrorContext<'a> {
    pub scope: &'a Scope,
    /// The repository the request names, if any.
    pub repository: Option<&'a str>,
    pub request_id: &'a str,
}

/// Maps every registry error to the ECR exception AWS would send.
pub(crate) fn from_registry(e: RegistryError, cx: &ErrorContext<'_>) -> AwsError {
    let account = cx.scope.account.as_str();
    let repository = cx.repository.unwrap_or("");
    let client = AwsError::client;
    match e {
        RegistryError::RepositoryNotFound { name, account } => client(
            "RepositoryNotFoundException",
            format!("The repository with name '{name}' does not exist in the registry with id '{account}'"),
        ),
        RegistryError::RepositoryAlreadyExists { name, account } => client(
            "RepositoryAlreadyExistsException",
            format!("The repository with name '{name}' already exists in the registry with id '{account}'"),
        ),
        RegistryError::RepositoryNotEmpty { name, account } => client(
            "RepositoryNotEmptyException",
            format!("The repository with name '{name}' in registry with id '{account}' cannot be deleted because it still contains images"),
        ),
        RegistryError::InvalidRepositoryName(_) => invalid_repository_name(),
        RegistryError::InvalidParameter(message) => invalid_parameter(message),
        RegistryError::InvalidTag(_) => constraint(
            "imageTag",
            &format!("must satisfy regular expression '{IMAGE_TAG_PATTERN}'"),
        ),
        RegistryError::DigestInvalid(_) => constraint(
            "imageDigest",
            &format!("must satisfy regular expression '{IMAGE_DIGEST_PATTERN}'"),
        ),
        RegistryError::DigestMismatch { expected, computed } => client(
            "ImageDigestDoesNotMatchException",
            format!("Provided digest '{expected}' does not match the digest '{computed}' calculated for the image manifest"),
        ),
        RegistryError::ManifestUnknown {
            repository,
            reference,
        } => {
            let (digest, tag) = if reference.contains(':') {
                (Some(reference.as_str()), None)
            } else {
                (None, Some(reference.as_str()))
            };
            image_not_found(digest, tag, &repository, account)
        }
        RegistryError::ManifestInvalid(why) => constraint("imageManifest", &why),
        RegistryError::ManifestTooLarge { limit, .. } => constraint(
            "imageManifest",
            &format!("Member must have length less than or equal to {limit}"),
        ),
        RegistryError::ManifestBlobUnknown(digests) => client(
            "LayersNotFoundException",
            format!(
                "Layers with digests '[{}]' required for pushing image into repository with name '{repository}' in the registry with id '{account}' do not exist",
                digests.join(", ")
            ),
        ),
        RegistryError::ReferencedManifestsUnknown(digests) => client(
            "ReferencedImagesNotFoundException",
            format!(
                "Images with digests '[{}]' required for pushing image into repository with name '{repository}' in the registry with id '{account}' do not exist",
                digests.join(", ")
            ),
        ),
        RegistryError::TagImmutable { tag, repository } => client(
            "ImageTagAlreadyExistsException",
            format!("The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable."),
        ),
        RegistryError::BlobUnknown(digest) => client(
            "LayersNotFoundException",
            format!("The layer with digest '{digest}' does not exist in the repository with name '{repository}' in the registry with id '{account}'"),
        ),
        RegistryError::UploadUnknown(id) => client(
            "UploadNotFoundException",
            format!("The upload with id '{id}' does not exist in the repository with name '{repository}' in the registry with id '{account}'"),
        ),
        RegistryError::UploadBusy(id) => client(
            "InvalidLayerPartException",
            format!("The upload with id '{id}' is busy with another request"),
        ),
        RegistryError::RangeInvalid { current, requested } => client(
            "InvalidLayerPartException",
            format!("The layer part starts at byte {requested}, but the upload has received {current} bytes"),
        )
        .with_extra("lastValidByteReceived", current.saturating_sub(1)),
        RegistryError::RangeNotSatisfiable(why) => invalid_parameter(why),
        RegistryError::BlobTooLarge { limit } => client(
            "LimitExceededException",
            format!("The layer exceeds the {limit}-byte limit of this registry"),
        ),
        RegistryError::BodyFailed(why) => invalid_parameter(format!("The request body could not be read: {why}")),
        RegistryError::LifecyclePolicyNotFound { name } => lifecycle_policy_not_found(&name, account),
        RegistryError::RepositoryPolicyNotFound { name, account } => {
            repository_policy_not_found(&name, &account)
        }
        RegistryError::Internal(detail) => {
            tracing::error!(request_id = %cx.request_id, error = %detail, "ECR request failed inside the registry");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServerException",
                format!(
                    "Stratus failed to complete the request ({}); the server log has the details",
                    cx.request_id
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        }
    }

    fn check(e: RegistryError, code: &str, status: u16, message: &str) {
        let scope = scope();
        let cx = ErrorContext {
            scope: &scope,
            repository: Some("team/app"),
            request_id: "req-1",
        };
        let got = from_registry(e, &cx);
        assert_eq!(
            (got.code.as_str(), got.status.as_u16(), got.message.as_str()),
            (code, status, message)
        );
    }

    #[test]
    fn registry_errors_become_ecr_exceptions() {
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        check(
            RegistryError::RepositoryNotFound {
                name: "x".into(),
                account: "123456789012".into(),
            },
            "RepositoryNotFoundException",
            400,
            "The repository with name 'x' does not exist in the registry with id '123456789012'",
        );
        check(
            RegistryError::RepositoryAlreadyExists {
                name: "x".into(),
                account: "123456789012".into(),
            },
            "RepositoryAlreadyExistsException",
            400,
            "The repository with name 'x' already exists in the registry with id '123456789012'",
        );
        check(
            RegistryError::RepositoryNotEmpty {
                name: "x".into(),
                account: "123456789012".into(),
            },
            "RepositoryNotEmptyException",
            400,
            "The repository with name 'x' in registry with id '123456789012' cannot be deleted because it still contains images",
        );
        check(
            RegistryError::InvalidRepositoryName("A".into()),
            "InvalidParameterException",
            400,
            r"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*''",
        );
        check(
            RegistryError::ManifestUnknown {
                repository: "team/app".into(),
                reference: "v1".into(),
            },
            "ImageNotFoundException",
            400,
            "The image with imageId {imageDigest:'null', imageTag:'v1'} does not exist within the repository with name 'team/app' in the registry with id '123456789012'",
        );
        check(
            RegistryError::ManifestBlobUnknown(vec![d.into()]),
            "LayersNotFoundException",
            400,
            &format!("Layers with digests '[{d}]' required for pushing image into repository with name 'team/app' in the registry with id '123456789012' do not exist"),
        );
        check(
            RegistryError::ReferencedManifestsUnknown(vec![d.into()]),
            "ReferencedImagesNotFoundException",
            400,
            &format!("Images with digests '[{d}]' required for pushing image into repository with name 'team/app' in the registry with id '123456789012' do not exist"),
        );
        check(
            RegistryError::TagImmutable {
                tag: "v1".into(),
                repository: "team/app".into(),
            },
            "ImageTagAlreadyExistsException",
            400,
            "The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the repository is immutable.",
        );
        check(
            RegistryError::LifecyclePolicyNotFound {
                name: "team/app".into(),
            },
            "LifecyclePolicyNotFoundException",
            400,
            "Lifecycle policy does not exist for the repository with name 'team/app' in the registry with id '123456789012'",
        );
        check(
            RegistryError::Internal("disk on fire".into()),
            "ServerException",
            500,
            "Stratus failed to complete the request (req-1); the server log has the details",
        );
    }

    #[test]
    fn digest_mismatch_and_limits() {
        let scope = scope();
        let cx = ErrorContext {
            scope: &scope,
            repository: None,
            request_id: "r",
        };
        let e = from_registry(
            RegistryError::DigestMismatch {
                expected: "sha256:a".into(),
                computed: "sha256:b".into(),
            },
            &cx,
        );
        assert_eq!(e.code, "ImageDigestDoesNotMatchException");
        let e = from_registry(
            RegistryError::ManifestTooLarge {
                size: 5,
                limit: 4_194_304,
            },
            &cx,
        );
        assert_eq!(
            e.message,
            "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length less than or equal to 4194304'"
        );
        let e = from_registry(
            RegistryError::RangeInvalid {
                current: 10,
                requested: 3,
            },
            &cx,
        );
        assert_eq!(
            e.extra
                .and_then(|m| m.get("lastValidByteReceived").cloned()),
            Some(serde_json::json!(9))
        );
    }
}
