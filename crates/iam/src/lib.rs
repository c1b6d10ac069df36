//! IAM, stored and validated but not enforced: roles with their trust
//! policies, customer managed policies (with versions), the AWS managed
//! policies Lambda users attach, role↔policy attachments and inline role
//! policies. Names, paths and policy documents are checked the way IAM
//! checks them, with IAM's messages; nothing here decides whether a call
//! is allowed.
//!
//! What this crate deliberately does not know: HTTP and the Query wire
//! (the server's `iam` module), SQL (the store's `iam_*` queries), and
//! Lambda (which only asks [`Iam::lambda_can_assume`] when the server runs
//! with strict IAM).

mod document;
mod managed;
mod names;
mod service;

pub use document::{policy_size, trusts_lambda, validate_document, DocumentKind};
pub use managed::{aws_managed_policies, AwsManagedPolicy};
pub use names::{
    parse_policy_arn, parse_role_arn, policy_id, role_id, validate_path, validate_path_prefix,
    validate_policy_name, validate_policy_path, validate_role_name, PolicyArn, RoleArn,
};
pub use service::{
    Iam, NewPolicy, NewRole, Page, Policy, PolicyVersion, Role, Scope, Tag, MAX_INLINE_BYTES,
};

/// What an IAM operation can fail with; one variant per IAM error code.
/// Messages are IAM's own, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("metadata store failed: {0}")]
    Internal(String),
}

impl From<store::StoreError> for IamError {
    fn from(e: store::StoreError) -> Self {
        IamError::Internal(e.to_string())
    }
}
