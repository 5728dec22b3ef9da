//! A key's copies on the key servers: storing one on a server (confirmed by its key id, an
//! over-broad `Locate` logged), destroying one (a copy already gone counts as destroyed), and
//! taking back what a failed operation stored. Used by the parts that keep keys (`keys.rs`,
//! `volumes.rs`).

use kmip::ontap::{self, OntapKey};

use super::error::{Error, Result};
use super::kmip_check::credential_of;
use super::model::{KeyServer, StoredOn};

/// What ONTAP's `x-NETAPP-KeyType` says of an authentication key (its REST name).
pub const AUTH_KEY_TYPE: &str = "nse_ak";
/// What ONTAP's `x-NETAPP-KeyType` says of a volume key (its REST name).
pub const VOLUME_KEY_TYPE: &str = "vek";

/// A session with `server`, and the credential its requests carry.
pub(super) async fn session_on(
    connector: &kmip::Connector,
    server: &KeyServer,
) -> std::result::Result<(kmip::Session, Option<kmip::Credential>), kmip::Error> {
    let session = connector
        .connect(server.server.endpoint(), server.timeout.check_duration())
        .await?;
    Ok((session, credential_of(server)))
}

pub(super) fn configured<'a>(servers: &'a [KeyServer], address: &str) -> Option<&'a KeyServer> {
    servers.iter().find(|s| s.server.as_str() == address)
}

/// Registers `key` on one server and confirms it is found there by its key id; a `Locate` that
/// answers other objects too is logged (ONTAP would take them for its key).
pub(super) async fn register_on(
    connector: &kmip::Connector,
    server: &KeyServer,
    key: &OntapKey,
) -> Result<StoredOn> {
    let (mut session, credential) = session_on(connector, server).await.map_err(Error::Kmip)?;
    let stored = async {
        let id = ontap::register(&mut session, credential.as_ref(), key).await?;
        let located = ontap::locate(&mut session, credential.as_ref(), &key.key_id).await?;
        if !located.foreign.is_empty() {
            tracing::warn!(
                server = server.server.as_str(),
                answered = located.foreign.len(),
                "the key server's Locate ignores ONTAP's x-NETAPP-KeyId filter"
            );
        }
        Ok(id)
    }
    .await;
    session.close().await;
    let id = stored.map_err(Error::Kmip)?;
    Ok(StoredOn {
        server: server.server.to_string(),
        unique_identifier: id,
    })
}

/// KMIP's Result Reason "Item Not Found": a copy already gone.
const ITEM_NOT_FOUND: u32 = 0x01;

pub(super) async fn destroy_on(
    connector: &kmip::Connector,
    server: &KeyServer,
    unique_identifier: &str,
) -> std::result::Result<(), kmip::Error> {
    let (mut session, credential) = session_on(connector, server).await?;
    let destroyed = ontap::destroy(&mut session, credential.as_ref(), unique_identifier).await;
    session.close().await;
    match destroyed {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.result, Some((_, Some(ITEM_NOT_FOUND)))) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes back what a failed creation stored: failures are logged, the request's error stands.
pub(super) async fn destroy_everywhere(
    connector: &kmip::Connector,
    servers: &[KeyServer],
    stored_on: &[StoredOn],
) {
    for copy in stored_on {
        let Some(server) = configured(servers, &copy.server) else {
            continue;
        };
        if let Err(error) = destroy_on(connector, server, &copy.unique_identifier).await {
            tracing::warn!(
                server = copy.server.as_str(),
                %error,
                "cannot destroy a key stored before the creation failed: destroy it on the server"
            );
        }
    }
}

/// The material of a copy, read back from `server`.
pub(super) async fn read_material(
    connector: &kmip::Connector,
    server: &KeyServer,
    unique_identifier: &str,
) -> std::result::Result<Vec<u8>, kmip::Error> {
    let (mut session, credential) = session_on(connector, server).await?;
    let material = ontap::get(&mut session, credential.as_ref(), unique_identifier).await;
    session.close().await;
    material
}

/// A copy of `key` on `server`: the one already there (found by its key id, with the same
/// material), or a new one. Storing twice where a copy exists is what this avoids, so that an
/// operation stopped half way can be run again.
pub(super) async fn copy_on(
    connector: &kmip::Connector,
    server: &KeyServer,
    key: &OntapKey,
) -> Result<StoredOn> {
    let (mut session, credential) = session_on(connector, server).await.map_err(Error::Kmip)?;
    let found = async {
        let located = ontap::locate(&mut session, credential.as_ref(), &key.key_id).await?;
        for id in located.confirmed {
            if ontap::get(&mut session, credential.as_ref(), &id).await? == key.material {
                return Ok(Some(id));
            }
        }
        Ok::<_, kmip::Error>(None)
    }
    .await;
    session.close().await;
    match found.map_err(Error::Kmip)? {
        Some(id) => Ok(StoredOn {
            server: server.server.to_string(),
            unique_identifier: id,
        }),
        None => register_on(connector, server, key).await,
    }
}
