//! Key managers (`/api/security/key-managers`): one per SVM, or one for the cluster. External
//! ones name a client certificate, server CA certificates and key servers (checked like the key
//! servers POST); onboard ones keep a passphrase.

use super::store::StoreFailure;

use super::catalogue::Catalogue;
use super::certificates::CertificateRef;
use super::error::{CertificateRole, Error, Result};
use super::key_servers::{NewKeyServer, check_limit, check_not_duplicated, parse_new_server};
use super::model::{
    CertificateId, CertificateType, KeyManager, KeyManagerId, KeyManagerKind, KeyServer, Secret,
    SvmRef,
};
use super::store::{key_manager_read_error, write_error};
use super::svms::SvmSelector;

/// Where a new key manager's key servers are in its body.
const EMBEDDED_SERVERS: &str = "external.servers";

/// ONTAP's passphrase length: "32-256 ASCII characters".
const PASSPHRASE_LEN: std::ops::RangeInclusive<usize> = 32..=256;

/// A key manager as a client asks to create it.
#[derive(Debug, Clone, Default)]
pub struct NewKeyManager {
    pub svm: Option<SvmSelector>,
    pub external: Option<NewExternal>,
    pub onboard: Option<NewOnboard>,
}

#[derive(Debug, Clone, Default)]
pub struct NewExternal {
    pub client_certificate: Option<CertificateRef>,
    pub server_ca_certificates: Vec<CertificateRef>,
    pub servers: Vec<NewKeyServer>,
}

#[derive(Debug, Clone, Default)]
pub struct NewOnboard {
    pub passphrase: Option<Secret>,
}

/// What a PATCH of a key manager may change.
#[derive(Debug, Clone, Default)]
pub struct KeyManagerChanges {
    pub client_certificate: Option<CertificateRef>,
    pub server_ca_certificates: Option<Vec<CertificateRef>>,
    pub passphrase: Option<Secret>,
    pub existing_passphrase: Option<Secret>,
    /// `onboard.synchronize`: copy the onboard keys to nodes that miss them.
    pub synchronize: bool,
}

/// ONTAP's `status` of a key manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyManagerStatus {
    pub code: u64,
    pub message: String,
}

/// ONTAP's "all is well" status.
const STATUS_OK: (u64, &str) = (65537200, "No action needed at this time.");
/// ONTAP's status when an SVM's key manager has no key server.
const STATUS_NO_SERVERS: (u64, &str) = (
    65537201,
    "There are no key servers configured for this SVM in the local cluster.",
);

impl Catalogue {
    pub async fn key_managers(&self) -> Result<std::sync::Arc<Vec<KeyManager>>> {
        self.store
            .list_key_managers()
            .await
            .map_err(key_manager_read_error)
    }

    pub async fn create_key_manager(&self, new: NewKeyManager) -> Result<KeyManager> {
        let svm = match &new.svm {
            Some(selector) => Some(self.resolve_svm(selector).await?),
            None => None,
        };
        self.cluster.check_multitenant(svm.as_ref())?;
        self.check_no_key_manager(svm.as_ref()).await?;
        let kind = match (new.external, new.onboard) {
            (Some(_), Some(_)) => {
                return Err(Error::ConflictingFields {
                    first: "external".into(),
                    second: "onboard".into(),
                });
            }
            (None, None) => return Err(Error::MissingValue("external".into())),
            (None, Some(onboard)) => onboard_kind(svm.as_ref(), onboard)?,
            (Some(external), None) => self.external_kind(svm.as_ref(), external).await?,
        };
        let key_manager = KeyManager {
            uuid: KeyManagerId::new_random(),
            svm,
            kind,
        };
        self.store
            .insert_key_manager(key_manager.clone())
            .await
            .map_err(|e| {
                StoreFailure {
                    conflict: already_exists(key_manager.svm.as_ref()),
                    servers_added: key_manager.servers().len(),
                    duplicate_in_request: true,
                    ..StoreFailure::default()
                }
                .into_error(e)
            })?;
        Ok(key_manager)
    }

