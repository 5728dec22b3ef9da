//! `/api/security/key-managers/{uuid}/auth-keys` (ONTAP 9.12+): NSE authentication keys of the
//! cluster's external key manager. POST makes one and stores it on every key server, GET lists
//! them or shows one, DELETE destroys it on every server. The passphrase is never returned.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::keys::NewAuthKey;
use crate::domain::model::{AuthKey, KeyManagerId};

use super::AppState;
use super::body::Body;
use super::envelope::{created, empty_ok, encode_segment, self_link};
use super::error::ApiResult;
use super::key_managers::key_manager_href;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};

pub const AUTH_KEY_SCHEMA: Schema = Schema {
    fields: &[
        ("key_id", Type::String),
        ("key_tag", Type::String),
        ("security_key_manager.uuid", Type::String),
    ],
    expensive: &[],
    keys: &["key_id"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

/// What a POST body may set; `security_key_manager.uuid` is the path's (netapp-ontap sends it).
pub const POST_BODY: &[Field] = &[
    ("key_tag", Type::String),
    ("passphrase", Type::String),
    ("security_key_manager.uuid", Type::String),
];

pub fn auth_keys_href(key_manager: &KeyManagerId) -> String {
    format!("/api/security/key-managers/{key_manager}/auth-keys")
}

fn auth_key_href(key: &AuthKey) -> String {
    format!(
        "{}/{}",
        auth_keys_href(&key.key_manager),
        encode_segment(&key.key_id)
    )
}

fn auth_key_json(key: &AuthKey) -> Value {
    json!({
        "key_id": key.key_id,
        "key_tag": key.key_tag,
        "security_key_manager": {
            "uuid": key.key_manager,
            "_links": self_link(&key_manager_href(&key.key_manager)),
        },
        "_links": self_link(&auth_key_href(key)),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Path(key_manager): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &AUTH_KEY_SCHEMA)?;
    let key_manager = super::path_id(&key_manager)?;
    let records = state
        .service
        .keys
        .auth_keys(&key_manager)
        .await?
        .iter()
        .map(auth_key_json)
        .collect();
    Ok(respond_collection(
        &query,
        records,
        &auth_keys_href(&key_manager),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path((key_manager, key_id)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &AUTH_KEY_SCHEMA)?;
    let key_manager = super::path_id(&key_manager)?;
    let key = state.service.keys.auth_key(&key_manager, &key_id).await?;
    Ok(respond_instance(&query, auth_key_json(&key)))
}

pub async fn create(
    State(state): State<AppState>,
    Path(key_manager): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let return_records = super::return_records(&pairs)?;
    let key_manager: KeyManagerId = super::path_id(&key_manager)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(POST_BODY)?;
    if let Some(named) = body.string("security_key_manager.uuid")?
        && named != key_manager.as_str()
    {
        return Err(Error::InvalidValue {
            field: "security_key_manager.uuid".into(),
            message: "The key manager of the body is not the one of the path.".into(),
        }
        .into());
    }
    let new = NewAuthKey {
        key_tag: body.string("key_tag")?,
        passphrase: body.secret("passphrase")?,
    };
    let key = state
        .service
        .keys
        .create_auth_key(&key_manager, new)
        .await?;
    let records = return_records.then(|| vec![auth_key_json(&key)]);
    Ok(created(&auth_key_href(&key), records))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((key_manager, key_id)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    state
        .service
        .keys
        .delete_auth_key(&super::path_id(&key_manager)?, &key_id)
        .await?;
    Ok(empty_ok())
}
