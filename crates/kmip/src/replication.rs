//! Whether a key stored through a primary key server reaches its secondaries, as ONTAP relies on
//! when a primary is down: a throw-away key shaped as ONTAP's is registered on the primary, then
//! each secondary is asked, by `Locate` on `x-NETAPP-KeyId` confirmed by the key's attributes,
//! until it has the key or the wait runs out; the key is destroyed on the primary at the end. It
//! writes to the primary, so callers run it only when asked.

use std::time::{Duration, Instant};

use crate::client::Session;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::message::Credential;
use crate::ontap::{self, KeyKind, OntapKey};
use crate::round_trip::test_labels;
use crate::tls::Connector;

/// How often a secondary is asked again while the key has not reached it.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What one secondary showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    pub server: String,
    /// How long after the key was stored the secondary had it; `None`: not within the wait.
    pub found_after: Option<Duration>,
    /// How it went, or why the key was not seen (the last failure when the secondary could not
    /// be asked).
    pub detail: String,
}

/// The whole replication check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// The test key's `x-NETAPP-KeyId`.
    pub key_id: String,
    pub secondaries: Vec<Secondary>,
    /// Why the key could not be stored on the primary, if it could not.
    pub error: Option<Error>,
    /// Whether the test key was destroyed on the primary at the end.
    pub cleaned_up: bool,
}

impl Replication {
    /// Stored on the primary and found on every secondary.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.secondaries.iter().all(|s| s.found_after.is_some())
    }
}

/// Stores a test key through `primary` and waits at most `wait` for each secondary to have it.
pub async fn check_replication(
    primary: &mut Session,
    credential: Option<&Credential>,
    connector: &Connector,
    secondaries: &[Endpoint],
    timeout: Duration,
    wait: Duration,
) -> Replication {
    let key = match OntapKey::generate(KeyKind::Volume, test_labels()) {
        Ok(key) => key,
        Err(error) => return not_stored(String::new(), error),
    };
    let id = match ontap::register(primary, credential, &key).await {
        Ok(id) => id,
        Err(error) => return not_stored(key.key_id, error),
    };
    let stored = Instant::now();
    let mut found = Vec::new();
    for secondary in secondaries {
        let deadline = stored + wait;
        found.push(
            wait_for(
                connector,
                secondary,
                credential,
                &key.key_id,
                timeout,
                stored,
                deadline,
            )
            .await,
        );
    }
    let cleaned_up = ontap::destroy(primary, credential, &id).await.is_ok();
    Replication {
        key_id: key.key_id,
        secondaries: found,
        error: None,
        cleaned_up,
    }
}

fn not_stored(key_id: String, error: Error) -> Replication {
    Replication {
        key_id,
        secondaries: Vec::new(),
        error: Some(error),
        cleaned_up: true,
    }
}

/// Asks `secondary` for the key until it has it or `deadline` passes.
async fn wait_for(
    connector: &Connector,
    secondary: &Endpoint,
    credential: Option<&Credential>,
    key_id: &str,
    timeout: Duration,
    stored: Instant,
    deadline: Instant,
) -> Secondary {
    loop {
        let last = match has_key(connector, secondary, credential, key_id, timeout).await {
            Ok(true) => {
                let after = stored.elapsed();
                return Secondary {
                    server: secondary.to_string(),
                    found_after: Some(after),
                    detail: format!("found the key {} ms after it was stored", after.as_millis()),
                };
            }
            Ok(false) => "the key was not found".to_string(),
            Err(error) => error.to_string(),
        };
        if Instant::now() + POLL_EVERY > deadline {
            return Secondary {
                server: secondary.to_string(),
                found_after: None,
                detail: format!(
                    "not replicated within {} s: {last}",
                    deadline.saturating_duration_since(stored).as_secs()
                ),
            };
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn has_key(
    connector: &Connector,
    server: &Endpoint,
    credential: Option<&Credential>,
    key_id: &str,
    timeout: Duration,
) -> Result<bool, Error> {
    let mut session = connector.connect(server, timeout).await?;
    let located = ontap::locate(&mut session, credential, key_id).await;
    session.close().await;
    Ok(!located?.confirmed.is_empty())
}
