//! The volumes part, minimal (`/api/storage/volumes`): a volume's name, SVM and size, and — what
//! the service is for — its volume encryption key (`vek`), made as ONTAP makes keys and stored on
//! every primary key server of the SVM's external key manager, or the cluster's when the SVM has
//! none, with ONTAP's attributes (`x-NETAPP-VserverId` the SVM). Deleting the volume destroys
//! its key. Nothing else of volumes (aggregates, junctions, space, QoS...) is in scope.

use std::sync::Arc;

use kmip::ontap::{KeyKind, KeyLabels, OntapKey};

use super::cluster::Cluster;
use super::error::{Error, Result};
use super::key_copies::{
    VOLUME_KEY_TYPE, configured, copy_on, destroy_everywhere, destroy_on, read_material,
    register_on, session_on,
};
use super::limits::check_room;
use super::lookups::{self, ExternalKeyManager};
use super::model::{KeyManagerId, KeyManagerKind, SvmRef, Volume, VolumeId, VolumeKey};
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
    pub async fn check_new(&self, new: &NewVolume) -> Result<()> {
        self.checked(new).await.map(|_| ())
    }

    /// The checks of [`Volumes::check_new`]: answers the volume's size and, when it is
    /// encrypted, the key manager that is to keep its key.
    async fn checked(&self, new: &NewVolume) -> Result<(u64, Option<ExternalKeyManager>)> {
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
        let key_manager = match new.encrypted {
            true => Some(self.key_manager_for(&new.svm).await?),
            false => None,
        };
        Ok((size, key_manager))
    }

    /// Creates the volume; an encrypted one gets its key stored on every key server first, all
    /// or none.
    pub async fn create(&self, new: NewVolume, uuid: VolumeId) -> Result<Volume> {
        let (size, key_manager) = self.checked(&new).await?;
        let mut volume = Volume {
            uuid,
            name: new.name,
            svm: new.svm,
            size,
            key: None,
        };
        if let Some(external) = &key_manager {
            volume.key = Some(self.store_key(external, &volume).await?);
        }
        if let Err(error) = self.store.insert_volume(volume.clone()).await {
            if let (Some(external), Some(key)) = (&key_manager, &volume.key) {
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

    /// ONTAP's checks of a migration, before it becomes a job: both key managers exist and are
    /// external, and one is the cluster's, the other an SVM's. Answers the SVM whose keys move.
    pub async fn check_migrate(
        &self,
        source: &KeyManagerId,
        destination: &KeyManagerId,
    ) -> Result<SvmRef> {
        self.migration(source, destination)
            .await
            .map(|(svm, ..)| svm)
    }

    /// The checks of [`Volumes::check_migrate`]: answers the SVM and both key managers.
    async fn migration(
        &self,
        source: &KeyManagerId,
        destination: &KeyManagerId,
    ) -> Result<(SvmRef, ExternalKeyManager, ExternalKeyManager)> {
        let from = lookups::external_key_manager(&*self.objects, &self.cluster, source).await?;
        let to = lookups::external_key_manager(&*self.objects, &self.cluster, destination)
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::InvalidValue {
                    field: "uuid".into(),
                    message: format!("There is no key manager {destination}."),
                },
                other => other,
            })?;
        match (&from.key_manager.svm, &to.key_manager.svm) {
            (Some(svm), None) | (None, Some(svm)) => Ok((svm.clone(), from, to)),
            _ => Err(Error::InvalidValue {
                field: "uuid".into(),
                message: "Keys migrate between the cluster's key manager and an SVM's key \
                          manager: one of the two must be the cluster's, the other an SVM's."
                    .into(),
            }),
        }
    }

    /// Moves the SVM's volume keys from `source` to `destination`: each is stored (and found)
    /// on every destination server first, then the volume names its new key manager, and only
    /// then are the source's copies destroyed. Stopped half way, nothing is lost: a volume names
    /// a key manager that holds its key, and running the migration again finishes it.
    pub async fn migrate(
        &self,
        source: &KeyManagerId,
        destination: &KeyManagerId,
    ) -> Result<String> {
        let (svm, from, to) = self.migration(source, destination).await?;
        if to.servers.is_empty() {
            return Err(Error::NoKeyServers(destination.to_string()));
        }
        let (from_connector, to_connector) =
            (self.connector(&from).await?, self.connector(&to).await?);
        let moving: Vec<Volume> = self
            .volumes()
            .await?
            .into_iter()
            .filter(|v| v.svm.uuid == svm.uuid)
            .filter(|v| v.key.as_ref().is_some_and(|k| &k.key_manager == source))
            .collect();
        let mut failures = Vec::new();
        let mut first_code = None;
        let mut left_behind = 0;
        for volume in &moving {
            match self
                .move_key(volume, (&from, &from_connector), (&to, &to_connector))
                .await
            {
                Ok(left) => left_behind += left,
                Err(error) => {
                    first_code.get_or_insert(error.code());
                    failures.push(format!("volume {}: {error}", volume.name));
                }
            }
        }
        // Copies a migration stopped half way left on the source, of keys it had moved.
        let moved_before: Vec<String> = self
            .volumes()
            .await?
            .into_iter()
            .filter(|v| v.svm.uuid == svm.uuid)
            .filter_map(|v| v.key.filter(|k| &k.key_manager == destination))
            .map(|k| k.key_id)
            .collect();
        if let Err(error) = remove_copies(&from_connector, &from.servers, &moved_before).await {
            failures.push(format!("the source's old copies: {error}"));
            first_code.get_or_insert(error.code());
        }
        if !failures.is_empty() {
            return Err(Error::KeysIncomplete {
                action: "migrated",
                code: first_code.unwrap_or(65536921),
                details: failures.join("; "),
            });
        }
        let mut message = format!(
            "Migrated {} key(s) of SVM {} to key manager {destination}.",
            moving.len(),
            svm.name
        );
        if left_behind > 0 {
            message.push_str(&format!(
                " {left_behind} copy(ies) could not be destroyed on the source's key servers."
            ));
        }
        Ok(message)
    }

    /// One volume's key: read from a source copy, copied to every destination server, the
    /// volume updated, the source's copies destroyed. Answers how many source copies stayed.
    async fn move_key(
        &self,
        volume: &Volume,
        (from, from_connector): (&ExternalKeyManager, &kmip::Connector),
        (to, to_connector): (&ExternalKeyManager, &kmip::Connector),
    ) -> Result<usize> {
        let Some(key) = &volume.key else {
            return Ok(0);
        };
        let mut material = None;
        let mut last_error = None;
        for copy in &key.stored_on {
            let Some(server) = configured(&from.servers, &copy.server) else {
                continue;
            };
            match read_material(from_connector, server, &copy.unique_identifier).await {
                Ok(read) => {
                    material = Some(read);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let material: [u8; 32] = match material.map(<[u8; 32]>::try_from) {
            Some(Ok(material)) => material,
            Some(Err(_)) => {
                return Err(Error::Internal(format!(
                    "the key of volume {} is not a 256-bit key",
                    volume.name
                )));
            }
            None => {
                return Err(last_error
                    .map(Error::Kmip)
                    .unwrap_or_else(|| Error::NoKeyServers(from.key_manager.uuid.to_string())));
            }
        };
        let moved = OntapKey {
            key_id: key.key_id.clone(),
            material,
            labels: self.labels(volume),
        };
        let mut stored_on = Vec::new();
        for server in &to.servers {
            stored_on.push(copy_on(to_connector, server, &moved).await?);
        }
        let new_key = VolumeKey {
            key_id: key.key_id.clone(),
            key_manager: to.key_manager.uuid.clone(),
            stored_on,
        };
        self.store
            .update_volume_key(&volume.uuid, new_key)
            .await
            .map_err(internal)?;
        let mut left = 0;
        for copy in &key.stored_on {
            let Some(server) = configured(&from.servers, &copy.server) else {
                left += 1;
                continue;
            };
            if let Err(error) = destroy_on(from_connector, server, &copy.unique_identifier).await {
                tracing::warn!(
                    server = copy.server.as_str(),
                    %error,
                    "cannot destroy a migrated key's old copy: destroy it on the server"
                );
                left += 1;
            }
        }
        Ok(left)
    }

    /// ONTAP's labels of a volume's key.
    fn labels(&self, volume: &Volume) -> KeyLabels {
        KeyLabels {
            cluster_name: self.cluster.name.clone(),
            cluster_id: self.cluster.uuid.clone(),
            node_id: self
                .cluster
                .first_node()
                .map(|n| n.uuid.clone())
                .unwrap_or_default(),
            vserver_id: volume.svm.uuid.to_string(),
            key_type: VOLUME_KEY_TYPE.into(),
        }
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
        let key = OntapKey::generate(KeyKind::Volume, self.labels(volume)).map_err(Error::Kmip)?;
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
        lookups::external_connector(&*self.objects, &self.settings.tls_offer(), external).await
    }
}

/// Destroys every copy of these keys (found by key id, confirmed by attributes) on `servers`.
async fn remove_copies(
    connector: &kmip::Connector,
    servers: &[super::model::KeyServer],
    key_ids: &[String],
) -> Result<()> {
    if key_ids.is_empty() {
        return Ok(());
    }
    for server in servers {
        let (mut session, credential) = session_on(connector, server).await.map_err(Error::Kmip)?;
        let removed = async {
            for key_id in key_ids {
                let located =
                    kmip::ontap::locate(&mut session, credential.as_ref(), key_id).await?;
                for id in located.confirmed {
                    kmip::ontap::destroy(&mut session, credential.as_ref(), &id).await?;
                }
            }
            Ok::<_, kmip::Error>(())
        }
        .await;
        session.close().await;
        removed.map_err(Error::Kmip)?;
    }
    Ok(())
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