    pub async fn modify_key_manager(
        &self,
        uuid: &KeyManagerId,
        changes: KeyManagerChanges,
    ) -> Result<KeyManager> {
        let mut key_manager = self.key_manager(uuid).await?;
        self.cluster.check_multitenant(key_manager.svm.as_ref())?;
        let scope = key_manager.svm.clone();
        key_manager.kind = match key_manager.kind {
            KeyManagerKind::Onboard { passphrase } => {
                if changes.client_certificate.is_some() || changes.server_ca_certificates.is_some()
                {
                    return Err(Error::NotExternal(uuid.to_string()));
                }
                let passphrase = if changes.synchronize && changes.passphrase.is_none() {
                    check_synchronize(&passphrase, &changes)?;
                    passphrase
                } else {
                    new_passphrase(&passphrase, &changes)?
                };
                KeyManagerKind::Onboard { passphrase }
            }
            KeyManagerKind::External {
                client_certificate,
                server_ca_certificates,
                servers,
            } => {
                if changes.passphrase.is_some() || changes.existing_passphrase.is_some() {
                    return Err(Error::ReadOnlyField("onboard.passphrase".into()));
                }
                if changes.synchronize {
                    return Err(Error::ReadOnlyField("onboard.synchronize".into()));
                }
                let client_certificate = match &changes.client_certificate {
                    Some(reference) => {
                        self.find_certificate(
                            reference,
                            scope.as_ref(),
                            CertificateType::Client,
                            CertificateRole::Client,
                        )
                        .await?
                        .uuid
                    }
                    None => client_certificate,
                };
                let server_ca_certificates = match &changes.server_ca_certificates {
                    Some(references) => self.server_cas(references, scope.as_ref()).await?,
                    None => server_ca_certificates,
                };
                // New certificates must still reach every configured server, as in ONTAP.
                self.check_servers(&client_certificate, &server_ca_certificates, &servers)
                    .await?;
                KeyManagerKind::External {
                    client_certificate,
                    server_ca_certificates,
                    servers,
                }
            }
        };
        self.store
            .update_key_manager(key_manager.clone())
            .await
            .map_err(write_error(Error::NotFound { target: "uuid" }))?;
        self.connectivity.forget(uuid);
        Ok(key_manager)
    }

    pub async fn delete_key_manager(&self, uuid: &KeyManagerId) -> Result<()> {
        let key_manager = self.key_manager(uuid).await?;
        self.cluster.check_multitenant(key_manager.svm.as_ref())?;
        self.store.delete_key_manager(uuid).await.map_err(|e| {
            StoreFailure {
                conflict: Error::InUse(format!(
                    "Key manager {uuid} still holds keys (authentication keys or volumes' keys): delete them first."
                )),
                ..StoreFailure::default()
            }
            .into_error(e)
        })?;
        self.connectivity.forget(uuid);
        Ok(())
    }

    /// ONTAP's expensive `status`: healthy when every key server answers.
    pub async fn key_manager_status(&self, key_manager: &KeyManager) -> Result<KeyManagerStatus> {
        let servers = key_manager.servers();
        if matches!(key_manager.kind, KeyManagerKind::Onboard { .. }) {
            return Ok(status(STATUS_OK));
        }
        if servers.is_empty() {
            return Ok(status(STATUS_NO_SERVERS));
        }
        let checks = self
            .connectivity
            .latest_checks(&key_manager.uuid, servers)
            .await?;
        let problem = servers
            .iter()
            .zip(&checks)
            .find(|(_, c)| c.state != super::kmip_check::State::Available);
        Ok(match problem {
            None => status(STATUS_OK),
            Some((server, c)) => match &c.problem {
                Some(problem) => KeyManagerStatus {
                    code: problem.code,
                    message: problem.message.clone(),
                },
                None => KeyManagerStatus {
                    code: 65536852,
                    message: format!("Key server {} is not responding.", server.server),
                },
            },
        })
    }

    async fn check_no_key_manager(&self, svm: Option<&SvmRef>) -> Result<()> {
        let taken = self
            .key_managers()
            .await?
            .iter()
            .any(|km| km.svm.as_ref().map(|s| &s.uuid) == svm.map(|s| &s.uuid));
        if taken {
            return Err(already_exists(svm));
        }
        Ok(())
    }

    async fn external_kind(
        &self,
        svm: Option<&SvmRef>,
        external: NewExternal,
    ) -> Result<KeyManagerKind> {
        let Some(client_reference) = external.client_certificate else {
            return Err(Error::ExternalConfigIncomplete {
                target: "external.client_certificate",
            });
        };
        if external.server_ca_certificates.is_empty() {
            return Err(Error::ExternalConfigIncomplete {
                target: "external.server_ca_certificates",
            });
        }
        if external.servers.is_empty() {
            return Err(Error::ExternalConfigIncomplete {
                target: "external.servers",
            });
        }
        let servers = external
            .servers
            .into_iter()
            .map(|new| parse_new_server(new, &[]))
            .collect::<Result<Vec<KeyServer>>>()
            .map_err(|e| e.within(EMBEDDED_SERVERS))?;
        check_not_duplicated(&servers, &[]).map_err(|e| e.within(EMBEDDED_SERVERS))?;
        check_limit(0, servers.len()).map_err(|e| e.within(EMBEDDED_SERVERS))?;
        let client = self
            .find_certificate(
                &client_reference,
                svm,
                CertificateType::Client,
                CertificateRole::Client,
            )
            .await?;
        let ca_uuids = self
            .server_cas(&external.server_ca_certificates, svm)
            .await?;
        self.check_servers(&client.uuid, &ca_uuids, &servers)
            .await?;
        Ok(KeyManagerKind::External {
            client_certificate: client.uuid,
            server_ca_certificates: ca_uuids,
            servers,
        })
    }

