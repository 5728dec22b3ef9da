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
    SettingsStore, Store, StoreError, StoreResult, VolumeStore,
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

/// A `volumes` row joined with its SVM's name, as both stores read it.
pub(crate) struct VolumeColumns {
    pub uuid: String,
    pub name: String,
    pub svm_uuid: String,
    pub svm_name: String,
    pub size: i64,
    pub key_id: Option<String>,
    pub key_manager: Option<String>,
    pub stored_on: Option<String>,
}

/// The query both stores list volumes with.
pub(crate) const LIST_VOLUMES: &str = "SELECT v.uuid, v.name, v.svm_uuid, s.name, v.size, \
     v.key_id, v.key_manager_uuid, v.stored_on FROM volumes v JOIN svms s ON s.uuid = v.svm_uuid \
     ORDER BY s.name, v.name";

impl VolumeColumns {
    pub(crate) fn into_volume(self) -> StoreResult<crate::domain::model::Volume> {
        use crate::domain::model::{SvmRef, Volume, VolumeKey};
        let unreadable =
            |what: &str| StoreError::Unreadable(format!("invalid data in the database: {what}"));
        let key = match (self.key_id, self.key_manager, self.stored_on) {
            (None, None, None) => None,
            (Some(key_id), Some(key_manager), Some(stored_on)) => Some(VolumeKey {
                key_id,
                key_manager: crate::domain::ids::Id::from_stored(key_manager),
                stored_on: decode_stored_on(&stored_on)?,
            }),
            _ => return Err(unreadable("a volume's key")),
        };
        Ok(Volume {
            uuid: crate::domain::ids::Id::from_stored(self.uuid),
            name: self.name,
            svm: SvmRef {
                uuid: crate::domain::ids::Id::from_stored(self.svm_uuid),
                name: self.svm_name,
            },
            size: u64::try_from(self.size).map_err(|_| unreadable("a volume's size"))?,
            key,
        })
    }
}

/// A volume's key as both stores write it: key id, key manager, where it is stored.
pub(crate) fn volume_key_columns(
    volume: &crate::domain::model::Volume,
) -> (Option<String>, Option<String>, Option<String>) {
    match &volume.key {
        None => (None, None, None),
        Some(key) => (
            Some(key.key_id.clone()),
            Some(key.key_manager.to_string()),
            Some(encode_stored_on(&key.stored_on)),
        ),
    }
}
