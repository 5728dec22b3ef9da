//! `/api/security/key-managers/{uuid}/keys/{node.uuid}/key-ids` (ONTAP 9.11): the keys a key
//! manager holds, as a node sees them — one record per key, with the key server that keeps it.
//! Only authentication keys are made here so far.

use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::cluster::Cluster;
use crate::domain::keys::HeldKey;
use crate::domain::model::KeyManagerId;

use super::AppState;
use super::envelope::{encode_segment, self_link};
use super::error::ApiResult;
use super::key_managers::key_manager_href;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Schema, Type};

pub const KEY_ID_SCHEMA: Schema = Schema {
    fields: &[
        ("key_id", Type::String),
        ("key_tag", Type::String),
        ("key_type", Type::String),
        ("key_user", Type::String),
        ("key_store", Type::String),
        ("key_store_type", Type::String),
        ("key_manager", Type::String),
        ("key_server", Type::String),
        ("restored", Type::Boolean),
        ("encryption_algorithm", Type::String),
        ("svm.name", Type::String),
        ("svm.uuid", Type::String),
        ("node.name", Type::String),
        ("node.uuid", Type::String),
        ("security_key_manager.uuid", Type::String),
    ],
    expensive: &[],
    keys: &["key_id"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

fn key_ids_href(key_manager: &KeyManagerId, node: &str) -> String {
    format!(
        "/api/security/key-managers/{key_manager}/keys/{}/key-ids",
        encode_segment(node)
    )
}

/// One key as ONTAP's `security key-manager key query` shows it: an authentication key of the
/// cluster (the admin SVM) or a volume's key of its SVM, present on the node that made it, kept
/// by its first key server.
fn key_id_json(cluster: &Cluster, key_manager: &KeyManagerId, node: &str, key: &HeldKey) -> Value {
    let node_name = cluster
        .nodes
        .iter()
        .find(|n| n.uuid == node)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let (svm_name, svm_uuid) = match &key.svm {
        Some(svm) => (svm.name.clone(), svm.uuid.to_string()),
        None => (cluster.name.clone(), cluster.uuid.clone()),
    };
    let algorithm = match key.key_type {
        "vek" => "XTS-AES-256",
        _ => "AES-256",
    };
    json!({
        "key_id": key.key_id,
        "key_tag": key.key_tag,
        "key_type": key.key_type,
        "key_user": svm_name,
        "key_store": "external",
        "key_store_type": "kmip",
        "key_manager": key.server,
        "key_server": key.server,
        "restored": true,
        "encryption_algorithm": algorithm,
        "svm": { "name": svm_name, "uuid": svm_uuid },
        "node": { "name": node_name, "uuid": node },
        "security_key_manager": {
            "uuid": key_manager,
            "_links": self_link(&key_manager_href(key_manager)),
        },
        "_links": self_link(&format!(
            "{}/{}",
            key_ids_href(key_manager, node),
            encode_segment(&key.key_id)
        )),
    })
}

async fn held(
    state: &AppState,
    key_manager: &str,
    node: &str,
) -> ApiResult<(KeyManagerId, Vec<Value>)> {
    let key_manager: KeyManagerId = super::path_id(key_manager)?;
    let keys = state.service.keys.held_keys(&key_manager, node).await?;
    let cluster = &state.service.cluster;
    let records = keys
        .iter()
        .map(|k| key_id_json(cluster, &key_manager, node, k))
        .collect();
    Ok((key_manager, records))
}

pub async fn list(
    State(state): State<AppState>,
    Path((key_manager, node)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_ID_SCHEMA)?;
    let (key_manager, records) = held(&state, &key_manager, &node).await?;
    Ok(respond_collection(
        &query,
        records,
        &key_ids_href(&key_manager, &node),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path((key_manager, node, key_id)): Path<(String, String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_ID_SCHEMA)?;
    let (_, records) = held(&state, &key_manager, &node).await?;
    let record = records
        .into_iter()
        .find(|r| r["key_id"] == key_id.as_str())
        .ok_or(crate::domain::Error::NotFound { target: "key_id" })?;
    Ok(respond_instance(&query, record))
}
