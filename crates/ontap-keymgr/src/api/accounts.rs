//! `/api/security/accounts`: API users and their role (`admin` or `readonly`), as ONTAP's
//! accounts endpoint names them. Passwords are write-only.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::model::{Role, User};

use super::AppState;
use super::body::Body;
use super::envelope::{created, empty_ok, encode_segment, self_link};
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};

pub const ACCOUNT_SCHEMA: Schema = Schema {
    fields: &[
        ("name", Type::String),
        ("role.name", Type::String),
        ("scope", Type::String),
        ("owner.name", Type::String),
        ("owner.uuid", Type::String),
        ("locked", Type::Boolean),
    ],
    expensive: &[],
    keys: &["name", "owner.uuid", "owner.name"],
    path_params: &[],
    collection_default: &[],
    // `applications` is an array of objects in request bodies only.
    arrays: &["applications"],
};

fn account_href(owner: &str, name: &str) -> String {
    format!("/api/security/accounts/{owner}/{}", encode_segment(name))
}

fn account_json(user: &User, cluster_uuid: &str, cluster_name: &str) -> Value {
    json!({
        "name": user.name,
        "owner": { "uuid": cluster_uuid, "name": cluster_name },
        "role": { "name": user.role.as_str() },
        "scope": "cluster",
        "locked": false,
        "_links": self_link(&account_href(cluster_uuid, &user.name)),
    })
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &ACCOUNT_SCHEMA)?;
    let cluster = &state.service.cluster;
    let records = state
        .service
        .accounts
        .users()
        .await?
        .iter()
        .map(|u| account_json(u, &cluster.uuid, &cluster.name))
        .collect();
    Ok(respond_collection(
        &query,
        records,
        "/api/security/accounts",
    ))
}

/// Accounts belong to the cluster (the admin SVM): `{owner.uuid}` must be the cluster's.
fn check_owner(state: &AppState, owner: &str) -> ApiResult<()> {
    if owner == state.service.cluster.uuid {
        Ok(())
    } else {
        Err(Error::NotFound {
            target: "owner.uuid",
        }
        .into())
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &ACCOUNT_SCHEMA)?;
    check_owner(&state, &owner)?;
    let cluster = &state.service.cluster;
    let user = state
        .service
        .accounts
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .ok_or(Error::NotFound { target: "name" })?;
    Ok(respond_instance(
        &query,
        account_json(&user, &cluster.uuid, &cluster.name),
    ))
}

/// What `POST /api/security/accounts` accepts in its body. `applications` is read as ONTAP
/// clients send it and left aside: every account here uses HTTP with a password.
pub const POST_BODY: &[Field] = &[
    ("name", Type::String),
    ("password", Type::String),
    ("role.name", Type::String),
    ("owner.name", Type::String),
    ("owner.uuid", Type::String),
    ("applications.application", Type::String),
    ("applications.authentication_methods", Type::StringList),
    ("applications.second_authentication_method", Type::String),
];
/// What an account's PATCH accepts in its body.
pub const PATCH_BODY: &[Field] = &[("password", Type::String)];

pub async fn create(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let _ = super::return_records(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    // `applications` and `owner` are accepted as ONTAP clients send them: every account here
    // uses HTTP with a password and belongs to the cluster.
    body.allow_in(POST_BODY)?;
    let name = body
        .string("name")?
        .ok_or_else(|| Error::MissingValue("name".into()))?;
    let password = body
        .secret("password")?
        .ok_or_else(|| Error::MissingValue("password".into()))?;
    let role = match body.object("role")? {
        None => Role::Readonly,
        Some(mut role) => {
            role.allow_in(POST_BODY)?;
            let role_name = role
                .string("name")?
                .ok_or_else(|| Error::MissingValue("role.name".into()))?;
            Role::parse(&role_name).ok_or_else(|| Error::InvalidValue {
                field: "role.name".into(),
                message: format!(
                    "The value \"{role_name}\" is invalid for field \"role.name\": the roles are \
                     \"admin\" and \"readonly\"."
                ),
            })?
        }
    };
    state
        .service
        .accounts
        .create_user(&name, password.expose(), role)
        .await?;
    Ok(created(
        &account_href(&state.service.cluster.uuid, &name),
        None,
    ))
}

/// `PATCH`: a new password (ONTAP's way of changing one through the API). The old password stops
/// working at once.
pub async fn modify(
    State(state): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    check_owner(&state, &owner)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(PATCH_BODY)?;
    let password = body
        .secret("password")?
        .ok_or_else(|| Error::MissingValue("password".into()))?;
    state
        .service
        .accounts
        .set_password(&name, password.expose())
        .await?;
    Ok(empty_ok())
}

pub async fn delete(
    State(state): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    check_owner(&state, &owner)?;
    state.service.accounts.delete_user(&name).await?;
    Ok(empty_ok())
}
