//! SVMs, certificates, key managers and their key servers; secrets sealed as in SQLite.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::{corrupt, execute, exists, get, row, rows};
use crate::domain::address::KeyServerAddress;
use crate::domain::model::{
    Certificate, CertificateId, CertificateType, KeyManager, KeyManagerId, KeyManagerKind,
    KeyServer, Svm, SvmId, SvmRef,
};
use crate::store::secrets::{SecretBox, column, open};
use crate::store::{
    MAX_PRIMARY_KEY_SERVERS, StoreError, StoreResult, certificate_name_taken, check_no_duplicates,
    key_server_columns, kind_columns, kind_name, scope_description, sealed_private_key,
    stored_timeout,
};

// ---- SVMs ----------------------------------------------------------------------------------

pub(super) async fn list_svms(t: &Transaction<'_>) -> StoreResult<Vec<Svm>> {
    let found = rows(t, "SELECT uuid, name FROM svms ORDER BY name, uuid", &[]).await?;
    found
        .iter()
        .map(|r| {
            Ok(Svm {
                uuid: SvmId::from_stored(get(r, 0)?),
                name: get(r, 1)?,
            })
        })
        .collect()
}

pub(super) async fn insert_svm(t: &Transaction<'_>, svm: &Svm) -> StoreResult<()> {
    let inserted = execute(
        t,
        "INSERT INTO svms (uuid, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&svm.uuid.as_str(), &svm.name],
    )
    .await?;
    match inserted {
        0 => Err(StoreError::Conflict(format!("SVM \"{}\"", svm.name))),
        _ => Ok(()),
    }
}

