//! `/api/security/key-manager-configs` (ONTAP 9.10+): the key server health monitor's polling
//! interval and ONTAP's other key manager options. GET shows them; PATCH changes them.

use axum::body::Bytes;
use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::model::KeyManagerConfig;
use crate::domain::settings::KeyManagerConfigChanges;

use super::AppState;
use super::body::Body;
use super::envelope::{empty_ok, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_instance};
use super::query::{Field, Schema, Type};

pub const KEY_MANAGER_CONFIGS_PATH: &str = "/api/security/key-manager-configs";

pub const KEY_MANAGER_CONFIG_SCHEMA: Schema = Schema {
    fields: &[
        ("health_monitor_polling_interval", Type::Integer),
        ("cloud_kms_retry_count", Type::Integer),
        ("cc_mode_enabled", Type::Boolean),
    ],
    expensive: &[],
    keys: &[],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

/// What a PATCH body may set. `passphrase` goes with `cc_mode_enabled` in ONTAP; it is accepted
/// and never stored, shown or audited.
pub const PATCH_BODY: &[Field] = &[
    ("health_monitor_polling_interval", Type::Integer),
    ("cloud_kms_retry_count", Type::Integer),
    ("cc_mode_enabled", Type::Boolean),
    ("passphrase", Type::String),
];

pub fn key_manager_config_json(config: &KeyManagerConfig) -> Value {
    json!({
        "health_monitor_polling_interval": config.health_monitor_polling_interval,
        "cloud_kms_retry_count": config.cloud_kms_retry_count,
        "cc_mode_enabled": false,
        "_links": self_link(KEY_MANAGER_CONFIGS_PATH),
    })
}

pub async fn get(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &KEY_MANAGER_CONFIG_SCHEMA)?;
    Ok(respond_instance(
        &query,
        key_manager_config_json(&state.service.settings.key_manager_config()),
    ))
}

pub async fn modify(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(PATCH_BODY)?;
    let changes = KeyManagerConfigChanges {
        health_monitor_polling_interval: body.integer("health_monitor_polling_interval")?,
        cloud_kms_retry_count: body.integer("cloud_kms_retry_count")?,
        cc_mode_enabled: body.boolean("cc_mode_enabled")?,
    };
    // Read only to be type-checked: there is no Common Criteria mode for it to unlock.
    body.secret("passphrase")?;
    state.service.modify_key_manager_config(changes).await?;
    Ok(empty_ok())
}
