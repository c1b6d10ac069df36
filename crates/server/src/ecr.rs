//! The ECR control API (`AmazonEC2ContainerRegistry_V20150921.*`, JSON
//! 1.1) over the [`registry`] domain: repositories and their settings,
//! images, registry logins, lifecycle and repository policies, tags.
//!
//! Wire shapes follow botocore's model of ECR; validation errors, failure
//! codes and messages follow what AWS sends. Every [`RegistryError`] is
//! turned into an ECR exception in one place, [`errors::from_registry`].
//!
//! What this module deliberately does not do: evaluate lifecycle policies
//! or repository policies (they are stored and returned), scan images,
//! replicate, or serve the layer-upload operations (`InitiateLayerUpload`
//! and friends) — pushes go through the registry API under `/v2/`.

mod errors;
mod images;
mod lifecycle;
mod paging;
mod render;
mod request;

use aws_protocol::error::AwsError;
use registry::{NewRepository, RegistryError, RepositoryRow, Scope};
use serde_json::{json, Map, Value};

use crate::aws::Caller;
use crate::App;
use errors::{constraint, invalid_parameter, required, ErrorContext};
use paging::{Cursor, DEFAULT_PAGE};
use request::{
    encryption, list_len, max_results, parse, registry_id, repository_name, require, resource_tags,
    str_len, tag_mutability, too_many_tags,
};

/// How long a registry password from GetAuthorizationToken is valid.
const TOKEN_VALIDITY_SECS: i64 = 12 * 3600;

/// Serialises read-modify-write updates of repository settings (tags,
/// policies, mutability), which the store rewrites as a whole row.
static SETTINGS_UPDATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs one ECR operation for `caller`; `operation` is the `X-Amz-Target`
/// suffix and `body` the JSON request.
pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let ecr = Ecr {
        app,
        caller,
        scope: Scope {
            account: caller.account.clone(),
            region: caller.region.clone(),
        },
    };
    tracing::debug!(operation, request_id = %caller.request_id, "ECR operation");
    match operation {
        "CreateRepository" => ecr.create_repository(parse(body)?).await,
        "DescribeRepositories" => ecr.describe_repositories(parse(body)?).await,
        "DeleteRepository" => ecr.delete_repository(parse(body)?).await,
        "ListImages" => ecr.list_images(parse(body)?).await,
        "DescribeImages" => ecr.describe_images(parse(body)?).await,
        "BatchGetImage" => ecr.batch_get_image(parse(body)?).await,
        "BatchDeleteImage" => ecr.batch_delete_image(parse(body)?).await,
        "PutImage" => ecr.put_image(parse(body)?).await,
        "BatchCheckLayerAvailability" => ecr.batch_check_layer_availability(parse(body)?).await,
        "GetAuthorizationToken" => ecr.get_authorization_token(parse(body)?),
        "PutLifecyclePolicy" => ecr.put_lifecycle_policy(parse(body)?).await,
        "GetLifecyclePolicy" => ecr.get_lifecycle_policy(parse(body)?).await,
        "DeleteLifecyclePolicy" => ecr.delete_lifecycle_policy(parse(body)?).await,
        "SetRepositoryPolicy" => ecr.set_repository_policy(parse(body)?).await,
        "GetRepositoryPolicy" => ecr.get_repository_policy(parse(body)?).await,
        "DeleteRepositoryPolicy" => ecr.delete_repository_policy(parse(body)?).await,
        "PutImageTagMutability" => ecr.put_image_tag_mutability(parse(body)?).await,
        "PutImageScanningConfiguration" => ecr.put_image_scanning_configuration(parse(body)?).await,
        "TagResource" => ecr.tag_resource(parse(body)?).await,
        "UntagResource" => ecr.untag_resource(parse(body)?).await,
        "ListTagsForResource" => ecr.list_tags_for_resource(parse(body)?).await,
        "DescribeRegistry" => Ok(json!({
            "registryId": ecr.scope.account,
            "replicationConfiguration": {"rules": []},
        })),
        other => Err(errors::unknown_operation(other)),
    }
}

/// One request's view of the ECR API.
struct Ecr<'a> {
    app: &'a App,
    caller: &'a Caller,
    scope: Scope,
}

