//! HTTP and ONTAP's conventions only: routes, authentication, bodies, query parameters, the
//! response and error envelopes. Every rule lives in `domain`.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod body;
pub mod certificates;
pub mod cluster;
pub mod envelope;
pub mod error;
#[cfg(test)]
mod hostile_text_tests;
pub mod key_manager_configs;
pub mod key_managers;
pub mod key_servers;
pub mod listing;
pub mod openapi;
pub mod panics;
pub mod query;
pub mod response_cache;
pub mod security;
pub mod svms;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::domain::{Error, Service};

use error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Answers of the polled listings, served again while current.
    pub responses: Arc<response_cache::ResponseCache>,
}

/// Every route of the API, behind Basic authentication.
pub fn router(service: Arc<Service>) -> Router {
    let state = AppState {
        service,
        responses: Arc::new(response_cache::ResponseCache::new(
            response_cache::CAPACITY_BYTES,
        )),
    };
    let reusable = middleware::from_fn_with_state(state.clone(), response_cache::serve);
    let api = Router::new()
        .route("/api/cluster", get(cluster::get_cluster))
        .route("/api/cluster/nodes", get(cluster::list_nodes))
        .route("/api/svm/svms", get(svms::list).post(svms::create))
        .route("/api/svm/svms/{uuid}", get(svms::get).delete(svms::delete))
        .route(
            "/api/security/certificates",
            get(certificates::list).post(certificates::create),
        )
        .route(
            "/api/security/certificates/{uuid}",
            get(certificates::get).delete(certificates::delete),
        )
        .route(
            "/api/security/key-managers",
            get(key_managers::list.layer(reusable.clone())).post(key_managers::create),
        )
        .route(
            "/api/security/key-managers/{uuid}",
            get(key_managers::get.layer(reusable.clone()))
                .patch(key_managers::modify)
                .delete(key_managers::delete),
        )
        .route(
            "/api/security/key-managers/{uuid}/key-servers",
            get(key_servers::list.layer(reusable.clone())).post(key_servers::create),
        )
        .route(
            "/api/security/key-managers/{uuid}/key-servers/{server}",
            get(key_servers::get.layer(reusable))
                .patch(key_servers::modify)
                .delete(key_servers::delete),
        )
        .route(
            security::SECURITY_PATH,
            get(security::get).patch(security::modify),
        )
        .route(
            key_manager_configs::KEY_MANAGER_CONFIGS_PATH,
            get(key_manager_configs::get).patch(key_manager_configs::modify),
        )
        .route("/api/security/audit/messages", get(audit::list))
        .route(
            "/api/security/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/api/security/accounts/{owner}/{name}",
            get(accounts::get)
                .patch(accounts::modify)
                .delete(accounts::delete),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_path)
        .with_state(state.clone())
        // A layer, not a route layer: unknown paths and methods need credentials too.
        .layer(middleware::from_fn_with_state(state, auth::authenticate));
    // The API's description is public, as ONTAP's /docs/api is.
    let docs = Router::new().route(OPENAPI_PATH, get(openapi_json));
    let routes = docs.merge(api);
    panics::install_hook();
    // Paths are normalized before they are routed, so this wraps the routes; a panic anywhere
    // inside (authentication included) is answered.
    Router::new()
        .fallback_service(
            tower::ServiceBuilder::new()
                .map_request(collapse_slashes)
                .service(routes),
        )
        .layer(middleware::from_fn(panics::answer_panics))
}

/// ONTAP reads `/api//security` as `/api/security`, and clients send such paths (Ansible's
/// netapp.ontap joins `api/` and `/security`): repeated slashes are collapsed.
fn collapse_slashes(mut request: Request) -> Request {
    let path = request.uri().path();
    if !path.contains("//") {
        return request;
    }
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    if let Some(query) = request.uri().query() {
        collapsed.push('?');
        collapsed.push_str(query);
    }
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = collapsed.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/docs/api/openapi.json";

/// The OpenAPI document as served and as committed in `docs/openapi.json`.
pub fn openapi_text() -> &'static str {
    // Built once: it depends on the code alone.
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut text = serde_json::to_string_pretty(&openapi::document()).unwrap_or_default();
        text.push('\n');
        text
    });
    &TEXT
}

async fn openapi_json() -> Response {
    let mut response = openapi_text().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError(Error::MethodNotAllowed {
        method: request.method().to_string(),
    })
    .into_response()
}

/// ONTAP answers an unknown path segment with 404 and 262179.
async fn unknown_path(request: Request) -> Response {
    let path = request.uri().path();
    let last = path.rsplit('/').next().unwrap_or(path);
    let mut response = ApiError(Error::UnexpectedArgument(last.to_string())).into_response();
    *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    response
}

/// An identifier from a request's path; a path that holds no uuid names nothing (404).
pub fn path_id<K>(text: &str) -> ApiResult<crate::domain::ids::Id<K>> {
    crate::domain::ids::Id::parse(text).ok_or_else(|| Error::NotFound { target: "uuid" }.into())
}

/// The query parameters a write accepts: `return_records` (default false) and
/// `return_timeout` (accepted, the service always answers synchronously).
pub fn return_records(pairs: &[(String, String)]) -> ApiResult<bool> {
    let mut return_records = false;
    for (name, value) in pairs {
        match name.as_str() {
            "return_records" => {
                return_records =
                    query::params::parse_bool(value).ok_or_else(|| Error::InvalidFieldsValue {
                        field: name.clone(),
                        value: value.clone(),
                    })?;
            }
            "return_timeout" | "force" => {}
            _ => return Err(Error::UnexpectedArgument(name.clone()).into()),
        }
    }
    Ok(return_records)
}
