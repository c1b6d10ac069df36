//! The CloudWatch Logs API (`Logs_20140328.*`, JSON 1.1) over the
//! [`::logs`] store of function log files: log groups and streams, reading
//! and filtering events, PutLogEvents for SDK code inside functions, and
//! retention (stored per group in the metadata store, applied on every
//! read and by a periodic sweep that deletes whole files).
//!
//! Wire shapes follow botocore's `logs/2014-03-28` model. A body that is
//! not a JSON object or has members of the wrong type is a
//! `SerializationException`; every [`LogsError`] becomes an exception in
//! one place, [`from_logs`].
//!
//! Not served: metric filters, subscriptions, Insights queries, tags,
//! KMS, data protection, live tail sessions.

use std::sync::Arc;
use std::time::Duration;

use ::logs::{
    EventToken, FilterEvents, FilterPattern, GetEvents, InputEvent, LogStore, LogsError,
    StreamInfo, StreamSelect,
};
use aws_protocol::error::AwsError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::aws::Caller;
use crate::App;

/// The `X-Amz-Target` prefix of the CloudWatch Logs API.
pub(crate) const TARGET_PREFIX: &str = "Logs_20140328.";

/// The retention values AWS accepts, in days.
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// How often the retention sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs one CloudWatch Logs operation for `caller`.
pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let api = Logs { app, caller };
    tracing::debug!(operation, request_id = %caller.request_id, "Logs operation");
    match operation {
        "DescribeLogGroups" => api.describe_log_groups(parse(body)?).await,
        "DescribeLogStreams" => api.describe_log_streams(parse(body)?).await,
        "GetLogEvents" => api.get_log_events(parse(body)?).await,
        "FilterLogEvents" => api.filter_log_events(parse(body)?).await,
        "PutRetentionPolicy" => api.put_retention_policy(parse(body)?).await,
        "DeleteRetentionPolicy" => api.delete_retention_policy(parse(body)?).await,
        "CreateLogGroup" => api.create_log_group(parse(body)?).await,
        "DeleteLogGroup" => api.delete_log_group(parse(body)?).await,
        "CreateLogStream" => api.create_log_stream(parse(body)?).await,
        "DeleteLogStream" => api.delete_log_stream(parse(body)?).await,
        "PutLogEvents" => api.put_log_events(parse(body)?).await,
        other => Err(AwsError::client(
            "UnknownOperationException",
            format!("Stratus does not serve the CloudWatch Logs operation {other:?}"),
        )),
    }
}

/// Deletes expired stream files of groups with a retention: at start and
/// every hour. Whole files only: a file goes once its newest event is
/// older than the retention (reads hide older events in the meantime).
pub(crate) fn spawn_retention_sweep(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            let rows = match app.store.log_retention_all().await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!("log retention sweep cannot read settings: {e}");
                    continue;
                }
            };
            let store = app.logs.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let now = ::logs::now_ms();
                let mut deleted = 0;
                for r in rows {
                    match store.sweep_group(
                        &r.account,
                        &r.region,
                        &r.log_group,
                        r.retention_days,
                        now,
                    ) {
                        Ok(n) => deleted += n,
                        Err(e) => tracing::warn!(group = %r.log_group, "log retention sweep: {e}"),
                    }
                }
                deleted
            })
            .await
            .unwrap_or(0);
            if swept > 0 {
                tracing::info!(
                    deleted = swept,
                    "log retention sweep deleted expired log streams"
                );
            }
        }
    })
}

// ----- errors ---------------------------------------------------------------

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidParameterException", message)
}

fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::client("SerializationException", message)
}