impl Ecr<'_> {
    /// Maps a registry error, naming the repository the request is about.
    fn error(&self, repository: Option<&str>) -> impl Fn(RegistryError) -> AwsError + '_ {
        let repository = repository.map(str::to_string);
        move |e| {
            errors::from_registry(
                e,
                &ErrorContext {
                    scope: &self.scope,
                    repository: repository.as_deref(),
                    request_id: &self.caller.request_id,
                },
            )
        }
    }

    async fn repository(&self, name: &str) -> Result<RepositoryRow, AwsError> {
        self.app
            .registry
            .repository(&self.scope, name)
            .await
            .map_err(self.error(Some(name)))
    }

    async fn update(&self, row: &RepositoryRow) -> Result<(), AwsError> {
        self.app
            .registry
            .update_repository(row)
            .await
            .map_err(self.error(Some(&row.name)))
    }

    fn url_form(&self) -> render::UrlForm {
        render::UrlForm {
            style: self.app.config.url_style,
            port: self.app.port,
        }
    }

    fn render(&self, row: &RepositoryRow) -> Value {
        render::repository(row, self.url_form())
    }

    // ----- repositories -----------------------------------------------------

    async fn create_repository(
        &self,
        input: request::CreateRepositoryInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let mutability = tag_mutability(
            input.image_tag_mutability.as_deref(),
            input.image_tag_mutability_exclusion_filters.as_deref(),
        )?;
        let tags = resource_tags(input.tags.as_deref().unwrap_or_default())?;
        let (encryption_type, kms_key) = encryption(input.encryption_configuration.as_ref())?;
        let scan_on_push = input
            .image_scanning_configuration
            .and_then(|c| c.scan_on_push)
            .unwrap_or(false);
        let row = self
            .app
            .registry
            .create_repository(
                &self.scope,
                NewRepository {
                    name: name.to_string(),
                    tag_mutability: mutability.setting,
                    scan_on_push,
                    encryption_type,
                    kms_key,
                    tags_json: render::tag_list(&tags).to_string(),
                },
            )
            .await
            .map_err(self.error(Some(name)))?;
        Ok(json!({"repository": self.render(&row)}))
    }

    async fn describe_repositories(
        &self,
        input: request::DescribeRepositoriesInput,
    ) -> Result<Value, AwsError> {
        registry_id(&input.registry_id, &self.scope.account)?;
        let max = max_results(input.max_results)?;
        if let Some(names) = &input.repository_names {
            list_len(names, "repositoryNames", 1, 100)?;
            if max.is_some() {
                return Err(not_with("maxResults", "repositoryNames"));
            }
            if input.next_token.as_deref().is_some_and(|t| !t.is_empty()) {
                return Err(not_with("nextToken", "repositoryNames"));
            }
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if !registry::is_valid_repository_name(name) {
                    return Err(constraint(
                        &format!("repositoryNames.{}.member", i + 1),
                        &format!(
                            "must satisfy regular expression '{}'",
                            errors::REPOSITORY_NAME_PATTERN
                        ),
                    ));
                }
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                out.push(self.render(&self.repository(name).await?));
            }
            return Ok(json!({"repositories": out}));
        }
        let limit = max.unwrap_or(DEFAULT_PAGE);
        let cursor = Cursor::decode(input.next_token.as_deref(), "DescribeRepositories")?;
        let mut rows = self
            .app
            .registry
            .list_repositories(&self.scope, cursor.after.as_deref(), limit as i64 + 1)
            .await
            .map_err(self.error(None))?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| Cursor::after("DescribeRepositories", &r.name).encode())
        } else {
            None
        };
        let mut out = Map::new();
        out.insert(
            "repositories".into(),
            rows.iter().map(|r| self.render(r)).collect(),
        );
        if let Some(token) = next {
            out.insert("nextToken".into(), json!(token));
        }
        Ok(Value::Object(out))
    }

    async fn delete_repository(&self, input: request::RepositoryInput) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let row = self
            .app
            .registry
            .delete_repository(&self.scope, name, input.force.unwrap_or(false))
            .await
            .map_err(self.error(Some(name)))?;
        Ok(json!({"repository": self.render(&row)}))
    }

    // ----- registry login -----------------------------------------------------

    fn get_authorization_token(
        &self,
        input: request::GetAuthorizationTokenInput,
    ) -> Result<Value, AwsError> {
        // Deprecated and ignored by ECR: a token opens the caller's registry.
        if let Some(ids) = &input.registry_ids {
            list_len(ids, "registryIds", 1, 10)?;
            if let Some((i, _)) = ids
                .iter()
                .enumerate()
                .find(|(_, id)| !aws_protocol::ids::is_account_id(id))
            {
                return Err(constraint(
                    &format!("registryIds.{}.member", i + 1),
                    "must satisfy regular expression '[0-9]{12}'",
                ));
            }
        }
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + TOKEN_VALIDITY_SECS;
        Ok(json!({"authorizationData": [authorization_data(
            &self.app.token_secret,
            &self.scope,
            expires,
            self.url_form(),
        )]}))
    }

    // ----- lifecycle policies ---------------------------------------------------

    async fn put_lifecycle_policy(
        &self,
        input: request::LifecyclePolicyInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let text = require(&input.lifecycle_policy_text, "lifecyclePolicyText")?;
        str_len(text, "lifecyclePolicyText", 100, 30_720)?;
        lifecycle::validate(text).map_err(|why| {
            constraint(
                "LifecyclePolicyText",
                &format!("Lifecycle policy validation failure: {why}"),
            )
        })?;
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        row.lifecycle_policy = Some(text.clone());
        row.lifecycle_updated_ms = Some(registry::now_ms());
        self.update(&row).await?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "lifecyclePolicyText": text,
        }))
    }

    async fn get_lifecycle_policy(
        &self,
        input: request::RepositoryInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let row = self.repository(name).await?;
        let text = row
            .lifecycle_policy
            .as_ref()
            .ok_or_else(|| errors::lifecycle_policy_not_found(name, &self.scope.account))?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "lifecyclePolicyText": text,
        }))
    }

    async fn delete_lifecycle_policy(
        &self,
        input: request::RepositoryInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        let text = row
            .lifecycle_policy
            .take()
            .ok_or_else(|| errors::lifecycle_policy_not_found(name, &self.scope.account))?;
        row.lifecycle_updated_ms = Some(registry::now_ms());
        self.update(&row).await?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "lifecyclePolicyText": text,
        }))
    }

    // ----- repository policies ----------------------------------------------------

    async fn set_repository_policy(
        &self,
        input: request::RepositoryPolicyInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let text = require(&input.policy_text, "policyText")?;
        str_len(text, "policyText", 0, 10_240)?;
        // `force` overrides ECR's check that a policy does not lock the
        // caller out; Stratus does not evaluate policies, so there is
        // nothing to override.
        let _ = input.force;
        if !is_policy_document(text) {
            return Err(constraint(
                "PolicyText",
                "Invalid repository policy provided",
            ));
        }
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        row.repository_policy = Some(text.clone());
        self.update(&row).await?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "policyText": text,
        }))
    }

    async fn get_repository_policy(
        &self,
        input: request::RepositoryInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let row = self.repository(name).await?;
        let text = row
            .repository_policy
            .as_ref()
            .ok_or_else(|| errors::repository_policy_not_found(name, &self.scope.account))?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "policyText": text,
        }))
    }

    async fn delete_repository_policy(
        &self,
        input: request::RepositoryInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        let text = row
            .repository_policy
            .take()
            .ok_or_else(|| errors::repository_policy_not_found(name, &self.scope.account))?;
        self.update(&row).await?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "policyText": text,
        }))
    }

    // ----- settings ---------------------------------------------------------------

    async fn put_image_tag_mutability(
        &self,
        input: request::PutImageTagMutabilityInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let setting = require(&input.image_tag_mutability, "imageTagMutability")?;
        let mutability = tag_mutability(
            Some(setting),
            input.image_tag_mutability_exclusion_filters.as_deref(),
        )?;
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        row.tag_mutability = mutability.setting.clone();
        self.update(&row).await?;
        let mut out = Map::new();
        out.insert("registryId".into(), json!(row.account));
        out.insert("repositoryName".into(), json!(row.name));
        out.insert("imageTagMutability".into(), json!(mutability.setting));
        if !mutability.exclusion_filters.is_empty() {
            out.insert(
                "imageTagMutabilityExclusionFilters".into(),
                mutability
                    .exclusion_filters
                    .iter()
                    .map(|(kind, filter)| json!({"filterType": kind, "filter": filter}))
                    .collect(),
            );
        }
        Ok(Value::Object(out))
    }

    async fn put_image_scanning_configuration(
        &self,
        input: request::PutImageScanningConfigurationInput,
    ) -> Result<Value, AwsError> {
        let name = repository_name(&input.repository_name)?;
        registry_id(&input.registry_id, &self.scope.account)?;
        let config = require(
            &input.image_scanning_configuration,
            "imageScanningConfiguration",
        )?;
        let scan_on_push = config.scan_on_push.unwrap_or(false);
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.repository(name).await?;
        row.scan_on_push = scan_on_push;
        self.update(&row).await?;
        Ok(json!({
            "registryId": row.account,
            "repositoryName": row.name,
            "imageScanningConfiguration": {"scanOnPush": scan_on_push},
        }))
    }

    // ----- resource tags ------------------------------------------------------------

    /// The repository a `resourceArn` names, in the caller's account and
    /// region.
    async fn tagged_repository(&self, arn: &Option<String>) -> Result<RepositoryRow, AwsError> {
        let arn = require(arn, "resourceArn")?;
        let (region, account, name) = request::repository_arn(arn)?;
        if account != self.scope.account {
            return Err(errors::access_denied(&account, &self.scope.account));
        }
        if region != self.scope.region {
            return Err(constraint(
                "resourceArn",
                &format!(
                    "the resource is in region '{region}', but the request was sent to region '{}'",
                    self.scope.region
                ),
            ));
        }
        if !registry::is_valid_repository_name(&name) {
            return Err(constraint("resourceArn", &format!("Invalid ARN: {arn}")));
        }
        self.repository(&name).await
    }

    async fn tag_resource(&self, input: request::TagResourceInput) -> Result<Value, AwsError> {
        let new = resource_tags(require(&input.tags, "tags")?)?;
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.tagged_repository(&input.resource_arn).await?;
        let mut tags = render::stored_tags(&row.tags_json);
        for (key, value) in new {
            match tags.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => tags.push((key, value)),
            }
        }
        if tags.len() > request::MAX_TAGS {
            return Err(too_many_tags());
        }
        row.tags_json = render::tag_list(&tags).to_string();
        self.update(&row).await?;
        Ok(json!({}))
    }

    async fn untag_resource(&self, input: request::TagResourceInput) -> Result<Value, AwsError> {
        let keys = require(&input.tag_keys, "tagKeys")?;
        for (i, key) in keys.iter().enumerate() {
            str_len(key, &format!("tagKeys.{}.member", i + 1), 1, 128)?;
        }
        let _guard = SETTINGS_UPDATE.lock().await;
        let mut row = self.tagged_repository(&input.resource_arn).await?;
        let mut tags = render::stored_tags(&row.tags_json);
        tags.retain(|(k, _)| !keys.contains(k));
        row.tags_json = render::tag_list(&tags).to_string();
        self.update(&row).await?;
        Ok(json!({}))
    }

    async fn list_tags_for_resource(
        &self,
        input: request::TagResourceInput,
    ) -> Result<Value, AwsError> {
        let row = self.tagged_repository(&input.resource_arn).await?;
        Ok(json!({"tags": render::tag_list(&render::stored_tags(&row.tags_json))}))
    }
}

