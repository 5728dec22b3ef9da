//! TLS session resumption toward key servers: a connector made with
//! [`Connector::resuming`](crate::Connector::resuming) keeps the session each server gives it and
//! offers it on the next connection to that server, which then skips the certificate exchange
//! and its signatures (most of a check's CPU, on both sides) when the server allows it.
//!
//! A resumed handshake does not verify the server's certificate again: a session is offered only
//! for `max_age` after the full handshake that verified it, sessions the server gives on resumed
//! connections keep that handshake's time, and a connector without resumption (what verifies a
//! configuration) never offers one.
//!
//! Why by hand: the `openssl` crate exposes the pieces (a new-session callback, `set_session`)
//! but no client session cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef, SslSession, SslSessionCacheMode};

/// Sessions kept per connector: a key manager's servers and their secondaries.
const MAX_SESSIONS: usize = 64;

/// Where a connection's session is kept: the server, as `host:port`.
fn server_index() -> Option<Index<Ssl, String>> {
    static INDEX: OnceLock<Option<Index<Ssl, String>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

struct Kept {
    session: SslSession,
    /// When the full handshake whose certificate check this session stands for was made.
    verified_at: Instant,
}

/// The sessions of one OpenSSL context's connections, by server.
pub(crate) struct Sessions {
    kept: Mutex<HashMap<String, Kept>>,
    max_age: Duration,
}

impl Sessions {
    /// Makes `builder`'s connections hand their sessions to the returned cache.
    pub(crate) fn install(builder: &mut SslContextBuilder, max_age: Duration) -> Arc<Sessions> {
        let sessions = Arc::new(Sessions {
            kept: Mutex::new(HashMap::new()),
            max_age,
        });
        // Client caching must be on for OpenSSL to call back; its own store is never read by a
        // client, so it is left empty.
        builder.set_session_cache_mode(
            SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL_STORE,
        );
        let keeper = Arc::clone(&sessions);
        builder.set_new_session_callback(move |ssl, session| keeper.keep(ssl, session));
        sessions
    }

    /// A poisoned lock's map is whole: it is only read or written in one step.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Names the connection's server, and offers the session kept for it, if still young enough.
    /// `ssl` must come from the context these sessions were installed on.
    pub(crate) fn prepare(&self, ssl: &mut Ssl, server: &str) {
        let Some(index) = server_index() else {
            return;
        };
        ssl.set_ex_data(index, server.to_owned());
        let mut kept = self.lock();
        let Some(entry) = kept.get(server) else {
            return;
        };
        if entry.verified_at.elapsed() >= self.max_age {
            kept.remove(server);
            return;
        }
        offer(ssl, &entry.session);
    }

    /// OpenSSL's new-session callback: after a full handshake, or when a server sends tickets.
    fn keep(&self, ssl: &mut SslRef, session: SslSession) {
        let Some(server) = server_index().and_then(|index| ssl.ex_data(index)).cloned() else {
            return;
        };
        let mut kept = self.lock();
        let verified_at = match ssl.session_reused() {
            // A resumed connection's tickets stand for the check made before it, if known.
            true => match kept.get(&server) {
                Some(entry) => entry.verified_at,
                None => return,
            },
            false => Instant::now(),
        };
        let entry = Kept {
            session,
            verified_at,
        };
        insert_bounded(&mut kept, server, entry, MAX_SESSIONS);
    }
}

/// Inserts, first forgetting everything when `map` is full and `key` is new: sessions only
/// save handshakes, so losing them all now and then costs little, and the bound holds.
fn insert_bounded<T>(map: &mut HashMap<String, T>, key: String, value: T, max: usize) {
    if map.len() >= max && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

/// Offers `session` on `ssl`; the server resumes it or makes a new one.
#[allow(unsafe_code)]
fn offer(ssl: &mut Ssl, session: &SslSession) {
    // SAFETY: OpenSSL requires the session to belong to the context `ssl` was made from. Each
    // `Sessions` is installed on exactly one context (`Sessions::install`, called as the
    // connector's context is built), is only filled by that context's callback, and is only
    // asked to `prepare` connections of that same context (`Connector::ssl`).
    // Failing to offer it only costs a full handshake.
    let _ = unsafe { ssl.set_session(session) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sessions_kept_never_exceed_their_bound() {
        let mut map = HashMap::new();
        for n in 0..1000 {
            insert_bounded(&mut map, format!("server{}:5696", n % 200), n, MAX_SESSIONS);
            assert!(map.len() <= MAX_SESSIONS);
        }
        // A server already kept is replaced in place, however full the map.
        let mut map: HashMap<String, i32> =
            (0..MAX_SESSIONS).map(|n| (format!("s{n}"), 0)).collect();
        insert_bounded(&mut map, "s0".into(), 1, MAX_SESSIONS);
        assert_eq!((map.len(), map["s0"]), (MAX_SESSIONS, 1));
    }
}
