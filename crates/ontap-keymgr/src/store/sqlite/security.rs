//! The `security_config` table: the cluster's security configuration, one row once changed.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqlResultExt;
use crate::domain::model::SecuritySettings;
use crate::store::StoreResult;

/// Lists are stored comma-separated: neither version nor suite names contain commas.
const SEPARATOR: &str = ",";

pub(super) fn load_security(connection: &Connection) -> StoreResult<Option<SecuritySettings>> {
    connection
        .query_row(
            "SELECT fips, protocol_versions, cipher_suites FROM security_config WHERE id = 1",
            [],
            |row| {
                Ok(SecuritySettings {
                    fips: row.get(0)?,
                    protocol_versions: split(&row.get::<_, String>(1)?),
                    cipher_suites: split(&row.get::<_, String>(2)?),
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
                settings.protocol_versions.join(SEPARATOR),
                settings.cipher_suites.join(SEPARATOR)
            ],
        )
        .db()?;
    Ok(())
}

fn split(text: &str) -> Vec<String> {
    text.split(SEPARATOR)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
