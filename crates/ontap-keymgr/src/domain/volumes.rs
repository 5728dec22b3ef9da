//! The volumes part, minimal (`/api/storage/volumes`): a volume's name, SVM and size, and — what
//! the service is for — its volume encryption key (`vek`), made as ONTAP makes keys and stored on
//! every primary key server of the SVM's external key manager, or the cluster's when the SVM has
//! none, with ONTAP's attributes (`x-NETAPP-VserverId` the SVM). Deleting the volume destroys
//! its key. Nothing else of volumes (aggregates, junctions, space, QoS...) is in scope.

use std::sync::Arc;

use kmip::ontap::{KeyKind, KeyLabels, OntapKey};

use super::cluster::Cluster;
use super::error::{Error, Result};
use super::key_copies::{VOLUME_KEY_TYPE, configured, destroy_everywhere, destroy_on, register_on};
use super::limits::check_room;
use super::lookups::{self, ExternalKeyManager};
use super::model::{KeyManagerKind, SvmRef, Volume, VolumeId, VolumeKey};
use super::settings::Settings;
use super::store::{ObjectStore, StoreFailure, VolumeStore, internal};

/// Volumes the service keeps at most.
pub const MAX_VOLUMES: usize = 1024;
/// ONTAP's smallest volume: 20 MiB.
pub const MIN_SIZE: u64 = 20 << 20;
/// ONTAP's volume names: up to 203 characters.
const MAX_NAME_LEN: usize = 203;

/// A volume as a client asks to create it, its SVM resolved.
#[derive(Debug, Clone)]
pub struct NewVolume {
    pub name: String,
    pub svm: SvmRef,
    pub size: Option<i64>,
    pub encrypted: bool,
}

pub struct Volumes {
    store: Arc<dyn VolumeStore>,
    objects: Arc<dyn ObjectStore>,
    cluster: Arc<Cluster>,
    settings: Arc<Settings>,
}

impl Volumes {
    pub fn new(
        store: Arc<dyn VolumeStore>,
        objects: Arc<dyn ObjectStore>,
        cluster: Arc<Cluster>,
        settings: Arc<Settings>,
    ) -> Volumes {
        Volumes {
            store,
            objects,
            cluster,
            settings,
        }
    }

    pub async fn volumes(&self) -> Result<Vec<Volume>> {
        self.store.list_volumes().await.map_err(internal)
    }

    /// One volume, or 404 with target `uuid`.
    pub async fn volume(&self, uuid: &VolumeId) -> Result<Volume> {
        self.volumes()
            .await?
            .into_iter()
            .find(|v| &v.uuid == uuid)
            .ok_or(Error::NotFound { target: "uuid" })
    }

    /// ONTAP's checks of a new volume, made before it becomes a job: its name, its size, the
    /// room left, a name free in its SVM, and a key manager for its key when encrypted.
    pub async fn check_new(&self, new: &NewVolume) -> Result<u64> {
        check_name(&new.name)?;
        let size = match new.size {
            None => MIN_SIZE,
            Some(size) => u64::try_from(size)
                .ok()
                .filter(|s| *s >= MIN_SIZE)
                .ok_or_else(|| Error::InvalidValue {
                    field: "size".into(),
                    message: format!("A volume has at least {MIN_SIZE} bytes (20 MiB)."),
                })?,
        };
        let existing = self.volumes().await?;
        check_room("volumes", existing.len(), MAX_VOLUMES)?;
        if existing
            .iter()
            .any(|v| v.svm.uuid == new.svm.uuid && v.name == new.name)
        {
            return Err(duplicate(&new.name));
        }
        if new.encrypted {
            self.key_manager_for(&new.svm).await?;
        }
        Ok(size)
    }

    /// Creates the volume; an encrypted one gets its key stored on every key server first, all
    /// or none.
    pub async fn create(&self, new: NewVolume, uuid: VolumeId) -> Result<Volume> {
        let size = self.check_new(&new).await?;
        let mut volume = Volume {
            uuid,
            name: new.name,
            svm: new.svm,
            size,
            key: None,
        };
        let mut stored = None;
        if new.encrypted {
            let external = self.key_manager_for(&volume.svm).await?;
            let key = self.store_key(&external, &volume).await?;
            stored = Some(external);
            volume.key = Some(key);
        }
        if let Err(error) = self.store.insert_volume(volume.clone()).await {
            if let (Some(external), Some(key)) = (&stored, &volume.key) {
                let connector = self.connector(external).await?;
                destroy_everywhere(&connector, &external.servers, &key.stored_on).await;
            }
            return Err(StoreFailure {
                conflict: duplicate(&volume.name),
                missing: Error::SvmNotFound(volume.svm.name.clone()),
                ..StoreFailure::default()
            }
            .into_error(error));
        }
        Ok(volume)
    }