pub(super) async fn delete_svm(t: &Transaction<'_>, uuid: &str) -> StoreResult<()> {
    let found = row(
        t,
        "SELECT name FROM svms WHERE uuid = $1 FOR UPDATE",
        &[&uuid],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let name: String = get(&found, 0)?;
    // The messages read with the error's "... already exists"; a reference added meanwhile by
    // another instance is refused by the foreign keys.
    if exists(
        t,
        "SELECT 1 FROM certificates WHERE svm_uuid = $1 LIMIT 1",
        &[&uuid],
    )
    .await?
    {
        return Err(StoreError::Conflict(format!(
            "a certificate of SVM \"{name}\""
        )));
    }
    if exists(
        t,
        "SELECT 1 FROM key_managers WHERE svm_uuid = $1 LIMIT 1",
        &[&uuid],
    )
    .await?
    {
        return Err(StoreError::Conflict(format!(
            "a key manager of SVM \"{name}\""
        )));
    }
    execute(t, "DELETE FROM svms WHERE uuid = $1", &[&uuid]).await?;
    Ok(())
}

/// An SVM reference from `svm_uuid` and the joined `svms.name`.
fn svm_ref(row: &Row, uuid: usize, name: usize) -> StoreResult<Option<SvmRef>> {
    match (
        get::<Option<String>>(row, uuid)?,
        get::<Option<String>>(row, name)?,
    ) {
        (None, _) => Ok(None),
        (Some(uuid), Some(name)) => Ok(Some(SvmRef {
            uuid: SvmId::from_stored(uuid),
            name,
        })),
        (Some(uuid), None) => Err(corrupt(&format!("reference to a missing SVM {uuid}"))),
    }
}

// ---- certificates --------------------------------------------------------------------------

pub(super) async fn list_certificates(
    t: &Transaction<'_>,
    secrets: &SecretBox,
) -> StoreResult<Vec<Certificate>> {
    let found = rows(
        t,
        "SELECT c.uuid, c.name, c.type, c.svm_uuid, s.name, c.public_certificate,
                c.private_key, c.common_name, c.serial_number, c.ca, c.expiry_time
         FROM certificates c LEFT JOIN svms s ON s.uuid = c.svm_uuid
         ORDER BY c.name, c.uuid",
        &[],
    )
    .await?;
    found.iter().map(|r| certificate(r, secrets)).collect()
}

fn certificate(row: &Row, secrets: &SecretBox) -> StoreResult<Certificate> {
    let uuid: String = get(row, 0)?;
    let cert_type: String = get(row, 2)?;
    let private_key = get::<Option<Vec<u8>>>(row, 6)?
        .map(|sealed| open(secrets, &sealed, column::PRIVATE_KEY, &[&uuid]))
        .transpose()?;
    Ok(Certificate {
        svm: svm_ref(row, 3, 4)?,
        name: get(row, 1)?,
        cert_type: CertificateType::parse(&cert_type)
            .ok_or_else(|| corrupt(&format!("certificate type {cert_type}")))?,
        public_certificate: get(row, 5)?,
        private_key,
        common_name: get(row, 7)?,
        serial_number: get(row, 8)?,
        ca: get(row, 9)?,
        expiry_time: get(row, 10)?,
        uuid: CertificateId::from_stored(uuid),
    })
}

pub(super) async fn insert_certificate(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    certificate: &Certificate,
) -> StoreResult<()> {
    let svm_uuid = certificate.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken = exists(
        t,
        "SELECT 1 FROM certificates WHERE COALESCE(svm_uuid, '') = COALESCE($1, '') AND name = $2",
        &[&svm_uuid, &certificate.name],
    )
    .await?;
    if taken {
        return Err(certificate_name_taken(certificate));
    }
    let private_key = sealed_private_key(secrets, certificate)?;
    execute(
        t,
        "INSERT INTO certificates (uuid, name, type, svm_uuid, public_certificate,
             private_key, common_name, serial_number, ca, expiry_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &certificate.uuid.as_str(),
            &certificate.name,
            &certificate.cert_type.as_str(),
            &svm_uuid,
            &certificate.public_certificate,
            &private_key,
            &certificate.common_name,
            &certificate.serial_number,
            &certificate.ca,
            &certificate.expiry_time,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_certificate(t: &Transaction<'_>, uuid: &str) -> StoreResult<()> {
    let found = row(
        t,
        "SELECT name FROM certificates WHERE uuid = $1 FOR UPDATE",
        &[&uuid],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let name: String = get(&found, 0)?;
    let used = exists(
        t,
        "SELECT 1 FROM key_managers WHERE client_certificate_uuid = $1
         UNION ALL SELECT 1 FROM key_manager_server_cas WHERE certificate_uuid = $1 LIMIT 1",
        &[&uuid],
    )
    .await?;
    if used {
        return Err(StoreError::Conflict(format!(
            "a key manager using certificate \"{name}\""
        )));
    }
    execute(t, "DELETE FROM certificates WHERE uuid = $1", &[&uuid]).await?;
    Ok(())
}

// ---- key managers --------------------------------------------------------------------------

/// The key managers in creation order (`only`: the one with this uuid), each with its server
/// CAs and key servers: three queries whatever their number, not three per key manager.
pub(super) async fn load_key_managers(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    only: Option<&str>,
) -> StoreResult<Vec<KeyManager>> {
    let managers = rows(
        t,
        "SELECT k.uuid, k.svm_uuid, s.name, k.kind, k.client_certificate_uuid, k.passphrase
         FROM key_managers k LEFT JOIN svms s ON s.uuid = k.svm_uuid
         WHERE $1::TEXT IS NULL OR k.uuid = $1 ORDER BY k.seq",
        &[&only],
    )
    .await?;
    if managers.is_empty() {
        return Ok(Vec::new());
    }
    let mut cas = server_cas(t, only).await?;
    let mut servers = key_servers(t, secrets, only).await?;
    managers
        .iter()
        .map(|r| {
            let uuid: String = get(r, 0)?;
            let kind = match (
                get::<String>(r, 3)?.as_str(),
                get::<Option<String>>(r, 4)?,
                get::<Option<Vec<u8>>>(r, 5)?,
            ) {
                ("external", Some(client_certificate), None) => KeyManagerKind::External {
                    client_certificate: CertificateId::from_stored(client_certificate),
                    server_ca_certificates: cas.remove(&uuid).unwrap_or_default(),
                    servers: servers.remove(&uuid).unwrap_or_default(),
                },
                ("onboard", None, Some(sealed)) => KeyManagerKind::Onboard {
                    passphrase: open(secrets, &sealed, column::PASSPHRASE, &[&uuid])?,
                },
                _ => return Err(corrupt(&format!("key manager {uuid}"))),
            };
            Ok(KeyManager {
                svm: svm_ref(r, 1, 2)?,
                uuid: KeyManagerId::from_stored(uuid),
                kind,
            })
        })
        .collect()
}

/// The server CA certificates of the key managers, by key manager, in order.
async fn server_cas(
    t: &Transaction<'_>,
    only: Option<&str>,
) -> StoreResult<HashMap<String, Vec<CertificateId>>> {
    let found = rows(
        t,
        "SELECT key_manager_uuid, certificate_uuid FROM key_manager_server_cas
         WHERE $1::TEXT IS NULL OR key_manager_uuid = $1
         ORDER BY key_manager_uuid, position",
        &[&only],
    )
    .await?;
    let mut by_key_manager: HashMap<String, Vec<CertificateId>> = HashMap::new();
    for r in &found {
        by_key_manager
            .entry(get(r, 0)?)
            .or_default()
            .push(CertificateId::from_stored(get(r, 1)?));
    }
    Ok(by_key_manager)
}

/// The key servers of the key managers, by key manager, in order, secrets opened.
async fn key_servers(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    only: Option<&str>,
) -> StoreResult<HashMap<String, Vec<KeyServer>>> {
    let found = rows(
        t,
        "SELECT key_manager_uuid, server, timeout, username, password, secondary_key_servers
         FROM key_servers WHERE $1::TEXT IS NULL OR key_manager_uuid = $1
         ORDER BY key_manager_uuid, position",
        &[&only],
    )
    .await?;
    let mut by_key_manager: HashMap<String, Vec<KeyServer>> = HashMap::new();
    for r in &found {
        let key_manager: String = get(r, 0)?;
        let server = key_server(r, secrets, &key_manager)?;
        by_key_manager.entry(key_manager).or_default().push(server);
    }
    Ok(by_key_manager)
}

fn key_server(row: &Row, secrets: &SecretBox, key_manager: &str) -> StoreResult<KeyServer> {
    let address: String = get(row, 1)?;
    let server = KeyServerAddress::parse(&address)
        .map_err(|error| corrupt(&format!("key server address {address}: {error}")))?;
    let password = get::<Option<Vec<u8>>>(row, 4)?
        .map(|sealed| {
            open(
                secrets,
                &sealed,
                column::KEY_SERVER_PASSWORD,
                &[key_manager, server.as_str()],
            )
        })
        .transpose()?;
    let secondaries: String = get(row, 5)?;
    let secondary_key_servers = serde_json::from_str(&secondaries)
        .map_err(|error| corrupt(&format!("secondary key servers of {server}: {error}")))?;
    Ok(KeyServer {
        timeout: stored_timeout(get(row, 2)?, server.as_str())?,
        username: get(row, 3)?,
        password,
        secondary_key_servers,
        server,
    })
}

pub(super) async fn insert_key_manager(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let svm_uuid = key_manager.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken = exists(
        t,
        "SELECT 1 FROM key_managers WHERE COALESCE(svm_uuid, '') = COALESCE($1, '')",
        &[&svm_uuid],
    )
    .await?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "the key manager of {}",
            scope_description(key_manager.svm.as_ref())
        )));
    }
    let servers = key_manager.servers();
    if servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing: 0 });
    }
    check_no_duplicates(servers)?;
    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    execute(
        t,
        "INSERT INTO key_managers (uuid, svm_uuid, kind, client_certificate_uuid, passphrase)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &key_manager.uuid.as_str(),
            &svm_uuid,
            &kind_name(&key_manager.kind),
            &client_certificate,
            &passphrase,
        ],
    )
    .await?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        insert_server_cas(t, key_manager.uuid.as_str(), server_ca_certificates).await?;
    }
    insert_key_servers(t, secrets, key_manager.uuid.as_str(), 0, servers).await
}

