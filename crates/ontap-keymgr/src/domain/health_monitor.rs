//! ONTAP's key server health monitor and its configuration (`/api/security/key-manager-configs`,
//! ONTAP 9.10+). Every polling interval (ONTAP: 15 minutes by default, 15 to 30) the monitor
//! sends every key server of every external key manager a KMIP Discover Versions, waiting at most
//! 5 seconds for each as ONTAP does (NetApp KB "Why the event log is being spammed by
//! km.keyserver.notavailable alerts"), so that `connectivity` and key managers' `status` answer
//! from its latest result instead of waiting on KMIP round trips.
//!
//! A round spreads its checks evenly over [`ROUND_SHARE`] of the interval, so that thousands of
//! key servers cost a steady trickle of handshakes rather than a burst that starves requests, and
//! checks at most `max_concurrent_checks` servers at once (the permits every check of the service
//! shares); rounds start at the interval with ±10% jitter, so that instances started together do
//! not poll in step.
//!
//! Instances sharing a store share the work: before checking a key manager's servers, a round
//! takes its turn in the store ([`TURN_SHARE`] of an interval, taken again by the holder's next
//! round, taken over by another instance when the holder is gone) and shares what it found;
//! the other instances adopt those checks instead of making their own. A key server is checked
//! once per interval however many instances run.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;

use super::cluster::OntapVersion;
use super::connectivity::{State, probe_all, server_key};
use super::error::{Error, Result};
use super::model::{CertificateId, KeyManagerConfig, KeyManagerId, KeyManagerKind, KeyServer};
use super::service::Service;
use super::store::internal;

/// ONTAP's range of `health_monitor_polling_interval`, in minutes.
pub const POLLING_INTERVAL_MINUTES: RangeInclusive<u32> = 15..=30;
/// ONTAP's range of `cloud_kms_retry_count`.
pub const CLOUD_KMS_RETRY_COUNT: RangeInclusive<u32> = 0..=10;
/// ONTAP's monitor waits this long for each server, whatever the server's own timeout.
pub const CHECK_TIMEOUT_SECONDS: u8 = 5;
/// The share of the interval a round's checks are spread over; the rest is slack for slow
/// servers, so that rounds do not run into each other.
pub const ROUND_SHARE: f64 = 0.8;
/// How long a monitor turn lasts, as a share of the interval: less than one, so that the
/// holder's next round finds its turn ended (and takes it again) unless it is gone.
pub const TURN_SHARE: f64 = 0.9;
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
fn resumes_sessions(interval: Duration) -> bool {
    interval < SESSION_MAX_AGE
}

/// A key manager's connector, with what it was made from.
struct KeptConnector {
    certificates: Vec<CertificateId>,
    offer: kmip::TlsOffer,
    connector: kmip::Connector,
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
    fn kept(
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

    fn keep(&self, key_manager: &KeyManagerId, kept: KeptConnector) {
        let mut connectors = self.lock();
        if connectors.len() < MAX_KEPT_CONNECTORS || connectors.contains_key(key_manager) {
            connectors.insert(key_manager.clone(), kept);
        }
    }

    /// Keeps only the connectors of `key_managers`.
    fn retain(&self, key_managers: &HashSet<&KeyManagerId>) {
        self.lock().retain(|km, _| key_managers.contains(km));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

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

/// How the monitor runs, from the service's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSettings {
    /// Polls at this interval instead of `health_monitor_polling_interval` (tests, demos).
    pub interval: Option<Duration>,
    /// How many KMIP checks may run at once, the monitor's and requests' together.
    pub max_concurrent_checks: usize,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: None,
            max_concurrent_checks: 32,
        }
    }
}

/// What one round of the monitor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub key_managers: usize,
    /// Checked by this instance.
    pub key_servers: usize,
    pub not_available: usize,
    /// Checks adopted from the instances whose turn it was.
    pub from_other_instances: usize,
    pub took: Duration,
}

