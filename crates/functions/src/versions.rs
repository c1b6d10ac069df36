//! Published versions, aliases (with weighted routing), reserved
//! concurrency, the resource policy, tags and asynchronous invocation
//! settings of a function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::FunctionRow;

use crate::model::{function_arn, is_valid_function_name, FunctionConfig, State, LATEST};
use crate::service::{FunctionError, Functions};

/// One alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub function_version: String,
    pub description: String,
    /// Additional version → weight (0.0–1.0).
    pub routing: BTreeMap<String, f64>,
    pub revision_id: String,
}

/// The fields of a CreateAlias / UpdateAlias request (absent = unchanged).
#[derive(Debug, Clone, Default)]
pub struct AliasInput {
    pub version: Option<String>,
    pub description: Option<String>,
    pub routing: Option<BTreeMap<String, f64>>,
    pub revision_id: Option<String>,
}

/// The fields of a Put/UpdateFunctionEventInvokeConfig request.
#[derive(Debug, Clone, Default)]
pub struct EventInvokeInput {
    pub retries: Option<i64>,
    pub max_age: Option<i64>,
    pub destination_config: Option<Value>,
    /// Update (keep unset fields) rather than replace.
    pub merge: bool,
}

/// `PutFunctionEventInvokeConfig` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age_s: u32,
    pub last_modified_ms: i64,
    pub destination_config: Option<Value>,
}

impl Default for EventInvokeConfig {
    fn default() -> Self {
        EventInvokeConfig {
            maximum_retry_attempts: 2,
            maximum_event_age_s: 21_600,
            last_modified_ms: 0,
            destination_config: None,
        }
    }
}

