//! `GET /api/security/audit/messages`: the trail of every write, secrets redacted.

use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::cluster::Node;
use crate::domain::model::AuditRecord;

use super::AppState;
use super::cluster::node_ref;
use super::envelope::counted;
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection};
use super::query::{Query, START_OFFSET, Schema, Type};
use crate::domain::Error;

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

const PATH: &str = "/api/security/audit/messages";

/// How many records are read from the store at a time.
const BATCH: usize = 1_000;

/// The most records one answer holds; a client that asks for more (or for all, by giving no
/// `max_records`) gets this many and `_links.next` for the rest, as ONTAP answers a large
/// collection it could not gather within `return_timeout`. netapp-ontap follows the link.
pub const PAGE_LIMIT: usize = 1_000;

/// How far into a sorted trail a page may start: a sorted answer keeps the best
/// `start.offset + page + 1` records while it reads the trail, so this bounds its memory.
pub const SORT_WINDOW: usize = 5 * PAGE_LIMIT;

/// Reads the trail batch by batch, keeping the records that pass the query's filters, and stops
/// once the page asked for (and one more, which says whether there is a next page) is complete:
/// `max_records=1` reads one batch however long the trail is. An `order_by` of the client's own
/// reads every batch but keeps only the best records it has seen: the window and one batch.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let mut query = parse(&pairs, &AUDIT_SCHEMA)?;
    if !query.return_records {
        return count(&state, &query).await;
    }
    let page = query.max_records.unwrap_or(PAGE_LIMIT).min(PAGE_LIMIT);
    query.max_records = Some(page);
    let window = query.offset.saturating_add(page).saturating_add(1);
    let sorted = query.has_order();
    if sorted && window > SORT_WINDOW + 1 {
        return Err(Error::InvalidValue {
            field: START_OFFSET.into(),
            message: format!(
                "A sorted audit trail is read from its first {SORT_WINDOW} matching records \
                 only: \"start.offset\" + \"max_records\" may not exceed {SORT_WINDOW}. Narrow the \
                 records with a filter (for example on \"index\" or \"timestamp\")."
            ),
        }
        .into());
    }
    let mut matching = Vec::new();
    each_match(&state, &query, |record| {
        matching.push(record);
        if sorted && matching.len() > window + BATCH {
            query.sort(&mut matching);
            matching.truncate(window);
        }
        sorted || matching.len() < window
    })
    .await?;
    Ok(respond_collection(&query, matching, PATH))
}

/// `return_records=false`: how many records match (after `start.offset`, at most
/// `max_records`), counted batch by batch without keeping any.
async fn count(state: &AppState, query: &Query) -> ApiResult<Response> {
    let mut matching = 0usize;
    each_match(state, query, |_| {
        matching += 1;
        true
    })
    .await?;
    let mut shown = matching.saturating_sub(query.offset);
    if let Some(max) = query.max_records {
        shown = shown.min(max);
    }
    Ok(counted(shown, PATH))
}

/// Reads the trail batch by batch from its start and hands `visit` each record that passes the
/// query's filters, until the trail ends or `visit` answers false.
async fn each_match(
    state: &AppState,
    query: &Query,
    mut visit: impl FnMut(Value) -> bool,
) -> ApiResult<()> {
    let node = state.service.cluster.first_node();
    let mut after = 0;
    loop {
        let batch = state.service.audit.records_after(after, BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.index;
        for record in batch.iter().map(|record| audit_json(record, node)) {
            if query.matches(&record) && !visit(record) {
                return Ok(());
            }
        }
        if batch.len() < BATCH {
            return Ok(());
        }
    }
}
