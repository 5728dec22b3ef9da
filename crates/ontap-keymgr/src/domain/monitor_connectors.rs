//! The health monitor's connectors, kept across rounds so that key servers can resume TLS
//! sessions, within bounds.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::model::{CertificateId, KeyManagerId};

/// How long a key server's TLS session stands for the certificate check of the full handshake
/// that made it: the monitor's checks resume sessions within it (when the server allows it) and
/// verify the server's certificate again after it. ONTAP's shortest polling interval is longer,
/// so this matters to shorter intervals set in the configuration.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// Connectors the monitor keeps at most, one per external key manager (an OpenSSL context of
/// about 24 KiB, its identity, and its servers' sessions: about 64 KiB with four servers). Key
/// managers beyond it get a connector per round.
const MAX_KEPT_CONNECTORS: usize = 1024;

/// Whether rounds this far apart can resume sessions: at longer intervals (ONTAP's, 15 minutes
/// and more) every session is too old to be offered, and no connector is kept.
pub(super) fn resumes_sessions(interval: Duration) -> bool {
    interval < SESSION_MAX_AGE
}

/// A key manager's connector, with what it was made from.
pub(super) struct KeptConnector {
    pub(super) certificates: Vec<CertificateId>,
    pub(super) offer: kmip::TlsOffer,
    pub(super) connector: kmip::Connector,
}

/// The monitor's connectors, kept across rounds so that key servers can resume TLS sessions.
#[derive(Default)]
pub struct MonitorConnectors(Mutex<HashMap<KeyManagerId, KeptConnector>>);

impl MonitorConnectors {
    /// Held only to read or replace an entry: a poisoned lock's map is whole.
    fn lock(&self) -> MutexGuard<'_, HashMap<KeyManagerId, KeptConnector>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept connector, if it was made from these certificates and this offer.
    pub(super) fn kept(
        &self,
        key_manager: &KeyManagerId,
        certificates: &[CertificateId],
        offer: &kmip::TlsOffer,
    ) -> Option<kmip::Connector> {
        self.lock()
            .get(key_manager)
            .filter(|kept| kept.certificates == certificates && kept.offer == *offer)
            .map(|kept| kept.connector.clone())
    }

    pub(super) fn keep(&self, key_manager: &KeyManagerId, kept: KeptConnector) {
        let mut connectors = self.lock();
        if connectors.len() < MAX_KEPT_CONNECTORS || connectors.contains_key(key_manager) {
            connectors.insert(key_manager.clone(), kept);
        }
    }

    /// Keeps only the connectors of `key_managers`.
    pub(super) fn retain(&self, key_managers: &HashSet<&KeyManagerId>) {
        self.lock().retain(|km, _| key_managers.contains(km));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::POLLING_INTERVAL_MINUTES;

    #[test]
    fn the_kept_connectors_are_bounded_matched_and_pruned() {
        let pki = test_support::pki::TestPki::new();
        let identity = kmip::TlsIdentity::from_pem(
            &pki.client.cert_pem,
            &pki.client.key_pem,
            &[pki.ca.cert_pem.as_str()],
        )
        .expect("identity");
        let offer = kmip::TlsOffer::default();
        let connector = kmip::Connector::new(&identity, &offer).expect("connector");
        fn id<K>(n: usize) -> crate::domain::ids::Id<K> {
            crate::domain::ids::Id::from_stored(format!("id-{n}"))
        }
        let certificates: Vec<CertificateId> = vec![id(1), id(2)];
        let connectors = MonitorConnectors::default();
        let key_managers: Vec<KeyManagerId> = (0..MAX_KEPT_CONNECTORS + 100).map(id).collect();
        for key_manager in &key_managers {
            let kept = KeptConnector {
                certificates: certificates.clone(),
                offer: offer.clone(),
                connector: connector.clone(),
            };
            connectors.keep(key_manager, kept);
        }
        assert_eq!(connectors.len(), MAX_KEPT_CONNECTORS);

        let first = &key_managers[0];
        assert!(connectors.kept(first, &certificates, &offer).is_some());
        assert!(connectors.kept(first, &certificates[..1], &offer).is_none());
        let other_offer = offer.with_fips(true);
        assert_ne!(other_offer, offer);
        assert!(
            connectors
                .kept(first, &certificates, &other_offer)
                .is_none()
        );

        connectors.retain(&HashSet::from([first]));
        assert_eq!(connectors.len(), 1);
    }

    #[test]
    fn sessions_are_resumed_only_at_intervals_shorter_than_their_age() {
        assert!(resumes_sessions(Duration::from_secs(1)));
        assert!(resumes_sessions(Duration::from_secs(30)));
        assert!(!resumes_sessions(SESSION_MAX_AGE));
        let shortest = *POLLING_INTERVAL_MINUTES.start();
        assert!(!resumes_sessions(Duration::from_secs(
            u64::from(shortest) * 60
        )));
    }
}
