//! The `volumes` table.

use deadpool_postgres::Transaction;

use super::{execute, exists, get, rows};
use crate::domain::model::{Volume, VolumeKey};
use crate::store::{
    LIST_VOLUMES, StoreError, StoreResult, VolumeColumns, encode_stored_on, volume_key_columns,
};

pub(super) async fn list_volumes(t: &Transaction<'_>) -> StoreResult<Vec<Volume>> {
    let found = rows(t, LIST_VOLUMES, &[]).await?;
    found
        .iter()
        .map(|r| {
            VolumeColumns {
                uuid: get(r, 0)?,
                name: get(r, 1)?,
                svm_uuid: get(r, 2)?,
                svm_name: get(r, 3)?,
                size: get(r, 4)?,
                key_id: get(r, 5)?,
                key_manager: get(r, 6)?,
                stored_on: get(r, 7)?,
            }
            .into_volume()
        })
        .collect()
}

pub(super) async fn insert_volume(t: &Transaction<'_>, volume: &Volume) -> StoreResult<()> {
    let svm = volume.svm.uuid.as_str();
    if !exists(t, "SELECT 1 FROM svms WHERE uuid = $1", &[&svm]).await? {
        return Err(StoreError::NotFound);
    }
    let (key_id, key_manager, stored_on) = volume_key_columns(volume);
    execute(
        t,
        "INSERT INTO volumes (uuid, name, svm_uuid, size, key_id, key_manager_uuid, stored_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &volume.uuid.as_str(),
            &volume.name,
            &svm,
            &i64::try_from(volume.size).unwrap_or(i64::MAX),
            &key_id,
            &key_manager,
            &stored_on,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn update_volume_key(
    t: &Transaction<'_>,
    uuid: &str,
    key: &VolumeKey,
) -> StoreResult<()> {
    let updated = execute(
        t,
        "UPDATE volumes SET key_id = $2, key_manager_uuid = $3, stored_on = $4 WHERE uuid = $1",
        &[
            &uuid,
            &key.key_id,
            &key.key_manager.as_str(),
            &encode_stored_on(&key.stored_on),
        ],
    )
    .await?;
    match updated {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(super) async fn delete_volume(t: &Transaction<'_>, uuid: &str) -> StoreResult<()> {
    match execute(t, "DELETE FROM volumes WHERE uuid = $1", &[&uuid]).await? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
