//! HTTP and ONTAP's conventions only: routes, authentication, bodies, query parameters, the
//! response and error envelopes. Every rule lives in `domain`.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod auth_keys;
pub mod body;
pub mod certificates;
pub mod cluster;
pub mod envelope;
pub mod error;
#[cfg(test)]
mod hostile_text_tests;
pub mod jobs;
pub mod key_ids;
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
#[cfg(test)]
mod test_app;
pub mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};

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
    // The handler of each operation the document declares. The router is built from the
    // document's table, so an operation that is not documented is never routed; one without a
    // handler here stops the start (`tests::every_documented_operation_has_a_handler`).
    let handler = |path: &str, method: &str| -> Option<MethodRouter<AppState>> {
        use key_manager_configs::KEY_MANAGER_CONFIGS_PATH as CONFIGS;
        use security::SECURITY_PATH as SECURITY;
        Some(match (path, method) {
            ("/api/cluster", "get") => get(cluster::get_cluster),
            ("/api/cluster/nodes", "get") => get(cluster::list_nodes),
            ("/api/svm/svms", "get") => get(svms::list),
            ("/api/svm/svms", "post") => post(svms::create),
            ("/api/svm/svms/{uuid}", "get") => get(svms::get),
            ("/api/svm/svms/{uuid}", "delete") => delete(svms::delete),
            ("/api/security/certificates", "get") => get(certificates::list),
            ("/api/security/certificates", "post") => post(certificates::create),
            ("/api/security/certificates/{uuid}", "get") => get(certificates::get),
            ("/api/security/certificates/{uuid}", "delete") => delete(certificates::delete),
            ("/api/security/key-managers", "get") => {
                get(key_managers::list.layer(reusable.clone()))
            }
            ("/api/security/key-managers", "post") => post(key_managers::create),
            ("/api/security/key-managers/{uuid}", "get") => {
                get(key_managers::get.layer(reusable.clone()))
            }
            ("/api/security/key-managers/{uuid}", "patch") => patch(key_managers::modify),
            ("/api/security/key-managers/{uuid}", "delete") => delete(key_managers::delete),
            ("/api/security/key-managers/{uuid}/key-servers", "get") => {
                get(key_servers::list.layer(reusable.clone()))
            }
            ("/api/security/key-managers/{uuid}/key-servers", "post") => post(key_servers::create),
            ("/api/security/key-managers/{uuid}/key-servers/{server}", "get") => {
                get(key_servers::get.layer(reusable.clone()))
            }
            ("/api/security/key-managers/{uuid}/key-servers/{server}", "patch") => {
                patch(key_servers::modify)
            }
            ("/api/security/key-managers/{uuid}/key-servers/{server}", "delete") => {
                delete(key_servers::delete)
            }
            ("/api/security/key-managers/{uuid}/auth-keys", "get") => get(auth_keys::list),
            ("/api/security/key-managers/{uuid}/auth-keys", "post") => post(auth_keys::create),
            ("/api/security/key-managers/{uuid}/auth-keys/{key_id}", "get") => get(auth_keys::get),
            ("/api/security/key-managers/{uuid}/auth-keys/{key_id}", "delete") => {
                delete(auth_keys::delete)
            }
            ("/api/security/key-managers/{uuid}/keys/{node_uuid}/key-ids", "get") => {
                get(key_ids::list)
            }
            ("/api/security/key-managers/{uuid}/keys/{node_uuid}/key-ids/{key_id}", "get") => {
                get(key_ids::get)
            }
            ("/api/security/key-managers/{uuid}/restore", "post") => post(jobs::restore),
            ("/api/security/key-managers/{uuid}/migrate", "post") => post(jobs::migrate),
            ("/api/cluster/jobs", "get") => get(jobs::list),
            ("/api/storage/volumes", "get") => get(volumes::list),
            ("/api/storage/volumes", "post") => post(volumes::create),
            ("/api/storage/volumes/{uuid}", "get") => get(volumes::get),
            ("/api/storage/volumes/{uuid}", "delete") => delete(volumes::delete),
            ("/api/cluster/jobs/{uuid}", "get") => get(jobs::get),
            (SECURITY, "get") => get(security::get),
            (SECURITY, "patch") => patch(security::modify),
            (CONFIGS, "get") => get(key_manager_configs::get),
            (CONFIGS, "patch") => patch(key_manager_configs::modify),
            ("/api/security/audit/messages", "get") => get(audit::list),
            ("/api/security/accounts", "get") => get(accounts::list),
            ("/api/security/accounts", "post") => post(accounts::create),
            ("/api/security/accounts/{owner}/{name}", "get") => get(accounts::get),
            ("/api/security/accounts/{owner}/{name}", "patch") => patch(accounts::modify),
            ("/api/security/accounts/{owner}/{name}", "delete") => delete(accounts::delete),
            _ => return None,
        })
    };
    let mut api = Router::new();
    for path in openapi::PATHS {
        let mut methods = MethodRouter::new();
        for operation in path.operations {
            match handler(path.path, operation.method) {
                Some(route) => methods = methods.merge(route),
                None => panic!(
                    "{} {} is documented but has no handler",
                    operation.method, path.path
                ),
            }
        }
        api = api.route(path.path, methods);
    }
    let api = api
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

