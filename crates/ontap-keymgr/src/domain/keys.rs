//! The keys part: NSE authentication keys (`/api/security/key-managers/{uuid}/auth-keys`, ONTAP
//! 9.12+), kept as ONTAP keeps them — on every primary key server of the cluster's external key
//! manager, with ONTAP's attributes (`kmip::ontap`). The store records which key is on which
//! server; the key itself is only on the servers. A server that cannot keep a key (PyKMIP refuses
//! ONTAP's attributes) fails the request with ONTAP's code and the server's own reason, and
//! whatever was stored on the other servers is destroyed again.

use std::sync::Arc;

use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

use kmip::message::CustomAttribute;
use kmip::ontap::{self, KeyKind, KeyLabels, OntapKey};

use super::cluster::Cluster;
use super::error::{Error, Result};
use super::key_copies::{
    AUTH_KEY_TYPE, VOLUME_KEY_TYPE, configured, destroy_everywhere, destroy_on, register_on,
    session_on,
};
use super::key_servers::find_server;
use super::lookups::{self, ExternalKeyManager};
use super::model::{AuthKey, KeyManagerId, KeyManagerKind, KeyServer, Secret, StoredOn, SvmRef};
use super::settings::Settings;
use super::store::{KeyStore, ObjectStore, StoreFailure, VolumeStore, internal};

/// ONTAP's limit of authentication keys ("more than 256 AKs", `security key-manager key create`).
pub const MAX_AUTH_KEYS: usize = 256;
/// ONTAP's `key_tag`: 0 to 32 characters.
const KEY_TAG_MAX: usize = 32;
/// ONTAP's `passphrase`: 20 to 32 characters.
const PASSPHRASE_LEN: std::ops::RangeInclusive<usize> = 20..=32;

/// What a restore is limited to (ONTAP's `key_id`, `key_server`, `key_tag`); nothing: every key.
#[derive(Debug, Clone, Default)]
pub struct RestoreFilter {
    pub key_id: Option<String>,
    pub key_server: Option<String>,
    pub key_tag: Option<String>,
}

/// An authentication key as a client asks to create it.
#[derive(Debug, Clone, Default)]
pub struct NewAuthKey {
    pub key_tag: Option<String>,
    pub passphrase: Option<Secret>,
}

/// A key a key manager holds, as a node's key table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    pub key_id: String,
    pub key_tag: String,
    /// ONTAP's key type: `nse_ak`, `vek`.
    pub key_type: &'static str,
    /// The SVM whose key it is; `None`: the cluster's (the admin SVM's).
    pub svm: Option<SvmRef>,
    /// The first key server that keeps it.
    pub server: String,
}

pub struct Keys {
    store: Arc<dyn KeyStore>,
    volumes: Arc<dyn VolumeStore>,
    objects: Arc<dyn ObjectStore>,
    cluster: Arc<Cluster>,
    settings: Arc<Settings>,
}

impl Keys {
    pub fn new(
        store: Arc<dyn KeyStore>,
        volumes: Arc<dyn VolumeStore>,
        objects: Arc<dyn ObjectStore>,
        cluster: Arc<Cluster>,
        settings: Arc<Settings>,
    ) -> Keys {
        Keys {
            store,
            volumes,
            objects,
            cluster,
            settings,
        }
    }

