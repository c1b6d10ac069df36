//! The rest of the Lambda control plane on the wire: versions, aliases,
//! reserved concurrency, resource policy, tags and asynchronous invocation
//! settings. Shapes as botocore's model; errors through `lambda`'s mapping.

use std::collections::BTreeMap;

use aws_protocol::error::AwsError;
use axum::response::Response;
use functions::{Alias, AliasInput, EventInvokeConfig, EventInvokeInput, FunctionConfig};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::aws::Caller;
use crate::lambda::{
    configuration_json, empty, function_error, json_response, opt_i64, opt_str, parse_object,
    query_value,
};
use crate::App;

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn not_found(method: &Method, path: &str) -> AwsError {
    AwsError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("Stratus does not serve the Lambda operation {method} {path} yet"),
    )
}

fn function_name(raw: &str) -> Result<String, AwsError> {
    let (name, _) = functions::parse_function_ref(&decode(raw)).map_err(function_error)?;
    Ok(name)
}

fn alias_json(app_region: &str, account: &str, function: &str, a: &Alias) -> Value {
    let mut v = json!({
        "AliasArn": format!("arn:aws:lambda:{app_region}:{account}:function:{function}:{}", a.name),
        "Name": a.name,
        "FunctionVersion": a.function_version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.routing.is_empty() {
        v["RoutingConfig"] = json!({"AdditionalVersionWeights": a.routing});
    }
    v
}

fn routing(o: &Map<String, Value>) -> Result<Option<BTreeMap<String, f64>>, AwsError> {
    match o.get("RoutingConfig") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(r)) => match r.get("AdditionalVersionWeights") {
            None | Some(Value::Null) => Ok(Some(BTreeMap::new())),
            Some(Value::Object(w)) => w
                .iter()
                .map(|(k, v)| {
                    v.as_f64().map(|f| (k.clone(), f)).ok_or_else(|| {
                        crate::lambda::bad_body("AdditionalVersionWeights values must be numbers")
                    })
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(_) => Err(crate::lambda::bad_body(
                "AdditionalVersionWeights must be a map",
            )),
        },
        Some(_) => Err(crate::lambda::bad_body("RoutingConfig must be an object")),
    }
}

fn alias_input(o: &Map<String, Value>) -> Result<AliasInput, AwsError> {
    Ok(AliasInput {
        version: opt_str(o, "FunctionVersion")?,
        description: opt_str(o, "Description")?,
        routing: routing(o)?,
        revision_id: opt_str(o, "RevisionId")?,
    })
}

fn event_config_json(
    region: &str,
    account: &str,
    function: &str,
    qualifier: &str,
    c: &EventInvokeConfig,
) -> Value {
    let mut v = json!({
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "FunctionArn": format!("arn:aws:lambda:{region}:{account}:function:{function}:{qualifier}"),
        "MaximumRetryAttempts": c.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": c.maximum_event_age_s,
    });
    if let Some(d) = &c.destination_config {
        v["DestinationConfig"] = d.clone();
    }
    v
}

fn versions_json(list: &[FunctionConfig]) -> Vec<Value> {
    list.iter().map(|c| configuration_json(c, true)).collect()
}

/// Serves a Lambda path that `lambda::handle` did not route.
pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response, AwsError> {
    let rid = caller.request_id.as_str();
    let f = &app.functions;
    let (acct, region) = (caller.account.as_str(), caller.region.as_str());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["2015-03-31", "functions", name, "versions"] => {
            let name = function_name(name)?;
            match *method {
                Method::POST => {
                    let o = parse_object(body)?;
                    let c = f
                        .publish_version(
                            acct,
                            region,
                            &name,
                            opt_str(&o, "Description")?,
                            opt_str(&o, "CodeSha256")?,
                            opt_str(&o, "RevisionId")?,
                        )
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        &configuration_json(&c, true),
                        rid,
                    ))
                }
                Method::GET => {
                    let max = crate::lambda::max_items(query)?;
                    let marker = query_value(query, "Marker").filter(|m| !m.is_empty());
                    let (list, next) = f
                        .list_versions(acct, region, &name, marker.as_deref(), max)
                        .await
                        .map_err(function_error)?;
                    let mut v = json!({"Versions": versions_json(&list)});
                    if let Some(n) = next {
                        v["NextMarker"] = json!(n);
                    }
                    Ok(json_response(StatusCode::OK, &v, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        ["2015-03-31", "functions", name, "aliases"] => {
            let name = function_name(name)?;
            match *method {
                Method::POST => {
                    let o = parse_object(body)?;
                    let alias = opt_str(&o, "Name")?.unwrap_or_default();
                    let a = f
                        .create_alias(acct, region, &name, &alias, alias_input(&o)?)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        &alias_json(region, acct, &name, &a),
                        rid,
                    ))
                }
                Method::GET => {
                    let version = query_value(query, "FunctionVersion");
                    let max = crate::lambda::max_items(query)?;
                    // Aliases come sorted by name; the marker is the last
                    // name of the previous page.
                    let marker = query_value(query, "Marker").filter(|m| !m.is_empty());
                    let list = f
                        .list_aliases(acct, region, &name, version.as_deref())
                        .await
                        .map_err(function_error)?;
                    let mut rest = list
                        .iter()
                        .filter(|a| marker.as_deref().is_none_or(|m| a.name.as_str() > m))
                        .peekable();
                    let page: Vec<_> = rest.by_ref().take(max as usize).collect();
                    let mut v = json!({"Aliases": page.iter().map(|a| alias_json(region, acct, &name, a)).collect::<Vec<_>>()});
                    if rest.peek().is_some() {
                        if let Some(last) = page.last() {
                            v["NextMarker"] = json!(last.name);
                        }
                    }
                    Ok(json_response(StatusCode::OK, &v, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        ["2015-03-31", "functions", name, "aliases", alias] => {
            let name = function_name(name)?;
            let alias = decode(alias);
            match *method {
                Method::GET => {
                    let a = f
                        .get_alias(acct, region, &name, &alias)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &alias_json(region, acct, &name, &a),
                        rid,
                    ))
                }
                Method::PUT => {
                    let o = parse_object(body)?;
                    let a = f
                        .update_alias(acct, region, &name, &alias, alias_input(&o)?)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &alias_json(region, acct, &name, &a),
                        rid,
                    ))
                }
                Method::DELETE => {
                    f.delete_alias(acct, region, &name, &alias)
                        .await
                        .map_err(function_error)?;
                    Ok(empty(StatusCode::NO_CONTENT, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        [date @ ("2017-10-31" | "2019-09-30"), "functions", name, "concurrency"] => {
            let name = function_name(name)?;
            match (method, *date) {
                (&Method::PUT, "2017-10-31") => {
                    let o = parse_object(body)?;
                    let n = opt_i64(&o, "ReservedConcurrentExecutions")?.ok_or_else(|| {
                        AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
                    })?;
                    let n = f
                        .put_concurrency(acct, region, &name, n)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({"ReservedConcurrentExecutions": n}),
                        rid,
                    ))
                }
                (&Method::DELETE, "2017-10-31") => {
                    f.delete_concurrency(acct, region, &name)
                        .await
                        .map_err(function_error)?;
                    Ok(empty(StatusCode::NO_CONTENT, rid))
                }
                (&Method::GET, "2019-09-30") => {
                    let (_, _, reserved) = f
                        .get(acct, region, &name, None)
                        .await
                        .map_err(function_error)?;
                    let v = match reserved {
                        Some(n) => json!({"ReservedConcurrentExecutions": n}),
                        None => json!({}),
                    };
                    Ok(json_response(StatusCode::OK, &v, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        ["2015-03-31", "functions", name, "policy"] => {
            let name = function_name(name)?;
            match *method {
                Method::POST => {
                    let o = parse_object(body)?;
                    let statement = f
                        .add_permission(acct, region, &name, &o)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"Statement": statement.to_string()}),
                        rid,
                    ))
                }
                Method::GET => {
                    let policy = f
                        .get_policy(acct, region, &name)
                        .await
                        .map_err(function_error)?;
                    let (c, _, _) = f
                        .get(acct, region, &name, None)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({"Policy": policy, "RevisionId": c.revision_id}),
                        rid,
                    ))
                }
                _ => Err(not_found(method, path)),
            }
        }
        ["2015-03-31", "functions", name, "policy", sid] if *method == Method::DELETE => {
            let name = function_name(name)?;
            f.remove_permission(acct, region, &name, &decode(sid))
                .await
                .map_err(function_error)?;
            Ok(empty(StatusCode::NO_CONTENT, rid))
        }
        ["2017-03-31", "tags", arn] => {
            let arn = decode(arn);
            match *method {
                Method::GET => {
                    let tags = f.list_tags(&arn).await.map_err(function_error)?;
                    Ok(json_response(StatusCode::OK, &json!({"Tags": tags}), rid))
                }
                Method::POST => {
                    let o = parse_object(body)?;
                    let tags =
                        crate::lambda::string_map(o.get("Tags"), "Tags")?.unwrap_or_default();
                    f.tag_resource(&arn, tags).await.map_err(function_error)?;
                    Ok(empty(StatusCode::NO_CONTENT, rid))
                }
                Method::DELETE => {
                    let keys: Vec<String> = query
                        .map(|q| {
                            url::form_urlencoded::parse(q.as_bytes())
                                .filter(|(k, _)| k == "tagKeys")
                                .map(|(_, v)| v.into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    f.untag_resource(&arn, &keys)
                        .await
                        .map_err(function_error)?;
                    Ok(empty(StatusCode::NO_CONTENT, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        ["2019-09-25", "functions", name, "event-invoke-config"] => {
            let name = function_name(name)?;
            let qualifier = query_value(query, "Qualifier").unwrap_or_else(|| "$LATEST".into());
            match *method {
                Method::PUT | Method::POST => {
                    let o = parse_object(body)?;
                    let input = EventInvokeInput {
                        retries: opt_i64(&o, "MaximumRetryAttempts")?,
                        max_age: opt_i64(&o, "MaximumEventAgeInSeconds")?,
                        destination_config: o
                            .get("DestinationConfig")
                            .filter(|v| !v.is_null())
                            .cloned(),
                        merge: *method == Method::POST,
                    };
                    let c = f
                        .put_event_invoke_config(acct, region, &name, input)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &event_config_json(region, acct, &name, &qualifier, &c),
                        rid,
                    ))
                }
                Method::GET => {
                    let c = f
                        .get_event_invoke_config(acct, region, &name)
                        .await
                        .map_err(function_error)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &event_config_json(region, acct, &name, &qualifier, &c),
                        rid,
                    ))
                }
                Method::DELETE => {
                    f.delete_event_invoke_config(acct, region, &name)
                        .await
                        .map_err(function_error)?;
                    Ok(empty(StatusCode::NO_CONTENT, rid))
                }
                _ => Err(not_found(method, path)),
            }
        }
        _ => Err(not_found(method, path)),
    }
}