/// An alias name: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, 1–128 characters.
pub fn is_valid_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.bytes().all(|b| b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn parse<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, FunctionError> {
    serde_json::from_str(json)
        .map_err(|e| FunctionError::Internal(format!("stored document is unreadable: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<String, FunctionError> {
    serde_json::to_string(v).map_err(|e| FunctionError::Internal(e.to_string()))
}

/// Whether two configurations differ in what a published version freezes.
fn same_code_and_config(a: &FunctionConfig, b: &FunctionConfig) -> bool {
    let strip = |c: &FunctionConfig| {
        let mut c = c.clone();
        c.version = String::new();
        c.revision_id = String::new();
        c.last_modified_ms = 0;
        c.description = String::new();
        c.state = State::Active;
        c.state_reason = None;
        c.state_reason_code = None;
        c.last_update_status = None;
        c.last_update_reason = None;
        c.last_update_reason_code = None;
        c
    };
    strip(a) == strip(b)
}

impl Functions {
    pub(crate) async fn function_row(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<FunctionRow, FunctionError> {
        self.store()
            .function_get(account, region, name)
            .await?
            .ok_or_else(|| FunctionError::NotFound(function_arn(region, account, name)))
    }

    /// Publishes `$LATEST` as the next version, or returns the last
    /// version when nothing changed since it was published.
    pub async fn publish_version(
        &self,
        account: &str,
        region: &str,
        name: &str,
        description: Option<String>,
        code_sha256: Option<String>,
        revision_id: Option<String>,
    ) -> Result<FunctionConfig, FunctionError> {
        let mut row = self.function_row(account, region, name).await?;
        let latest: FunctionConfig = parse(&row.latest_json)?;
        if let Some(r) = revision_id {
            if r != latest.revision_id {
                return Err(FunctionError::PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
                ));
            }
        }
        if let Some(sha) = code_sha256 {
            if sha != latest.code_sha256 {
                return Err(FunctionError::InvalidParameter(format!(
                    "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the current CodeSHA256.",
                    latest.code_sha256
                )));
            }
        }
        if latest.state != State::Active
            || latest.last_update_status == Some(crate::UpdateStatus::InProgress)
        {
            return Err(FunctionError::Conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {}",
                latest.arn()
            )));
        }
        if let Some((_, last)) = self
            .store()
            .function_versions(&row.id, row.next_version - 2, 1)
            .await?
            .pop()
        {
            let last: FunctionConfig = parse(&last)?;
            if same_code_and_config(&last, &latest) {
                return Ok(last);
            }
        }
        let number = row.next_version;
        let mut version = latest.clone();
        version.version = number.to_string();
        version.revision_id = uuid::Uuid::new_v4().to_string();
        version.last_modified_ms = now_ms();
        if let Some(d) = description {
            version.description = d;
        }
        self.store()
            .function_publish(&row, number, &to_json(&version)?, now_ms())
            .await?;
        row.next_version = number + 1;
        Ok(version)
    }

    /// `$LATEST` followed by published versions from `marker` on.
    pub async fn list_versions(
        &self,
        account: &str,
        region: &str,
        name: &str,
        marker: Option<&str>,
        max: i64,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), FunctionError> {
        let row = self.function_row(account, region, name).await?;
        let max = max.clamp(1, 50);
        let mut out = Vec::new();
        let after = match marker {
            None => {
                out.push(parse::<FunctionConfig>(&row.latest_json)?);
                0
            }
            Some(m) => m
                .parse::<i64>()
                .map_err(|_| FunctionError::InvalidParameter(format!("Invalid marker: {m}")))?,
        };
        let left = max - out.len() as i64;
        let versions = self
            .store()
            .function_versions(&row.id, after, left + 1)
            .await?;
        let more = versions.len() as i64 > left;
        // A page that holds only `$LATEST` continues after version 0.
        let mut last = after;
        for (n, json) in versions.into_iter().take(left as usize) {
            out.push(parse(&json)?);
            last = n;
        }
        Ok((out, more.then(|| last.to_string())))
    }

    async fn check_version_exists(
        &self,
        row: &FunctionRow,
        version: &str,
    ) -> Result<(), FunctionError> {
        if version == LATEST {
            return Ok(());
        }
        let missing = || {
            FunctionError::NotFound(format!(
                "{}:{version}",
                function_arn(&row.region, &row.account, &row.name)
            ))
        };
        let n: i64 = version.parse().map_err(|_| missing())?;
        self.store()
            .function_version_get(&row.id, n)
            .await?
            .ok_or_else(missing)?;
        Ok(())
    }

    fn check_routing(
        &self,
        version: &str,
        routing: &BTreeMap<String, f64>,
    ) -> Result<(), FunctionError> {
        if routing.len() > 1 {
            return Err(FunctionError::InvalidParameter(
                "Number of items in AdditionalVersionWeights cannot be greater than 1".into(),
            ));
        }
        for (v, w) in routing {
            if !(0.0..=1.0).contains(w) {
                return Err(FunctionError::Validation(format!(
                    "1 validation error detected: Value '{w}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
                )));
            }
            if v == version {
                return Err(FunctionError::InvalidParameter(format!(
                    "Invalid function version {v}. Function version {v} is already included in routing configuration."
                )));
            }
            if version == LATEST || v == LATEST {
                return Err(FunctionError::InvalidParameter(
                    "$LATEST is not supported for an alias pointing to more than 1 version".into(),
                ));
            }
        }
        Ok(())
    }

    pub async fn create_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        alias: &str,
        input: AliasInput,
    ) -> Result<Alias, FunctionError> {
        let AliasInput {
            version,
            description,
            routing,
            ..
        } = input;
        let version = version.ok_or_else(|| {
            FunctionError::Validation(
                "1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
        let version = version.as_str();
        let routing = routing.unwrap_or_default();
        if !is_valid_alias_name(alias) {
            return Err(FunctionError::Validation(format!(
                "1 validation error detected: Value '{alias}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
            )));
        }
        let row = self.function_row(account, region, name).await?;
        self.check_version_exists(&row, version).await?;
        self.check_routing(version, &routing)?;
        for v in routing.keys() {
            self.check_version_exists(&row, v).await?;
        }
        let a = Alias {
            name: alias.to_string(),
            function_version: version.to_string(),
            description: description.unwrap_or_default(),
            routing,
            revision_id: uuid::Uuid::new_v4().to_string(),
        };
        if !self
            .store()
            .alias_put(&row.id, alias, &to_json(&a)?, true)
            .await?
        {
            return Err(FunctionError::Conflict(format!(
                "Alias already exists: {}:{alias}",
                function_arn(region, account, name)
            )));
        }
        Ok(a)
    }

    pub async fn get_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        alias: &str,
    ) -> Result<Alias, FunctionError> {
        let row = self.function_row(account, region, name).await?;
        let json = self
            .store()
            .alias_get(&row.id, alias)
            .await?
            .ok_or_else(|| {
                FunctionError::Missing(format!(
                    "Alias not found: {}:{alias}",
                    function_arn(region, account, name)
                ))
            })?;
        parse(&json)
    }

    pub async fn update_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        alias: &str,
        input: AliasInput,
    ) -> Result<Alias, FunctionError> {
        let AliasInput {
            version,
            description,
            routing,
            revision_id,
        } = input;
        let row = self.function_row(account, region, name).await?;
        let mut a = self.get_alias(account, region, name, alias).await?;
        if let Some(r) = revision_id {
            if r != a.revision_id {
                return Err(FunctionError::PreconditionFailed(
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
                ));
            }
        }
        if let Some(v) = version {
            self.check_version_exists(&row, &v).await?;
            a.function_version = v;
        }
        if let Some(d) = description {
            a.description = d;
        }
        if let Some(r) = routing {
            for v in r.keys() {
                self.check_version_exists(&row, v).await?;
            }
            a.routing = r;
        }
        self.check_routing(&a.function_version, &a.routing)?;
        a.revision_id = uuid::Uuid::new_v4().to_string();
        self.store()
            .alias_put(&row.id, alias, &to_json(&a)?, false)
            .await?;
        Ok(a)
    }

    pub async fn delete_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), FunctionError> {
        let row = self.function_row(account, region, name).await?;
        self.store().alias_delete(&row.id, alias).await?;
        Ok(())
    }

    pub async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<Alias>, FunctionError> {
        let row = self.function_row(account, region, name).await?;
        let mut out = Vec::new();
        for (_, json) in self.store().alias_list(&row.id).await? {
            let a: Alias = parse(&json)?;
            if version.is_none_or(|v| a.function_version == v) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Resolves an alias to a version: with `weighted`, the one an
    /// invocation runs (its routing configuration applied), otherwise the
    /// alias' own (what the control plane shows).
    pub(crate) async fn alias_version(
        &self,
        row: &FunctionRow,
        alias: &str,
        weighted: bool,
    ) -> Result<Option<String>, FunctionError> {
        let Some(json) = self.store().alias_get(&row.id, alias).await? else {
            return Ok(None);
        };
        let a: Alias = parse(&json)?;
        if let Some((v, w)) = a.routing.iter().next().filter(|_| weighted) {
            if rand_unit() < *w {
                return Ok(Some(v.clone()));
            }
        }
        Ok(Some(a.function_version))
    }

    /// The aliases that route to `version` (as theirs or as an additional
    /// version), by name.
    pub(crate) async fn aliases_of_version(
        &self,
        row: &FunctionRow,
        version: &str,
    ) -> Result<Vec<String>, FunctionError> {
        let mut out = Vec::new();
        for (name, json) in self.store().alias_list(&row.id).await? {
            let a: Alias = parse(&json)?;
            if a.function_version == version || a.routing.contains_key(version) {
                out.push(name);
            }
        }
        Ok(out)
    }

    pub async fn put_concurrency(
        &self,
        account: &str,
        region: &str,
        name: &str,
        reserved: i64,
    ) -> Result<i64, FunctionError> {
        let limit = self.account_concurrency() as i64;
        if reserved < 0 || reserved > limit {
            return Err(FunctionError::InvalidParameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [0]. (requested {reserved}, account limit {limit})"
            )));
        }
        let mut row = self.function_row(account, region, name).await?;
        row.reserved_concurrency = Some(reserved);
        self.store().function_update(&row).await?;
        Ok(reserved)
    }

    pub async fn delete_concurrency(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<(), FunctionError> {
        let mut row = self.function_row(account, region, name).await?;
        row.reserved_concurrency = None;
        self.store().function_update(&row).await?;
        Ok(())
    }

    /// Adds a statement to the resource policy; returns it as JSON.
    pub async fn add_permission(
        &self,
        account: &str,
        region: &str,
        name: &str,
        input: &serde_json::Map<String, Value>,
    ) -> Result<Value, FunctionError> {
        let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
        let sid = s("StatementId").ok_or_else(|| FunctionError::Validation("1 validation error detected: Value null at 'statementId' failed to satisfy constraint: Member must not be null".into()))?;
        if sid.is_empty()
            || sid.len() > 100
            || !sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(FunctionError::Validation(format!(
                "1 validation error detected: Value '{sid}' at 'statementId' failed to satisfy constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
            )));
        }
        let action = s("Action").ok_or_else(|| FunctionError::Validation("1 validation error detected: Value null at 'action' failed to satisfy constraint: Member must not be null".into()))?;
        let principal = s("Principal").ok_or_else(|| FunctionError::Validation("1 validation error detected: Value null at 'principal' failed to satisfy constraint: Member must not be null".into()))?;
        let mut row = self.function_row(account, region, name).await?;
        let mut policy: Value = match &row.policy_json {
            Some(p) => parse(p)?,
            None => json!({"Version": "2012-10-17", "Id": "default", "Statement": []}),
        };
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        if statements.iter().any(|st| st["Sid"] == json!(sid)) {
            return Err(FunctionError::Conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        let principal_json = if principal == "*" {
            json!("*")
        } else if principal.bytes().all(|b| b.is_ascii_digit()) && principal.len() == 12 {
            json!({"AWS": format!("arn:aws:iam::{principal}:root")})
        } else if principal.starts_with("arn:") {
            json!({"AWS": principal})
        } else {
            json!({"Service": principal})
        };
        let mut statement = json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": principal_json,
            "Action": action,
            "Resource": function_arn(region, account, name),
        });
        let mut condition = serde_json::Map::new();
        if let Some(arn) = s("SourceArn") {
            condition.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
        }
        let mut equals = serde_json::Map::new();
        if let Some(acct) = s("SourceAccount") {
            equals.insert("AWS:SourceAccount".into(), json!(acct));
        }
        if let Some(t) = s("FunctionUrlAuthType") {
            equals.insert("lambda:FunctionUrlAuthType".into(), json!(t));
        }
        if !equals.is_empty() {
            condition.insert("StringEquals".into(), Value::Object(equals));
        }
        if !condition.is_empty() {
            statement["Condition"] = Value::Object(condition);
        }
        let mut all = statements;
        all.push(statement.clone());
        policy["Statement"] = Value::Array(all);
        let text = policy.to_string();
        if text.len() > 20 * 1024 {
            return Err(FunctionError::InvalidParameter(
                "The final policy size is bigger than the limit (20480).".into(),
            ));
        }
        row.policy_json = Some(text);
        self.store().function_update(&row).await?;
        Ok(statement)
    }

    pub async fn remove_permission(
        &self,
        account: &str,
        region: &str,
        name: &str,
        sid: &str,
    ) -> Result<(), FunctionError> {
        let mut row = self.function_row(account, region, name).await?;
        let not_found =
            || FunctionError::Missing(format!("Statement {sid} is not found in resource policy."));
        let mut policy: Value = parse(row.policy_json.as_deref().ok_or_else(not_found)?)?;
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        let kept: Vec<Value> = statements
            .iter()
            .filter(|st| st["Sid"] != json!(sid))
            .cloned()
            .collect();
        if kept.len() == statements.len() {
            return Err(not_found());
        }
        row.policy_json = if kept.is_empty() {
            None
        } else {
            policy["Statement"] = Value::Array(kept);
            Some(policy.to_string())
        };
        self.store().function_update(&row).await?;
        Ok(())
    }

    /// The resource policy document, as a JSON string.
    pub async fn get_policy(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<String, FunctionError> {
        let row = self.function_row(account, region, name).await?;
        row.policy_json.ok_or_else(|| {
            FunctionError::Missing("The resource you requested does not exist.".into())
        })
    }

    /// Finds a function by its unqualified ARN (tag APIs).
    async fn row_by_arn(&self, arn: &str) -> Result<FunctionRow, FunctionError> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name] if is_valid_function_name(name) => {
                self.function_row(account, region, name).await
            }
            _ => Err(FunctionError::Validation(format!(
                "1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:function:[a-zA-Z0-9-_]+"
            ))),
        }
    }

    pub async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, FunctionError> {
        let row = self.row_by_arn(arn).await?;
        Ok(serde_json::from_str(&row.tags_json).unwrap_or_default())
    }

    pub async fn tag_resource(
        &self,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), FunctionError> {
        let mut row = self.row_by_arn(arn).await?;
        let mut all: BTreeMap<String, String> =
            serde_json::from_str(&row.tags_json).unwrap_or_default();
        for (k, v) in tags {
            if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
                return Err(FunctionError::InvalidParameter(format!(
                    "Tag key {k:?} or its value is not allowed"
                )));
            }
            all.insert(k, v);
        }
        if all.len() > 50 {
            return Err(FunctionError::InvalidParameter(
                "A function can have at most 50 tags".into(),
            ));
        }
        row.tags_json = to_json(&all)?;
        self.store().function_update(&row).await?;
        Ok(())
    }

    pub async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), FunctionError> {
        let mut row = self.row_by_arn(arn).await?;
        let mut all: BTreeMap<String, String> =
            serde_json::from_str(&row.tags_json).unwrap_or_default();
        for k in keys {
            all.remove(k);
        }
        row.tags_json = to_json(&all)?;
        self.store().function_update(&row).await?;
        Ok(())
    }

    /// Replaces (or with `merge`, updates) the asynchronous invocation
    /// settings.
    pub async fn put_event_invoke_config(
        &self,
        account: &str,
        region: &str,
        name: &str,
        input: EventInvokeInput,
    ) -> Result<EventInvokeConfig, FunctionError> {
        let EventInvokeInput {
            retries,
            max_age,
            destination_config,
            merge,
        } = input;
        let mut row = self.function_row(account, region, name).await?;
        let mut c = match (&row.event_invoke_json, merge) {
            (Some(j), true) => parse(j)?,
            _ => EventInvokeConfig::default(),
        };
        if let Some(r) = retries {
            if !(0..=2).contains(&r) {
                return Err(FunctionError::Validation(format!(
                    "1 validation error detected: Value '{r}' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2"
                )));
            }
            c.maximum_retry_attempts = r as u32;
        }
        if let Some(a) = max_age {
            if !(60..=21_600).contains(&a) {
                return Err(FunctionError::Validation(format!(
                    "1 validation error detected: Value '{a}' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600"
                )));
            }
            c.maximum_event_age_s = a as u32;
        }
        if destination_config.is_some() {
            c.destination_config = destination_config;
        }
        c.last_modified_ms = now_ms();
        row.event_invoke_json = Some(to_json(&c)?);
        self.store().function_update(&row).await?;
        Ok(c)
    }

    pub async fn get_event_invoke_config(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<EventInvokeConfig, FunctionError> {
        let row = self.function_row(account, region, name).await?;
        match &row.event_invoke_json {
            Some(j) => parse(j),
            None => Err(FunctionError::Missing(format!(
                "The function {} doesn't have an EventInvokeConfig",
                function_arn(region, account, name)
            ))),
        }
    }

    pub async fn delete_event_invoke_config(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<(), FunctionError> {
        let mut row = self.function_row(account, region, name).await?;
        if row.event_invoke_json.take().is_none() {
            return Err(FunctionError::Missing(format!(
                "The function {} doesn't have an EventInvokeConfig",
                function_arn(region, account, name)
            )));
        }
        self.store().function_update(&row).await?;
        Ok(())
    }
}

/// A uniform number in [0, 1) for weighted alias routing.
fn rand_unit() -> f64 {
    let n = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random-ish bits
    n as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names() {
        assert!(is_valid_alias_name("live"));
        assert!(is_valid_alias_name("v1-blue_2"));
        assert!(!is_valid_alias_name("123"));
        assert!(!is_valid_alias_name(""));
        assert!(!is_valid_alias_name("a:b"));
    }

    #[test]
    fn unit_random_is_in_range() {
        for _ in 0..1000 {
            let r = rand_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
