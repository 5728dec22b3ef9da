//! What ONTAP asks of a key server when it stores a key, tried once with a throw-away key shaped
//! as ONTAP's (`ontap.rs`): Register it with ONTAP's custom attributes, Locate it by
//! `x-NETAPP-KeyId`, confirm each match by its attributes (Get Attributes), Get it and compare,
//! then Destroy it (Revoke first when the server demands it) and check that nothing is left. It
//! writes to the server, so callers run it only when asked. A `Locate` that answers objects
//! that are not the key is a warning: ONTAP would take them for its key.

use crate::client::Session;
use crate::error::Error;
use crate::message::Credential;
use crate::ontap::{self, KeyKind, KeyLabels, Located, OntapKey, malformed};

/// One step and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The KMIP operation: `Register`, `Locate`, `Get Attributes`, `Get`, `Revoke`, `Destroy`.
    pub operation: &'static str,
    pub ok: bool,
    /// What it found, or why it failed.
    pub detail: String,
}

/// The whole round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrip {
    /// The test key's `x-NETAPP-KeyId`.
    pub key_id: String,
    /// The key's unique identifier on the server, once registered.
    pub unique_identifier: Option<String>,
    pub steps: Vec<Step>,
    /// What would mislead ONTAP without failing the round trip (an over-broad `Locate`).
    pub warnings: Vec<String>,
    /// The first failure, if any; its message names the key when one is left on the server.
    pub error: Option<Error>,
}

impl RoundTrip {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The labels of the test key: ONTAP's attributes, with values that say what it is.
pub fn test_labels() -> KeyLabels {
    KeyLabels {
        cluster_name: "ontap-keymgr-check".into(),
        cluster_id: "00000000-0000-0000-0000-000000000000".into(),
        node_id: "00000000-0000-0000-0000-000000000000".into(),
        vserver_id: "00000000-0000-0000-0000-000000000000".into(),
        key_type: "vek".into(),
    }
}

/// Runs the round trip on an open session.
pub async fn key_round_trip(session: &mut Session, credential: Option<&Credential>) -> RoundTrip {
    let key = match OntapKey::generate(KeyKind::Volume, test_labels()) {
        Ok(key) => key,
        Err(error) => {
            return RoundTrip {
                key_id: String::new(),
                unique_identifier: None,
                steps: Vec::new(),
                warnings: Vec::new(),
                error: Some(error),
            };
        }
    };
    let mut trip = RoundTrip {
        key_id: key.key_id.clone(),
        unique_identifier: None,
        steps: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    let id = match ontap::register(session, credential, &key).await {
        Ok(id) => id,
        Err(e) => return trip.fail("Register", e),
    };
    trip.unique_identifier = Some(id.clone());
    trip.pass(
        "Register",
        format!("unique identifier {id}, with ONTAP's attributes"),
    );
    if let Err(e) = trip.find(session, credential, &id).await {
        return trip.fail_and_clean_up(session, credential, e).await;
    }
    match ontap::get(session, credential, &id).await {
        Ok(material) if material == key.material => {
            trip.pass("Get", "the key read back is the key registered".into())
        }
        Ok(_) => {
            let error = malformed(session, "Get answered another key than the one registered");
            trip.fail_step("Get", &error);
            return trip.fail_and_clean_up(session, credential, error).await;
        }
        Err(e) => {
            trip.fail_step("Get", &e);
            return trip.fail_and_clean_up(session, credential, e).await;
        }
    }
    if let Err(e) = trip.destroy(session, credential, &id).await {
        return trip.fail("Destroy", e);
    }
    match ontap::locate(session, credential, &key.key_id).await {
        Ok(located) if located.confirmed.is_empty() => {
            trip.pass("Locate", "nothing is left behind".into())
        }
        Ok(located) => {
            let error = malformed(
                session,
                &format!(
                    "the key is still found after Destroy: {}",
                    located.confirmed.join(", ")
                ),
            );
            return trip.fail("Locate", error);
        }
        Err(e) => return trip.fail("Locate", e),
    }
    trip
}

impl RoundTrip {
    /// Locate by `x-NETAPP-KeyId` must answer the key, confirmed by its attributes; anything
    /// else it answers is a warning.
    async fn find(
        &mut self,
        session: &mut Session,
        credential: Option<&Credential>,
        id: &str,
    ) -> Result<(), Error> {
        let Located { confirmed, foreign } = ontap::locate(session, credential, &self.key_id)
            .await
            .inspect_err(|e| self.fail_step("Locate", e))?;
        if !foreign.is_empty() {
            self.warnings.push(format!(
                "Locate by {} answered {} object(s) that are not the key ({}): the server \
                 ignores ONTAP's filter, and ONTAP would take them for its key",
                ontap::attribute::KEY_ID,
                foreign.len(),
                foreign.join(", ")
            ));
        }
        if !confirmed.iter().any(|c| c == id) {
            let error = malformed(
                session,
                &format!(
                    "Locate by {} did not answer the key just registered ({id})",
                    ontap::attribute::KEY_ID
                ),
            );
            self.fail_step("Locate", &error);
            return Err(error);
        }
        self.pass(
            "Locate",
            format!("found {id} by its {}", ontap::attribute::KEY_ID),
        );
        self.pass(
            "Get Attributes",
            format!(
                "{id} carries the key id{}",
                match foreign.len() {
                    0 => String::new(),
                    n => format!("; {n} other answer(s) do not"),
                }
            ),
        );
        Ok(())
    }

    async fn destroy(
        &mut self,
        session: &mut Session,
        credential: Option<&Credential>,
        id: &str,
    ) -> Result<(), Error> {
        let revoked = ontap::destroy(session, credential, id).await?;
        if revoked {
            self.pass("Revoke", format!("revoked {id}, as the server demands"));
        }
        self.pass("Destroy", format!("destroyed {id}"));
        Ok(())
    }

    fn pass(&mut self, operation: &'static str, detail: String) {
        self.steps.push(Step {
            operation,
            ok: true,
            detail,
        });
    }

    fn fail_step(&mut self, operation: &'static str, error: &Error) {
        self.steps.push(Step {
            operation,
            ok: false,
            detail: error.detail.clone(),
        });
    }

    fn fail(mut self, operation: &'static str, error: Error) -> RoundTrip {
        self.fail_step(operation, &error);
        self.error = Some(self.with_leftover_note(error));
        self
    }

    /// A step after Register failed (and was recorded): still try to destroy the key, then
    /// report the failure.
    async fn fail_and_clean_up(
        mut self,
        session: &mut Session,
        credential: Option<&Credential>,
        error: Error,
    ) -> RoundTrip {
        let id = self.unique_identifier.clone().unwrap_or_default();
        let _ = self.destroy(session, credential, &id).await;
        self.error = Some(self.with_leftover_note(error));
        self
    }

    /// Whether the test key was registered and not destroyed.
    pub fn key_left_behind(&self) -> bool {
        self.unique_identifier.is_some()
            && !self.steps.iter().any(|s| s.operation == "Destroy" && s.ok)
    }

    fn with_leftover_note(&self, mut error: Error) -> Error {
        if let (true, Some(id)) = (self.key_left_behind(), &self.unique_identifier) {
            error.detail = format!(
                "{}. The test key {} = {} (unique identifier {id}) is left on the server: \
                 destroy it there",
                error.detail,
                ontap::attribute::KEY_ID,
                self.key_id
            );
        }
        error
    }
}
