//! Lifecycle policy documents: the shape ECR accepts in
//! `PutLifecyclePolicy`. Stratus stores and returns policies; it does not
//! evaluate them (ECR itself runs them asynchronously, within a day).

use std::collections::HashSet;

use serde_json::{Map, Value};

/// Why a lifecycle policy is refused, in the words of ECR's schema
/// validator (`Lifecycle policy validation failure: …`).
pub(crate) fn validate(text: &str) -> Result<(), String> {
    let policy: Value = serde_json::from_str(text)
        .map_err(|_| "Could not map policyString into LifecyclePolicy.".to_string())?;
    let policy = policy
        .as_object()
        .ok_or_else(|| "Could not map policyString into LifecyclePolicy.".to_string())?;
    only(policy, &["rules"])?;
    let rules = match policy.get("rules") {
        Some(Value::Array(rules)) => rules,
        Some(other) => return Err(wrong_type(other, "array")),
        None => return Err(missing(&["rules"])),
    };
    if rules.is_empty() {
        return Err(
            "array is too short: must have at least 1 elements but instance has 0 elements".into(),
        );
    }
    let mut priorities = HashSet::new();
    let mut any_priority = None;
    let mut max_priority = 0;
    for rule in rules {
        let rule = rule.as_object().ok_or_else(|| wrong_type(rule, "object"))?;
        let absent: Vec<&str> = ["action", "rulePriority", "selection"]
            .into_iter()
            .filter(|k| !rule.contains_key(*k))
            .collect();
        if !absent.is_empty() {
            return Err(missing(&absent));
        }
        only(
            rule,
            &["rulePriority", "description", "selection", "action"],
        )?;
        let priority = positive_int(at(rule, "rulePriority"))?;
        if !priorities.insert(priority) {
            return Err(format!(
                "The rule priority {priority} is used by more than one rule; rulePriority must be unique"
            ));
        }
        max_priority = max_priority.max(priority);
        if let Some(d) = rule.get("description") {
            if !d.is_string() {
                return Err(wrong_type(d, "string"));
            }
        }
        if selection(at(rule, "selection"))? == "any" {
            any_priority = Some(priority);
        }
        action(at(rule, "action"))?;
    }
    if let Some(p) = any_priority {
        if p != max_priority {
            return Err(
                "The rule with tagStatus 'any' must have the highest rulePriority value".into(),
            );
        }
    }
    Ok(())
}

/// Checks a rule's `selection` and returns its tagStatus.
fn selection(v: &Value) -> Result<&str, String> {
    let s = v.as_object().ok_or_else(|| wrong_type(v, "object"))?;
    let absent: Vec<&str> = ["countNumber", "countType", "tagStatus"]
        .into_iter()
        .filter(|k| !s.contains_key(*k))
        .collect();
    if !absent.is_empty() {
        return Err(missing(&absent));
    }
    only(
        s,
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
            "storageClass",
        ],
    )?;
    let status = enum_str(at(s, "tagStatus"), &["any", "tagged", "untagged"])?;
    let prefixes = string_list(s.get("tagPrefixList"))?;
    let patterns = string_list(s.get("tagPatternList"))?;
    match status {
        "tagged" => {
            if prefixes.is_none() && patterns.is_none() {
                return Err(
                    "tagPrefixList or tagPatternList is required when tagStatus is 'tagged'".into(),
                );
            }
            if prefixes.is_some() && patterns.is_some() {
                return Err("tagPrefixList and tagPatternList cannot be used together".into());
            }
            for p in patterns.unwrap_or_default() {
                if p.matches('*').count() > 4 {
                    return Err(format!(
                        "the tag pattern '{p}' has more than 4 wildcards (*)"
                    ));
                }
            }
        }
        _ => {
            if prefixes.is_some() || patterns.is_some() {
                return Err(format!(
                    "tagPrefixList and tagPatternList can only be used when tagStatus is 'tagged', not '{status}'"
                ));
            }
        }
    }
    let count_type = enum_str(
        at(s, "countType"),
        &[
            "imageCountMoreThan",
            "sinceImagePulled",
            "sinceImagePushed",
            "sinceImageTransitioned",
        ],
    )?;
    match (count_type, s.get("countUnit")) {
        ("imageCountMoreThan", Some(_)) => {
            return Err("countUnit cannot be used when countType is 'imageCountMoreThan'".into())
        }
        ("imageCountMoreThan", None) => {}
        (_, Some(unit)) => {
            enum_str(unit, &["days"])?;
        }
        (other, None) => return Err(format!("countUnit is required when countType is '{other}'")),
    }
    positive_int(at(s, "countNumber"))?;
    Ok(status)
}

