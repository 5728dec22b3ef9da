//! Key server connectivity, ONTAP's expensive `connectivity` field: measured by a real KMIP
//! round trip to the primary, falling back to its secondary key servers in order, and cached
//! briefly so that listing many servers, or polling, does not hammer them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::cluster::Node;
use super::error::{Error, Result};
use super::kmip_check::{self, NegotiatedTls};
use super::model::{KeyManagerId, KeyServer};
use super::service::Service;

/// How long a measured state is reused.
const CACHE_FOR: Duration = Duration::from_secs(5);

/// ONTAP's key server states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Available,
    NotResponding,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::NotResponding => "not_responding",
            State::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connectivity {
    /// True when the server is available from every node.
    pub cluster_availability: bool,
    pub node_states: Vec<(Node, State)>,
    /// Why the server is not available, for the key manager's status.
    pub problem: Option<Error>,
    /// How the connection to the server (or the secondary that answered) was secured.
    pub tls: Option<NegotiatedTls>,
}

/// What one probe of a server found.
#[derive(Debug, Clone)]
struct Probe {
    state: State,
    problem: Option<Error>,
    tls: Option<NegotiatedTls>,
}

impl Probe {
    fn unknown(problem: Option<Error>) -> Probe {
        Probe {
            state: State::Unknown,
            problem,
            tls: None,
        }
    }
}

#[derive(Default)]
pub struct ConnectivityCache {
    entries: Mutex<HashMap<(String, String), (Instant, Probe)>>,
}

impl ConnectivityCache {
    fn get(&self, key: &(String, String)) -> Option<Probe> {
        let entries = self.entries.lock().ok()?;
        let (measured, probe) = entries.get(key)?;
        (measured.elapsed() < CACHE_FOR).then(|| probe.clone())
    }

    fn put(&self, key: (String, String), probe: Probe) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (measured, _)| measured.elapsed() < CACHE_FOR);
            entries.insert(key, (Instant::now(), probe));
        }
    }

    /// Drops everything measured, after the TLS offer changed.
    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Drops what is known of a key manager's servers after they changed.
    pub fn forget(&self, key_manager: &KeyManagerId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(km, _), _| km != key_manager.as_str());
        }
    }
}

impl Service {
    /// The connectivity of each server, in order; servers are measured concurrently.
    pub async fn connectivity(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Result<Vec<Connectivity>> {
        let external = self.external_key_manager(key_manager).await?;
        let connector = self
            .key_manager_connector(
                &external.client_certificate,
                &external.server_ca_certificates,
            )
            .await;
        let mut measured: Vec<Option<Probe>> = servers
            .iter()
            .map(|s| {
                self.connectivity
                    .get(&(key_manager.to_string(), s.server.to_string()))
            })
            .collect();
        let mut probes = JoinSet::new();
        for (index, server) in servers.iter().enumerate() {
            if measured[index].is_some() {
                continue;
            }
            let connector = match &connector {
                Ok(connector) => connector.clone(),
                Err(error) => {
                    measured[index] = Some(Probe::unknown(Some(error.clone())));
                    continue;
                }
            };
            let server = server.clone();
            probes.spawn(async move { (index, probe(&connector, &server).await) });
        }
        while let Some(Ok((index, probe))) = probes.join_next().await {
            let key = (key_manager.to_string(), servers[index].server.to_string());
            self.connectivity.put(key, probe.clone());
            measured[index] = Some(probe);
        }
        Ok(measured
            .into_iter()
            .map(|m| self.per_node(m.unwrap_or_else(|| Probe::unknown(None))))
            .collect())
    }

    /// The service is one host: every node sees the same state.
    fn per_node(&self, probe: Probe) -> Connectivity {
        Connectivity {
            cluster_availability: probe.state == State::Available,
            node_states: self
                .cluster
                .nodes
                .iter()
                .map(|node| (node.clone(), probe.state))
                .collect(),
            problem: probe.problem,
            tls: probe.tls,
        }
    }
}

/// The primary first, then each secondary on the primary's port, until one answers.
async fn probe(connector: &kmip::Connector, server: &KeyServer) -> Probe {
    let credential = kmip_check::credential_of(server);
    let mut candidates = vec![server.server.clone()];
    candidates.extend(
        server
            .secondary_key_servers
            .iter()
            .filter_map(|host| server.server.with_host(host).ok()),
    );
    let mut first_problem = None;
    for address in candidates {
        match kmip_check::check_one(connector, &address, credential.as_ref(), server.timeout).await
        {
            Ok(tls) => {
                return Probe {
                    state: State::Available,
                    problem: None,
                    tls: Some(tls),
                };
            }
            Err(error) => {
                first_problem.get_or_insert(error);
            }
        }
    }
    Probe {
        state: State::NotResponding,
        problem: first_problem,
        tls: None,
    }
}