    /// The authentication keys of the cluster's external key manager, oldest first.
    pub async fn auth_keys(&self, key_manager: &KeyManagerId) -> Result<Vec<AuthKey>> {
        self.cluster_external(key_manager).await?;
        self.store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)
    }

    /// One authentication key, or 404 with target `key_id`.
    pub async fn auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> Result<AuthKey> {
        self.auth_keys(key_manager)
            .await?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or(Error::NotFound { target: "key_id" })
    }

    /// The keys a key manager holds, as node `node` sees them: its authentication keys and its
    /// volumes' keys (a volume's key tag is the volume's uuid, as ONTAP's).
    pub async fn held_keys(&self, key_manager: &KeyManagerId, node: &str) -> Result<Vec<HeldKey>> {
        lookups::key_manager(&*self.objects, key_manager).await?;
        if !self.cluster.nodes.iter().any(|n| n.uuid == node) {
            return Err(Error::NotFound {
                target: "node.uuid",
            });
        }
        let first = |stored_on: &[StoredOn]| {
            stored_on
                .first()
                .map(|s| s.server.clone())
                .unwrap_or_default()
        };
        let auth_keys = self
            .store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|k| HeldKey {
                server: first(&k.stored_on),
                key_id: k.key_id,
                key_tag: k.key_tag,
                key_type: AUTH_KEY_TYPE,
                svm: None,
            });
        let volume_keys = self
            .volumes
            .list_volumes()
            .await
            .map_err(internal)?
            .into_iter()
            .filter_map(|v| {
                let key = v.key.filter(|k| &k.key_manager == key_manager)?;
                Some(HeldKey {
                    server: first(&key.stored_on),
                    key_id: key.key_id,
                    key_tag: v.uuid.to_string(),
                    key_type: VOLUME_KEY_TYPE,
                    svm: Some(v.svm),
                })
            });
        Ok(auth_keys.chain(volume_keys).collect())
    }

    /// How many of the key manager's keys (its authentication keys and its volumes' keys) have
    /// their only copies, among its configured servers, on `server`: what removing it would lose.
    pub async fn keys_only_on(&self, key_manager: &KeyManagerId, server: &str) -> Result<usize> {
        let external =
            lookups::external_key_manager(&*self.objects, &self.cluster, key_manager).await?;
        let target = find_server(&external.servers, server)?.server.to_string();
        let others: Vec<String> = external
            .servers
            .iter()
            .map(|s| s.server.to_string())
            .filter(|s| *s != target)
            .collect();
        let mut copies: Vec<Vec<StoredOn>> = self
            .store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|k| k.stored_on)
            .collect();
        copies.extend(
            self.volumes
                .list_volumes()
                .await
                .map_err(internal)?
                .into_iter()
                .filter_map(|v| v.key.filter(|k| &k.key_manager == key_manager))
                .map(|k| k.stored_on),
        );
        Ok(copies
            .iter()
            .filter(|stored_on| {
                stored_on.iter().any(|c| c.server == target)
                    && !stored_on.iter().any(|c| others.contains(&c.server))
            })
            .count())
    }

    /// Makes an authentication key and stores it on every primary key server, all or none.
    pub async fn create_auth_key(
        &self,
        key_manager: &KeyManagerId,
        new: NewAuthKey,
    ) -> Result<AuthKey> {
        let external = self.cluster_external(key_manager).await?;
        let key_tag = self.key_tag(new.key_tag)?;
        let passphrase = match new.passphrase {
            Some(passphrase) => check_passphrase(passphrase)?,
            None => generate_passphrase(),
        };
        let existing = self
            .store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)?;
        if existing.len() >= MAX_AUTH_KEYS {
            return Err(Error::AuthKeyLimit(MAX_AUTH_KEYS));
        }
        if external.servers.is_empty() {
            return Err(Error::NoKeyServers(key_manager.to_string()));
        }
        let key = self.authentication_key(&passphrase)?;
        let connector = self.connector(&external).await?;
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
        let record = AuthKey {
            key_manager: key_manager.clone(),
            key_id: key.key_id.clone(),
            key_tag,
            stored_on,
        };
        if let Err(error) = self.store.insert_auth_key(record.clone()).await {
            destroy_everywhere(&connector, &external.servers, &record.stored_on).await;
            return Err(internal(error));
        }
        Ok(record)
    }

    /// Destroys the key on every server that holds it (a copy already gone counts as
    /// destroyed), then forgets it; a server that fails leaves the record, to be tried again.
    pub async fn delete_auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> Result<()> {
        let external = self.cluster_external(key_manager).await?;
        let key = self
            .store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or(Error::NotFound { target: "key_id" })?;
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
        self.store
            .delete_auth_key(key_manager, key_id)
            .await
            .map_err(|e| {
                StoreFailure {
                    missing: Error::NotFound { target: "key_id" },
                    ..StoreFailure::default()
                }
                .into_error(e)
            })
    }

    /// The checks a restore makes before it becomes a job: an external key manager, and the
    /// key server named, if one is.
    pub async fn check_restore(
        &self,
        key_manager: &KeyManagerId,
        filter: &RestoreFilter,
    ) -> Result<()> {
        let external =
            lookups::external_key_manager(&*self.objects, &self.cluster, key_manager).await?;
        if let Some(server) = &filter.key_server {
            find_server(&external.servers, server)?;
        }
        Ok(())
    }

    /// ONTAP's restore (`security key-manager external restore`): reads back from the key
    /// servers every key they hold for the key manager's scope (or those `filter` names),
    /// confirms each by its attributes and its material, and records the authentication keys
    /// this node lacked. Fails, naming each, when a server or a key cannot be read.
    pub async fn restore(
        &self,
        key_manager: &KeyManagerId,
        filter: RestoreFilter,
    ) -> Result<String> {
        let external =
            lookups::external_key_manager(&*self.objects, &self.cluster, key_manager).await?;
        let servers: Vec<&KeyServer> = match &filter.key_server {
            Some(server) => vec![find_server(&external.servers, server)?],
            None => external.servers.iter().collect(),
        };
        let scope = external
            .key_manager
            .svm
            .as_ref()
            .map(|s| s.uuid.to_string())
            .unwrap_or_else(|| self.cluster.uuid.clone());
        let labels = [
            CustomAttribute::new(ontap::attribute::CLUSTER_ID, &self.cluster.uuid),
            CustomAttribute::new(ontap::attribute::VSERVER_ID, &scope),
        ];
        let connector = self.connector(&external).await?;
        let mut known = self
            .store
            .list_auth_keys(key_manager)
            .await
            .map_err(internal)?;
        let mut restored = std::collections::BTreeSet::new();
        let mut failures = Vec::new();
        let mut first_code = None;
        for server in &servers {
            let found = match read_back(&connector, server, &labels, &filter, &mut failures).await {
                Ok(found) => found,
                Err(error) => {
                    first_code.get_or_insert(error.code());
                    failures.push(format!("{}: {error}", server.server));
                    continue;
                }
            };
            for key in found {
                let tag_matches = |record: &AuthKey| {
                    filter
                        .key_tag
                        .as_ref()
                        .is_none_or(|tag| *tag == record.key_tag)
                };
                match known.iter().find(|k| k.key_id == key.key_id) {
                    Some(record) if tag_matches(record) => {
                        restored.insert(key.key_id);
                    }
                    Some(_) => {}
                    None if key.key_type == AUTH_KEY_TYPE && filter.key_tag.is_none() => {
                        let record = AuthKey {
                            key_manager: key_manager.clone(),
                            key_id: key.key_id.clone(),
                            key_tag: String::new(),
                            stored_on: vec![StoredOn {
                                server: server.server.to_string(),
                                unique_identifier: key.unique_identifier,
                            }],
                        };
                        self.store
                            .insert_auth_key(record.clone())
                            .await
                            .map_err(internal)?;
                        known.push(record);
                        restored.insert(key.key_id);
                    }
                    None => {
                        restored.insert(key.key_id);
                    }
                }
            }
        }
        if !failures.is_empty() {
            return Err(Error::KeysIncomplete {
                action: "restored",
                code: first_code.unwrap_or(65536921),
                details: failures.join("; "),
            });
        }
        Ok(format!(
            "Restored {} key(s) from {} key server(s).",
            restored.len(),
            servers.len()
        ))
    }

    /// Authentication keys live on the admin SVM's (the cluster's) external key manager only.
    async fn cluster_external(&self, key_manager: &KeyManagerId) -> Result<ExternalKeyManager> {
        let found = lookups::key_manager(&*self.objects, key_manager).await?;
        if found.svm.is_some() || !matches!(found.kind, KeyManagerKind::External { .. }) {
            return Err(Error::AuthKeysNeedClusterExternal(key_manager.to_string()));
        }
        lookups::external_key_manager(&*self.objects, &self.cluster, key_manager).await
    }

    /// The tag given (0 to 32 characters), or ONTAP's default: the node's name.
    fn key_tag(&self, given: Option<String>) -> Result<String> {
        let tag = given.unwrap_or_else(|| {
            self.cluster
                .first_node()
                .map(|n| n.name.clone())
                .unwrap_or_default()
        });
        match tag.chars().count() <= KEY_TAG_MAX {
            true => Ok(tag),
            false => Err(Error::InvalidValue {
                field: "key_tag".into(),
                message: format!("The key tag must have at most {KEY_TAG_MAX} characters."),
            }),
        }
    }

    /// A new key labelled as the cluster's, its material derived from `passphrase`.
    fn authentication_key(&self, passphrase: &Secret) -> Result<OntapKey> {
        let node = self.cluster.first_node();
        let labels = KeyLabels {
            cluster_name: self.cluster.name.clone(),
            cluster_id: self.cluster.uuid.to_string(),
            node_id: node.map(|n| n.uuid.clone()).unwrap_or_default(),
            // The admin SVM is the cluster.
            vserver_id: self.cluster.uuid.to_string(),
            key_type: AUTH_KEY_TYPE.into(),
        };
        let mut key = OntapKey::generate(KeyKind::Authentication, labels).map_err(Error::Kmip)?;
        key.material = Sha256::digest(passphrase.expose().as_bytes()).into();
        Ok(key)
    }

    async fn connector(&self, external: &ExternalKeyManager) -> Result<kmip::Connector> {
        lookups::external_connector(&*self.objects, &self.settings.tls_offer(), external).await
    }
}

