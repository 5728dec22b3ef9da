//! The `auth_keys` table: the records of authentication keys (the keys live on the key servers).

use deadpool_postgres::Transaction;

use super::{execute, exists, get, rows};
use crate::domain::model::{AuthKey, KeyManagerId};
use crate::store::{StoreError, StoreResult, decode_stored_on, encode_stored_on};

pub(super) async fn list_auth_keys(
    t: &Transaction<'_>,
    key_manager: &KeyManagerId,
) -> StoreResult<Vec<AuthKey>> {
    let found = rows(
        t,
        "SELECT key_id, key_tag, stored_on FROM auth_keys
         WHERE key_manager_uuid = $1 ORDER BY position",
        &[&key_manager.as_str()],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(AuthKey {
                key_manager: key_manager.clone(),
                key_id: get(r, 0)?,
                key_tag: get(r, 1)?,
                stored_on: decode_stored_on(&get::<String>(r, 2)?)?,
            })
        })
        .collect()
}

pub(super) async fn insert_auth_key(t: &Transaction<'_>, key: &AuthKey) -> StoreResult<()> {
    let key_manager = key.key_manager.as_str();
    if !exists(
        t,
        "SELECT 1 FROM key_managers WHERE uuid = $1",
        &[&key_manager],
    )
    .await?
    {
        return Err(StoreError::NotFound);
    }
    execute(
        t,
        "INSERT INTO auth_keys (key_manager_uuid, key_id, key_tag, stored_on)
         VALUES ($1, $2, $3, $4)",
        &[
            &key_manager,
            &key.key_id,
            &key.key_tag,
            &encode_stored_on(&key.stored_on),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_auth_key(
    t: &Transaction<'_>,
    key_manager: &KeyManagerId,
    key_id: &str,
) -> StoreResult<()> {
    let deleted = execute(
        t,
        "DELETE FROM auth_keys WHERE key_manager_uuid = $1 AND key_id = $2",
        &[&key_manager.as_str(), &key_id],
    )
    .await?;
    match deleted {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
