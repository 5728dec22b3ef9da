//! `/api/security`: the cluster's security configuration. GET shows FIPS mode and the TLS offer
//! to key servers; PATCH changes them (`fips.enabled`, `tls.protocol_versions`,
//! `tls.cipher_suites`), as ONTAP's `security config modify` does.

use axum::body::Bytes;
use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use kmip::TlsOffer;
use serde_json::{Value, json};

use crate::domain::security::SecurityChanges;

use super::AppState;
use super::body::Body;
use super::envelope::{empty_ok, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_instance};
use super::query::{Field, Schema, Type};

pub const SECURITY_PATH: &str = "/api/security";

pub const SECURITY_SCHEMA: Schema = Schema {
    fields: &[
        ("fips.enabled", Type::Boolean),
        ("tls.protocol_versions", Type::StringList),
        ("tls.cipher_suites", Type::StringList),
        ("tls.offload_enabled", Type::Boolean),
    ],
    expensive: &[],
    keys: &[],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

pub fn security_json(offer: &TlsOffer) -> Value {
    json!({
        "fips": { "enabled": offer.fips() },
        "tls": {
            "protocol_versions": offer.versions().iter().map(|v| v.ontap_name()).collect::<Vec<_>>(),
            "cipher_suites": offer.cipher_suites(),
            // No NIC offload here; ONTAP reports false where it is not supported.
            "offload_enabled": false,
        },
        "_links": self_link(SECURITY_PATH),
    })
}

pub async fn get(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &SECURITY_SCHEMA)?;
    Ok(respond_instance(
        &query,
        security_json(&state.service.settings.tls_offer()),
    ))
}

pub async fn modify(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let changes = changes(Body::parse(&bytes)?)?;
    if !changes.is_empty() {
        state.service.modify_security(changes).await?;
    }
    Ok(empty_ok())
}

/// What `PATCH /api/security` accepts in its body.
pub const PATCH_BODY: &[Field] = &[
    ("fips.enabled", Type::Boolean),
    ("tls.protocol_versions", Type::StringList),
    ("tls.cipher_suites", Type::StringList),
    ("tls.offload_enabled", Type::Boolean),
];

fn changes(mut body: Body) -> ApiResult<SecurityChanges> {
    body.allow_in(PATCH_BODY)?;
    let mut changes = SecurityChanges::default();
    if let Some(mut fips) = body.object("fips")? {
        fips.allow_in(PATCH_BODY)?;
        changes.fips = fips.boolean("enabled")?;
    }
    if let Some(mut tls) = body.object("tls")? {
        tls.allow_in(PATCH_BODY)?;
        changes.protocol_versions = tls.string_list("protocol_versions")?;
        changes.cipher_suites = tls.string_list("cipher_suites")?;
        if tls.boolean("offload_enabled")? == Some(true) {
            return Err(crate::domain::Error::InvalidValue {
                field: "tls.offload_enabled".into(),
                message: "TLS hardware offload is not supported: the service has no NIC to \
                          offload to."
                    .into(),
            }
            .into());
        }
    }
    Ok(changes)
}