fn validation(value: &str, field: &str, constraint: &str) -> AwsError {
    invalid_parameter(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

fn required(field: &str) -> AwsError {
    validation("null", field, "Member must not be null")
}

/// The one mapping from the log store's errors to the wire.
fn from_logs(e: LogsError) -> AwsError {
    match e {
        LogsError::GroupNotFound | LogsError::StreamNotFound => {
            AwsError::client("ResourceNotFoundException", e.to_string())
        }
        LogsError::GroupExists | LogsError::StreamExists => {
            AwsError::client("ResourceAlreadyExistsException", e.to_string())
        }
        LogsError::InvalidParameter(m) => invalid_parameter(m),
        LogsError::Io(e) => AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceUnavailableException",
            format!("the log store failed: {e}; check the data directory's disk and permissions"),
        ),
    }
}

/// Decodes a request body into the operation's input shape.
fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, AwsError> {
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
#[serde(rename_all = "camelCase")]
struct DescribeLogGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    #[allow(dead_code)]
    interleaved: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupInput {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
    #[allow(dead_code)]
    tags: Option<Map<String, Value>>,
    #[allow(dead_code)]
    kms_key_id: Option<String>,
    log_group_class: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamInput {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct InputLogEvent {
    timestamp: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsInput {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    log_events: Option<Vec<InputLogEvent>>,
    #[allow(dead_code)]
    sequence_token: Option<String>,
}

/// `nextToken` of the Describe operations: the last key returned.
#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    #[serde(rename = "o")]
    operation: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "t", default)]
    time: Option<i64>,
}

impl ListCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(token: Option<&str>, operation: &str) -> Result<Option<ListCursor>, AwsError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<ListCursor>(&b).ok())
            .filter(|c| c.operation == operation)
            .map(Some)
            .ok_or_else(|| invalid_parameter("The specified nextToken is invalid."))
    }
}

fn describe_limit(limit: Option<i64>) -> Result<usize, AwsError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=50).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(
            &n.to_string(),
            "limit",
            "Member must have value less than or equal to 50 and greater than or equal to 1",
        )),
    }
}

fn events_limit(limit: Option<i64>) -> Result<Option<usize>, AwsError> {
    match limit {
        None => Ok(None),
        Some(n) if (1..=10_000).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(validation(
            &n.to_string(),
            "limit",
            "Member must have value less than or equal to 10000 and greater than or equal to 1",
        )),
    }
}

fn non_negative(value: Option<i64>, field: &str) -> Result<Option<i64>, AwsError> {
    match value {
        Some(v) if v < 0 => Err(validation(
            &v.to_string(),
            field,
            "Member must have value greater than or equal to 0",
        )),
        v => Ok(v),
    }
}

// ----- the API ----------------------------------------------------------------

struct Logs<'a> {
    app: &'a App,
    caller: &'a Caller,
}

