//! `GET /api/security/audit/messages`: the trail of every write, secrets redacted.

use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::cluster::Node;
use crate::domain::model::AuditRecord;

use super::AppState;
use super::cluster::node_ref;
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection};
use super::query::{Schema, Type};

pub const AUDIT_SCHEMA: Schema = Schema {
    fields: &[
        ("index", Type::Integer),
        ("timestamp", Type::String),
        ("node.name", Type::String),
        ("node.uuid", Type::String),
        ("application", Type::String),
        ("location", Type::String),
        ("user", Type::String),
        ("input", Type::String),
        ("state", Type::String),
        ("scope", Type::String),
        ("message", Type::String),
        ("method", Type::String),
        ("path", Type::String),
        ("status", Type::Integer),
    ],
    expensive: &[],
    keys: &["index"],
    path_params: &[],
    // ONTAP's own example of `GET /api/security/audit/messages` shows whole records.
    collection_default: &[
        "timestamp",
        "node.name",
        "node.uuid",
        "application",
        "location",
        "user",
        "input",
        "state",
        "scope",
    ],
    arrays: &[],
};

fn audit_json(record: &AuditRecord, node: Option<&Node>) -> Value {
    let failed = record.status >= 400;
    let input = if record.input.is_empty() {
        format!("{} {}", record.method, record.path)
    } else {
        format!("{} {} : {}", record.method, record.path, record.input)
    };
    json!({
        "index": record.index,
        "timestamp": record.time,
        // The service is one host: the cluster's first node serves every request.
        "node": node.map(node_ref),
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

/// How many records are read from the store at a time.
const BATCH: usize = 1_000;

/// Reads the trail batch by batch, keeping the records that pass the query's filters, and stops
/// once the page asked for (and one more, which says whether there is a next page) is complete:
/// `max_records=1` reads one batch however long the trail is. Only an `order_by` of the
/// client's own needs every matching record, which the retention setting bounds.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &AUDIT_SCHEMA)?;
    let enough = match (query.has_order(), query.max_records) {
        (false, Some(max)) => Some(query.offset.saturating_add(max).saturating_add(1)),
        _ => None,
    };
    let node = state.service.cluster().first_node();
    let mut matching = Vec::new();
    let mut after = 0;
    loop {
        let batch = state.service.audit_records_after(after, BATCH).await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.index;
        let full_batch = batch.len() == BATCH;
        matching.extend(
            batch
                .iter()
                .map(|record| audit_json(record, node))
                .filter(|r| query.matches(r)),
        );
        if enough.is_some_and(|enough| matching.len() >= enough) || !full_batch {
            break;
        }
    }
    Ok(respond_collection(
        &query,
        matching,
        "/api/security/audit/messages",
    ))
}
