//! Renders the domain's error as ONTAP's error envelope:
//! `{"error": {"message": ..., "code": "<decimal>", "target": ...}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::{Error, Status};

use super::envelope::hal_json;

/// The ONTAP code of a failed request, left in the response's extensions for the audit trail.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// A domain error on its way out.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn status_code(status: Status) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = status_code(error.status());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Refusals to retry later; their causes are logged once where they arise.
            tracing::debug!(code = error.code(), %error, "request refused for now");
        } else if status.is_server_error() {
            tracing::error!(code = error.code(), %error, "request failed");
        } else {
            tracing::debug!(code = error.code(), %error, "request refused");
        }
        envelope(&error)
    }
}

/// The error as ONTAP's envelope, with its status and headers; logs nothing (the caller has).
pub fn envelope(error: &Error) -> Response {
    let status = status_code(error.status());
    let code = error.code().to_string();
    let mut body = json!({ "message": error.to_string(), "code": code });
    if let Some(target) = error.target() {
        body["target"] = target.into();
    }
    let mut response = hal_json(status, &json!({ "error": body }));
    response.extensions_mut().insert(ErrorCode(code));
    if let Some(seconds) = error.retry_after()
        && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
    {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    if matches!(error, Error::BodyTooLarge(_)) {
        // The unread rest of the body would be taken for the next request.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    if matches!(error, Error::Unauthenticated) {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"ontap-keymgr\""),
        );
    }
    response
}
