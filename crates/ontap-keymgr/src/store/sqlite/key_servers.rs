//! The `key_servers` table: the primary key servers of each key manager, in order; passwords
//! sealed.

use rusqlite::{Connection, Row, params};

use super::key_managers::key_manager_kind;
use super::{SqlResultExt, column, corrupt, open, to_i64};
use crate::domain::address::KeyServerAddress;
use crate::domain::model::KeyServer;
use crate::store::secrets::SecretBox;
use crate::store::{MAX_PRIMARY_KEY_SERVERS, StoreError, StoreResult, check_no_duplicates};
use crate::store::{key_server_columns, stored_timeout};

/// A key_servers row, before its secret is opened and its address parsed.
struct KeyServerRow {
    server: String,
    timeout: i64,
    username: Option<String>,
    password: Option<Vec<u8>>,
    secondary_key_servers: String,
}

impl KeyServerRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<KeyServerRow> {
        Ok(KeyServerRow {
            server: row.get(0)?,
            timeout: row.get(1)?,
            username: row.get(2)?,
            password: row.get(3)?,
            secondary_key_servers: row.get(4)?,
        })
    }

    fn into_key_server(self, secrets: &SecretBox, key_manager: &str) -> StoreResult<KeyServer> {
        let server = KeyServerAddress::parse(&self.server)
            .map_err(|error| corrupt(&format!("key server address {}: {error}", self.server)))?;
        let password = self
            .password
            .map(|sealed| {
                open(
                    secrets,
                    &sealed,
                    column::KEY_SERVER_PASSWORD,
                    &[key_manager, server.as_str()],
                )
            })
            .transpose()?;
        let secondary_key_servers = serde_json::from_str(&self.secondary_key_servers)
            .map_err(|error| corrupt(&format!("secondary key servers of {server}: {error}")))?;
        Ok(KeyServer {
            timeout: stored_timeout(self.timeout, server.as_str())?,
            server,
            username: self.username,
            password,
            secondary_key_servers,
        })
    }
}

pub(super) fn load_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
) -> StoreResult<Vec<KeyServer>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT server, timeout, username, password, secondary_key_servers
             FROM key_servers WHERE key_manager_uuid = ?1 ORDER BY position",
        )
        .db()?;
    let rows = statement
        .query_map([key_manager], KeyServerRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_key_server(secrets, key_manager))
        .collect()
}

/// Inserts `servers` at positions `first_position`, `first_position + 1`, ...
pub(super) fn insert_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    first_position: i64,
    servers: &[KeyServer],
) -> StoreResult<()> {
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO key_servers (key_manager_uuid, server, position, timeout, username,
                 password, secondary_key_servers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?;
    for (offset, server) in servers.iter().enumerate() {
        let columns = key_server_columns(secrets, key_manager, server)?;
        statement
            .execute(params![
                key_manager,
                server.server.as_str(),
                first_position + to_i64(offset)?,
                columns.timeout,
                server.username,
                columns.password,
                columns.secondaries,
            ])
            .db()?;
    }
    Ok(())
}

/// The check-then-insert that keeps the limit: it runs inside the caller's `BEGIN IMMEDIATE`
/// transaction, so no other writer can add a server between the count and the insert.
pub(super) fn add_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    servers: &[KeyServer],
) -> StoreResult<()> {
    let kind = key_manager_kind(connection, key_manager)?.ok_or(StoreError::NotFound)?;
    if kind != "external" {
        return Err(StoreError::Conflict(format!(
            "an onboard key manager {key_manager} (which takes no key servers)"
        )));
    }
    let (count, last_position): (i64, Option<i64>) = connection
        .query_row(
            "SELECT COUNT(*), MAX(position) FROM key_servers WHERE key_manager_uuid = ?1",
            [key_manager],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .db()?;
    let existing = usize::try_from(count).map_err(|_| corrupt("a negative count"))?;
    if existing + servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing });
    }
    check_no_duplicates(servers)?;
    for server in servers {
        let stored: bool = connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM key_servers
                                WHERE key_manager_uuid = ?1 AND server = ?2)",
                params![key_manager, server.server.as_str()],
                |row| row.get(0),
            )
            .db()?;
        if stored {
            return Err(StoreError::KeyServerExists(server.server.to_string()));
        }
    }
    let first_position = last_position.map_or(0, |last| last + 1);
    insert_key_servers(connection, secrets, key_manager, first_position, servers)
}

pub(super) fn update_key_server(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    server: &KeyServer,
) -> StoreResult<()> {
    let columns = key_server_columns(secrets, key_manager, server)?;
    let updated = connection
        .execute(
            "UPDATE key_servers
             SET timeout = ?3, username = ?4, password = ?5, secondary_key_servers = ?6
             WHERE key_manager_uuid = ?1 AND server = ?2",
            params![
                key_manager,
                server.server.as_str(),
                columns.timeout,
                server.username,
                columns.password,
                columns.secondaries,
            ],
        )
        .db()?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) fn delete_key_server(
    connection: &Connection,
    key_manager: &str,
    server: &str,
) -> StoreResult<()> {
    let deleted = connection
        .execute(
            "DELETE FROM key_servers WHERE key_manager_uuid = ?1 AND server = ?2",
            [key_manager, server],
        )
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
