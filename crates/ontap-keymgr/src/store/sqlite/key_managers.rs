//! The `key_managers` table and its server CA certificates; onboard passphrases sealed.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::key_servers::{insert_key_servers, load_key_servers};
use super::{SqlResultExt, column, corrupt, open, scope_description, svm_ref, to_i64};
use crate::domain::model::{CertificateId, KeyManager, KeyManagerId, KeyManagerKind};
use crate::store::secrets::SecretBox;
use crate::store::{MAX_PRIMARY_KEY_SERVERS, StoreError, StoreResult, check_no_duplicates};
use crate::store::{kind_columns, kind_name};

const KEY_MANAGER_COLUMNS: &str = "SELECT k.uuid, k.svm_uuid, s.name, k.kind,
        k.client_certificate_uuid, k.passphrase
    FROM key_managers k LEFT JOIN svms s ON s.uuid = k.svm_uuid";

/// A key_managers row, before its secret is opened and its lists are loaded.
struct KeyManagerRow {
    uuid: String,
    svm_uuid: Option<String>,
    svm_name: Option<String>,
    kind: String,
    client_certificate: Option<String>,
    passphrase: Option<Vec<u8>>,
}

impl KeyManagerRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<KeyManagerRow> {
        Ok(KeyManagerRow {
            uuid: row.get(0)?,
            svm_uuid: row.get(1)?,
            svm_name: row.get(2)?,
            kind: row.get(3)?,
            client_certificate: row.get(4)?,
            passphrase: row.get(5)?,
        })
    }

    fn into_key_manager(
        self,
        connection: &Connection,
        secrets: &SecretBox,
    ) -> StoreResult<KeyManager> {
        let kind = match (self.kind.as_str(), self.client_certificate, self.passphrase) {
            ("external", Some(client_certificate), None) => KeyManagerKind::External {
                client_certificate: CertificateId::from_stored(client_certificate),
                server_ca_certificates: load_server_cas(connection, &self.uuid)?,
                servers: load_key_servers(connection, secrets, &self.uuid)?,
            },
            ("onboard", None, Some(sealed)) => KeyManagerKind::Onboard {
                passphrase: open(secrets, &sealed, column::PASSPHRASE, &[&self.uuid])?,
            },
            _ => return Err(corrupt(&format!("key manager {}", self.uuid))),
        };
        Ok(KeyManager {
            svm: svm_ref(self.svm_uuid, self.svm_name)?,
            uuid: KeyManagerId::from_stored(self.uuid),
            kind,
        })
    }
}

pub(super) fn list_key_managers(
    connection: &Connection,
    secrets: &SecretBox,
) -> StoreResult<Vec<KeyManager>> {
    let mut statement = connection
        .prepare_cached(&format!("{KEY_MANAGER_COLUMNS} ORDER BY k.seq"))
        .db()?;
    let rows = statement
        .query_map([], KeyManagerRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_key_manager(connection, secrets))
        .collect()
}

pub(super) fn get_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    uuid: &str,
) -> StoreResult<Option<KeyManager>> {
    let row = connection
        .query_row(
            &format!("{KEY_MANAGER_COLUMNS} WHERE k.uuid = ?1"),
            [uuid],
            KeyManagerRow::from_row,
        )
        .optional()
        .db()?;
    row.map(|row| row.into_key_manager(connection, secrets))
        .transpose()
}

fn load_server_cas(connection: &Connection, key_manager: &str) -> StoreResult<Vec<CertificateId>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT certificate_uuid FROM key_manager_server_cas
             WHERE key_manager_uuid = ?1 ORDER BY position",
        )
        .db()?;
    let rows = statement.query_map([key_manager], |row| row.get(0)).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The key manager's uuid and kind, if it exists.
pub(super) fn key_manager_kind(connection: &Connection, uuid: &str) -> StoreResult<Option<String>> {
    connection
        .query_row(
            "SELECT kind FROM key_managers WHERE uuid = ?1",
            [uuid],
            |row| row.get(0),
        )
        .optional()
        .db()
}

pub(super) fn insert_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let svm_uuid = key_manager.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM key_managers
                            WHERE COALESCE(svm_uuid, '') = COALESCE(?1, ''))",
            [svm_uuid],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "the key manager of {}",
            scope_description(key_manager.svm.as_ref())
        )));
    }
    let servers = key_manager.servers();
    if servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing: 0 });
    }
    check_no_duplicates(servers)?;

    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    connection
        .execute(
            "INSERT INTO key_managers (uuid, svm_uuid, kind, client_certificate_uuid, passphrase)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                key_manager.uuid,
                svm_uuid,
                kind_name(&key_manager.kind),
                client_certificate,
                passphrase,
            ],
        )
        .db()?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        insert_server_cas(
            connection,
            key_manager.uuid.as_str(),
            server_ca_certificates,
        )?;
    }
    insert_key_servers(connection, secrets, key_manager.uuid.as_str(), 0, servers)
}

fn insert_server_cas(
    connection: &Connection,
    key_manager: &str,
    certificates: &[CertificateId],
) -> StoreResult<()> {
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO key_manager_server_cas (key_manager_uuid, certificate_uuid, position)
             VALUES (?1, ?2, ?3)",
        )
        .db()?;
    for (position, certificate) in certificates.iter().enumerate() {
        statement
            .execute(params![key_manager, certificate, to_i64(position)?])
            .db()?;
    }
    Ok(())
}

pub(super) fn update_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let kind =
        key_manager_kind(connection, key_manager.uuid.as_str())?.ok_or(StoreError::NotFound)?;
    // Changing the kind would strand (or invent) key servers; a key manager is deleted and
    // created again instead.
    if kind != kind_name(&key_manager.kind) {
        return Err(StoreError::Conflict(format!(
            "key manager {} of another kind ({kind})",
            key_manager.uuid
        )));
    }
    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    connection
        .execute(
            "UPDATE key_managers SET client_certificate_uuid = ?2, passphrase = ?3
             WHERE uuid = ?1",
            params![key_manager.uuid, client_certificate, passphrase],
        )
        .db()?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        connection
            .execute(
                "DELETE FROM key_manager_server_cas WHERE key_manager_uuid = ?1",
                [&key_manager.uuid],
            )
            .db()?;
        insert_server_cas(
            connection,
            key_manager.uuid.as_str(),
            server_ca_certificates,
        )?;
    }
    Ok(())
}

pub(super) fn delete_key_manager(connection: &Connection, uuid: &str) -> StoreResult<()> {
    // Its key servers and server CA links go with it (ON DELETE CASCADE).
    let deleted = connection
        .execute("DELETE FROM key_managers WHERE uuid = ?1", [uuid])
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