    async fn server_cas(
        &self,
        references: &[CertificateRef],
        svm: Option<&SvmRef>,
    ) -> Result<Vec<CertificateId>> {
        let mut uuids = Vec::with_capacity(references.len());
        for reference in references {
            let ca = self
                .find_certificate(
                    reference,
                    svm,
                    CertificateType::ServerCa,
                    CertificateRole::ServerCa,
                )
                .await?;
            if !uuids.contains(&ca.uuid) {
                uuids.push(ca.uuid);
            }
        }
        Ok(uuids)
    }
}

fn status((code, message): (u64, &str)) -> KeyManagerStatus {
    KeyManagerStatus {
        code,
        message: message.to_string(),
    }
}

fn already_exists(svm: Option<&SvmRef>) -> Error {
    match svm {
        Some(_) => Error::KeyManagerExists,
        None => Error::AdminKeyManagerExists,
    }
}

fn onboard_kind(svm: Option<&SvmRef>, onboard: NewOnboard) -> Result<KeyManagerKind> {
    if svm.is_some() {
        return Err(Error::OnboardOnlyForAdmin);
    }
    let passphrase = onboard
        .passphrase
        .ok_or_else(|| Error::MissingValue("onboard.passphrase".into()))?;
    if !valid_passphrase(&passphrase) {
        return Err(Error::PassphraseLengthOnCreate);
    }
    Ok(KeyManagerKind::Onboard { passphrase })
}

/// A passphrase change needs the existing passphrase, which must match, and a new one of the
/// right length that differs from it.
fn new_passphrase(current: &Secret, changes: &KeyManagerChanges) -> Result<Secret> {
    match (&changes.passphrase, &changes.existing_passphrase) {
        (None, None) => Ok(current.clone()),
        (Some(new), Some(existing)) => {
            if existing != current {
                return Err(Error::PassphraseMismatch);
            }
            if !valid_passphrase(new) {
                return Err(Error::PassphraseLengthOnUpdate);
            }
            if new == current {
                return Err(Error::PassphraseUnchanged);
            }
            Ok(new.clone())
        }
        _ => Err(Error::PassphrasePairRequired),
    }
}

/// ONTAP's `synchronize` copies the onboard keys to nodes that miss them, and needs the
/// passphrase to do so. Here every node shares one store and there are no keys to copy, so
/// synchronizing only proves the passphrase.
fn check_synchronize(current: &Secret, changes: &KeyManagerChanges) -> Result<()> {
    match &changes.existing_passphrase {
        None => Err(Error::MissingValue("onboard.existing_passphrase".into())),
        Some(existing) if existing != current => Err(Error::PassphraseMismatch),
        Some(_) => Ok(()),
    }
}

fn valid_passphrase(passphrase: &Secret) -> bool {
    let text = passphrase.expose();
    text.is_ascii() && PASSPHRASE_LEN.contains(&text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_32_to_256_ascii_characters() {
        assert!(valid_passphrase(&Secret::new("a".repeat(32))));
        assert!(valid_passphrase(&Secret::new("a".repeat(256))));
        assert!(!valid_passphrase(&Secret::new("a".repeat(31))));
        assert!(!valid_passphrase(&Secret::new("a".repeat(257))));
        assert!(!valid_passphrase(&Secret::new("é".repeat(20))));
    }

    #[test]
    fn passphrase_changes_follow_ontap_rules() {
        let current = Secret::new("c".repeat(32));
        let change = |new: Option<&str>, existing: Option<&str>| KeyManagerChanges {
            passphrase: new.map(Secret::new),
            existing_passphrase: existing.map(Secret::new),
            ..KeyManagerChanges::default()
        };
        let good = "n".repeat(40);
        let right = "c".repeat(32);
        let code =
            |changes: KeyManagerChanges| new_passphrase(&current, &changes).unwrap_err().code();
        assert_eq!(code(change(Some(&good), None)), 65536917);
        assert_eq!(code(change(Some(&good), Some("wrong"))), 65536139);
        assert_eq!(code(change(Some("short"), Some(&right))), 65536404);
        assert_eq!(code(change(Some(&right), Some(&right))), 65536150);
        let changed = new_passphrase(&current, &change(Some(&good), Some(&right))).expect("valid");
        assert_eq!(changed.expose(), good);
    }

    #[test]
    fn synchronizing_proves_the_passphrase() {
        let current = Secret::new("c".repeat(32));
        let synchronize = |existing: Option<&str>| KeyManagerChanges {
            existing_passphrase: existing.map(Secret::new),
            synchronize: true,
            ..KeyManagerChanges::default()
        };
        let code = |changes| check_synchronize(&current, &changes).unwrap_err().code();
        assert_eq!(code(synchronize(None)), 262212);
        assert_eq!(code(synchronize(Some("wrong"))), 65536139);
        assert!(check_synchronize(&current, &synchronize(Some(&"c".repeat(32)))).is_ok());
    }
}
