//! The catalogue part: the objects clients configure — SVMs (`svms.rs`), certificates
//! (`certificates.rs`), key managers (`key_managers.rs`) and their key servers
//! (`key_servers.rs`) — with ONTAP's rules in ONTAP's order. A change of a key manager's servers
//! or certificates is proven by a KMIP check first and makes connectivity forget what it knew.

use std::sync::Arc;

use super::cluster::Cluster;
use super::connectivity::Connectivity;
use super::error::Result;
use super::lookups::{self, ExternalKeyManager};
use super::model::{CertificateId, KeyManager, KeyManagerId, KeyServer};
use super::settings::Settings;
use super::store::ObjectStore;

pub struct Catalogue {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) cluster: Arc<Cluster>,
    pub(super) settings: Arc<Settings>,
    pub(super) connectivity: Arc<Connectivity>,
}

impl Catalogue {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        cluster: Arc<Cluster>,
        settings: Arc<Settings>,
        connectivity: Arc<Connectivity>,
    ) -> Catalogue {
        Catalogue {
            store,
            cluster,
            settings,
            connectivity,
        }
    }

    /// A key manager, or 404 with target `uuid`.
    pub async fn key_manager(&self, uuid: &KeyManagerId) -> Result<KeyManager> {
        lookups::key_manager(&*self.store, uuid).await
    }

    /// An external key manager on which key server operations are allowed: it exists, it is
    /// external, and the cluster supports its scope. The checks ONTAP makes first.
    pub async fn external_key_manager(&self, uuid: &KeyManagerId) -> Result<ExternalKeyManager> {
        lookups::external_key_manager(&*self.store, &self.cluster, uuid).await
    }

    /// The KMIP check of `servers` with the key manager's certificates, which must still be
    /// installed: the one way a key server gets verified before it is stored.
    pub(super) async fn check_servers(
        &self,
        client_uuid: &CertificateId,
        server_ca_uuids: &[CertificateId],
        servers: &[KeyServer],
    ) -> Result<()> {
        let connector = lookups::key_manager_connector(
            &*self.store,
            &self.settings.tls_offer(),
            client_uuid,
            server_ca_uuids,
        )
        .await?;
        super::kmip_check::check_all_answer(&connector, servers).await
    }
}
