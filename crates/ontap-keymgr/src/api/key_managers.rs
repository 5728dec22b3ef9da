//! `/api/security/key-managers`: external and onboard key managers. The expensive `status` is
//! measured only when asked for.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::certificates::CertificateRef;
use crate::domain::key_managers::{KeyManagerChanges, NewExternal, NewKeyManager, NewOnboard};
use crate::domain::key_servers::NewKeyServer;
use crate::domain::model::{CertificateId, KeyManager, KeyManagerId, KeyManagerKind, KeyServer};
use crate::domain::versions::Reads;

use super::AppState;
use super::body::Body;
use super::certificates::{certificate_href, svm_selector};
use super::envelope::{created, empty_ok, self_link};
use super::error::ApiResult;
use super::key_servers::key_server_json;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Projection, Query, Schema, Type};
use super::response_cache::reusable;
use super::svms::svm_ref;

pub const KEY_MANAGER_SCHEMA: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("scope", Type::String),
        ("svm.name", Type::String),
        ("svm.uuid", Type::String),
        ("external.client_certificate.uuid", Type::String),
        ("external.client_certificate.name", Type::String),
        ("external.server_ca_certificates.uuid", Type::String),
        ("external.servers.server", Type::String),
        ("external.servers.timeout", Type::Integer),
        ("external.servers.username", Type::String),
        ("external.servers.secondary_key_servers", Type::String),
        ("onboard.enabled", Type::Boolean),
    ],
    expensive: &[
        ("status.code", Type::Integer),
        ("status.message", Type::String),
    ],
    keys: &["uuid"],
    path_params: &[],
    collection_default: &[],
    arrays: &["external.servers", "external.server_ca_certificates"],
};

pub fn key_manager_href(uuid: &KeyManagerId) -> String {
    format!("/api/security/key-managers/{uuid}")
}

/// A key manager as ONTAP shows it. The shape of `server_ca_certificates` items is exactly
/// `{uuid, _links}`: Ansible compares them to `{"uuid": ...}` after dropping `_links`.
/// Certificate names by uuid: a listing names two certificates per key manager, among
/// thousands.
type CertificateNames<'a> = HashMap<&'a CertificateId, &'a str>;

/// `names` is `None` when the answer does not use `external`, which is then left out: most of a
/// key manager's record, and most of the cost of listing thousands.
fn key_manager_json(key_manager: &KeyManager, names: Option<&CertificateNames>) -> Value {
    let mut record = json!({
        "uuid": key_manager.uuid,
        "scope": if key_manager.svm.is_some() { "svm" } else { "cluster" },
        "_links": self_link(&key_manager_href(&key_manager.uuid)),
    });
    if let Some(svm) = &key_manager.svm {
        record["svm"] = svm_ref(svm);
    }
    match &key_manager.kind {
        KeyManagerKind::External {
            client_certificate,
            server_ca_certificates,
            servers,
        } => {
            let Some(names) = names else {
                return record;
            };
            record["external"] = json!({
                "client_certificate": {
                    "uuid": client_certificate,
                    "name": names.get(client_certificate).copied().unwrap_or_default(),
                    "_links": self_link(&certificate_href(client_certificate)),
                },
                "server_ca_certificates": server_ca_certificates.iter().map(|uuid| json!({
                    "uuid": uuid,
                    "_links": self_link(&certificate_href(uuid)),
                })).collect::<Vec<_>>(),
                "servers": servers.iter().map(|s| embedded_server(&key_manager.uuid, s)).collect::<Vec<_>>(),
            });
        }
        KeyManagerKind::Onboard { .. } => {
            record["onboard"] = json!({ "enabled": true });
        }
    }
    record
}

/// A key server inside a key manager: `secondary_key_servers` is a comma-delimited string here
/// (an array in `/key-servers`), as in ONTAP and NetApp's client schemas.
fn embedded_server(key_manager: &KeyManagerId, server: &KeyServer) -> Value {
    let mut record = key_server_json(key_manager, server);
    if let Some(record) = record.as_object_mut() {
        if let Some(list) = record.remove("secondary_key_servers") {
            let hosts: Vec<&str> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            record.insert("secondary_key_servers".into(), hosts.join(", ").into());
        }
    }
    record
}

