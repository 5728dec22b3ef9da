//! The cluster's security and key manager configurations (one row each once changed), and the
//! audit trail.

use deadpool_postgres::Transaction;

use super::{corrupt, execute, get, row, rows};
use crate::domain::model::{AuditRecord, KeyManagerConfig, SecuritySettings};
use crate::store::{StoreResult, join_names, split_names};

pub(super) async fn load_security(t: &Transaction<'_>) -> StoreResult<Option<SecuritySettings>> {
    let found = row(
        t,
        "SELECT fips, protocol_versions, cipher_suites FROM security_config WHERE id = 1",
        &[],
    )
    .await?;
    found
        .map(|r| {
            Ok(SecuritySettings {
                fips: get(&r, 0)?,
                protocol_versions: split_names(&get::<String>(&r, 1)?),
                cipher_suites: split_names(&get::<String>(&r, 2)?),
            })
        })
        .transpose()
}

pub(super) async fn save_security(
    t: &Transaction<'_>,
    settings: &SecuritySettings,
) -> StoreResult<()> {
    // What was checked with the old TLS offer no longer holds.
    super::checks::forget_all(t).await?;
    execute(
        t,
        "INSERT INTO security_config (id, fips, protocol_versions, cipher_suites)
         VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET fips = $1, protocol_versions = $2, cipher_suites = $3",
        &[
            &settings.fips,
            &join_names(&settings.protocol_versions),
            &join_names(&settings.cipher_suites),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn load_key_manager_config(
    t: &Transaction<'_>,
) -> StoreResult<Option<KeyManagerConfig>> {
    let found = row(
        t,
        "SELECT health_monitor_polling_interval, cloud_kms_retry_count
         FROM key_manager_config WHERE id = 1",
        &[],
    )
    .await?;
    let count = |r: &tokio_postgres::Row, column| {
        u32::try_from(get::<i32>(r, column)?).map_err(|_| corrupt("a negative setting"))
    };
    found
        .map(|r| {
            Ok(KeyManagerConfig {
                health_monitor_polling_interval: count(&r, 0)?,
                cloud_kms_retry_count: count(&r, 1)?,
            })
        })
        .transpose()
}

pub(super) async fn save_key_manager_config(
    t: &Transaction<'_>,
    config: &KeyManagerConfig,
) -> StoreResult<()> {
    let value = |v: u32| i32::try_from(v).map_err(|_| corrupt("a setting out of range"));
    execute(
        t,
        "INSERT INTO key_manager_config (id, health_monitor_polling_interval, cloud_kms_retry_count)
         VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET health_monitor_polling_interval = $1,
                                        cloud_kms_retry_count = $2",
        &[
            &value(config.health_monitor_polling_interval)?,
            &value(config.cloud_kms_retry_count)?,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn append_audit(
    t: &Transaction<'_>,
    record: &AuditRecord,
    keep: usize,
) -> StoreResult<()> {
    // `record.index` is ignored: the database numbers the records.
    let inserted = row(
        t,
        "INSERT INTO audit (time, \"user\", method, path, input, status, error_code, address)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING idx",
        &[
            &record.time,
            &record.user,
            &record.method,
            &record.path,
            &record.input,
            &i32::from(record.status),
            &record.error_code,
            &record.address,
        ],
    )
    .await?
    .ok_or_else(|| corrupt("an audit record without index"))?;
    let index: i64 = get(&inserted, 0)?;
    // Indexes only grow, so the newest `keep` are those above this one minus `keep`: a range
    // delete on the primary key, which finds nothing to do until the trail is full.
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    execute(
        t,
        "DELETE FROM audit WHERE idx <= $1",
        &[&index.saturating_sub(keep)],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_audit_after(
    t: &Transaction<'_>,
    after: i64,
    limit: usize,
) -> StoreResult<Vec<AuditRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = rows(
        t,
        "SELECT idx, time, \"user\", method, path, input, status, error_code, address
         FROM audit WHERE idx > $1 ORDER BY idx LIMIT $2",
        &[&after, &limit],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(AuditRecord {
                index: get(r, 0)?,
                time: get(r, 1)?,
                user: get(r, 2)?,
                method: get(r, 3)?,
                path: get(r, 4)?,
                input: get(r, 5)?,
                status: u16::try_from(get::<i32>(r, 6)?)
                    .map_err(|_| corrupt("an HTTP status out of range"))?,
                error_code: get(r, 7)?,
                address: get(r, 8)?,
            })
        })
        .collect()
}
