//! The common path of every GET: parse ONTAP's query parameters against the resource's schema,
//! then answer a collection or an instance.

use axum::response::Response;
use serde_json::Value;

use crate::domain::Error;

use super::envelope::{collection, ok};
use super::error::ApiResult;
use super::query::{self, Projection, Query, QueryError, Schema};

/// Query parameters as they came, percent-decoded.
pub type Pairs = Vec<(String, String)>;

/// ONTAP's codes for bad query parameters.
fn query_error(error: QueryError) -> Error {
    match error {
        QueryError::UnknownField(name) => Error::UnexpectedArgument(name),
        QueryError::InvalidFieldsValue(name) => Error::InvalidFieldsValue {
            field: "fields".into(),
            value: name,
        },
        QueryError::InvalidValue { field, value } => Error::InvalidFieldsValue { field, value },
    }
}

pub fn parse(pairs: &[(String, String)], schema: &Schema) -> ApiResult<Query> {
    Ok(query::parse(pairs, schema).map_err(query_error)?)
}

/// Filters, sorts, pages and projects `records`; `_links.next` carries every original
/// parameter, because NetApp's Python client follows it without them.
pub fn respond_collection(query: &Query, records: Vec<Value>, path: &str) -> Response {
    let page = query.apply_collection(records);
    let next = page.next_offset.map(|offset| query.next_href(path, offset));
    collection(page.records, path, next, query.return_records)
}

/// An instance GET: all normal fields unless `fields` says otherwise.
pub fn respond_instance(query: &Query, record: Value) -> Response {
    ok(&query.project(record, Projection::AllNormal))
}