/// The records of `key_managers`, with what the answer uses (projected with `default` unless
/// `fields=` says otherwise).
async fn records(
    state: &AppState,
    key_managers: &[KeyManager],
    query: &Query,
    default: Projection,
) -> ApiResult<Vec<Value>> {
    let certificates = state.service.catalogue.certificates().await?;
    let names: Option<CertificateNames> = query.uses("external", default).then(|| {
        certificates
            .iter()
            .map(|c| (&c.uuid, c.name.as_str()))
            .collect()
    });
    let with_status = query.needs("status");
    let mut records = Vec::with_capacity(key_managers.len());
    for key_manager in key_managers {
        let mut record = key_manager_json(key_manager, names.as_ref());
        if with_status {
            let status = state
                .service
                .catalogue
                .key_manager_status(key_manager)
                .await?;
            record["status"] = json!({ "code": status.code, "message": status.message });
        }
        records.push(record);
    }
    Ok(records)
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_MANAGER_SCHEMA)?;
    let key_managers = state.service.catalogue.key_managers().await?;
    let records = records(&state, &key_managers, &query, Projection::Keys).await?;
    let response = respond_collection(&query, records, "/api/security/key-managers");
    Ok(reusable(response, reads(&query)))
}

/// What an answer about key managers reads: their servers' states too when it shows `status`.
fn reads(query: &Query) -> Reads {
    match query.needs("status") {
        true => Reads::ServerStates,
        false => Reads::Objects,
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_MANAGER_SCHEMA)?;
    let key_manager = state
        .service
        .catalogue
        .key_manager(&super::path_id(&uuid)?)
        .await?;
    let records = records(
        &state,
        std::slice::from_ref(&key_manager),
        &query,
        Projection::AllNormal,
    )
    .await?;
    let record = records.into_iter().next().unwrap_or_default();
    Ok(reusable(respond_instance(&query, record), reads(&query)))
}

/// What `POST /api/security/key-managers` accepts in its body.
pub const POST_BODY: &[Field] = &[
    ("svm.name", Type::String),
    ("svm.uuid", Type::String),
    ("svm._links", Type::Object),
    ("external.client_certificate.name", Type::String),
    ("external.client_certificate.uuid", Type::String),
    ("external.client_certificate._links", Type::Object),
    ("external.server_ca_certificates.name", Type::String),
    ("external.server_ca_certificates.uuid", Type::String),
    ("external.server_ca_certificates._links", Type::Object),
    ("external.servers.server", Type::String),
    ("external.servers.timeout", Type::Integer),
    ("external.servers.username", Type::String),
    ("external.servers.password", Type::String),
    ("external.servers.secondary_key_servers", Type::String),
    ("onboard.enabled", Type::Boolean),
    ("onboard.passphrase", Type::String),
    ("onboard.synchronize", Type::Boolean),
];

/// What a key manager's PATCH accepts in its body.
pub const PATCH_BODY: &[Field] = &[
    ("external.client_certificate.name", Type::String),
    ("external.client_certificate.uuid", Type::String),
    ("external.client_certificate._links", Type::Object),
    ("external.server_ca_certificates.name", Type::String),
    ("external.server_ca_certificates.uuid", Type::String),
    ("external.server_ca_certificates._links", Type::Object),
    ("onboard.passphrase", Type::String),
    ("onboard.existing_passphrase", Type::String),
    ("onboard.synchronize", Type::Boolean),
];

fn certificate_ref(mut body: Body, table: &[Field]) -> ApiResult<CertificateRef> {
    body.allow_in(table)?;
    let reference = CertificateRef {
        name: body.string("name")?,
        uuid: body.string("uuid")?,
    };
    if reference.name.is_none() && reference.uuid.is_none() {
        return Err(Error::MissingValue("uuid".into()).into());
    }
    Ok(reference)
}

