//! Reads several parts make the same way: an external key manager unpacked with ONTAP's first
//! checks, and the certificates a key manager names, which must still be installed.

use super::cluster::Cluster;
use super::error::{CertificateRole, Error, Result};
use super::model::{
    Certificate, CertificateId, KeyManager, KeyManagerId, KeyManagerKind, KeyServer,
};
use super::store::{ObjectStore, internal, key_manager_read_error};

/// An external key manager, unpacked.
pub struct ExternalKeyManager {
    pub key_manager: KeyManager,
    pub client_certificate: CertificateId,
    pub server_ca_certificates: Vec<CertificateId>,
    pub servers: Vec<KeyServer>,
}

/// A key manager, or 404 with target `uuid`.
pub async fn key_manager(store: &dyn ObjectStore, uuid: &KeyManagerId) -> Result<KeyManager> {
    store
        .get_key_manager(uuid)
        .await
        .map_err(key_manager_read_error)?
        .ok_or(Error::NotFound { target: "uuid" })
}

/// An external key manager on which key server operations are allowed: it exists, it is
/// external, and the cluster supports its scope. The checks ONTAP makes first.
pub async fn external_key_manager(
    store: &dyn ObjectStore,
    cluster: &Cluster,
    uuid: &KeyManagerId,
) -> Result<ExternalKeyManager> {
    let key_manager = key_manager(store, uuid).await?;
    let KeyManagerKind::External {
        client_certificate,
        server_ca_certificates,
        servers,
    } = key_manager.kind.clone()
    else {
        return Err(Error::NotExternal(key_manager.uuid.to_string()));
    };
    cluster.check_multitenant(key_manager.svm.as_ref())?;
    Ok(ExternalKeyManager {
        key_manager,
        client_certificate,
        server_ca_certificates,
        servers,
    })
}

/// The key manager's certificates, which must still be installed (65536821).
pub async fn installed_certificates(
    store: &dyn ObjectStore,
    client_uuid: &CertificateId,
    server_ca_uuids: &[CertificateId],
) -> Result<(Certificate, Vec<Certificate>)> {
    let all = store.list_certificates().await.map_err(internal)?;
    let find = |uuid: &CertificateId, role| {
        all.iter()
            .find(|c| &c.uuid == uuid)
            .cloned()
            .ok_or_else(|| Error::CertificateNotInstalled {
                role,
                uuid: uuid.to_string(),
            })
    };
    let client = find(client_uuid, CertificateRole::Client)?;
    let cas = server_ca_uuids
        .iter()
        .map(|uuid| find(uuid, CertificateRole::ServerCa))
        .collect::<Result<Vec<_>>>()?;
    Ok((client, cas))
}

/// How an external key manager reaches its key servers, offering `offer`.
pub async fn external_connector(
    store: &dyn ObjectStore,
    offer: &kmip::TlsOffer,
    external: &ExternalKeyManager,
) -> Result<kmip::Connector> {
    key_manager_connector(
        store,
        offer,
        &external.client_certificate,
        &external.server_ca_certificates,
    )
    .await
}

/// How the key manager with these certificates reaches its key servers, offering `offer`.
pub async fn key_manager_connector(
    store: &dyn ObjectStore,
    offer: &kmip::TlsOffer,
    client_uuid: &CertificateId,
    server_ca_uuids: &[CertificateId],
) -> Result<kmip::Connector> {
    let (client, cas) = installed_certificates(store, client_uuid, server_ca_uuids).await?;
    super::kmip_check::connector(&client, &cas, offer, None)
}
