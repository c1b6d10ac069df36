//! What a function is: its configuration as the control plane stores it,
//! the states it moves through, and the validation rules of its fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Lambda's defaults and limits.
pub const DEFAULT_TIMEOUT_S: u32 = 3;
pub const MAX_TIMEOUT_S: u32 = 900;
pub const DEFAULT_MEMORY_MB: u32 = 128;
pub const MIN_MEMORY_MB: u32 = 128;
pub const MAX_MEMORY_MB: u32 = 10_240;
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;
pub const MAX_EPHEMERAL_MB: u32 = 10_240;
pub const MAX_ENV_BYTES: usize = 4 * 1024;
pub const LATEST: &str = "$LATEST";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackageType {
    Image,
    Zip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Pending,
    Active,
    Failed,
    Inactive,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "Pending",
            State::Active => "Active",
            State::Failed => "Failed",
            State::Inactive => "Inactive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateStatus {
    InProgress,
    Successful,
    Failed,
}

impl UpdateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStatus::InProgress => "InProgress",
            UpdateStatus::Successful => "Successful",
            UpdateStatus::Failed => "Failed",
        }
    }
}

/// `ImageConfig` overrides of the image's ENTRYPOINT, CMD and WORKDIR.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageOverrides {
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub working_directory: Option<String>,
}

impl ImageOverrides {
    pub fn is_empty(&self) -> bool {
        self.entry_point.is_none() && self.command.is_none() && self.working_directory.is_none()
    }
}

/// What the function's code is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRef {
    /// As the user gave it.
    pub image_uri: String,
    /// Repository in the built-in registry.
    pub repository: String,
    /// Manifest digest pinned at create/update time (`sha256:…`). For a
    /// zip function, the digest of its runtime's base image, pinned when
    /// the function activates (empty until then).
    pub digest: String,
    /// A zip function's package (hex SHA-256 in the code store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_sha256: Option<String>,
}

/// The runtimes a zip function may name, with the repository and tag of
/// their base image in the built-in registry (pushed there from
/// `public.ecr.aws/lambda/<repository>:<tag>`).
pub const RUNTIMES: &[(&str, &str)] = &[
    ("python3.9", "lambda/python:3.9"),
    ("python3.10", "lambda/python:3.10"),
    ("python3.11", "lambda/python:3.11"),
    ("python3.12", "lambda/python:3.12"),
    ("python3.13", "lambda/python:3.13"),
    ("nodejs18.x", "lambda/nodejs:18"),
    ("nodejs20.x", "lambda/nodejs:20"),
    ("nodejs22.x", "lambda/nodejs:22"),
    ("java17", "lambda/java:17"),
    ("java21", "lambda/java:21"),
    ("ruby3.3", "lambda/ruby:3.3"),
    ("dotnet8", "lambda/dotnet:8"),
    ("provided.al2", "lambda/provided:al2"),
    ("provided.al2023", "lambda/provided:al2023"),
];

/// The base image (`repository:tag` in the built-in registry) of a runtime.
pub fn runtime_base_image(runtime: &str) -> Option<&'static str> {
    RUNTIMES
        .iter()
        .find(|(r, _)| *r == runtime)
        .map(|(_, image)| *image)
}

/// OS-only runtimes run the package's own `bootstrap`.
pub fn is_os_only_runtime(runtime: &str) -> bool {
    runtime.starts_with("provided")
}

/// One configuration: `$LATEST` or a published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub name: String,
    pub account: String,
    pub region: String,
    pub version: String,
    pub package_type: PackageType,
    pub role: String,
    pub handler: Option<String>,
    pub runtime: Option<String>,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub ephemeral_mb: u32,
    pub environment: Option<BTreeMap<String, String>>,
    pub image_overrides: ImageOverrides,
    pub architectures: Vec<String>,
    pub code: CodeRef,
    pub code_sha256: String,
    pub code_size: i64,
    pub state: State,
    pub state_reason: Option<String>,
    pub state_reason_code: Option<String>,
    pub last_update_status: Option<UpdateStatus>,
    pub last_update_reason: Option<String>,
    pub last_update_reason_code: Option<String>,
    pub last_modified_ms: i64,
    pub revision_id: String,
    pub tracing_mode: String,
}

impl FunctionConfig {
    pub fn arn(&self) -> String {
        function_arn(&self.region, &self.account, &self.name)
    }

    /// The ARN with the version (`…:function:name:3`, `…:$LATEST`).
    pub fn qualified_arn(&self) -> String {
        format!("{}:{}", self.arn(), self.version)
    }

    pub fn log_group(&self) -> String {
        format!("/aws/lambda/{}", self.name)
    }
}

pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// `[a-zA-Z0-9-_]{1,64}`
pub fn is_valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
pub fn is_valid_role_arn(role: &str) -> bool {
    let Some(rest) = role.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !(partition.is_empty()
        || (partition.starts_with("aws")
            && partition
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-')))
    {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, path)) = rest.split_once(':') else {
        return false;
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(name) = path.strip_prefix("role") else {
        return false;
    };
    let name = name.strip_prefix('/').unwrap_or(name);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

/// Environment variables Lambda reserves: a function may not set them.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names_and_roles() {
        assert!(is_valid_function_name("my_lambda-1"));
        assert!(!is_valid_function_name("my lambda"));
        assert!(!is_valid_function_name(&"a".repeat(65)));
        assert!(is_valid_role_arn(
            "arn:aws:iam::000000000000:role/lambda-role"
        ));
        assert!(is_valid_role_arn(
            "arn:aws:iam::123456789012:role/service-role/x.y@z"
        ));
        assert!(!is_valid_role_arn("arn:aws:iam::0000:role/x"));
        assert!(!is_valid_role_arn("lambda-role"));
        assert!(!is_valid_role_arn("arn:aws:iam::000000000000:user/x"));
    }
}
