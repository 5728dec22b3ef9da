//! `/api/security/key-managers/{uuid}/key-servers`: the seeds. POST adds primary key servers
//! (one, or many through `records`), PATCH changes one, GET lists them with their connectivity
//! when asked, DELETE removes one.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::connectivity::ServerConnectivity;
use crate::domain::key_servers::{KeyServerChanges, NewKeyServer};
use crate::domain::model::{KeyManagerId, KeyServer};
use crate::domain::versions::Reads;

use super::AppState;
use super::body::Body;
use super::cluster::node_ref;
use super::envelope::{created, empty_ok, encode_segment, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Query, Schema, Type, names};
use super::response_cache::reusable;

pub const KEY_SERVER_SCHEMA: Schema = Schema {
    fields: &[
        ("server", Type::String),
        ("timeout", Type::Integer),
        ("username", Type::String),
        ("secondary_key_servers", Type::StringList),
    ],
    expensive: &[
        ("connectivity.cluster_availability", Type::Boolean),
        ("connectivity.node_states.node.name", Type::String),
        ("connectivity.node_states.node.uuid", Type::String),
        ("connectivity.node_states.state", Type::String),
        ("connectivity.tls_version", Type::String),
        ("connectivity.cipher_suite", Type::String),
        ("connectivity.check_time", Type::String),
    ],
    keys: &["server"],
    path_params: &[],
    collection_default: &[],
    arrays: &["connectivity.node_states", "records"],
};

/// The fields a key server takes, with their types, under each of the given prefixes. A macro
/// because the OpenAPI document needs them also under `records.`, as `'static` names.
macro_rules! key_server_fields {
    ($($prefix:literal),+) => {
        &[$(
            (concat!($prefix, "server"), Type::String),
            (concat!($prefix, "timeout"), Type::Integer),
            (concat!($prefix, "username"), Type::String),
            (concat!($prefix, "password"), Type::String),
            (concat!($prefix, "secondary_key_servers"), Type::StringList),
        )+]
    };
}

/// The fields of one key server in a POST body.
const SERVER_FIELDS: &[Field] = key_server_fields!("");
/// What a POST body may set: one key server, or several in `records`.
pub const POST_BODY: &[Field] = key_server_fields!("", "records.");
/// What a key server's PATCH accepts in its body.
pub const PATCH_BODY: &[Field] = &[
    ("timeout", Type::Integer),
    ("username", Type::String),
    ("password", Type::String),
    ("secondary_key_servers", Type::StringList),
];

pub fn key_servers_href(key_manager: &KeyManagerId) -> String {
    format!("/api/security/key-managers/{key_manager}/key-servers")
}

pub fn key_server_href(key_manager: &KeyManagerId, server: &str) -> String {
    format!(
        "{}/{}",
        key_servers_href(key_manager),
        encode_segment(server)
    )
}

pub fn key_server_json(key_manager: &KeyManagerId, server: &KeyServer) -> Value {
    let mut record = json!({
        "server": server.server.as_str(),
        "timeout": server.timeout.as_ontap(),
        "_links": self_link(&key_server_href(key_manager, server.server.as_str())),
    });
    if let Some(username) = &server.username {
        record["username"] = username.clone().into();
    }
    if !server.secondary_key_servers.is_empty() {
        record["secondary_key_servers"] = server.secondary_key_servers.clone().into();
    }
    record
}

fn connectivity_json(connectivity: &ServerConnectivity) -> Value {
    let mut record = json!({
        "cluster_availability": connectivity.cluster_availability,
        "node_states": connectivity.node_states.iter().map(|(node, state)| json!({
            "node": node_ref(node),
            "state": state.as_str(),
        })).collect::<Vec<_>>(),
    });
    // Not ONTAP's: how the last check's connection was secured, and when that check was made
    // (docs/compatibility.md).
    if let Some(tls) = &connectivity.tls {
        record["tls_version"] = tls.version.clone().into();
        record["cipher_suite"] = tls.cipher_suite.clone().into();
    }
    record["check_time"] = connectivity.check_time.as_ref().into();
    record
}

