//! A panic while a request is handled is a bug, but it must not cost the client its answer or
//! its connection: the request gets ONTAP's 500 envelope, the panic is logged once with the
//! request's method and path, and the connection's next requests are served as usual.
//!
//! tower-http's catch-panic layer answers too, but it does not know the request that panicked;
//! this middleware does, and it takes over the panic hook's report so that one line says all.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;

use crate::domain::Error;

use super::error::envelope;

tokio::task_local! {
    /// Set while a request is handled: the panic hook leaves its report here instead of
    /// printing it, for the middleware to log with the request it belongs to.
    static REPORT: RefCell<Option<String>>;
}

/// Replaces the process's panic hook, once: panics inside a request are reported by
/// [`answer_panics`]; any other panic is reported by the hook that was there before.
pub fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let report = describe(info);
            let kept = REPORT.try_with(|slot| slot.replace(Some(report)));
            if kept.is_err() {
                previous(info);
            }
        }));
    });
}

/// "message at file:line", bounded: a panic's message may quote client input.
fn describe(info: &std::panic::PanicHookInfo<'_>) -> String {
    const MAX_MESSAGE: usize = 512;
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let message: String = message.chars().take(MAX_MESSAGE).collect();
    match info.location() {
        Some(at) => format!("{message} at {}:{}", at.file(), at.line()),
        None => message,
    }
}

/// Runs the request; a panic becomes ONTAP's 500 envelope (code 262145) and one error line.
/// Nothing is allocated per request for it: the method and the URI are cheap clones.
pub async fn answer_panics(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    REPORT
        .scope(RefCell::new(None), async move {
            match AssertUnwindSafe(next.run(request)).catch_unwind().await {
                Ok(response) => response,
                Err(_) => {
                    const MAX_PATH: usize = 256;
                    let report = REPORT.with(|slot| slot.take()).unwrap_or_default();
                    let path: String = uri.path().chars().take(MAX_PATH).collect();
                    tracing::error!(%method, path, panic = report, "request handler panicked");
                    envelope(&Error::Internal(
                        "the request could not be completed; the service logged the cause".into(),
                    ))
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn panicking() -> &'static str {
        panic!("deliberate, in a test");
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_ontaps_500_envelope_and_the_router_keeps_serving() {
        install_hook();
        let app = Router::new()
            .route("/boom", get(panicking))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(answer_panics));
        for _ in 0..2 {
            let response = app
                .clone()
                .oneshot(Request::get("/boom").body(Body::empty()).expect("request"))
                .await
                .expect("answer");
            assert_eq!(response.status(), 500);
            let body = response.into_body().collect().await.expect("body");
            let body: serde_json::Value = serde_json::from_slice(&body.to_bytes()).expect("json");
            assert_eq!(body["error"]["code"], "262145");
            assert!(
                !body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("deliberate"),
                "the panic's text stays in the log: {body}"
            );
            let fine = app
                .clone()
                .oneshot(Request::get("/fine").body(Body::empty()).expect("request"))
                .await
                .expect("answer");
            assert_eq!(fine.status(), 200);
        }
    }
}
