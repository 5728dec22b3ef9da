//! The `auth_keys` table: the records of authentication keys (the keys live on the key servers).

use rusqlite::{Connection, params};

use super::SqlResultExt;
use crate::domain::model::{AuthKey, KeyManagerId};
use crate::store::{StoreError, StoreResult, decode_stored_on, encode_stored_on};

pub(super) fn list_auth_keys(
    connection: &Connection,
    key_manager: &KeyManagerId,
) -> StoreResult<Vec<AuthKey>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT key_id, key_tag, stored_on FROM auth_keys
             WHERE key_manager_uuid = ?1 ORDER BY position",
        )
        .db()?;
    let rows = statement
        .query_map([key_manager.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .db()?;
    rows.map(|row| {
        let (key_id, key_tag, stored_on) = row.db()?;
        Ok(AuthKey {
            key_manager: key_manager.clone(),
            key_id,
            key_tag,
            stored_on: decode_stored_on(&stored_on)?,
        })
    })
    .collect()
}

pub(super) fn insert_auth_key(connection: &Connection, key: &AuthKey) -> StoreResult<()> {
    let key_manager = key.key_manager.as_str();
    if !super::exists(
        connection,
        "SELECT 1 FROM key_managers WHERE uuid = ?1",
        key_manager,
    )? {
        return Err(StoreError::NotFound);
    }
    connection
        .execute(
            "INSERT INTO auth_keys (key_manager_uuid, key_id, key_tag, stored_on, position)
             VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(position), 0) + 1 FROM auth_keys))",
            params![
                key_manager,
                key.key_id,
                key.key_tag,
                encode_stored_on(&key.stored_on)
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn delete_auth_key(
    connection: &Connection,
    key_manager: &KeyManagerId,
    key_id: &str,
) -> StoreResult<()> {
    let deleted = connection
        .execute(
            "DELETE FROM auth_keys WHERE key_manager_uuid = ?1 AND key_id = ?2",
            params![key_manager.as_str(), key_id],
        )
        .db()?;
    match deleted {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
