//! Implementations of the domain's store port (`crate::domain::store`): SQLite, the embedded
//! default ([`sqlite::SqliteStore`]), and PostgreSQL, which several instances can share
//! ([`postgres::PostgresStore`]). A store keeps the domain's objects, encrypts
//! their secrets at rest, and enforces the invariants that must hold under concurrent requests
//! inside its own transactions. This room depends on the domain, never the reverse.

#[cfg(test)]
pub(crate) mod contract;
pub mod copy;
pub mod postgres;
pub mod read_model;
pub mod secrets;
pub mod sqlite;

pub use crate::domain::store::{
    AccountStore, AuditStore, CheckStore, JobStore, KeyStore, MAX_PRIMARY_KEY_SERVERS, ObjectStore,
    SettingsStore, Store, StoreError, StoreResult,
};

use crate::domain::model::{
    Certificate, KeyManager, KeyManagerKind, KeyServer, KeyServerTimeout, SvmRef,
};
use secrets::{SecretBox, column, seal};

/// The first address given twice in `servers`, as `KeyServerExists`.
pub(crate) fn check_no_duplicates(servers: &[KeyServer]) -> StoreResult<()> {
    for (index, server) in servers.iter().enumerate() {
        if servers[..index].iter().any(|s| s.server == server.server) {
            return Err(StoreError::KeyServerExists(server.server.to_string()));
        }
    }
    Ok(())
}

/// Whose an object is, in conflict messages.
pub(crate) fn scope_description(svm: Option<&SvmRef>) -> String {
    match svm {
        Some(svm) => format!("SVM \"{}\"", svm.name),
        None => "the cluster".to_string(),
    }
}

/// Lists of names (TLS versions, cipher suites) are stored comma-separated: no name has a comma.
pub(crate) fn join_names(names: &[String]) -> String {
    names.join(",")
}

pub(crate) fn split_names(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

// ---- how objects become columns, the same in both stores ----------------------------------

/// The `kind` column of a key manager.
pub(crate) fn kind_name(kind: &KeyManagerKind) -> &'static str {
    match kind {
        KeyManagerKind::External { .. } => "external",
        KeyManagerKind::Onboard { .. } => "onboard",
    }
}

/// The kind-specific columns: the client certificate of an external key manager, the sealed
/// passphrase of an onboard one.
pub(crate) fn kind_columns(
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<(Option<String>, Option<Vec<u8>>)> {
    match &key_manager.kind {
        KeyManagerKind::External {
            client_certificate, ..
        } => Ok((Some(client_certificate.to_string()), None)),
        KeyManagerKind::Onboard { passphrase } => {
            let sealed = seal(
                secrets,
                passphrase,
                column::PASSPHRASE,
                &[key_manager.uuid.as_str()],
            )?;
            Ok((None, Some(sealed)))
        }
    }
}

/// The columns of a key server that are not plain text: its timeout as ONTAP writes it, its
/// sealed password and its secondaries in JSON.
pub(crate) struct KeyServerColumns {
    pub timeout: i64,
    pub password: Option<Vec<u8>>,
    pub secondaries: String,
}

/// A stored timeout, read back into its meaning.
pub(crate) fn stored_timeout(value: i64, server: &str) -> StoreResult<KeyServerTimeout> {
    KeyServerTimeout::from_ontap(value).ok_or_else(|| {
        StoreError::Unreadable(format!(
            "invalid data in the database: timeout {value} of key server {server}"
        ))
    })
}

pub(crate) fn key_server_columns(
    secrets: &SecretBox,
    key_manager: &str,
    server: &KeyServer,
) -> StoreResult<KeyServerColumns> {
    let password = server
        .password
        .as_ref()
        .map(|password| {
            seal(
                secrets,
                password,
                column::KEY_SERVER_PASSWORD,
                &[key_manager, server.server.as_str()],
            )
        })
        .transpose()?;
    let secondaries = serde_json::to_string(&server.secondary_key_servers)
        .map_err(|error| StoreError::Backend(format!("secondary key servers: {error}")))?;
    Ok(KeyServerColumns {
        timeout: server.timeout.as_ontap(),
        password,
        secondaries,
    })
}

/// The sealed private key of a certificate, if it has one.
pub(crate) fn sealed_private_key(
    secrets: &SecretBox,
    certificate: &Certificate,
) -> StoreResult<Option<Vec<u8>>> {
    certificate
        .private_key
        .as_ref()
        .map(|key| {
            seal(
                secrets,
                key,
                column::PRIVATE_KEY,
                &[certificate.uuid.as_str()],
            )
        })
        .transpose()
}

/// The conflict of a certificate name taken in its scope.
pub(crate) fn certificate_name_taken(certificate: &Certificate) -> StoreError {
    StoreError::Conflict(format!(
        "certificate \"{}\" in {}",
        certificate.name,
        scope_description(certificate.svm.as_ref())
    ))
}

/// Where a key is stored, as both stores keep it: a JSON list of servers and unique identifiers.
pub(crate) fn encode_stored_on(stored_on: &[crate::domain::model::StoredOn]) -> String {
    serde_json::to_string(stored_on).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn decode_stored_on(text: &str) -> StoreResult<Vec<crate::domain::model::StoredOn>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Unreadable(format!("invalid data in the database: {e}")))
}
