//! The listings automation polls (a key manager's key servers, with their connectivity; the key
//! managers, with their status) answered again with the bytes of the previous answer to the
//! same request, for as long as nothing that answer read has changed since.
//!
//! Why: building, projecting and serializing the records was most of the service's own cost of
//! such a GET, and fleets ask the same question again and again between changes
//! (docs/performance.md). Correctness rests on `domain::versions`: the versions are read before
//! an answer is computed and bumped only after a change is visible, so an answer is served again
//! only while nothing it read has changed. A handler marks an answer it allows to be served
//! again with what it read ([`reusable`]); nothing else is kept.
//!
//! Bounded: keys and bodies together stay under [`CAPACITY_BYTES`] (quick_cache evicts by
//! weight), and an answer larger than an eighth of that is not kept.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use quick_cache::sync::Cache;

use crate::domain::Error;
use crate::domain::versions::{Reads, Versions};

use super::AppState;
use super::envelope::hal_json_bytes;
use super::error::ApiError;

/// What the cache holds at most, keys and bodies, each entry with [`ENTRY_OVERHEAD`].
pub const CAPACITY_BYTES: u64 = 16 << 20;

/// The bookkeeping of an entry, counted on top of its key and body.
const ENTRY_OVERHEAD: u64 = 128;

/// How many entries quick_cache sizes its tables for; more fit when they are small.
const EXPECTED_ENTRIES: usize = 1024;

/// A handler's mark on an answer that may be served again: what it read.
#[derive(Debug, Clone, Copy)]
struct Reusable(Reads);

/// Marks `response` as one that may be served again while what it `reads` is unchanged.
pub fn reusable(mut response: Response, reads: Reads) -> Response {
    response.extensions_mut().insert(Reusable(reads));
    response
}

#[derive(Clone)]
struct Answer {
    /// The versions read before the answer was computed.
    versions: Versions,
    reads: Reads,
    body: Bytes,
}

/// An entry's weight: what it holds in memory.
#[derive(Clone)]
struct HeldBytes;

impl quick_cache::Weighter<String, Answer> for HeldBytes {
    fn weight(&self, key: &String, answer: &Answer) -> u64 {
        (key.len() + answer.body.len()) as u64 + ENTRY_OVERHEAD
    }
}

/// Answers by request (path and query), with the versions they were computed at.
pub struct ResponseCache {
    answers: Cache<String, Answer, HeldBytes>,
    capacity: u64,
}

impl ResponseCache {
    pub fn new(capacity: u64) -> ResponseCache {
        ResponseCache {
            answers: Cache::with_weighter(EXPECTED_ENTRIES, capacity, HeldBytes),
            capacity,
        }
    }

    /// The body of the answer to `request` if it is still what would be computed at `now`.
    fn current(&self, request: &str, now: &Versions) -> Option<Bytes> {
        self.answers
            .get(request)
            .filter(|answer| answer.versions.unchanged_at(now, answer.reads))
            .map(|answer| answer.body)
    }

    fn keep(&self, request: String, answer: Answer) {
        if answer.body.len() as u64 <= self.capacity / 8 {
            self.answers.insert(request, answer);
        }
    }

    /// What the entries hold, keys and bodies, with their overhead.
    pub fn held_bytes(&self) -> u64 {
        self.answers.weight()
    }
}

/// The middleware of the routes whose handlers mark answers [`reusable`].
pub async fn serve(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // HEAD reaches GET's handler too; its answer has no body to keep.
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let Some(versions) = state.service.versions() else {
        return next.run(request).await;
    };
    let key = request.uri().path_and_query().map_or("", |p| p.as_str());
    if let Some(body) = state.responses.current(key, &versions) {
        return hal_json_bytes(StatusCode::OK, body);
    }
    let key = key.to_owned();
    let response = next.run(request).await;
    keep_answer(&state.responses, key, versions, response).await
}

/// Keeps a marked `200` answer, and answers it.
async fn keep_answer(
    cache: &ResponseCache,
    request: String,
    versions: Versions,
    response: Response,
) -> Response {
    let Some(&Reusable(reads)) = response.extensions().get::<Reusable>() else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers' bodies are whole in memory: collecting them cannot fail or wait.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError(Error::Internal("an answer's body".into())).into_response(),
    };
    let answer = Answer {
        versions,
        reads,
        body: body.clone(),
    };
    cache.keep(request, answer);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str, reads: Reads) -> Answer {
        Answer {
            versions: Versions::default(),
            reads,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn an_answer_is_served_again_only_while_what_it_read_is_unchanged() {
        let cache = ResponseCache::new(CAPACITY_BYTES);
        let then = Versions::default();
        cache.keep("/objects".into(), answer("o", Reads::Objects));
        cache.keep("/states".into(), answer("s", Reads::ServerStates));
        cache.keep("/checks".into(), answer("c", Reads::Checks));
        let served = |now: &Versions| {
            ["/objects", "/states", "/checks"].map(|request| cache.current(request, now).is_some())
        };
        assert_eq!(served(&then), [true, true, true]);
        assert_eq!(served(&then.after_check(false)), [true, true, false]);
        assert_eq!(served(&then.after_check(true)), [true, false, false]);
        assert_eq!(served(&then.after_objects_change()), [false, false, false]);
        assert_eq!(cache.current("/never-kept", &then), None);
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_no_answer_above_an_eighth_of_it() {
        let capacity = 64 * 1024;
        let cache = ResponseCache::new(capacity);
        let body = "x".repeat(1000);
        for n in 0..10_000 {
            cache.keep(format!("/listing?n={n}"), answer(&body, Reads::Objects));
            assert!(cache.held_bytes() <= capacity);
        }
        assert!(cache.held_bytes() > capacity / 2, "the cache is used");
        let too_large = "x".repeat(capacity as usize / 8 + 1);
        cache.keep("/large".into(), answer(&too_large, Reads::Objects));
        assert_eq!(cache.current("/large", &Versions::default()), None);
    }
}