async fn insert_server_cas(
    t: &Transaction<'_>,
    key_manager: &str,
    certificates: &[CertificateId],
) -> StoreResult<()> {
    for (position, certificate) in certificates.iter().enumerate() {
        let position = i32::try_from(position).map_err(|_| corrupt("a position"))?;
        execute(
            t,
            "INSERT INTO key_manager_server_cas (key_manager_uuid, certificate_uuid, position)
             VALUES ($1, $2, $3)",
            &[&key_manager, &certificate.as_str(), &position],
        )
        .await?;
    }
    Ok(())
}

/// The kind of the key manager, locked until the transaction ends: the rules that count or
/// replace what belongs to it hold against other instances.
async fn lock_key_manager(t: &Transaction<'_>, uuid: &str) -> StoreResult<String> {
    let found = row(
        t,
        "SELECT kind FROM key_managers WHERE uuid = $1 FOR UPDATE",
        &[&uuid],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    get(&found, 0)
}

pub(super) async fn update_key_manager(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let uuid = key_manager.uuid.as_str();
    let kind = lock_key_manager(t, uuid).await?;
    // Changing the kind would strand (or invent) key servers; a key manager is deleted and
    // created again instead.
    if kind != kind_name(&key_manager.kind) {
        return Err(StoreError::Conflict(format!(
            "key manager {uuid} of another kind ({kind})"
        )));
    }
    super::checks::forget(t, uuid, None).await?;
    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    execute(
        t,
        "UPDATE key_managers SET client_certificate_uuid = $2, passphrase = $3 WHERE uuid = $1",
        &[&uuid, &client_certificate, &passphrase],
    )
    .await?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        execute(
            t,
            "DELETE FROM key_manager_server_cas WHERE key_manager_uuid = $1",
            &[&uuid],
        )
        .await?;
        insert_server_cas(t, uuid, server_ca_certificates).await?;
    }
    Ok(())
}