/// ONTAP's `return_timeout` of an asynchronous operation: 0 (the default) to 120 seconds.
pub fn return_timeout(pairs: &[(String, String)]) -> ApiResult<u64> {
    let mut seconds = 0;
    for (name, value) in pairs.iter().filter(|(name, _)| name == "return_timeout") {
        seconds = value
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= crate::domain::jobs::MAX_RETURN_TIMEOUT)
            .ok_or_else(|| Error::InvalidFieldsValue {
                field: name.clone(),
                value: value.clone(),
            })?;
    }
    Ok(seconds)
}

/// The query parameters a write accepts: `return_records` (default false) and
/// `return_timeout` (accepted; synchronous writes always answer when done, asynchronous ones
/// read it with [`return_timeout`]).
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

#[cfg(test)]
mod tests {
    use axum::body::Body as HttpBody;
    use axum::http::Request;
    use tower::ServiceExt;

    /// The router is built from the document's table: building it proves that every documented
    /// operation has a handler; each one answers anything but "unknown path" or "method not
    /// allowed", and a method the document does not list is not allowed.
    #[tokio::test]
    async fn every_documented_operation_has_a_handler() {
        let started = super::test_app::start("handler-test-password").await;
        let app = started.router;
        let send = |method: &str, uri: String| {
            Request::builder()
                .method(method)
                .uri(uri)
                .header(
                    "authorization",
                    "Basic YWRtaW46aGFuZGxlci10ZXN0LXBhc3N3b3Jk",
                )
                .body(HttpBody::from("{}"))
                .expect("request")
        };
        for path in super::openapi::PATHS {
            let uri = path
                .path
                .replace("{uuid}", "00000000-0000-4000-8000-000000000001")
                .replace("{owner}", "00000000-0000-4000-8000-000000000002")
                .replace("{name}", "nobody")
                .replace("{server}", "ks:5696");
            for operation in path.operations {
                let method = operation.method.to_ascii_uppercase();
                let answer = app.clone().oneshot(send(&method, uri.clone())).await;
                let answer = answer.expect("answer");
                let status = answer.status().as_u16();
                let body = http_body_util::BodyExt::collect(answer.into_body())
                    .await
                    .expect("body")
                    .to_bytes();
                let unknown_path = status == 404 && body.windows(8).any(|w| w == b"262179\"");
                assert!(
                    status != 405 && status != 401 && !unknown_path,
                    "{method} {uri}: {status}"
                );
            }
            let undocumented = ["GET", "POST", "PATCH", "DELETE"].into_iter().find(|m| {
                !path
                    .operations
                    .iter()
                    .any(|o| o.method.eq_ignore_ascii_case(m))
            });
            if let Some(method) = undocumented {
                let answer = app.clone().oneshot(send(method, uri.clone())).await;
                assert_eq!(answer.expect("answer").status(), 405, "{method} {uri}");
            }
        }
    }
}
