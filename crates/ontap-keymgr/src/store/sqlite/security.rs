//! The `security_config` and `key_manager_config` tables: the cluster's security and key manager
//! configurations, one row each once changed.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqlResultExt;
use crate::domain::model::{KeyManagerConfig, SecuritySettings};
use crate::store::{StoreResult, join_names, split_names};

pub(super) fn load_security(connection: &Connection) -> StoreResult<Option<SecuritySettings>> {
    connection
        .query_row(
            "SELECT fips, protocol_versions, cipher_suites FROM security_config WHERE id = 1",
            [],
            |row| {
                Ok(SecuritySettings {
                    fips: row.get(0)?,
                    protocol_versions: split_names(&row.get::<_, String>(1)?),
                    cipher_suites: split_names(&row.get::<_, String>(2)?),
                })
            },
        )
        .optional()
        .db()
}

pub(super) fn save_security(
    connection: &Connection,
    settings: &SecuritySettings,
) -> StoreResult<()> {
    connection
        .execute(
            "INSERT INTO security_config (id, fips, protocol_versions, cipher_suites)
             VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET fips = ?1, protocol_versions = ?2, cipher_suites = ?3",
            params![
                settings.fips,
                join_names(&settings.protocol_versions),
                join_names(&settings.cipher_suites)
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn load_key_manager_config(
    connection: &Connection,
) -> StoreResult<Option<KeyManagerConfig>> {
    connection
        .query_row(
            "SELECT health_monitor_polling_interval, cloud_kms_retry_count
             FROM key_manager_config WHERE id = 1",
            [],
            |row| {
                Ok(KeyManagerConfig {
                    health_monitor_polling_interval: row.get(0)?,
                    cloud_kms_retry_count: row.get(1)?,
                })
            },
        )
        .optional()
        .db()
}

pub(super) fn save_key_manager_config(
    connection: &Connection,
    config: &KeyManagerConfig,
) -> StoreResult<()> {
    connection
        .execute(
            "INSERT INTO key_manager_config (id, health_monitor_polling_interval, cloud_kms_retry_count)
             VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET health_monitor_polling_interval = ?1,
                                            cloud_kms_retry_count = ?2",
            params![config.health_monitor_polling_interval, config.cloud_kms_retry_count],
        )
        .db()?;
    Ok(())
}
