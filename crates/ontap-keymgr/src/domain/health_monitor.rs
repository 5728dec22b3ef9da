//! ONTAP's key server health monitor, a part of connectivity (its configuration,
//! `/api/security/key-manager-configs`, is the settings part's). Every polling interval (ONTAP: 15 minutes by default, 15 to 30) the monitor
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

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::check_cache::server_key;
use super::connectivity::Connectivity;
use super::error::Result;
use super::kmip_check::{State, check_servers};
use super::lookups::{installed_certificates, key_manager_connector};
use super::model::{CertificateId, KeyManagerId, KeyManagerKind, KeyServer};
use super::monitor_connectors::{KeptConnector, SESSION_MAX_AGE, resumes_sessions};
use super::store::key_manager_read_error;

/// ONTAP's monitor waits this long for each server, whatever the server's own timeout.
pub const CHECK_TIMEOUT_SECONDS: u8 = 5;
/// The share of the interval a round's checks are spread over; the rest is slack for slow
/// servers, so that rounds do not run into each other.
pub const ROUND_SHARE: f64 = 0.8;
/// How long a monitor turn lasts, as a share of the interval: less than one, so that the
/// holder's next round finds its turn ended (and takes it again) unless it is gone.
pub const TURN_SHARE: f64 = 0.9;

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

impl Connectivity {
    /// How long the monitor waits between rounds.
    pub fn polling_interval(&self) -> Duration {
        self.monitor.interval.unwrap_or_else(|| {
            let minutes = self
                .settings
                .key_manager_config()
                .health_monitor_polling_interval;
            Duration::from_secs(u64::from(minutes) * 60)
        })
    }

    /// One round: every key server of every external key manager, checked as the monitor does,
    /// the checks spread evenly over `spread`. A state that changes is logged, as ONTAP's
    /// `km.keyserver.notavailable` and `km.keyserver.available` events.
    pub async fn check_all_key_servers(self: &Arc<Self>, spread: Duration) -> Result<Round> {
        let started = Instant::now();
        let key_managers = self
            .store
            .list_key_managers()
            .await
            .map_err(key_manager_read_error)?;
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
                let epoch = service.checks.epoch(&uuid);
                let connector = service.monitor_connector(&uuid, &client, &cas).await;
                let checks_found =
                    check_servers(&connector, monitor_settings(&servers), &service.permits)
                        .await
                        .into_iter()
                        .filter_map(|(checked, check)| {
                            let server = servers.iter().find(|s| s.server == checked.server)?;
                            Some((server.clone(), check))
                        })
                        .collect::<Vec<_>>();
                let certificates = std::iter::once(client).chain(cas).collect();
                service
                    .share_checks(&uuid, certificates, &checks_found)
                    .await;
                (uuid, Some((epoch, checks_found)))
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
            let Ok((uuid, Some((epoch, checks_found)))) = joined else {
                continue;
            };
            for (server, check) in checks_found {
                round.key_servers += 1;
                let state = check.state;
                if state != State::Available {
                    round.not_available += 1;
                }
                let problem = check.problem.as_ref().map(|p| p.message.clone());
                let previous = self.checks.put(&uuid, &server, check, epoch);
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
            .store
            .list_key_managers()
            .await
            .map_err(key_manager_read_error)?
            .iter()
            .flat_map(|km| km.servers().iter().map(|s| server_key(&km.uuid, s)))
            .collect();
        self.checks.retain(&configured);
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
            return key_manager_connector(&*self.store, &self.settings.tls_offer(), client, cas)
                .await;
        }
        let (client_certificate, ca_certificates) =
            installed_certificates(&*self.store, client, cas).await?;
        let certificates: Vec<CertificateId> =
            std::iter::once(client).chain(cas).cloned().collect();
        let offer = self.settings.tls_offer();
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
        self.shared
            .take_monitor_turn(key_manager, &self.instance, now, until)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot take the health monitor's turn: checking anyway");
                true
            })
    }

    /// Runs the monitor until `shutdown` resolves: a round at once, then one per interval,
    /// each after `refresh` brought in what other instances changed.
    pub async fn run_health_monitor<R: Future<Output = Result<()>>>(
        self: Arc<Self>,
        refresh: impl Fn() -> R,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let round_started = Instant::now();
            let spread = self.polling_interval().mul_f64(ROUND_SHARE);
            let round = async {
                refresh().await?;
                self.check_all_key_servers(spread).await
            };
            let round = tokio::select! {
                round = round => round,
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

    /// ONTAP's monitor waits 5 s for every server, whatever the server's own `timeout`: one
    /// that waits indefinitely (-1) is not cut to "do not wait" (a 1 s check).
    #[tokio::test]
    async fn the_monitor_waits_five_seconds_for_a_server_that_waits_indefinitely() {
        use crate::domain::address::KeyServerAddress;
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
        let checks_found = check_servers(
            &Ok(connector),
            settings,
            &std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        )
        .await;
        assert_eq!(
            checks_found[0].1.state,
            State::Available,
            "{:?}",
            checks_found[0].1
        );
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
}
