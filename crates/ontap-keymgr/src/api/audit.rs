//! `GET /api/security/audit/messages`: the trail of every write, secrets redacted.

use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::model::AuditRecord;

use super::AppState;
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection};
use super::query::Schema;

pub const AUDIT_SCHEMA: Schema = Schema {
    fields: &[
        "index",
        "timestamp",
        "application",
        "location",
        "user",
        "input",
        "state",
        "scope",
        "message",
        "method",
        "path",
        "status",
    ],
    expensive: &[],
    keys: &["index"],
    path_params: &[],
};

fn audit_json(record: &AuditRecord) -> Value {
    let failed = record.status >= 400;
    let input = if record.input.is_empty() {
        format!("{} {}", record.method, record.path)
    } else {
        format!("{} {} : {}", record.method, record.path, record.input)
    };
    json!({
        "index": record.index,
        "timestamp": record.time,
        "application": "http",
        // ONTAP's name for where the request came from.
        "location": record.address.clone().unwrap_or_default(),
        "user": record.user,
        "input": input,
        "state": if failed { "error" } else { "success" },
        "scope": "cluster",
        "message": record.error_code.clone().unwrap_or_default(),
        "method": record.method,
        "path": record.path,
        "status": record.status,
    })
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &AUDIT_SCHEMA)?;
    let records = state
        .service
        .audit_records()
        .await?
        .iter()
        .map(audit_json)
        .collect();
    Ok(respond_collection(
        &query,
        records,
        "/api/security/audit/messages",
    ))
}