fn check_passphrase(passphrase: Secret) -> Result<Secret> {
    match PASSPHRASE_LEN.contains(&passphrase.expose().chars().count()) {
        true => Ok(passphrase),
        false => Err(Error::InvalidValue {
            field: "passphrase".into(),
            message: format!(
                "The passphrase must have {} to {} characters.",
                PASSPHRASE_LEN.start(),
                PASSPHRASE_LEN.end()
            ),
        }),
    }
}

fn generate_passphrase() -> Secret {
    let text: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(*PASSPHRASE_LEN.end())
        .map(char::from)
        .collect();
    Secret::new(text)
}

/// The keys `server` holds with `labels` (and the filter's key id), each read back whole; a key
/// that cannot be read is a failure of its own, the others still count.
async fn read_back(
    connector: &kmip::Connector,
    server: &KeyServer,
    labels: &[CustomAttribute],
    filter: &RestoreFilter,
    failures: &mut Vec<String>,
) -> Result<Vec<FoundOn>> {
    let (mut session, credential) = session_on(connector, server).await.map_err(Error::Kmip)?;
    let result = async {
        let (labelled, foreign) =
            ontap::locate_labelled(&mut session, credential.as_ref(), labels).await?;
        if foreign > 0 {
            tracing::warn!(
                server = server.server.as_str(),
                answered = foreign,
                "the key server's Locate ignores ONTAP's filter"
            );
        }
        let mut found = Vec::new();
        for (id, attributes) in labelled {
            let value = |name: &str| {
                attributes
                    .iter()
                    .find(|a| a.name == name)
                    .map(|a| a.value.clone())
                    .unwrap_or_default()
            };
            let (key_id, key_type) = (
                value(ontap::attribute::KEY_ID),
                value(ontap::attribute::KEY_TYPE),
            );
            if filter
                .key_id
                .as_ref()
                .is_some_and(|wanted| *wanted != key_id)
            {
                continue;
            }
            match ontap::get(&mut session, credential.as_ref(), &id).await {
                Ok(material) if material.len() == 32 => found.push(FoundOn {
                    key_id,
                    key_type,
                    unique_identifier: id,
                }),
                Ok(_) => failures.push(format!(
                    "{}: key {key_id} is not a 256-bit key",
                    server.server
                )),
                Err(error) => failures.push(format!("{}: key {key_id}: {error}", server.server)),
            }
        }
        Ok::<_, kmip::Error>(found)
    }
    .await;
    session.close().await;
    result.map_err(Error::Kmip)
}

/// A key read back from a server, with its identifier there.
struct FoundOn {
    key_id: String,
    key_type: String,
    unique_identifier: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_ontaps_length_and_generated_ones_fit() {
        assert!(check_passphrase(Secret::new("x".repeat(19))).is_err());
        assert!(check_passphrase(Secret::new("x".repeat(20))).is_ok());
        assert!(check_passphrase(Secret::new("é".repeat(32))).is_ok());
        let error = check_passphrase(Secret::new("x".repeat(33))).unwrap_err();
        assert_eq!(
            (error.code(), error.target()),
            (262197, Some("passphrase".into()))
        );
        assert!(check_passphrase(generate_passphrase()).is_ok());
    }
}
