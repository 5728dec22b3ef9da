//! What ONTAP asks of a key server when it stores keys, tried once with a throw-away key: Register
//! a 256-bit AES key under a name, Locate it by that name, Get it and compare, then Destroy it
//! (Revoke first when the server demands it) and check that nothing is left. It writes to the
//! server, so callers run it only when asked.

use crate::client::Session;
use crate::error::{Error, Failure};
use crate::message::{Credential, Request};

/// One step and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The KMIP operation: `Register`, `Locate`, `Get`, `Revoke`, `Destroy`.
    pub operation: &'static str,
    pub ok: bool,
    /// What it found, or why it failed.
    pub detail: String,
}

/// The whole round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrip {
    /// The name the key was registered under.
    pub name: String,
    /// The key's unique identifier, once registered.
    pub key_id: Option<String>,
    pub steps: Vec<Step>,
    /// The first failure, if any; its message names the key when one is left on the server.
    pub error: Option<Error>,
}

impl RoundTrip {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// KMIP Result Reasons by which a server refuses to destroy a key that is still usable.
const PERMISSION_DENIED: u32 = 0x0C;
const ILLEGAL_OPERATION: u32 = 0x0B;

/// Runs the round trip on an open session.
pub async fn key_round_trip(session: &mut Session, credential: Option<&Credential>) -> RoundTrip {
    let mut key = [0u8; 32];
    let name = match openssl::rand::rand_bytes(&mut key) {
        Ok(()) => format!("ontap-keymgr-check-{}", hex(&key[..6])),
        Err(e) => {
            return RoundTrip {
                name: String::new(),
                key_id: None,
                steps: Vec::new(),
                error: Some(Error::new("local", Failure::Tls, e.to_string())),
            };
        }
    };
    let mut trip = RoundTrip {
        name: name.clone(),
        key_id: None,
        steps: Vec::new(),
        error: None,
    };
    let register = Request::Register {
        name: name.clone(),
        key: key.to_vec(),
    };
    let id = match session.call(&register, credential).await {
        Ok(result) => match result.unique_identifiers().into_iter().next() {
            Some(id) => id,
            None => return trip.fail("Register", malformed(session, "no unique identifier")),
        },
        Err(e) => return trip.fail("Register", e),
    };
    trip.key_id = Some(id.clone());
    trip.pass("Register", format!("unique identifier {id}"));
    if let Err(e) = check_locate(session, credential, &name, Some(&id)).await {
        return trip
            .fail_and_clean_up(session, credential, "Locate", e)
            .await;
    }
    trip.pass("Locate", format!("found {id} by its name"));
    match session
        .call(&Request::Get { id: id.clone() }, credential)
        .await
    {
        Ok(result) if result.key_material().as_deref() == Some(&key[..]) => {
            trip.pass("Get", "the key read back is the key registered".into())
        }
        Ok(_) => {
            let error = malformed(session, "Get answered another key than the one registered");
            return trip
                .fail_and_clean_up(session, credential, "Get", error)
                .await;
        }
        Err(e) => return trip.fail_and_clean_up(session, credential, "Get", e).await,
    }
    if let Err(e) = destroy(session, credential, &id, &mut trip).await {
        return trip.fail("Destroy", e);
    }
    match check_locate(session, credential, &name, None).await {
        Ok(()) => trip.pass("Locate", "nothing is left behind".into()),
        Err(e) => return trip.fail("Locate", e),
    }
    trip
}

/// Destroy, and when the server refuses to destroy a usable key, Revoke then Destroy.
async fn destroy(
    session: &mut Session,
    credential: Option<&Credential>,
    id: &str,
    trip: &mut RoundTrip,
) -> Result<(), Error> {
    let destroy = Request::Destroy { id: id.to_string() };
    match session.call(&destroy, credential).await {
        Ok(_) => {
            trip.pass("Destroy", format!("destroyed {id}"));
            return Ok(());
        }
        Err(e) if !demands_revocation(&e) => return Err(e),
        Err(_) => {}
    }
    session
        .call(&Request::Revoke { id: id.to_string() }, credential)
        .await?;
    trip.pass("Revoke", format!("revoked {id}, as the server demands"));
    session.call(&destroy, credential).await?;
    trip.pass("Destroy", format!("destroyed {id}"));
    Ok(())
}

fn demands_revocation(error: &Error) -> bool {
    matches!(
        error.result,
        Some((_, Some(PERMISSION_DENIED | ILLEGAL_OPERATION)))
    )
}

/// Locate by name must find exactly `expected` (or nothing, when `None`).
async fn check_locate(
    session: &mut Session,
    credential: Option<&Credential>,
    name: &str,
    expected: Option<&str>,
) -> Result<(), Error> {
    let request = Request::Locate {
        name: name.to_string(),
    };
    let found = session
        .call(&request, credential)
        .await?
        .unique_identifiers();
    let as_expected = match expected {
        Some(id) => found.iter().any(|f| f == id),
        None => found.is_empty(),
    };
    match as_expected {
        true => Ok(()),
        false => Err(malformed(
            session,
            &format!(
                "Locate by name \"{name}\" found [{}], expected {}",
                found.join(", "),
                expected.unwrap_or("nothing")
            ),
        )),
    }
}

impl RoundTrip {
    fn pass(&mut self, operation: &'static str, detail: String) {
        self.steps.push(Step {
            operation,
            ok: true,
            detail,
        });
    }

    fn fail(mut self, operation: &'static str, error: Error) -> RoundTrip {
        let error = self.with_leftover_note(error);
        self.steps.push(Step {
            operation,
            ok: false,
            detail: error.detail.clone(),
        });
        self.error = Some(error);
        self
    }

    /// A step after Register failed: still try to destroy the key, then report the failure.
    async fn fail_and_clean_up(
        mut self,
        session: &mut Session,
        credential: Option<&Credential>,
        operation: &'static str,
        error: Error,
    ) -> RoundTrip {
        self.steps.push(Step {
            operation,
            ok: false,
            detail: error.detail.clone(),
        });
        let id = self.key_id.clone().unwrap_or_default();
        let _ = destroy(session, credential, &id, &mut self).await;
        self.error = Some(self.with_leftover_note(error));
        self
    }

    /// Whether the test key was registered and not destroyed.
    pub fn key_left_behind(&self) -> bool {
        self.key_id.is_some() && !self.steps.iter().any(|s| s.operation == "Destroy" && s.ok)
    }

    fn with_leftover_note(&self, mut error: Error) -> Error {
        if let (true, Some(id)) = (self.key_left_behind(), &self.key_id) {
            error.detail = format!(
                "{}. The test key \"{}\" (unique identifier {id}) is left on the server: \
                 destroy it there",
                error.detail, self.name
            );
        }
        error
    }
}

fn malformed(session: &Session, detail: &str) -> Error {
    Error::new(session.server(), Failure::OperationFailed, detail)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
