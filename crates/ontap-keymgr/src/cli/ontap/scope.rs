//! `-vserver`: an SVM, or the cluster. ONTAP calls the cluster's own scope the admin Vserver and
//! names it after the cluster, so `-vserver <cluster name>` and no `-vserver` both mean it.

use serde_json::{Value, json};

use super::client::{Client, encode, records, with_query};
use super::failure::Failure;

/// ONTAP's code when an SVM named in a request does not exist (the service's own code for it).
const SVM_NOT_FOUND: u64 = 2621462;

/// ONTAP's code when a Vserver has no external key manager (65536828, "External key management
/// is not enabled for the SVM").
const NOT_EXTERNAL: u64 = 65536828;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Cluster,
    Svm(String),
}

/// The cluster's name: what ONTAP shows as the Vserver of cluster-scoped objects.
pub fn cluster_name(client: &Client) -> Result<String, Failure> {
    let cluster = client.get("/api/cluster?fields=name")?;
    Ok(cluster["name"].as_str().unwrap_or("cluster").to_string())
}

impl Scope {
    pub fn of(vserver: Option<&str>, cluster: &str) -> Scope {
        match vserver {
            Some(name) if name != cluster => Scope::Svm(name.to_string()),
            _ => Scope::Cluster,
        }
    }

    /// The query filter that selects this scope's objects in a collection.
    pub fn filter(&self) -> (&str, &str) {
        match self {
            Scope::Cluster => ("scope", "cluster"),
            Scope::Svm(name) => ("svm.name", name),
        }
    }

    /// The `svm` member of a request body: absent for the cluster.
    pub fn svm(&self) -> Option<Value> {
        match self {
            Scope::Cluster => None,
            Scope::Svm(name) => Some(json!({ "name": name })),
        }
    }

    /// How ONTAP's messages name this scope.
    fn describe(&self) -> String {
        match self {
            Scope::Cluster => "the admin Vserver".into(),
            Scope::Svm(name) => format!("Vserver \"{name}\""),
        }
    }
}

/// The Vserver a record belongs to, as ONTAP's tables show it.
pub fn vserver_of(record: &Value, cluster: &str) -> String {
    record["svm"]["name"]
        .as_str()
        .unwrap_or(cluster)
        .to_string()
}

/// The uuid of the scope's external key manager. When there is none, says whether the SVM is
/// unknown or simply has no external key manager: the fixes differ.
pub fn external_key_manager(client: &Client, scope: &Scope) -> Result<String, Failure> {
    let (name, value) = scope.filter();
    let path = with_query(
        "/api/security/key-managers",
        &[("fields", "uuid,onboard.enabled"), (name, value)],
    );
    let listing = client.get(&path)?;
    let Some(record) = records(&listing).first() else {
        return Err(missing_key_manager(client, scope));
    };
    if record["onboard"]["enabled"].as_bool() == Some(true) {
        return Err(not_enabled(scope));
    }
    record["uuid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Failure::Connection("the service listed a key manager without uuid".into()))
}

fn missing_key_manager(client: &Client, scope: &Scope) -> Failure {
    let Scope::Svm(name) = scope else {
        return not_enabled(scope);
    };
    match svm_exists(client, name) {
        Ok(true) => not_enabled(scope),
        Ok(false) => Failure::api(
            format!(
                "The specified SVM \"{name}\" does not exist or cannot be accessed by this user."
            ),
            SVM_NOT_FOUND,
        ),
        Err(failure) => failure,
    }
}

fn not_enabled(scope: &Scope) -> Failure {
    Failure::api(
        format!(
            "External key management is not enabled for {}. Use \"security key-manager \
             external enable\" to enable it.",
            scope.describe()
        ),
        NOT_EXTERNAL,
    )
}

fn svm_exists(client: &Client, name: &str) -> Result<bool, Failure> {
    let path = with_query("/api/svm/svms", &[("name", name)]);
    Ok(!records(&client.get(&path)?).is_empty())
}

/// `/api/security/key-managers/<uuid>/key-servers`.
pub fn key_servers_path(key_manager: &str) -> String {
    format!(
        "/api/security/key-managers/{}/key-servers",
        encode(key_manager)
    )
}

/// One key server of a key manager; the server is percent-encoded as ONTAP expects.
pub fn key_server_path(key_manager: &str, server: &str) -> String {
    format!("{}/{}", key_servers_path(key_manager), encode(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_vserver_or_the_clusters_name_mean_the_cluster() {
        assert_eq!(Scope::of(None, "c1"), Scope::Cluster);
        assert_eq!(Scope::of(Some("c1"), "c1"), Scope::Cluster);
        assert_eq!(Scope::of(Some("vs1"), "c1"), Scope::Svm("vs1".into()));
        assert_eq!(Scope::Cluster.filter(), ("scope", "cluster"));
        assert_eq!(Scope::Svm("vs1".into()).filter(), ("svm.name", "vs1"));
    }

    #[test]
    fn key_server_paths_encode_the_server() {
        assert_eq!(
            key_server_path("u-1", "ks1:5696"),
            "/api/security/key-managers/u-1/key-servers/ks1%3A5696"
        );
    }
}
