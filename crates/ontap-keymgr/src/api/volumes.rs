//! `/api/storage/volumes`, minimal: a volume's name, SVM, size and encryption, and nothing else
//! of ONTAP's volumes. Creating and deleting run as jobs, as in ONTAP: an encrypted volume's key
//! is stored on (and destroyed from) the key servers of its SVM's key manager.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::model::{Volume, VolumeId};

use super::AppState;
use super::body::Body;
use super::certificates::svm_selector;
use super::envelope::self_link;
use super::error::ApiResult;
use super::jobs::answer;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};
use super::svms::svm_ref;

pub const VOLUME_SCHEMA: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("name", Type::String),
        ("svm.name", Type::String),
        ("svm.uuid", Type::String),
        ("size", Type::Integer),
        ("encryption.enabled", Type::Boolean),
        ("encryption.key_id", Type::String),
        ("encryption.state", Type::String),
    ],
    expensive: &[],
    keys: &["uuid", "name"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

/// What `POST /api/storage/volumes` takes.
pub const POST_BODY: &[Field] = &[
    ("name", Type::String),
    ("svm.name", Type::String),
    ("svm.uuid", Type::String),
    ("svm._links", Type::Object),
    ("size", Type::Integer),
    ("encryption.enabled", Type::Boolean),
];

const VOLUMES_PATH: &str = "/api/storage/volumes";

fn volume_href(uuid: &VolumeId) -> String {
    format!("{VOLUMES_PATH}/{uuid}")
}

fn volume_json(volume: &Volume) -> Value {
    let encryption = match &volume.key {
        Some(key) => json!({ "enabled": true, "key_id": key.key_id, "state": "encrypted" }),
        None => json!({ "enabled": false, "state": "none" }),
    };
    json!({
        "uuid": volume.uuid,
        "name": volume.name,
        "svm": svm_ref(&volume.svm),
        "size": volume.size,
        "encryption": encryption,
        "_links": self_link(&volume_href(&volume.uuid)),
    })
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &VOLUME_SCHEMA)?;
    let records = state
        .service
        .volumes
        .volumes()
        .await?
        .iter()
        .map(volume_json)
        .collect();
    Ok(respond_collection(&query, records, VOLUMES_PATH))
}

pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &VOLUME_SCHEMA)?;
    let volume = state
        .service
        .volumes
        .volume(&super::path_id(&uuid)?)
        .await?;
    Ok(respond_instance(&query, volume_json(&volume)))
}

pub async fn create(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let return_timeout = super::return_timeout(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(POST_BODY)?;
    let name = body
        .string("name")?
        .ok_or_else(|| Error::MissingValue("name".into()))?;
    let svm = body
        .object("svm")?
        .map(|svm| svm_selector(svm, POST_BODY))
        .transpose()?
        .filter(|svm| svm.name.is_some() || svm.uuid.is_some())
        .ok_or_else(|| Error::MissingValue("svm".into()))?;
    let size = body.integer("size")?;
    let encrypted = match body.object("encryption")? {
        Some(mut encryption) => {
            encryption.allow_in(POST_BODY)?;
            encryption.boolean("enabled")?.unwrap_or(false)
        }
        None => false,
    };
    let (uuid, job, outcome) = state
        .service
        .create_volume(name, &svm, size, encrypted)
        .await?;
    let location = volume_href(&uuid);
    answer(
        job,
        outcome,
        return_timeout,
        StatusCode::CREATED,
        Some(&location),
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let return_timeout = super::return_timeout(&pairs)?;
    let (job, outcome) = state.service.delete_volume(&super::path_id(&uuid)?).await?;
    answer(job, outcome, return_timeout, StatusCode::OK, None).await
}
