//! HTTP Basic authentication on every `/api` request, the readonly role, and the audit trail of
//! every write.

use axum::body::Body as HttpBody;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::Error;
use crate::domain::audit::AuditEntry;
use crate::domain::model::Role;

use super::AppState;
use super::body;
use super::error::{ApiError, ErrorCode};

/// Who is calling, for handlers that care.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

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

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some((name, password)) = basic_credentials(&request) else {
        return ApiError(Error::Unauthenticated).into_response();
    };
    let role = match state.service.authenticate(&name, &password).await {
        Ok(role) => role,
        Err(error) => return ApiError(error).into_response(),
    };
    let method = request.method().clone();
    if role == Role::Readonly && !is_read(&method) {
        return ApiError(Error::PermissionDenied {
            role: role.as_str().into(),
            method: method.to_string(),
        })
        .into_response();
    }
    request.extensions_mut().insert(Caller {
        name: name.clone(),
        role,
    });
    if is_read(&method) {
        return next.run(request).await;
    }
    audited(state, name, request, next).await
}

/// Runs a write and records it: who, what, with which input (secrets redacted), and how it ended.
async fn audited(state: AppState, user: String, request: Request, next: Next) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().to_string();
    let (parts, body) = request.into_parts();
    let bytes = match body::read(body).await {
        Ok(bytes) => bytes,
        Err(error) => return ApiError(error).into_response(),
    };
    let input: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let response = next
        .run(Request::from_parts(parts, HttpBody::from(bytes)))
        .await;
    let entry = AuditEntry {
        user: &user,
        method: &method,
        path: &path,
        input: input.as_ref(),
        status: response.status().as_u16(),
        error_code: response
            .extensions()
            .get::<ErrorCode>()
            .map(|c| c.0.clone()),
    };
    if let Err(error) = state.service.audit(entry).await {
        tracing::error!(%error, "cannot write the audit trail");
    }
    response
}