impl Service {
    pub fn key_manager_config(&self) -> KeyManagerConfig {
        *self
            .key_manager_config
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the stored configuration, if any, at start.
    pub async fn load_key_manager_config(&self) -> Result<()> {
        if let Some(stored) = self
            .store
            .load_key_manager_config()
            .await
            .map_err(internal)?
        {
            *self
                .key_manager_config
                .write()
                .unwrap_or_else(|e| e.into_inner()) = stored;
        }
        Ok(())
    }

    /// Applies a change with ONTAP's checks; a new polling interval applies from now on.
    pub async fn modify_key_manager_config(
        &self,
        changes: KeyManagerConfigChanges,
    ) -> Result<KeyManagerConfig> {
        let _serialized = self.security_writes.lock().await;
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
        *self
            .key_manager_config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = config;
        self.monitor_changed.notify_one();
        Ok(config)
    }

    async fn has_external_key_manager(&self) -> Result<bool> {
        Ok(self
            .key_managers()
            .await?
            .iter()
            .any(|km| matches!(km.kind, KeyManagerKind::External { .. })))
    }

    /// How long the monitor waits between rounds.
    pub fn polling_interval(&self) -> Duration {
        self.monitor.interval.unwrap_or_else(|| {
            let minutes = self.key_manager_config().health_monitor_polling_interval;
            Duration::from_secs(u64::from(minutes) * 60)
        })
    }

    /// One round: every key server of every external key manager, checked as the monitor does,
    /// the checks spread evenly over `spread`. A state that changes is logged, as ONTAP's
    /// `km.keyserver.notavailable` and `km.keyserver.available` events.
    pub async fn check_all_key_servers(self: &Arc<Self>, spread: Duration) -> Result<Round> {
        let started = Instant::now();
        // What other instances changed since this one last served a request.
        self.refresh().await?;
        let key_managers = self.key_managers().await?;
        let total: usize = key_managers.iter().map(|km| km.servers().len()).sum();
        // A turn lasts most of an interval: the holder's next round takes it again, and
        // another instance takes it over when the holder is gone.
        let turn = self.polling_interval().mul_f64(TURN_SHARE);
        let mut checks = tokio::task::JoinSet::new();
        let mut scheduled = 0;
        for key_manager in key_managers.iter() {
            let KeyManagerKind::External {
                servers,
                client_certificate,
                server_ca_certificates,
            } = &key_manager.kind
            else {
                continue;
            };
            let uuid = key_manager.uuid.clone();
            let servers = servers.clone();
            let delay = spread.mul_f64(scheduled as f64 / total.max(1) as f64);
            scheduled += servers.len();
            let (client, cas) = (client_certificate.clone(), server_ca_certificates.clone());
            let service = Arc::clone(self);
            checks.spawn(async move {
                tokio::time::sleep(delay).await;
                if !service.take_monitor_turn(&uuid, turn).await {
                    return (uuid, None);
                }
                let epoch = service.connectivity.epoch(&uuid);
                let connector = service.monitor_connector(&uuid, &client, &cas).await;
                let probes = probe_all(
                    &connector,
                    monitor_settings(&servers),
                    &service.check_permits,
                )
                .await
                .into_iter()
                .filter_map(|(checked, probe)| {
                    let server = servers.iter().find(|s| s.server == checked.server)?;
                    Some((server.clone(), probe))
                })
                .collect::<Vec<_>>();
                let certificates = std::iter::once(client).chain(cas).collect();
                service.share_checks(&uuid, certificates, &probes).await;
                (uuid, Some((epoch, probes)))
            });
        }
        let mut round = Round {
            key_managers: checks.len(),
            key_servers: 0,
            not_available: 0,
            from_other_instances: 0,
            took: Duration::ZERO,
        };
        let mut checked_here = HashSet::new();
        while let Some(joined) = checks.join_next().await {
            let Ok((uuid, Some((epoch, probes)))) = joined else {
                continue;
            };
            for (server, probe) in probes {
                round.key_servers += 1;
                let state = probe.state;
                if state != State::Available {
                    round.not_available += 1;
                }
                let problem = probe.problem.as_ref().map(|p| p.message.clone());
                let previous = self.connectivity.put(&uuid, &server, probe, epoch);
                log_change(
                    &uuid.to_string(),
                    server.server.as_str(),
                    previous,
                    state,
                    problem,
                );
            }
            checked_here.insert(uuid);
        }
        // The key managers other instances had the turn of: what they found.
        round.from_other_instances = self.adopt_shared_checks(None, &checked_here).await;
        // What is configured now: servers added during a long round keep what requests
        // measured of them.
        let configured = self
            .key_managers()
            .await?
            .iter()
            .flat_map(|km| km.servers().iter().map(|s| server_key(&km.uuid, s)))
            .collect();
        self.connectivity.retain(&configured);
        let key_managers = match resumes_sessions(self.polling_interval()) {
            true => configured.iter().map(|(km, _)| km).collect(),
            false => HashSet::new(),
        };
        self.monitor_connectors.retain(&key_managers);
        round.took = started.elapsed();
        Ok(round)
    }

    /// The monitor's connector for a key manager: at intervals short enough to resume sessions,
    /// the previous round's while its certificates and the TLS offer are the same, so that its
    /// servers can resume their sessions. The certificates must still be installed, as for any
    /// check.
    async fn monitor_connector(
        &self,
        key_manager: &KeyManagerId,
        client: &CertificateId,
        cas: &[CertificateId],
    ) -> Result<kmip::Connector> {
        if !resumes_sessions(self.polling_interval()) {
            return self.key_manager_connector(client, cas).await;
        }
        let (client_certificate, ca_certificates) =
            self.installed_certificates(client, cas).await?;
        let certificates: Vec<CertificateId> =
            std::iter::once(client).chain(cas).cloned().collect();
        let offer = self.tls_offer();
        if let Some(connector) = self
            .monitor_connectors
            .kept(key_manager, &certificates, &offer)
        {
            return Ok(connector);
        }
        let connector = super::kmip_check::connector(
            &client_certificate,
            &ca_certificates,
            &offer,
            Some(SESSION_MAX_AGE),
        )?;
        let kept = KeptConnector {
            certificates,
            offer,
            connector: connector.clone(),
        };
        self.monitor_connectors.keep(key_manager, kept);
        Ok(connector)
    }

    /// Whether this instance has the turn to check `key_manager`'s servers (for `turn` from
    /// now). When the store cannot say, it checks them: better twice than not at all.
    async fn take_monitor_turn(&self, key_manager: &KeyManagerId, turn: Duration) -> bool {
        let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(i64::MAX);
        let until = now.saturating_add(i64::try_from(turn.as_millis()).unwrap_or(i64::MAX));
        self.store
            .take_monitor_turn(key_manager, &self.instance, now, until)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot take the health monitor's turn: checking anyway");
                true
            })
    }

    /// Runs the monitor until `shutdown` resolves: a round at once, then one per interval.
    pub async fn run_health_monitor(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let round_started = Instant::now();
            let spread = self.polling_interval().mul_f64(ROUND_SHARE);
            let round = tokio::select! {
                round = self.check_all_key_servers(spread) => round,
                _ = &mut shutdown => return,
            };
            match round {
                Ok(round) => tracing::info!(
                    key_managers = round.key_managers,
                    key_servers = round.key_servers,
                    from_other_instances = round.from_other_instances,
                    not_available = round.not_available,
                    millis = round.took.as_millis() as u64,
                    "health monitor round"
                ),
                Err(error) => tracing::warn!(%error, "health monitor round failed"),
            }
            // Rounds start an interval apart, however long the last one took.
            let wait = jittered(self.polling_interval()).saturating_sub(round_started.elapsed());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A new interval applies at once, not after the old one ran out.
                _ = self.monitor_changed.notified() => {}
                _ = &mut shutdown => return,
            }
        }
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

