//! `/api/security/certificates`: installed certificates. `private_key` is write-only.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::certificates::NewCertificate;
use crate::domain::model::{Certificate, CertificateId};
use crate::domain::svms::SvmSelector;

use super::AppState;
use super::body::Body;
use super::envelope::{created, empty_ok, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};
use super::svms::svm_ref;

pub const CERTIFICATE_SCHEMA: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("name", Type::String),
        ("type", Type::String),
        ("common_name", Type::String),
        ("scope", Type::String),
        ("svm.name", Type::String),
        ("svm.uuid", Type::String),
        ("serial_number", Type::String),
        ("ca", Type::String),
        ("expiry_time", Type::String),
        ("public_certificate", Type::String),
    ],
    expensive: &[],
    keys: &["uuid", "name"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

pub fn certificate_href(uuid: &CertificateId) -> String {
    format!("/api/security/certificates/{uuid}")
}

fn certificate_json(certificate: &Certificate) -> Value {
    let mut record = json!({
        "uuid": certificate.uuid,
        "name": certificate.name,
        "type": certificate.cert_type.as_str(),
        "common_name": certificate.common_name,
        "scope": if certificate.svm.is_some() { "svm" } else { "cluster" },
        "serial_number": certificate.serial_number,
        "ca": certificate.ca,
        "expiry_time": certificate.expiry_time,
        "public_certificate": certificate.public_certificate,
        "_links": self_link(&certificate_href(&certificate.uuid)),
    });
    if let Some(svm) = &certificate.svm {
        record["svm"] = svm_ref(svm);
    }
    record
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &CERTIFICATE_SCHEMA)?;
    let records = state
        .service
        .catalogue
        .certificates()
        .await?
        .iter()
        .map(certificate_json)
        .collect();
    Ok(respond_collection(
        &query,
        records,
        "/api/security/certificates",
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &CERTIFICATE_SCHEMA)?;
    let certificate = state
        .service
        .catalogue
        .certificate(&super::path_id(&uuid)?)
        .await?;
    Ok(respond_instance(&query, certificate_json(&certificate)))
}

/// What `POST /api/security/certificates` accepts in its body.
pub const POST_BODY: &[Field] = &[
    ("type", Type::String),
    ("name", Type::String),
    ("common_name", Type::String),
    ("svm.name", Type::String),
    ("svm.uuid", Type::String),
    ("svm._links", Type::Object),
    ("public_certificate", Type::String),
    ("private_key", Type::String),
];

/// Reads `{"name"}` / `{"uuid"}` references to SVMs, as `table` allows them.
pub fn svm_selector(mut body: Body, table: &[Field]) -> ApiResult<SvmSelector> {
    body.allow_in(table)?;
    Ok(SvmSelector {
        name: body.string("name")?,
        uuid: body.string("uuid")?,
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
    // ONTAP uses `common_name` only to create a self-signed certificate; an installed one is
    // known by its own subject. Ansible's certificate module always sends it, so it is read
    // (it must be a string) and then left aside.
    body.string("common_name")?;
    let new = NewCertificate {
        cert_type: body
            .string("type")?
            .ok_or_else(|| crate::domain::Error::MissingValue("type".into()))?,
        public_certificate: body.string("public_certificate")?,
        private_key: body
            .secret("private_key")?
            .filter(|k| !k.expose().trim().is_empty()),
        name: body.string("name")?,
        svm: body
            .object("svm")?
            .map(|svm| svm_selector(svm, POST_BODY))
            .transpose()?,
    };
    let certificate = state.service.catalogue.install_certificate(new).await?;
    let records = return_records.then(|| vec![certificate_json(&certificate)]);
    Ok(created(&certificate_href(&certificate.uuid), records))
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
        .delete_certificate(&super::path_id(&uuid)?)
        .await?;
    Ok(empty_ok())
}