/// The records of `servers`, with `connectivity` measured only when the query needs it.
async fn records(
    state: &AppState,
    key_manager: &KeyManagerId,
    servers: &[KeyServer],
    query: &Query,
) -> ApiResult<Vec<Value>> {
    let mut records: Vec<Value> = servers
        .iter()
        .map(|s| key_server_json(key_manager, s))
        .collect();
    if query.needs("connectivity") {
        let connectivity = state.service.connectivity.of(key_manager, servers).await?;
        for (record, connectivity) in records.iter_mut().zip(&connectivity) {
            record["connectivity"] = connectivity_json(connectivity);
        }
    }
    Ok(records)
}

pub async fn list(
    State(state): State<AppState>,
    Path(key_manager): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_SERVER_SCHEMA)?;
    let key_manager = super::path_id(&key_manager)?;
    let servers = state.service.catalogue.key_servers(&key_manager).await?;
    let records = records(&state, &key_manager, &servers, &query).await?;
    let response = respond_collection(&query, records, &key_servers_href(&key_manager));
    Ok(reusable(response, reads(&query)))
}

/// What an answer about key servers reads: their checks too when it shows `connectivity`.
fn reads(query: &Query) -> Reads {
    match query.needs("connectivity") {
        true => Reads::Checks,
        false => Reads::Objects,
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path((key_manager, server)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_SERVER_SCHEMA)?;
    let key_manager = super::path_id(&key_manager)?;
    let server = state
        .service
        .catalogue
        .key_server(&key_manager, &server)
        .await?;
    let records = records(&state, &key_manager, std::slice::from_ref(&server), &query).await?;
    let record = records.into_iter().next().unwrap_or_default();
    Ok(reusable(respond_instance(&query, record), reads(&query)))
}

fn new_server(mut body: Body) -> ApiResult<NewKeyServer> {
    body.allow_in(POST_BODY)?;
    Ok(NewKeyServer {
        server: body
            .string("server")?
            .ok_or_else(|| Error::MissingValue("server".into()))?,
        timeout: body.integer("timeout")?,
        username: body.string("username")?,
        password: body.secret("password")?,
        secondary_key_servers: body.string_list("secondary_key_servers")?,
    })
}

/// One server (`server` and its settings) or several (`records`), never both.
fn requested_servers(mut body: Body) -> ApiResult<Vec<NewKeyServer>> {
    body.allow_in(POST_BODY)?;
    let Some(records) = body.object_list("records")? else {
        if !body.has("server") {
            return Err(Error::MissingValue("server".into()).into());
        }
        return Ok(vec![new_server(body)?]);
    };
    if let Some(other) = names(SERVER_FIELDS).find(|f| body.has(f)) {
        return Err(Error::ConflictingFields {
            first: "records".into(),
            second: other.into(),
        }
        .into());
    }
    if records.is_empty() {
        return Err(Error::MissingValue("records".into()).into());
    }
    records.into_iter().map(new_server).collect()
}

pub async fn create(
    State(state): State<AppState>,
    Path(key_manager): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let return_records = super::return_records(&pairs)?;
    let requested = requested_servers(Body::parse(&bytes)?)?;
    let key_manager = super::path_id(&key_manager)?;
    let added = state
        .service
        .catalogue
        .add_key_servers(&key_manager, requested)
        .await?;
    let location = added
        .first()
        .map(|s| key_server_href(&key_manager, s.server.as_str()))
        .unwrap_or_else(|| key_servers_href(&key_manager));
    let records = return_records.then(|| {
        added
            .iter()
            .map(|s| key_server_json(&key_manager, s))
            .collect()
    });
    Ok(created(&location, records))
}

pub async fn modify(
    State(state): State<AppState>,
    Path((key_manager, server)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.refuse(&["server", "records"])?;
    body.allow_in(PATCH_BODY)?;
    let changes = KeyServerChanges {
        timeout: body.integer("timeout")?,
        username: body.string("username")?,
        password: body.secret("password")?,
        secondary_key_servers: body.string_list("secondary_key_servers")?,
    };
    state
        .service
        .catalogue
        .modify_key_server(&super::path_id(&key_manager)?, &server, changes)
        .await?;
    Ok(empty_ok())
}

pub async fn delete(
    State(state): State<AppState>,
    Path((key_manager, server)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    state
        .service
        .remove_key_server(&super::path_id(&key_manager)?, &server)
        .await?;
    Ok(empty_ok())
}
