//! Reading values out of records held as JSON, through nested objects and arrays.

use std::borrow::Cow;

use serde_json::Value;

/// The non-null values at a dotted `path`. Arrays met on the way, or at the end, are flattened:
/// `external.servers.server` gives the `server` of every element of `servers`.
pub(super) fn values_at<'a>(record: &'a Value, path: &str) -> Vec<&'a Value> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut found = Vec::new();
    collect_values(record, &segments, &mut found);
    found
}

fn collect_values<'a>(value: &'a Value, segments: &[&str], found: &mut Vec<&'a Value>) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                collect_values(item, segments, found);
            }
        }
        _ => match segments.split_first() {
            None => found.push(value),
            Some((segment, rest)) => {
                if let Some(child) = value.get(segment) {
                    collect_values(child, rest, found);
                }
            }
        },
    }
}

/// A scalar as the text a filter compares with.
pub(super) fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        _ => None,
    }
}
