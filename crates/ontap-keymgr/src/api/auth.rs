//! HTTP Basic authentication on every `/api` request, the readonly role, and the audit trail of
//! every write, every refused write and every failed login.

use axum::body::Body as HttpBody;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use std::net::IpAddr;

use crate::domain::Error;
use crate::domain::audit::{AuditEntry, is_secret_name};
use crate::domain::login::LoginRefusal;
use crate::domain::model::Role;

use super::AppState;
use super::body;
use super::error::{ApiError, ErrorCode};

/// The client's address, put in each request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = request.extensions().get::<ClientAddress>().map(|a| a.0);
    let Some((name, password)) = basic_credentials(&request) else {
        let refusal = ApiError(Error::Unauthenticated).into_response();
        return after_body(request, refusal).await;
    };
    let role = match state.service.authenticate(&name, &password, address).await {
        Ok(role) => role,
        Err(failure) => {
            // Throttled and busy refusals verify nothing: recording them would let anyone
            // fill the trail.
            let recorded = matches!(
                failure.refusal,
                LoginRefusal::UnknownUser | LoginRefusal::WrongPassword | LoginRefusal::Locked
            );
            let refusal = match recorded {
                false => ApiError(failure.error).into_response(),
                true => {
                    let described = method_and_path(&request);
                    refused(&state, &name, described, address, failure.error).await
                }
            };
            return after_body(request, refusal).await;
        }
    };
    if let Some(parameter) = secret_query_parameter(&request) {
        // A secret in a URL ends up in proxies' and clients' logs: refused, whatever it is.
        let error = Error::UnexpectedArgument(parameter);
        let refusal = refused(&state, &name, method_and_path(&request), address, error).await;
        return after_body(request, refusal).await;
    }
    let method = request.method().clone();
    if role == Role::Readonly && !is_read(&method) {
        let error = Error::PermissionDenied {
            role: role.as_str().into(),
            method: method.to_string(),
        };
        let refusal = refused(&state, &name, method_and_path(&request), address, error).await;
        return after_body(request, refusal).await;
    }
    if is_read(&method) {
        return next.run(request).await;
    }
    audited(state, name, address, request, next).await
}

/// A refusal answered before the request's body was read: a body of allowed size is read
/// first, because a connection whose request body is left unread is closed after the answer,
/// and the client's next request on it would fail without an answer. A larger one is not read
/// at all: the refusal closes the connection.
async fn after_body(request: Request, mut refusal: Response) -> Response {
    if is_read(request.method()) {
        return refusal;
    }
    let fits = !body::announced_too_large(request.headers())
        && body::read(request.into_body()).await.is_ok();
    if !fits {
        refusal.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    refusal
}

/// Runs a write and records it: who, what, with which input (secrets redacted), and how it ended.
async fn audited(
    state: AppState,
    user: String,
    address: Option<IpAddr>,
    request: Request,
    next: Next,
) -> Response {
    let described = method_and_path(&request);
    if let Err(error) = body::check_transfer_coding(request.headers()) {
        return refused(&state, &user, described, address, error).await;
    }
    if body::announced_too_large(request.headers()) {
        let error = Error::BodyTooLarge(body::MAX_BODY_BYTES);
        return refused(&state, &user, described, address, error).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match body::read(body).await {
        Ok(bytes) => bytes,
        Err(error) => return refused(&state, &user, described, address, error).await,
    };
    let input: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let request = Request::from_parts(parts, HttpBody::from(bytes));
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let entry = |status, error_code| AuditEntry {
        user: &user,
        method: method.as_str(),
        path: uri.path_and_query().map(|p| p.as_str()).unwrap_or_default(),
        input: input.as_ref(),
        status,
        error_code,
        address: address.map(|a| a.to_string()),
    };
    // A change commits with its record, which says how the request ends when it succeeds.
    let success = success_status(&method);
    let (response, recorded) = state
        .service
        .audit
        .run_recorded(entry(success, None), next.run(request))
        .await;
    let status = response.status().as_u16();
    // Nothing committed (a refusal, a failure), or something went wrong after the commit:
    // the request's end is recorded on its own.
    if !recorded || status != success {
        write_audit(&state, entry(status, error_code(&response))).await;
    }
    response
}

/// How a write ends when it succeeds: a POST creates (201), the others answer 200.
fn success_status(method: &Method) -> u16 {
    match *method {
        Method::POST => 201,
        _ => 200,
    }
}

/// Records a request refused before it ran: a failed login, a write the role may not make.
/// Answers a refusal with ONTAP's envelope, and records it in the trail.
async fn refused(
    state: &AppState,
    user: &str,
    described: (String, String),
    address: Option<IpAddr>,
    error: Error,
) -> Response {
    let response = ApiError(error).into_response();
    record(state, user, described, address, outcome(&response)).await;
    response
}

/// Takes what it needs of the request and response rather than references: neither is `Sync`,
/// so no reference to them may be held across an await.
async fn record(
    state: &AppState,
    user: &str,
    (method, path): (String, String),
    address: Option<IpAddr>,
    (status, code): (u16, Option<String>),
) {
    let entry = AuditEntry {
        user,
        method: &method,
        path: &path,
        input: None,
        status,
        error_code: code,
        address: address.map(|a| a.to_string()),
    };
    write_audit(state, entry).await;
}

/// The first query parameter whose name says it holds a secret.
fn secret_query_parameter(request: &Request) -> Option<String> {
    request
        .uri()
        .query()?
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .map(|name| {
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned()
        })
        .find(|name| is_secret_name(name))
}

fn method_and_path(request: &Request) -> (String, String) {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    (request.method().to_string(), path)
}

fn outcome(response: &Response) -> (u16, Option<String>) {
    (response.status().as_u16(), error_code(response))
}

fn error_code(response: &Response) -> Option<String> {
    response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.clone())
}

async fn write_audit(state: &AppState, entry: AuditEntry<'_>) {
    if let Err(error) = state.service.audit.record(entry).await {
        tracing::error!(%error, "cannot write the audit trail");
    }
}
