//! The settings part: the cluster's security configuration (`/api/security`: FIPS mode and the
//! TLS offer to key servers, in `security.rs`) and the key manager configuration
//! (`/api/security/key-manager-configs`, ONTAP 9.10+). Both are kept in memory, read by every
//! KMIP connection and every monitor round, and changed one at a time.

use std::ops::RangeInclusive;
use std::sync::{Arc, RwLock};

use kmip::TlsOffer;

use super::cluster::{Cluster, OntapVersion};
use super::error::{Error, Result};
use super::model::{KeyManagerConfig, KeyManagerKind};
use super::security::{SecurityChanges, offer_from, offer_of_changes, settings_of};
use super::store::{ObjectStore, SettingsStore, internal};

/// ONTAP's range of `health_monitor_polling_interval`, in minutes.
pub const POLLING_INTERVAL_MINUTES: RangeInclusive<u32> = 15..=30;
/// ONTAP's range of `cloud_kms_retry_count`.
pub const CLOUD_KMS_RETRY_COUNT: RangeInclusive<u32> = 0..=10;

/// Changing the polling interval needs this ONTAP version (65537303).
const POLLING_SINCE: OntapVersion = OntapVersion {
    generation: 9,
    major: 10,
    minor: 0,
};

impl Default for KeyManagerConfig {
    /// ONTAP's defaults.
    fn default() -> Self {
        KeyManagerConfig {
            health_monitor_polling_interval: 15,
            cloud_kms_retry_count: 3,
        }
    }
}

/// What a PATCH of `/api/security/key-manager-configs` asks to change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyManagerConfigChanges {
    pub health_monitor_polling_interval: Option<i64>,
    pub cloud_kms_retry_count: Option<i64>,
    /// Common Criteria mode is not available: only `false` is accepted.
    pub cc_mode_enabled: Option<bool>,
}

/// What a reload from the store changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reloaded {
    pub tls_offer: bool,
    pub key_manager_config: bool,
}

pub struct Settings {
    store: Arc<dyn SettingsStore>,
    /// Read to tell whether an external key manager exists (the polling interval's rule).
    objects: Arc<dyn ObjectStore>,
    cluster: Arc<Cluster>,
    tls_offer: RwLock<TlsOffer>,
    key_manager_config: RwLock<KeyManagerConfig>,
    /// Changes of either configuration, one at a time.
    writes: tokio::sync::Mutex<()>,
}

impl Settings {
    /// ONTAP's defaults until [`Settings::reload`] reads what is stored.
    pub fn new(
        store: Arc<dyn SettingsStore>,
        objects: Arc<dyn ObjectStore>,
        cluster: Arc<Cluster>,
    ) -> Settings {
        Settings {
            store,
            objects,
            cluster,
            tls_offer: Default::default(),
            key_manager_config: Default::default(),
            writes: Default::default(),
        }
    }

    /// What the service offers key servers now.
    pub fn tls_offer(&self) -> TlsOffer {
        self.tls_offer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn key_manager_config(&self) -> KeyManagerConfig {
        *self
            .key_manager_config
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the stored configurations, at start and after another instance changed them;
    /// answers which changed.
    pub async fn reload(&self) -> Result<Reloaded> {
        let offer = match self.store.load_security().await.map_err(internal)? {
            Some(stored) => offer_from(&stored).map_err(|e| {
                Error::Internal(format!("the stored security configuration is invalid: {e}"))
            })?,
            None => self.tls_offer(),
        };
        let config = self
            .store
            .load_key_manager_config()
            .await
            .map_err(internal)?
            .unwrap_or_else(|| self.key_manager_config());
        Ok(Reloaded {
            tls_offer: self.set_tls_offer(offer),
            key_manager_config: self.set_key_manager_config(config),
        })
    }

    /// Applies a change, in ONTAP's way: switching FIPS mode on drops what FIPS does not allow;
    /// explicitly asking for it while FIPS is on is refused.
    pub async fn modify_security(&self, changes: SecurityChanges) -> Result<TlsOffer> {
        let _serialized = self.writes.lock().await;
        let offer = offer_of_changes(&self.tls_offer(), &changes)?;
        self.store
            .save_security(settings_of(&offer))
            .await
            .map_err(internal)?;
        self.set_tls_offer(offer.clone());
        Ok(offer)
    }

    /// Applies a change with ONTAP's checks.
    pub async fn modify_key_manager_config(
        &self,
        changes: KeyManagerConfigChanges,
    ) -> Result<KeyManagerConfig> {
        let _serialized = self.writes.lock().await;
        if changes.cc_mode_enabled == Some(true) {
            return Err(Error::CommonCriteriaUnavailable);
        }
        let mut config = self.key_manager_config();
        if let Some(minutes) = changes.health_monitor_polling_interval {
            let minutes = in_range(
                "health_monitor_polling_interval",
                minutes,
                POLLING_INTERVAL_MINUTES,
            )?;
            if self.cluster.version < POLLING_SINCE {
                return Err(Error::PollingUnsupportedVersion(
                    self.cluster.version.to_string(),
                ));
            }
            if !self.has_external_key_manager().await? {
                return Err(Error::PollingWithoutExternalKeyManager);
            }
            config.health_monitor_polling_interval = minutes;
        }
        if let Some(count) = changes.cloud_kms_retry_count {
            config.cloud_kms_retry_count =
                in_range("cloud_kms_retry_count", count, CLOUD_KMS_RETRY_COUNT)?;
        }
        self.store
            .save_key_manager_config(config)
            .await
            .map_err(internal)?;
        self.set_key_manager_config(config);
        Ok(config)
    }

    /// Answers whether the offer changed.
    fn set_tls_offer(&self, offer: TlsOffer) -> bool {
        let mut current = self.tls_offer.write().unwrap_or_else(|e| e.into_inner());
        let changed = *current != offer;
        *current = offer;
        changed
    }

    /// Answers whether the configuration changed.
    fn set_key_manager_config(&self, config: KeyManagerConfig) -> bool {
        let mut current = self
            .key_manager_config
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let changed = *current != config;
        *current = config;
        changed
    }

    async fn has_external_key_manager(&self) -> Result<bool> {
        Ok(self
            .objects
            .list_key_managers()
            .await
            .map_err(super::store::key_manager_read_error)?
            .iter()
            .any(|km| matches!(km.kind, KeyManagerKind::External { .. })))
    }
}

fn in_range(field: &str, value: i64, range: RangeInclusive<u32>) -> Result<u32> {
    if let Some(value) = u32::try_from(value).ok().filter(|v| range.contains(v)) {
        return Ok(value);
    }
    Err(Error::InvalidValue {
        field: field.to_string(),
        message: format!(
            "Field \"{field}\" must be between {} and {}; {value} is not.",
            range.start(),
            range.end()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ontaps() {
        assert!(in_range("x", 15, POLLING_INTERVAL_MINUTES).is_ok());
        assert!(in_range("x", 30, POLLING_INTERVAL_MINUTES).is_ok());
        let error = in_range(
            "health_monitor_polling_interval",
            14,
            POLLING_INTERVAL_MINUTES,
        )
        .expect_err("out of range");
        assert_eq!(error.code(), 262197);
        assert!(error.to_string().contains("between 15 and 30"), "{error}");
        assert!(in_range("x", 11, CLOUD_KMS_RETRY_COUNT).is_err());
        assert!(in_range("x", -1, CLOUD_KMS_RETRY_COUNT).is_err());
        assert!(in_range("x", i64::MAX, CLOUD_KMS_RETRY_COUNT).is_err());
    }
}
