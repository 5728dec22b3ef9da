//! The `audit` table: the trail of every write.

use rusqlite::{Connection, params};

use super::SqlResultExt;
use crate::domain::model::AuditRecord;
use crate::store::StoreResult;

pub(super) fn append_audit(
    connection: &Connection,
    record: &AuditRecord,
    keep: usize,
) -> StoreResult<()> {
    // `record.index` is ignored: the database numbers the records.
    connection
        .execute(
            "INSERT INTO audit (time, user, method, path, input, status, error_code, address)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.time,
                record.user,
                record.method,
                record.path,
                record.input,
                record.status,
                record.error_code,
                record.address,
            ],
        )
        .db()?;
    // Indexes only grow, so the newest `keep` are those above the last minus `keep`: a range
    // delete on the primary key, which finds nothing to do until the trail is full.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    connection
        .execute(
            "DELETE FROM audit WHERE idx <= last_insert_rowid() - ?1",
            [keep],
        )
        .db()?;
    Ok(())
}

pub(super) fn list_audit_after(
    connection: &Connection,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<AuditRecord>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT idx, time, user, method, path, input, status, error_code, address
             FROM audit WHERE idx > ?1 ORDER BY idx LIMIT ?2",
        )
        .db()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![after, limit], |row| {
            Ok(AuditRecord {
                index: row.get(0)?,
                time: row.get(1)?,
                user: row.get(2)?,
                method: row.get(3)?,
                path: row.get(4)?,
                input: row.get(5)?,
                status: row.get(6)?,
                error_code: row.get(7)?,
                address: row.get(8)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}
