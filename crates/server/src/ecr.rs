//! TEMPORARY STUB so the crate compiles; the ECR helper replaces this whole file.
use aws_protocol::error::AwsError;

use crate::aws::Caller;
use crate::App;

pub(crate) async fn handle(
    _app: &App,
    _caller: &Caller,
    operation: &str,
    _body: &[u8],
) -> Result<serde_json::Value, AwsError> {
    Err(AwsError::client(
        "UnknownOperationException",
        format!("not yet: {operation}"),
    ))
}