    /// Destroys the volume's key on every server that holds it, then the volume.
    pub async fn delete(&self, uuid: &VolumeId) -> Result<()> {
        let volume = self.volume(uuid).await?;
        if let Some(key) = &volume.key {
            let external =
                lookups::external_key_manager(&*self.objects, &self.cluster, &key.key_manager)
                    .await?;
            let connector = self.connector(&external).await?;
            for copy in &key.stored_on {
                let Some(server) = configured(&external.servers, &copy.server) else {
                    continue;
                };
                destroy_on(&connector, server, &copy.unique_identifier)
                    .await
                    .map_err(|error| Error::KeyDestroyFailed {
                        server: copy.server.clone(),
                        reason: error.to_string(),
                    })?;
            }
        }
        self.store
            .delete_volume(uuid)
            .await
            .map_err(|e| StoreFailure::default().into_error(e))
    }

    /// The SVM's external key manager, or the cluster's when the SVM has none.
    async fn key_manager_for(&self, svm: &SvmRef) -> Result<ExternalKeyManager> {
        let key_managers = self
            .objects
            .list_key_managers()
            .await
            .map_err(super::store::key_manager_read_error)?;
        let chosen = key_managers
            .iter()
            .find(|km| km.svm.as_ref().is_some_and(|s| s.uuid == svm.uuid))
            .or_else(|| key_managers.iter().find(|km| km.svm.is_none()))
            .ok_or_else(|| Error::NoKeyManagerForVolume(svm.name.clone()))?;
        if !matches!(chosen.kind, KeyManagerKind::External { .. }) {
            return Err(Error::NoKeyManagerForVolume(svm.name.clone()));
        }
        lookups::external_key_manager(&*self.objects, &self.cluster, &chosen.uuid).await
    }

    async fn store_key(&self, external: &ExternalKeyManager, volume: &Volume) -> Result<VolumeKey> {
        if external.servers.is_empty() {
            return Err(Error::NoKeyServers(external.key_manager.uuid.to_string()));
        }
        let labels = KeyLabels {
            cluster_name: self.cluster.name.clone(),
            cluster_id: self.cluster.uuid.clone(),
            node_id: self
                .cluster
                .first_node()
                .map(|n| n.uuid.clone())
                .unwrap_or_default(),
            vserver_id: volume.svm.uuid.to_string(),
            key_type: VOLUME_KEY_TYPE.into(),
        };
        let key = OntapKey::generate(KeyKind::Volume, labels).map_err(Error::Kmip)?;
        let connector = self.connector(external).await?;
        let mut stored_on = Vec::new();
        for server in &external.servers {
            match register_on(&connector, server, &key).await {
                Ok(stored) => stored_on.push(stored),
                Err(error) => {
                    destroy_everywhere(&connector, &external.servers, &stored_on).await;
                    return Err(error);
                }
            }
        }
        Ok(VolumeKey {
            key_id: key.key_id,
            key_manager: external.key_manager.uuid.clone(),
            stored_on,
        })
    }

    async fn connector(&self, external: &ExternalKeyManager) -> Result<kmip::Connector> {
        lookups::key_manager_connector(
            &*self.objects,
            &self.settings.tls_offer(),
            &external.client_certificate,
            &external.server_ca_certificates,
        )
        .await
    }
}

fn duplicate(name: &str) -> Error {
    Error::AlreadyExists {
        what: "Volume",
        name: name.to_string(),
        target: "name",
    }
}

/// ONTAP's volume names: 1 to 203 letters, digits and '_', starting with a letter or '_'.
fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    match valid {
        true => Ok(()),
        false => Err(Error::InvalidValue {
            field: "name".into(),
            message: format!(
                "The value \"{name}\" is invalid for field \"name\": a volume name has 1 to \
                 {MAX_NAME_LEN} letters, digits and '_', and starts with a letter or '_'."
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_are_ontaps() {
        assert!(check_name("vol_1").is_ok());
        assert!(check_name("_v").is_ok());
        for bad in ["", "1vol", "vol-1", "vol 1", &"v".repeat(204)] {
            assert_eq!(check_name(bad).unwrap_err().code(), 262197, "{bad}");
        }
    }
}