/// One `AuthorizationData`: the token docker logs in with is
/// `base64("AWS:" + password)`, the password a signed registry token.
fn authorization_data(
    secret: &[u8],
    scope: &Scope,
    expires_unix: i64,
    form: render::UrlForm,
) -> Value {
    use base64::Engine;
    let password = aws_protocol::token::mint(secret, &scope.account, &scope.region, expires_unix);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    json!({
        "authorizationToken": token,
        "expiresAt": expires_unix as f64,
        "proxyEndpoint": render::proxy_endpoint(form, &scope.account, &scope.region),
    })
}

/// Whether `text` looks like an IAM policy document: a JSON object with
/// a `Statement` object or non-empty list of objects.
fn is_policy_document(text: &str) -> bool {
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    match doc.get("Statement") {
        Some(Value::Object(_)) => true,
        Some(Value::Array(list)) => !list.is_empty() && list.iter().all(Value::is_object),
        _ => false,
    }
}

/// A required string member, for operations that take one directly.
fn required_str<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, AwsError> {
    value.as_deref().ok_or_else(|| required(field))
}

/// Refuses a member that cannot be combined with another.
fn not_with(field: &str, other: &str) -> AwsError {
    invalid_parameter(format!(
        "Invalid parameter at '{field}' failed to satisfy constraint: '{field} cannot be used when {other} is specified'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn authorization_tokens_decode_to_aws_and_a_colon_free_password() {
        let scope = Scope {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        let form = render::UrlForm {
            style: crate::hosts::UrlStyle::Local,
            port: 4566,
        };
        let data = authorization_data(b"secret", &scope, 1_800_000_000, form);
        assert_eq!(data["expiresAt"], json!(1_800_000_000.0));
        assert_eq!(data["proxyEndpoint"], json!("http://localhost:4566"));
        let token = data["authorizationToken"].as_str().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let (user, password) = decoded.split_once(':').unwrap_or_default();
        assert_eq!(user, "AWS");
        assert!(!password.is_empty() && !password.contains(':'));
        let claims = aws_protocol::token::verify(b"secret", password, 1_700_000_000);
        assert_eq!(
            claims.map(|c| (c.account, c.region)),
            Ok(("123456789012".into(), "eu-west-1".into()))
        );
    }

    #[test]
    fn policy_documents() {
        assert!(is_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#
        ));
        assert!(is_policy_document(r#"{"Statement":{"Effect":"Deny"}}"#));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[1]}"#,
            "nope",
        ] {
            assert!(!is_policy_document(bad), "{bad}");
        }
    }

    #[test]
    fn combination_errors_name_both_members() {
        assert_eq!(
            not_with("maxResults", "imageIds").message,
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'maxResults cannot be used when imageIds is specified'"
        );
        assert_eq!(
            required_str(&None, "imageManifest").map_err(|e| e.code),
            Err("InvalidParameterException".to_string())
        );
    }
}
