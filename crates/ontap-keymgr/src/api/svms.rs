//! `/api/svm/svms`: storage VMs.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::model::{Svm, SvmId, SvmRef};

use super::AppState;
use super::body::Body;
use super::envelope::{created, empty_ok, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};

pub const SVM_SCHEMA: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("name", Type::String),
        ("state", Type::String),
        ("subtype", Type::String),
    ],
    expensive: &[],
    keys: &["uuid", "name"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

pub fn svm_href(uuid: &SvmId) -> String {
    format!("/api/svm/svms/{uuid}")
}

/// An SVM as other objects embed it.
pub fn svm_ref(svm: &SvmRef) -> Value {
    json!({ "uuid": svm.uuid, "name": svm.name, "_links": self_link(&svm_href(&svm.uuid)) })
}

fn svm_json(svm: &Svm) -> Value {
    json!({
        "uuid": svm.uuid,
        "name": svm.name,
        "state": "running",
        "subtype": "default",
        "_links": self_link(&svm_href(&svm.uuid)),
    })
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &SVM_SCHEMA)?;
    let records = state
        .service
        .catalogue
        .svms()
        .await?
        .iter()
        .map(svm_json)
        .collect();
    Ok(respond_collection(&query, records, "/api/svm/svms"))
}

pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &SVM_SCHEMA)?;
    let svm = state.service.catalogue.svm(&super::path_id(&uuid)?).await?;
    Ok(respond_instance(&query, svm_json(&svm)))
}

/// What `POST /api/svm/svms` accepts in its body.
pub const POST_BODY: &[Field] = &[("name", Type::String)];

pub async fn create(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let return_records = super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(POST_BODY)?;
    let name = body
        .string("name")?
        .ok_or_else(|| Error::MissingValue("name".into()))?;
    let svm = state.service.catalogue.create_svm(&name).await?;
    let records = return_records.then(|| vec![svm_json(&svm)]);
    Ok(created(&svm_href(&svm.uuid), records))
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
        .delete_svm(&super::path_id(&uuid)?)
        .await?;
    Ok(empty_ok())
}