fn certificate_refs(bodies: Vec<Body>, table: &[Field]) -> ApiResult<Vec<CertificateRef>> {
    bodies
        .into_iter()
        .map(|body| certificate_ref(body, table))
        .collect()
}

fn embedded_new_server(mut body: Body) -> ApiResult<NewKeyServer> {
    body.allow_in(POST_BODY)?;
    let secondaries = body.string("secondary_key_servers")?.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    Ok(NewKeyServer {
        server: body
            .string("server")?
            .ok_or_else(|| Error::MissingValue("external.servers.server".into()))?,
        timeout: body.integer("timeout")?,
        username: body.string("username")?,
        password: body.secret("password")?,
        secondary_key_servers: secondaries,
    })
}

fn new_external(mut body: Body) -> ApiResult<NewExternal> {
    body.allow_in(POST_BODY)?;
    Ok(NewExternal {
        client_certificate: body
            .object("client_certificate")?
            .map(|reference| certificate_ref(reference, POST_BODY))
            .transpose()?,
        server_ca_certificates: certificate_refs(
            body.object_list("server_ca_certificates")?
                .unwrap_or_default(),
            POST_BODY,
        )?,
        servers: body
            .object_list("servers")?
            .unwrap_or_default()
            .into_iter()
            .map(embedded_new_server)
            .collect::<ApiResult<Vec<_>>>()?,
    })
}

fn new_onboard(mut body: Body) -> ApiResult<NewOnboard> {
    body.allow_in(POST_BODY)?;
    let _ = body.boolean("enabled")?;
    // Synchronizing at creation matters for a MetroCluster partner site; here it is a no-op.
    let _ = body.boolean("synchronize")?;
    Ok(NewOnboard {
        passphrase: body.secret("passphrase")?,
    })
}

pub async fn create(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let return_records = super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(POST_BODY)?;
    let new = NewKeyManager {
        svm: body
            .object("svm")?
            .map(|svm| svm_selector(svm, POST_BODY))
            .transpose()?,
        external: body.object("external")?.map(new_external).transpose()?,
        onboard: body.object("onboard")?.map(new_onboard).transpose()?,
    };
    let key_manager = state.service.catalogue.create_key_manager(new).await?;
    let records = match return_records {
        true => {
            let everything = parse(&[], &KEY_MANAGER_SCHEMA)?;
            Some(
                records(
                    &state,
                    std::slice::from_ref(&key_manager),
                    &everything,
                    Projection::AllNormal,
                )
                .await?,
            )
        }
        false => None,
    };
    Ok(created(&key_manager_href(&key_manager.uuid), records))
}

pub async fn modify(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.refuse(&["svm", "uuid", "scope"])?;
    body.allow_in(PATCH_BODY)?;
    let mut changes = KeyManagerChanges::default();
    if let Some(mut external) = body.object("external")? {
        external.refuse(&["servers"])?;
        external.allow_in(PATCH_BODY)?;
        changes.client_certificate = external
            .object("client_certificate")?
            .map(|reference| certificate_ref(reference, PATCH_BODY))
            .transpose()?;
        changes.server_ca_certificates = external
            .object_list("server_ca_certificates")?
            .map(|references| certificate_refs(references, PATCH_BODY))
            .transpose()?;
    }
    if let Some(mut onboard) = body.object("onboard")? {
        onboard.allow_in(PATCH_BODY)?;
        changes.passphrase = onboard.secret("passphrase")?;
        changes.existing_passphrase = onboard.secret("existing_passphrase")?;
        changes.synchronize = onboard.boolean("synchronize")?.unwrap_or(false);
    }
    state
        .service
        .catalogue
        .modify_key_manager(&super::path_id(&uuid)?, changes)
        .await?;
    Ok(empty_ok())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    state
        .service
        .catalogue
        .delete_key_manager(&super::path_id(&uuid)?)
        .await?;
    Ok(empty_ok())
}
