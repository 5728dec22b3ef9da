//! The cluster the service presents: its name, uuid, ONTAP version, nodes and whether it is a
//! MetroCluster configuration. Key manager rules depend on the last two.

use uuid::Uuid;

use super::error::{Error, Result};
use super::model::SvmRef;

/// The cluster the service presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub name: String,
    pub version: OntapVersion,
    pub metrocluster: bool,
    pub nodes: Vec<String>,
}

/// An ONTAP release number such as 9.14.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OntapVersion {
    pub generation: u32,
    pub major: u32,
    pub minor: u32,
}

impl OntapVersion {
    pub fn parse(text: &str) -> std::result::Result<OntapVersion, String> {
        let bad = || format!("cluster version \"{text}\" is not like 9.14.1");
        let parts: Vec<u32> = text
            .trim()
            .split('.')
            .map(|part| part.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [generation, major] => Ok(OntapVersion {
                generation,
                major,
                minor: 0,
            }),
            [generation, major, minor] => Ok(OntapVersion {
                generation,
                major,
                minor,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for OntapVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.generation, self.major, self.minor)
    }
}

/// SVM-scoped ("multitenant") key managers need this ONTAP version or later.
const MULTITENANT_SINCE: OntapVersion = OntapVersion {
    generation: 9,
    major: 6,
    minor: 0,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub uuid: String,
    pub version: OntapVersion,
    pub metrocluster: bool,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Node uuids are derived from the cluster uuid and the node name, so they are stable
    /// across restarts without being stored.
    pub fn new(config: &ClusterConfig, uuid: Uuid) -> Cluster {
        let nodes = config
            .nodes
            .iter()
            .map(|name| Node {
                name: name.clone(),
                uuid: Uuid::new_v5(&uuid, name.as_bytes()).to_string(),
            })
            .collect();
        Cluster {
            name: config.name.clone(),
            uuid: uuid.to_string(),
            version: config.version,
            metrocluster: config.metrocluster,
            nodes,
        }
    }

    /// The node that answers for the service, which runs on one host.
    pub fn first_node(&self) -> Option<&Node> {
        self.nodes.first()
    }

    /// ONTAP's `version.full` string.
    pub fn full_version(&self) -> String {
        format!("NetApp Release {} (ontap-keymgr)", self.version)
    }

    /// The rules every operation on an SVM-scoped key manager checks first.
    pub fn check_multitenant(&self, svm: Option<&SvmRef>) -> Result<()> {
        if svm.is_none() {
            return Ok(());
        }
        if self.version < MULTITENANT_SINCE {
            return Err(Error::MultitenantUnsupportedVersion(
                self.version.to_string(),
            ));
        }
        if self.metrocluster {
            return Err(Error::MultitenantMetroCluster);
        }
        Ok(())
    }
}