fn action(v: &Value) -> Result<(), String> {
    let a = v.as_object().ok_or_else(|| wrong_type(v, "object"))?;
    if !a.contains_key("type") {
        return Err(missing(&["type"]));
    }
    only(a, &["type", "targetStorageClass"])?;
    match enum_str(at(a, "type"), &["expire", "transition"])? {
        "transition" => match a.get("targetStorageClass") {
            Some(c) => {
                enum_str(c, &["archive"])?;
            }
            None => return Err(missing(&["targetStorageClass"])),
        },
        _ => {
            if a.contains_key("targetStorageClass") {
                return Err(
                    "targetStorageClass can only be used when the action type is 'transition'"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// A member of a JSON object, `null` when absent (callers check
/// presence first; this keeps a slip from becoming a panic).
fn at<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a Value {
    obj.get(key).unwrap_or(&Value::Null)
}

fn only(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    let mut extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    Err(format!(
        "object instance has properties which are not allowed by the schema: ({})",
        json_list(&extra)
    ))
}

fn missing(keys: &[&str]) -> String {
    format!(
        "object has missing required properties ({})",
        json_list(keys)
    )
}

fn json_list(items: &[&str]) -> String {
    Value::from(items.to_vec()).to_string()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(v: &Value, want: &str) -> String {
    format!(
        "instance type ({}) does not match any allowed primitive type (allowed: [\"{want}\"])",
        type_name(v)
    )
}

fn enum_str<'a>(v: &'a Value, allowed: &[&str]) -> Result<&'a str, String> {
    let s = v.as_str().ok_or_else(|| wrong_type(v, "string"))?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(format!(
            "instance value ({s}) not found in enum (possible values: {})",
            json_list(allowed)
        ))
    }
}

fn positive_int(v: &Value) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) if n >= 1 => Ok(n),
        Some(n) => Err(format!(
            "numeric instance is lower than the required minimum (minimum: 1, found: {n})"
        )),
        None if v.as_i64().is_some() => Err(format!(
            "numeric instance is lower than the required minimum (minimum: 1, found: {v})"
        )),
        None => Err(wrong_type(v, "integer")),
    }
}

fn string_list(v: Option<&Value>) -> Result<Option<Vec<&str>>, String> {
    let Some(v) = v else { return Ok(None) };
    let list = v.as_array().ok_or_else(|| wrong_type(v, "array"))?;
    if list.is_empty() {
        return Err(
            "array is too short: must have at least 1 elements but instance has 0 elements".into(),
        );
    }
    list.iter()
        .map(|s| s.as_str().ok_or_else(|| wrong_type(s, "string")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &str, expected: Result<(), &str>) {
        assert_eq!(validate(policy), expected.map_err(String::from), "{policy}");
    }

    #[test]
    fn accepts_the_documented_shapes() {
        check(
            r#"{"rules":[
              {"rulePriority":1,"description":"drop untagged after 7 days",
               "selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},
               "action":{"type":"expire"}},
              {"rulePriority":2,"description":"keep 20 release images",
               "selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":20},
               "action":{"type":"expire"}},
              {"rulePriority":3,
               "selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},
               "action":{"type":"expire"}}]}"#,
            Ok(()),
        );
        check(
            r#"{"rules":[{"rulePriority":5,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#,
            Ok(()),
        );
    }

    #[test]
    fn refuses_malformed_policies() {
        let cases: &[(&str, &str)] = &[
            ("not json", "Could not map policyString into LifecyclePolicy."),
            ("[]", "Could not map policyString into LifecyclePolicy."),
            ("{}", r#"object has missing required properties (["rules"])"#),
            (r#"{"rules":{}}"#, r#"instance type (object) does not match any allowed primitive type (allowed: ["array"])"#),
            (r#"{"rules":[]}"#, "array is too short: must have at least 1 elements but instance has 0 elements"),
            (r#"{"rules":[],"x":1}"#, r#"object instance has properties which are not allowed by the schema: (["x"])"#),
            (r#"{"rules":[5]}"#, r#"instance type (integer) does not match any allowed primitive type (allowed: ["object"])"#),
            (r#"{"rules":[{"rulePriority":1}]}"#, r#"object has missing required properties (["action","selection"])"#),
            (
                r#"{"rules":[{"rulePriority":0,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"some","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                r#"instance value (some) not found in enum (possible values: ["any","tagged","untagged"])"#,
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "tagPrefixList or tagPatternList is required when tagStatus is 'tagged'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "tagPrefixList and tagPatternList can only be used when tagStatus is 'tagged', not 'untagged'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*a*b*c*d*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "the tag pattern '*a*b*c*d*' has more than 4 wildcards (*)",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}"#,
                "countUnit is required when countType is 'sinceImagePushed'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#,
                "countUnit cannot be used when countType is 'imageCountMoreThan'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"delete"}}]}"#,
                r#"instance value (delete) not found in enum (possible values: ["expire","transition"])"#,
            ),
            (
                r#"{"rules":[
                  {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
                  {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#,
                "The rule priority 1 is used by more than one rule; rulePriority must be unique",
            ),
            (
                r#"{"rules":[
                  {"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
                  {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#,
                "The rule with tagStatus 'any' must have the highest rulePriority value",
            ),
        ];
        for (policy, why) in cases {
            check(policy, Err(why));
        }
    }
}
