//! Request bodies of the ECR operations, as botocore's model shapes them,
//! and the validation AWS applies before an operation runs.
//!
//! Decoding follows the JSON 1.1 protocol: a body that is not a JSON
//! object, or a member of the wrong JSON type, is a
//! `SerializationException`; a missing required member or a value outside
//! the model's constraints is an `InvalidParameterException`. Unknown
//! members are ignored and `null` means absent, as in AWS.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::errors::{
    access_denied, constraint, enum_value, invalid_parameter, invalid_repository_name, required,
    serialization,
};
use aws_protocol::error::AwsError;

/// Decodes a request body into the operation's input shape.
pub(crate) fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| serialization(format!("The request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(serialization(
            "The request body must be a JSON object holding the operation's input members",
        ));
    }
    serde_json::from_value(value).map_err(|e| serialization(e.to_string()))
}

// ----- shapes ---------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagInput {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExclusionFilterInput {
    pub filter_type: Option<String>,
    pub filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScanningConfigurationInput {
    pub scan_on_push: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptionConfigurationInput {
    pub encryption_type: Option<String>,
    pub kms_key: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageIdInput {
    pub image_digest: Option<String>,
    pub image_tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageFilterInput {
    pub tag_status: Option<String>,
    pub image_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRepositoryInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub tags: Option<Vec<TagInput>>,
    pub image_tag_mutability: Option<String>,
    pub image_tag_mutability_exclusion_filters: Option<Vec<ExclusionFilterInput>>,
    pub image_scanning_configuration: Option<ScanningConfigurationInput>,
    pub encryption_configuration: Option<EncryptionConfigurationInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeRepositoriesInput {
    pub registry_id: Option<String>,
    pub repository_names: Option<Vec<String>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// Operations that only name a repository (DeleteRepository adds `force`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepositoryInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub force: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListImagesInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilterInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeImagesInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdInput>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilterInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchGetImageInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdInput>>,
    pub accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchDeleteImageInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_ids: Option<Vec<ImageIdInput>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_manifest: Option<String>,
    pub image_manifest_media_type: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetAuthorizationTokenInput {
    pub registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecyclePolicyInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub lifecycle_policy_text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RepositoryPolicyInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub policy_text: Option<String>,
    pub force: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageTagMutabilityInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_tag_mutability: Option<String>,
    pub image_tag_mutability_exclusion_filters: Option<Vec<ExclusionFilterInput>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutImageScanningConfigurationInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub image_scanning_configuration: Option<ScanningConfigurationInput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagResourceInput {
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<TagInput>>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchCheckLayerAvailabilityInput {
    pub registry_id: Option<String>,
    pub repository_name: Option<String>,
    pub layer_digests: Option<Vec<String>>,
}

// ----- validation -------------------------------------------------------------

pub(crate) fn require<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, AwsError> {
    value.as_ref().ok_or_else(|| required(field))
}

/// A required `repositoryName`: length 2–256 and the OCI name grammar.
pub(crate) fn repository_name(value: &Option<String>) -> Result<&str, AwsError> {
    let name = require(value, "repositoryName")?;
    let len = name.chars().count();
    if len < registry::names::MIN_REPOSITORY_NAME {
        return Err(constraint(
            "repositoryName",
            &format!(
                "Member must have length greater than or equal to {}",
                registry::names::MIN_REPOSITORY_NAME
            ),
        ));
    }
    if len > registry::names::MAX_REPOSITORY_NAME {
        return Err(constraint(
            "repositoryName",
            &format!(
                "Member must have length less than or equal to {}",
                registry::names::MAX_REPOSITORY_NAME
            ),
        ));
    }
    if !registry::is_valid_repository_name(name) {
        return Err(invalid_repository_name());
    }
    Ok(name)
}

/// An optional `registryId` must be a 12-digit account id and, since
/// Stratus has no cross-account policies, the caller's own account.
pub(crate) fn registry_id(value: &Option<String>, account: &str) -> Result<(), AwsError> {
    let Some(id) = value else { return Ok(()) };
    if !aws_protocol::ids::is_account_id(id) {
        return Err(constraint(
            "registryId",
            "must satisfy regular expression '[0-9]{12}'",
        ));
    }
    if id != account {
        return Err(access_denied(id, account));
    }
    Ok(())
}

/// `maxResults`: 1–1000.
pub(crate) fn max_results(value: Option<i64>) -> Result<Option<usize>, AwsError> {
    match value {
        None => Ok(None),
        Some(n) if n < 1 => Err(constraint(
            "maxResults",
            "Member must have value greater than or equal to 1",
        )),
        Some(n) if n > 1000 => Err(constraint(
            "maxResults",
            "Member must have value less than or equal to 1000",
        )),
        Some(n) => Ok(Some(n as usize)),
    }
}

/// A list member's length bounds.
pub(crate) fn list_len<T>(list: &[T], field: &str, min: usize, max: usize) -> Result<(), AwsError> {
    if list.len() < min {
        return Err(constraint(
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if list.len() > max {
        return Err(constraint(
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A string member's length bounds (in characters, as AWS counts).
pub(crate) fn str_len(value: &str, field: &str, min: usize, max: usize) -> Result<(), AwsError> {
    let len = value.chars().count();
    if len < min {
        return Err(constraint(
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(constraint(
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

pub(crate) fn one_of<'a>(
    value: &'a str,
    field: &str,
    allowed: &[&'static str],
) -> Result<&'a str, AwsError> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(enum_value(field, allowed))
    }
}

pub(crate) const TAG_MUTABILITY: [&str; 4] = [
    "MUTABLE",
    "IMMUTABLE",
    "IMMUTABLE_WITH_EXCLUSION",
    "MUTABLE_WITH_EXCLUSION",
];

/// A validated tag-mutability setting with its exclusion filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagMutability {
    pub setting: String,
    pub exclusion_filters: Vec<(String, String)>,
}

/// `imageTagMutability` (default MUTABLE) and its exclusion filters, which
/// the `*_WITH_EXCLUSION` settings need and the others refuse.
pub(crate) fn tag_mutability(
    setting: Option<&str>,
    filters: Option<&[ExclusionFilterInput]>,
) -> Result<TagMutability, AwsError> {
    let setting = one_of(
        setting.unwrap_or("MUTABLE"),
        "imageTagMutability",
        &TAG_MUTABILITY,
    )?;
    let with_exclusion = setting.ends_with("_WITH_EXCLUSION");
    let mut out = Vec::new();
    match filters {
        None if with_exclusion => {
            return Err(invalid_parameter(format!(
                "imageTagMutabilityExclusionFilters must be specified when imageTagMutability is {setting}"
            )))
        }
        None => {}
        Some(_) if !with_exclusion => {
            return Err(invalid_parameter(format!(
                "imageTagMutabilityExclusionFilters can only be specified when imageTagMutability is IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {setting}"
            )))
        }
        Some(filters) => {
            list_len(filters, "imageTagMutabilityExclusionFilters", 1, 5)?;
            for (i, f) in filters.iter().enumerate() {
                let n = i + 1;
                let kind = require(
                    &f.filter_type,
                    &format!("imageTagMutabilityExclusionFilters.{n}.member.filterType"),
                )?;
                one_of(
                    kind,
                    &format!("imageTagMutabilityExclusionFilters.{n}.member.filterType"),
                    &["WILDCARD"],
                )?;
                let field = format!("imageTagMutabilityExclusionFilters.{n}.member.filter");
                let filter = require(&f.filter, &field)?;
                str_len(filter, &field, 1, 128)?;
                if !filter
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b))
                {
                    return Err(constraint(
                        &field,
                        "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'",
                    ));
                }
                out.push((kind.clone(), filter.clone()));
            }
        }
    }
    Ok(TagMutability {
        setting: setting.to_string(),
        exclusion_filters: out,
    })
}

/// Maximum tags on one repository.
pub(crate) const MAX_TAGS: usize = 50;

/// Validates resource tags (`Key` 1–128, `Value` 0–256, no `aws:` prefix)
/// and returns them as (key, value) pairs, a repeated key keeping its last
/// value.
pub(crate) fn resource_tags(tags: &[TagInput]) -> Result<Vec<(String, String)>, AwsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let n = i + 1;
        let key = require(&t.key, &format!("tags.{n}.member.key"))?;
        let value = require(&t.value, &format!("tags.{n}.member.value"))?;
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(invalid_tag_parameter());
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::client(
                "InvalidTagParameterException",
                "The tag key prefix 'aws:' is reserved for use by AWS",
            ));
        }
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => out.push((key.clone(), value.clone())),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(out)
}

pub(crate) fn invalid_tag_parameter() -> AwsError {
    AwsError::client(
        "InvalidTagParameterException",
        "Tag keys must be 1 to 128 characters long and tag values at most 256 characters long",
    )
}

pub(crate) fn too_many_tags() -> AwsError {
    AwsError::client(
        "TooManyTagsException",
        format!("The repository would have more than {MAX_TAGS} tags"),
    )
}

/// `encryptionConfiguration` → (type, KMS key).
pub(crate) fn encryption(
    config: Option<&EncryptionConfigurationInput>,
) -> Result<(String, Option<String>), AwsError> {
    let Some(config) = config else {
        return Ok(("AES256".into(), None));
    };
    let kind = require(
        &config.encryption_type,
        "encryptionConfiguration.encryptionType",
    )?;
    let kind = one_of(
        kind,
        "encryptionConfiguration.encryptionType",
        &["AES256", "KMS", "KMS_DSSE"],
    )?;
    if let Some(key) = &config.kms_key {
        str_len(key, "encryptionConfiguration.kmsKey", 1, 2048)?;
        if kind == "AES256" {
            return Err(invalid_parameter(
                "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: 'kmsKey can only be specified when encryptionType is KMS or KMS_DSSE'",
            ));
        }
    }
    Ok((kind.to_string(), config.kms_key.clone()))
}

/// `filter.tagStatus` of ListImages and DescribeImages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// The image filter: which tag status, and whether any image can match
/// the image status (every stored image is ACTIVE).
pub(crate) fn image_filter(
    filter: Option<&ImageFilterInput>,
) -> Result<(TagStatus, bool), AwsError> {
    let Some(filter) = filter else {
        return Ok((TagStatus::Any, true));
    };
    let status = match filter.tag_status.as_deref() {
        None => TagStatus::Any,
        Some(s) => match one_of(s, "filter.tagStatus", &["TAGGED", "UNTAGGED", "ANY"])? {
            "TAGGED" => TagStatus::Tagged,
            "UNTAGGED" => TagStatus::Untagged,
            _ => TagStatus::Any,
        },
    };
    let active = match filter.image_status.as_deref() {
        None => true,
        Some(s) => matches!(
            one_of(
                s,
                "filter.imageStatus",
                &["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"]
            )?,
            "ACTIVE" | "ANY"
        ),
    };
    Ok((status, active))
}

/// Whether `s` matches AWS's image digest pattern `[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+`.
pub(crate) fn looks_like_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    !alg.is_empty()
        && !hex.is_empty()
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b))
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A repository ARN `arn:aws:ecr:{region}:{account}:repository/{name}` →
/// (region, account, name).
pub(crate) fn repository_arn(arn: &str) -> Result<(String, String, String), AwsError> {
    let invalid = || constraint("resourceArn", &format!("Invalid ARN: {arn}"));
    let parsed: aws_protocol::Arn = arn.parse().map_err(|_| invalid())?;
    if parsed.service != "ecr" || parsed.region.is_empty() || parsed.account.is_empty() {
        return Err(invalid());
    }
    let name = parsed
        .resource
        .strip_prefix("repository/")
        .ok_or_else(invalid)?;
    Ok((parsed.region, parsed.account, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_message(e: AwsError) -> (String, String) {
        (e.code, e.message)
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_serialization_errors() {
        for body in [
            &b"{not json"[..],
            b"[]",
            b"5",
            b"null",
            b"\"x\"",
            b"{\"a\":",
        ] {
            let e = parse::<CreateRepositoryInput>(body).expect_err("must fail");
            assert_eq!(e.code, "SerializationException", "{body:?}");
            assert_eq!(e.status.as_u16(), 400);
        }
        // Wrong member types, also nested.
        for body in [
            r#"{"repositoryName": 5}"#,
            r#"{"repositoryName": ["a"]}"#,
            r#"{"tags": {"Key": "a"}}"#,
            r#"{"tags": [{"Key": 1, "Value": "v"}]}"#,
            r#"{"imageScanningConfiguration": {"scanOnPush": "yes"}}"#,
        ] {
            let e = parse::<CreateRepositoryInput>(body.as_bytes()).expect_err(body);
            assert_eq!(e.code, "SerializationException", "{body}");
        }
        let e = parse::<DescribeRepositoriesInput>(br#"{"maxResults": "5"}"#).expect_err("string");
        assert_eq!(e.code, "SerializationException");
    }

    #[test]
    fn empty_bodies_nulls_and_unknown_members_are_fine() {
        let r: CreateRepositoryInput = parse(b"").expect("empty");
        assert!(r.repository_name.is_none());
        let r: CreateRepositoryInput =
            parse(br#"{"repositoryName": null, "unknownMember": [1, 2]}"#).expect("nulls");
        assert!(r.repository_name.is_none());
        let r: DescribeImagesInput = parse(
            br#"{"repositoryName":"a/b","imageIds":[{"imageTag":"v1"},{"imageDigest":"sha256:ab"}],"maxResults":7}"#,
        )
        .expect("images");
        assert_eq!(r.max_results, Some(7));
        assert_eq!(
            r.image_ids.unwrap_or_default()[1].image_digest.as_deref(),
            Some("sha256:ab")
        );
    }

    #[test]
    fn repository_names() {
        assert_eq!(
            repository_name(&Some("team/app".into())).ok(),
            Some("team/app")
        );
        let pattern = r"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*''";
        for (name, message) in [
            ("Team/App", pattern),
            ("a___b", pattern),
            ("-ab", pattern),
            ("ab/", pattern),
            ("a b", pattern),
            (
                "a",
                "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length greater than or equal to 2'",
            ),
        ] {
            let e = repository_name(&Some(name.into())).expect_err(name);
            assert_eq!(
                code_and_message(e),
                ("InvalidParameterException".into(), message.into()),
                "{name}"
            );
        }
        let e = repository_name(&Some("a".repeat(257))).expect_err("long");
        assert!(e
            .message
            .ends_with("'Member must have length less than or equal to 256'"));
        let e = repository_name(&None).expect_err("missing");
        assert_eq!(
            e.message,
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'"
        );
    }

    #[test]
    fn registry_ids_and_limits() {
        assert!(registry_id(&None, "123456789012").is_ok());
        assert!(registry_id(&Some("123456789012".into()), "123456789012").is_ok());
        assert_eq!(
            registry_id(&Some("12".into()), "123456789012").map_err(|e| e.code),
            Err("InvalidParameterException".into())
        );
        assert_eq!(
            registry_id(&Some("210987654321".into()), "123456789012").map_err(|e| e.code),
            Err("AccessDeniedException".into())
        );
        assert_eq!(max_results(Some(1000)).ok(), Some(Some(1000)));
        assert_eq!(max_results(None).ok(), Some(None));
        for bad in [0, -1, 1001] {
            assert_eq!(
                max_results(Some(bad)).map_err(|e| e.code),
                Err("InvalidParameterException".into())
            );
        }
    }

    #[test]
    fn tag_mutability_settings() {
        assert_eq!(
            tag_mutability(None, None).map(|m| m.setting),
            Ok("MUTABLE".into())
        );
        let e = tag_mutability(Some("SOMETIMES"), None).expect_err("enum");
        assert_eq!(
            e.message,
            "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'"
        );
        assert!(tag_mutability(Some("IMMUTABLE_WITH_EXCLUSION"), None).is_err());
        let filters = vec![ExclusionFilterInput {
            filter_type: Some("WILDCARD".into()),
            filter: Some("latest*".into()),
        }];
        assert_eq!(
            tag_mutability(Some("IMMUTABLE_WITH_EXCLUSION"), Some(&filters)),
            Ok(TagMutability {
                setting: "IMMUTABLE_WITH_EXCLUSION".into(),
                exclusion_filters: vec![("WILDCARD".into(), "latest*".into())],
            })
        );
        assert!(tag_mutability(Some("IMMUTABLE"), Some(&filters)).is_err());
        let bad = vec![ExclusionFilterInput {
            filter_type: Some("WILDCARD".into()),
            filter: Some("a/b".into()),
        }];
        assert!(tag_mutability(Some("MUTABLE_WITH_EXCLUSION"), Some(&bad)).is_err());
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        let tag = |k: &str, v: &str| TagInput {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        assert_eq!(
            resource_tags(&[tag("a", "1"), tag("b", ""), tag("a", "2")]),
            Ok(vec![("a".into(), "2".into()), ("b".into(), "".into())])
        );
        assert_eq!(
            resource_tags(&[tag("", "1")]).map_err(|e| e.code),
            Err("InvalidTagParameterException".into())
        );
        assert_eq!(
            resource_tags(&[tag("aws:x", "1")]).map_err(|e| e.code),
            Err("InvalidTagParameterException".into())
        );
        let many: Vec<TagInput> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            resource_tags(&many).map_err(|e| e.code),
            Err("TooManyTagsException".into())
        );
        let e = resource_tags(&[TagInput {
            key: Some("k".into()),
            value: None,
        }])
        .expect_err("value");
        assert_eq!(
            e.message,
            "Invalid parameter at 'tags.1.member.value' failed to satisfy constraint: 'Member must not be null'"
        );
    }

    #[test]
    fn filters_digests_and_arns() {
        assert_eq!(image_filter(None).ok(), Some((TagStatus::Any, true)));
        let f = ImageFilterInput {
            tag_status: Some("UNTAGGED".into()),
            image_status: Some("ARCHIVED".into()),
        };
        assert_eq!(
            image_filter(Some(&f)).ok(),
            Some((TagStatus::Untagged, false))
        );
        let f = ImageFilterInput {
            tag_status: Some("tagged".into()),
            image_status: None,
        };
        assert!(image_filter(Some(&f)).is_err());
        assert!(looks_like_digest("sha256:ABCdef01"));
        assert!(looks_like_digest("sha512+x:00"));
        for bad in [
            "invalid_digest",
            "sha256:",
            ":ab",
            "sha256:xyz",
            "sha 256:ab",
        ] {
            assert!(!looks_like_digest(bad), "{bad}");
        }
        assert_eq!(
            repository_arn("arn:aws:ecr:eu-west-1:123456789012:repository/team/app").ok(),
            Some(("eu-west-1".into(), "123456789012".into(), "team/app".into()))
        );
        for bad in [
            "arn:aws:s3:eu-west-1:123456789012:repository/x",
            "arn:aws:ecr:eu-west-1:123456789012:function/x",
            "nope",
            "arn:aws:ecr::123456789012:repository/x",
        ] {
            assert!(repository_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encryption_settings() {
        assert_eq!(encryption(None).ok(), Some(("AES256".into(), None)));
        let kms = EncryptionConfigurationInput {
            encryption_type: Some("KMS".into()),
            kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/x".into()),
        };
        assert_eq!(
            encryption(Some(&kms)).ok(),
            Some((
                "KMS".into(),
                Some("arn:aws:kms:eu-west-1:123456789012:key/x".into())
            ))
        );
        let bad = EncryptionConfigurationInput {
            encryption_type: Some("AES256".into()),
            kms_key: Some("k".into()),
        };
        assert!(encryption(Some(&bad)).is_err());
        let missing = EncryptionConfigurationInput::default();
        assert!(encryption(Some(&missing)).is_err());
    }
}
