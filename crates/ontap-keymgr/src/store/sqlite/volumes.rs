//! The `volumes` table.

use rusqlite::{Connection, params};

use super::SqlResultExt;
use crate::domain::model::{Volume, VolumeKey};
use crate::store::{
    LIST_VOLUMES, StoreError, StoreResult, VolumeColumns, encode_stored_on, volume_key_columns,
};

pub(super) fn list_volumes(connection: &Connection) -> StoreResult<Vec<Volume>> {
    let mut statement = connection.prepare_cached(LIST_VOLUMES).db()?;
    let rows = statement
        .query_map([], |row| {
            Ok(VolumeColumns {
                uuid: row.get(0)?,
                name: row.get(1)?,
                svm_uuid: row.get(2)?,
                svm_name: row.get(3)?,
                size: row.get(4)?,
                key_id: row.get(5)?,
                key_manager: row.get(6)?,
                stored_on: row.get(7)?,
            })
        })
        .db()?;
    rows.map(|row| row.db()?.into_volume()).collect()
}

pub(super) fn insert_volume(connection: &Connection, volume: &Volume) -> StoreResult<()> {
    if !super::exists(
        connection,
        "SELECT 1 FROM svms WHERE uuid = ?1",
        volume.svm.uuid.as_str(),
    )? {
        return Err(StoreError::NotFound);
    }
    let (key_id, key_manager, stored_on) = volume_key_columns(volume);
    connection
        .execute(
            "INSERT INTO volumes
                 (uuid, name, svm_uuid, size, key_id, key_manager_uuid, stored_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                volume.uuid.as_str(),
                volume.name,
                volume.svm.uuid.as_str(),
                i64::try_from(volume.size).unwrap_or(i64::MAX),
                key_id,
                key_manager,
                stored_on
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn update_volume_key(
    connection: &Connection,
    uuid: &str,
    key: &VolumeKey,
) -> StoreResult<()> {
    let updated = connection
        .execute(
            "UPDATE volumes SET key_id = ?2, key_manager_uuid = ?3, stored_on = ?4
             WHERE uuid = ?1",
            params![
                uuid,
                key.key_id,
                key.key_manager.as_str(),
                encode_stored_on(&key.stored_on)
            ],
        )
        .db()?;
    match updated {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(super) fn delete_volume(connection: &Connection, uuid: &str) -> StoreResult<()> {
    match connection
        .execute("DELETE FROM volumes WHERE uuid = ?1", [uuid])
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
