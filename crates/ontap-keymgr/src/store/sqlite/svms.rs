//! The `svms` table: storage VMs, the tenants.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqlResultExt, exists};
use crate::domain::model::Svm;
use crate::store::{StoreError, StoreResult};

pub(super) fn list_svms(connection: &Connection) -> StoreResult<Vec<Svm>> {
    let mut statement = connection
        .prepare_cached("SELECT uuid, name FROM svms ORDER BY name, uuid")
        .db()?;
    let rows = statement
        .query_map([], |row| {
            Ok(Svm {
                uuid: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

pub(super) fn insert_svm(connection: &Connection, svm: &Svm) -> StoreResult<()> {
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM svms WHERE name = ?1)",
            [&svm.name],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(StoreError::Conflict(format!("SVM \"{}\"", svm.name)));
    }
    connection
        .execute(
            "INSERT INTO svms (uuid, name) VALUES (?1, ?2)",
            params![svm.uuid, svm.name],
        )
        .db()?;
    Ok(())
}

pub(super) fn delete_svm(connection: &Connection, uuid: &str) -> StoreResult<()> {
    let name: String = connection
        .query_row("SELECT name FROM svms WHERE uuid = ?1", [uuid], |row| {
            row.get(0)
        })
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    // The messages read with the error's "... already exists".
    if exists(
        connection,
        "SELECT 1 FROM certificates WHERE svm_uuid = ?1",
        uuid,
    )? {
        return Err(StoreError::Conflict(format!(
            "a certificate of SVM \"{name}\""
        )));
    }
    if exists(
        connection,
        "SELECT 1 FROM key_managers WHERE svm_uuid = ?1",
        uuid,
    )? {
        return Err(StoreError::Conflict(format!(
            "a key manager of SVM \"{name}\""
        )));
    }
    connection
        .execute("DELETE FROM svms WHERE uuid = ?1", [uuid])
        .db()?;
    Ok(())
}