/// The servers as the monitor checks them: waiting at most ONTAP's monitor timeout.
fn monitor_settings(servers: &[KeyServer]) -> Vec<KeyServer> {
    servers
        .iter()
        .cloned()
        .map(|mut s| {
            s.timeout = s.timeout.at_most(CHECK_TIMEOUT_SECONDS);
            s
        })
        .collect()
}

/// The interval ±10%.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::thread_rng().gen_range(0.9..=1.1))
}

fn log_change(
    key_manager: &str,
    server: &str,
    previous: Option<State>,
    state: State,
    problem: Option<String>,
) {
    match (previous, state) {
        (Some(State::Available), State::NotResponding | State::Unknown) => tracing::warn!(
            key_manager,
            server,
            state = state.as_str(),
            problem = problem.as_deref().unwrap_or(""),
            "key server is not available"
        ),
        (Some(State::NotResponding | State::Unknown), State::Available) => {
            tracing::info!(key_manager, server, "key server is available again")
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_spread_by_ten_percent_at_most() {
        let interval = Duration::from_secs(900);
        for _ in 0..1_000 {
            let wait = jittered(interval);
            assert!(wait >= Duration::from_secs(810) && wait <= Duration::from_secs(990));
        }
    }

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

    /// ONTAP's monitor waits 5 s for every server, whatever the server's own `timeout`: one
    /// that waits indefinitely (-1) is not cut to "do not wait" (a 1 s check).
    #[tokio::test]
    async fn the_monitor_waits_five_seconds_for_a_server_that_waits_indefinitely() {
        use crate::domain::address::KeyServerAddress;
        use crate::domain::connectivity::{State, probe_all};
        use crate::domain::model::KeyServerTimeout;
        let pki = test_support::pki::TestPki::new();
        let slow = test_support::responder::KmipResponder::start_slow(
            &pki.server.cert_pem,
            &pki.server.key_pem,
            &pki.ca.cert_pem,
            Duration::from_secs(2),
        )
        .await;
        let connector = crate::domain::kmip_check::test_connector(&pki);
        let server = KeyServer {
            server: KeyServerAddress::parse(&slow.address.to_string()).expect("address"),
            timeout: KeyServerTimeout::WaitIndefinitely,
            username: None,
            password: None,
            secondary_key_servers: vec![],
        };
        let settings = monitor_settings(std::slice::from_ref(&server));
        assert_eq!(settings[0].timeout, KeyServerTimeout::Seconds(5));
        let probes = probe_all(
            &Ok(connector),
            settings,
            &std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        )
        .await;
        assert_eq!(probes[0].1.state, State::Available, "{:?}", probes[0].1);
        // Longer waits are cut to the monitor's 5 s; "do not wait" stays as it is.
        let capped = |timeout| {
            monitor_settings(&[KeyServer {
                timeout,
                ..server.clone()
            }])[0]
                .timeout
        };
        assert_eq!(
            capped(KeyServerTimeout::Seconds(60)),
            KeyServerTimeout::Seconds(5)
        );
        assert_eq!(
            capped(KeyServerTimeout::Seconds(2)),
            KeyServerTimeout::Seconds(2)
        );
        assert_eq!(
            capped(KeyServerTimeout::DoNotWait),
            KeyServerTimeout::DoNotWait
        );
    }

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