impl Logs<'_> {
    fn account(&self) -> &str {
        &self.caller.account
    }

    fn region(&self) -> &str {
        &self.caller.region
    }

    fn group_arn(&self, group: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{group}",
            self.region(),
            self.account()
        )
    }

    /// Runs a log store call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogStore, &str, &str) -> Result<T, LogsError> + Send + 'static,
    ) -> Result<T, AwsError> {
        let store = self.app.logs.clone();
        let (account, region) = (self.account().to_string(), self.region().to_string());
        tokio::task::spawn_blocking(move || f(&store, &account, &region))
            .await
            .map_err(|e| {
                AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceUnavailableException",
                    format!("the log store task failed: {e}"),
                )
            })?
            .map_err(from_logs)
    }

    async fn retention(&self, group: &str) -> Result<Option<i64>, AwsError> {
        self.app
            .store
            .log_retention_get(self.account(), self.region(), group)
            .await
            .map_err(store_error)
    }

    /// The group a request names by `logGroupName` or `logGroupIdentifier`
    /// (a name or an ARN of this account and region).
    fn group_name(
        &self,
        name: Option<String>,
        identifier: Option<String>,
    ) -> Result<String, AwsError> {
        match (name, identifier) {
            (Some(_), Some(_)) => Err(invalid_parameter(
                "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.",
            )),
            (Some(n), None) => {
                ::logs::names::validate_group(&n, "logGroupName").map_err(from_logs)?;
                Ok(n)
            }
            (None, Some(id)) => {
                let name = match id.strip_prefix("arn:") {
                    Some(_) => {
                        let prefix = format!(
                            "arn:aws:logs:{}:{}:log-group:",
                            self.region(),
                            self.account()
                        );
                        let rest = id.strip_prefix(&prefix).ok_or_else(|| {
                            AwsError::client(
                                "ResourceNotFoundException",
                                "The specified log group does not exist.",
                            )
                        })?;
                        rest.strip_suffix(":*").unwrap_or(rest).to_string()
                    }
                    None => id,
                };
                ::logs::names::validate_group(&name, "logGroupIdentifier").map_err(from_logs)?;
                Ok(name)
            }
            (None, None) => Err(invalid_parameter(
                "Either LogGroupName or LogGroupIdentifier must be specified.",
            )),
        }
    }

    // ----- groups -------------------------------------------------------------

    async fn describe_log_groups(&self, input: DescribeLogGroupsInput) -> Result<Value, AwsError> {
        let limit = describe_limit(input.limit)?;
        if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
            return Err(invalid_parameter(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.",
            ));
        }
        let after = ListCursor::decode(input.next_token.as_deref(), "DescribeLogGroups")?;
        let groups = self.blocking(|s, a, r| s.list_groups(a, r)).await?;
        let retention: std::collections::HashMap<String, i64> = self
            .app
            .store
            .log_retention_all()
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|r| r.account == self.account() && r.region == self.region())
            .map(|r| (r.log_group, r.retention_days))
            .collect();
        let prefix = input.log_group_name_prefix.unwrap_or_default();
        let pattern = input.log_group_name_pattern.unwrap_or_default();
        let mut matching = groups.into_iter().filter(|g| {
            g.name.starts_with(&prefix)
                && g.name.contains(&pattern)
                && after.as_ref().is_none_or(|c| g.name > c.key)
        });
        let page: Vec<_> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        let items: Vec<Value> = page
            .iter()
            .map(|g| {
                let mut v = json!({
                    "logGroupName": g.name,
                    "creationTime": g.creation_time,
                    "metricFilterCount": 0,
                    "arn": format!("{}:*", self.group_arn(&g.name)),
                    "logGroupArn": self.group_arn(&g.name),
                    "storedBytes": 0,
                    "logGroupClass": "STANDARD",
                });
                if let Some(days) = retention.get(&g.name) {
                    v["retentionInDays"] = json!(days);
                }
                v
            })
            .collect();
        let mut out = json!({ "logGroups": items });
        if more {
            if let Some(last) = page.last() {
                out["nextToken"] = json!(ListCursor {
                    operation: "DescribeLogGroups".into(),
                    key: last.name.clone(),
                    time: None,
                }
                .encode());
            }
        }
        Ok(out)
    }

    async fn create_log_group(&self, input: GroupInput) -> Result<Value, AwsError> {
        let name = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        if let Some(class) = input.log_group_class.as_deref() {
            if !matches!(class, "STANDARD" | "INFREQUENT_ACCESS" | "DELIVERY") {
                return Err(validation(
                    class,
                    "logGroupClass",
                    "Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]",
                ));
            }
        }
        self.blocking(move |s, a, r| s.create_group(a, r, &name))
            .await?;
        Ok(json!({}))
    }

    async fn delete_log_group(&self, input: GroupInput) -> Result<Value, AwsError> {
        let name = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        ::logs::names::validate_group(&name, "logGroupName").map_err(from_logs)?;
        let n = name.clone();
        self.blocking(move |s, a, r| s.delete_group(a, r, &n))
            .await?;
        self.app
            .store
            .log_retention_set(self.account(), self.region(), &name, None)
            .await
            .map_err(store_error)?;
        Ok(json!({}))
    }

    async fn put_retention_policy(&self, input: GroupInput) -> Result<Value, AwsError> {
        let name = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        let days = input
            .retention_in_days
            .ok_or_else(|| required("retentionInDays"))?;
        if !RETENTION_DAYS.contains(&days) {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
            return Err(validation(
                &days.to_string(),
                "retentionInDays",
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            ));
        }
        self.existing_group(&name).await?;
        self.app
            .store
            .log_retention_set(self.account(), self.region(), &name, Some(days))
            .await
            .map_err(store_error)?;
        Ok(json!({}))
    }

    async fn delete_retention_policy(&self, input: GroupInput) -> Result<Value, AwsError> {
        let name = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        self.existing_group(&name).await?;
        self.app
            .store
            .log_retention_set(self.account(), self.region(), &name, None)
            .await
            .map_err(store_error)?;
        Ok(json!({}))
    }

    async fn existing_group(&self, name: &str) -> Result<(), AwsError> {
        ::logs::names::validate_group(name, "logGroupName").map_err(from_logs)?;
        let n = name.to_string();
        if self
            .blocking(move |s, a, r| s.group_exists(a, r, &n))
            .await?
        {
            Ok(())
        } else {
            Err(from_logs(LogsError::GroupNotFound))
        }
    }

    // ----- streams ------------------------------------------------------------

    async fn describe_log_streams(
        &self,
        input: DescribeLogStreamsInput,
    ) -> Result<Value, AwsError> {
        let limit = describe_limit(input.limit)?;
        let group = self.group_name(input.log_group_name, input.log_group_identifier)?;
        let by_time = match input.order_by.as_deref() {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => {
                return Err(validation(
                    other,
                    "orderBy",
                    "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
                ))
            }
        };
        if by_time && input.log_stream_name_prefix.is_some() {
            return Err(invalid_parameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = input.descending.unwrap_or(false);
        let after = ListCursor::decode(input.next_token.as_deref(), "DescribeLogStreams")?;
        let g = group.clone();
        let mut streams = self
            .blocking(move |s, a, r| s.list_streams(a, r, &g))
            .await?;
        let prefix = input.log_stream_name_prefix.unwrap_or_default();
        streams.retain(|s| s.name.starts_with(&prefix));
        let key = |s: &StreamInfo| {
            if by_time {
                (s.last_event_timestamp.unwrap_or(0), s.name.clone())
            } else {
                (0, s.name.clone())
            }
        };
        streams.sort_by_key(key);
        if descending {
            streams.reverse();
        }
        let mut matching = streams.into_iter().filter(|s| match &after {
            None => true,
            Some(c) => {
                let k = key(s);
                let ck = (c.time.unwrap_or(0), c.key.clone());
                if descending {
                    k < ck
                } else {
                    k > ck
                }
            }
        });
        let page: Vec<StreamInfo> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        let items: Vec<Value> = page
            .iter()
            .map(|s| {
                let mut v = json!({
                    "logStreamName": s.name,
                    "creationTime": s.creation_time,
                    "arn": format!("{}:log-stream:{}", self.group_arn(&group), s.name),
                    "storedBytes": 0,
                    "uploadSequenceToken": ::logs::sequence_token(s.size),
                });
                if let Some(t) = s.first_event_timestamp {
                    v["firstEventTimestamp"] = json!(t);
                }
                if let Some(t) = s.last_event_timestamp {
                    v["lastEventTimestamp"] = json!(t);
                }
                if let Some(t) = s.last_ingestion_time {
                    v["lastIngestionTime"] = json!(t);
                }
                v
            })
            .collect();
        let mut out = json!({ "logStreams": items });
        if more {
            if let Some(last) = page.last() {
                let (time, key) = key(last);
                out["nextToken"] = json!(ListCursor {
                    operation: "DescribeLogStreams".into(),
                    key,
                    time: by_time.then_some(time),
                }
                .encode());
            }
        }
        Ok(out)
    }

    async fn create_log_stream(&self, input: StreamInput) -> Result<Value, AwsError> {
        let group = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        let stream = input
            .log_stream_name
            .ok_or_else(|| required("logStreamName"))?;
        ::logs::names::validate_group(&group, "logGroupName").map_err(from_logs)?;
        self.blocking(move |s, a, r| s.create_stream(a, r, &group, &stream))
            .await?;
        Ok(json!({}))
    }

    async fn delete_log_stream(&self, input: StreamInput) -> Result<Value, AwsError> {
        let group = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        let stream = input
            .log_stream_name
            .ok_or_else(|| required("logStreamName"))?;
        ::logs::names::validate_group(&group, "logGroupName").map_err(from_logs)?;
        ::logs::names::validate_stream(&stream, "logStreamName").map_err(from_logs)?;
        self.blocking(move |s, a, r| s.delete_stream(a, r, &group, &stream))
            .await?;
        Ok(json!({}))
    }

    // ----- events -------------------------------------------------------------

    async fn get_log_events(&self, input: GetLogEventsInput) -> Result<Value, AwsError> {
        let group = self.group_name(input.log_group_name, input.log_group_identifier)?;
        let stream = input
            .log_stream_name
            .ok_or_else(|| required("logStreamName"))?;
        ::logs::names::validate_stream(&stream, "logStreamName").map_err(from_logs)?;
        let token = match input.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                EventToken::parse(t)
                    .ok_or_else(|| invalid_parameter("The specified nextToken is invalid."))?,
            ),
        };
        let retention = self.retention(&group).await?;
        let q = GetEvents {
            start_time: non_negative(input.start_time, "startTime")?,
            end_time: non_negative(input.end_time, "endTime")?,
            limit: events_limit(input.limit)?,
            start_from_head: input.start_from_head.unwrap_or(false),
            token,
            not_before: ::logs::retention_cutoff(retention, ::logs::now_ms()),
        };
        let page = self
            .blocking(move |s, a, r| s.get_events(a, r, &group, &stream, &q))
            .await?;
        let events: Vec<Value> = page
            .events
            .iter()
            .map(|e| {
                json!({
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                })
            })
            .collect();
        Ok(json!({
            "events": events,
            "nextForwardToken": page.next_forward.render(),
            "nextBackwardToken": page.next_backward.render(),
        }))
    }

    async fn filter_log_events(&self, input: FilterLogEventsInput) -> Result<Value, AwsError> {
        let group = self.group_name(input.log_group_name, input.log_group_identifier)?;
        let streams = match (input.log_stream_names, input.log_stream_name_prefix) {
            (Some(_), Some(_)) => {
                return Err(invalid_parameter(
                    "You cannot specify both LogStreamNames and LogStreamNamePrefix.",
                ))
            }
            (Some(names), None) => {
                if names.is_empty() || names.len() > 100 {
                    return Err(validation(
                        &format!("{names:?}"),
                        "logStreamNames",
                        "Member must have length less than or equal to 100 and greater than or equal to 1",
                    ));
                }
                StreamSelect::Names(names)
            }
            (None, Some(prefix)) => StreamSelect::Prefix(prefix),
            (None, None) => StreamSelect::All,
        };
        let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))
            .map_err(from_logs)?;
        let retention = self.retention(&group).await?;
        let q = FilterEvents {
            streams,
            start_time: non_negative(input.start_time, "startTime")?,
            end_time: non_negative(input.end_time, "endTime")?,
            pattern,
            limit: events_limit(input.limit)?,
            token: input.next_token,
            not_before: ::logs::retention_cutoff(retention, ::logs::now_ms()),
        };
        let page = self
            .blocking(move |s, a, r| s.filter_events(a, r, &group, &q))
            .await?;
        let events: Vec<Value> = page
            .events
            .iter()
            .map(|e| {
                json!({
                    "logStreamName": e.stream,
                    "timestamp": e.event.timestamp,
                    "message": e.event.message,
                    "ingestionTime": e.event.ingestion_time,
                    "eventId": e.event_id,
                })
            })
            .collect();
        let searched: Vec<Value> = page
            .searched
            .iter()
            .map(|(name, complete)| json!({"logStreamName": name, "searchedCompletely": complete}))
            .collect();
        let mut out = json!({ "events": events, "searchedLogStreams": searched });
        if let Some(t) = page.next_token {
            out["nextToken"] = json!(t);
        }
        Ok(out)
    }

    async fn put_log_events(&self, input: PutLogEventsInput) -> Result<Value, AwsError> {
        let group = input
            .log_group_name
            .ok_or_else(|| required("logGroupName"))?;
        let stream = input
            .log_stream_name
            .ok_or_else(|| required("logStreamName"))?;
        let raw = input.log_events.ok_or_else(|| required("logEvents"))?;
        ::logs::names::validate_group(&group, "logGroupName").map_err(from_logs)?;
        ::logs::names::validate_stream(&stream, "logStreamName").map_err(from_logs)?;
        let mut events = Vec::with_capacity(raw.len());
        for (i, e) in raw.into_iter().enumerate() {
            let field = |m: &str| format!("logEvents.{}.member.{m}", i + 1);
            events.push(InputEvent {
                timestamp: e.timestamp.ok_or_else(|| required(&field("timestamp")))?,
                message: e.message.ok_or_else(|| required(&field("message")))?,
            });
        }
        let retention = self.retention(&group).await?;
        let out = self
            .blocking(move |s, a, r| s.put_events(a, r, &group, &stream, &events, retention))
            .await?;
        let mut rejected = Map::new();
        if let Some(i) = out.too_new_start {
            rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
        }
        if let Some(i) = out.too_old_end {
            rejected.insert("tooOldLogEventEndIndex".into(), json!(i));
        }
        if let Some(i) = out.expired_end {
            rejected.insert("expiredLogEventEndIndex".into(), json!(i));
        }
        let mut v = json!({ "nextSequenceToken": out.next_sequence_token });
        if !rejected.is_empty() {
            v["rejectedLogEventsInfo"] = Value::Object(rejected);
        }
        Ok(v)
    }
}

fn store_error(e: store::StoreError) -> AwsError {
    AwsError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceUnavailableException",
        format!("the metadata store failed: {e}"),
    )
}
