//! ONTAP's response shapes: HAL JSON bodies, the collection envelope, `_links`, and the empty
//! object that PATCH and DELETE answer.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// ONTAP's content type.
pub const HAL_JSON: &str = "application/hal+json";

/// A JSON body with ONTAP's content type. The body starts with `{`: NetApp's Python client
/// sends anything else to its multipart decoder.
pub fn hal_json(status: StatusCode, body: &Value) -> Response {
    // `to_vec` writes straight into bytes; `to_string` would go through `fmt::Display`, which
    // cost a few percent of a listing's CPU under load. Serializing a `Value` cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    hal_json_bytes(status, bytes.into())
}

/// A body already serialized, with ONTAP's content type.
pub fn hal_json_bytes(status: StatusCode, bytes: Bytes) -> Response {
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HAL_JSON));
    response
}

pub fn ok(body: &Value) -> Response {
    hal_json(StatusCode::OK, body)
}

/// PATCH and DELETE: `200 OK` with `{}`.
pub fn empty_ok() -> Response {
    ok(&json!({}))
}

/// `{"self": {"href": ...}}`.
pub fn self_link(href: &str) -> Value {
    json!({ "self": { "href": href } })
}

/// The collection envelope; `next` is the href of the following page when records were cut.
pub fn collection(
    records: Vec<Value>,
    self_href: &str,
    next: Option<String>,
    return_records: bool,
) -> Response {
    let mut links = self_link(self_href);
    if let Some(next) = next {
        links["next"] = json!({ "href": next });
    }
    let mut body = json!({ "num_records": records.len() });
    if return_records {
        body["records"] = Value::Array(records);
    }
    body["_links"] = links;
    ok(&body)
}

/// A collection asked for with `return_records=false`: how many records match, and no record.
pub fn counted(num_records: usize, self_href: &str) -> Response {
    ok(&json!({ "num_records": num_records, "_links": self_link(self_href) }))
}

/// `201 Created` with `Location: <path>`; the body carries the new records only when asked to.
pub fn created(location: &str, records: Option<Vec<Value>>) -> Response {
    let body = match records {
        Some(records) => json!({ "num_records": records.len(), "records": records }),
        None => json!({}),
    };
    let mut response = hal_json(StatusCode::CREATED, &body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// RFC 3986's unreserved characters, the only ones a path segment or a query value keeps as
/// they are: the one encoding set of the service and its command line.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment or query value, percent-encoded as ONTAP writes keys in links (`ks1:5696` →
/// `ks1%3A5696`).
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, UNRESERVED_KEPT).to_string()
}