pub(super) async fn delete_key_manager(t: &Transaction<'_>, uuid: &str) -> StoreResult<()> {
    // Its key servers and server CA links go with it (ON DELETE CASCADE).
    match execute(t, "DELETE FROM key_managers WHERE uuid = $1", &[&uuid]).await? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

// ---- key servers ---------------------------------------------------------------------------

async fn insert_key_servers(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &str,
    first_position: i32,
    servers: &[KeyServer],
) -> StoreResult<()> {
    for (offset, server) in servers.iter().enumerate() {
        let columns = key_server_columns(secrets, key_manager, server)?;
        let position = i32::try_from(offset)
            .ok()
            .and_then(|offset| first_position.checked_add(offset))
            .ok_or_else(|| corrupt("a position"))?;
        execute(
            t,
            "INSERT INTO key_servers (key_manager_uuid, server, position, timeout, username,
                 password, secondary_key_servers)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key_manager,
                &server.server.as_str(),
                &position,
                &columns.timeout,
                &server.username,
                &columns.password,
                &columns.secondaries,
            ],
        )
        .await?;
    }
    Ok(())
}

/// The check-then-insert that keeps the limit: the key manager's row is locked first, so that
/// no other transaction, on any instance, adds a server between the count and the insert.
pub(super) async fn add_key_servers(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &str,
    servers: &[KeyServer],
) -> StoreResult<()> {
    let kind = lock_key_manager(t, key_manager).await?;
    if kind != "external" {
        return Err(StoreError::Conflict(format!(
            "an onboard key manager {key_manager} (which takes no key servers)"
        )));
    }
    let stored = rows(
        t,
        "SELECT server, position FROM key_servers WHERE key_manager_uuid = $1",
        &[&key_manager],
    )
    .await?;
    let existing = stored.len();
    if existing + servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing });
    }
    check_no_duplicates(servers)?;
    let mut last_position = None;
    for r in &stored {
        let address: String = get(r, 0)?;
        if let Some(server) = servers.iter().find(|s| s.server.as_str() == address) {
            return Err(StoreError::KeyServerExists(server.server.to_string()));
        }
        last_position = last_position.max(Some(get::<i32>(r, 1)?));
    }
    let first_position = last_position.map_or(0, |last| last + 1);
    insert_key_servers(t, secrets, key_manager, first_position, servers).await
}

pub(super) async fn update_key_server(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &str,
    server: &KeyServer,
) -> StoreResult<()> {
    let columns = key_server_columns(secrets, key_manager, server)?;
    let updated = execute(
        t,
        "UPDATE key_servers
         SET timeout = $3, username = $4, password = $5, secondary_key_servers = $6
         WHERE key_manager_uuid = $1 AND server = $2",
        &[
            &key_manager,
            &server.server.as_str(),
            &columns.timeout,
            &server.username,
            &columns.password,
            &columns.secondaries,
        ],
    )
    .await?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    super::checks::forget(t, key_manager, Some(server.server.as_str())).await
}

pub(super) async fn delete_key_server(
    t: &Transaction<'_>,
    key_manager: &str,
    server: &str,
) -> StoreResult<()> {
    let deleted = execute(
        t,
        "DELETE FROM key_servers WHERE key_manager_uuid = $1 AND server = $2",
        &[&key_manager, &server],
    )
    .await?;
    match deleted {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
