//! One configuration, from a TOML file, overridden by `KEYMGR_*` environment variables, overridden
//! by command-line flags (the caller applies those last).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::domain::cluster::{ClusterConfig, OntapVersion};

/// How many connections may be open at once unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000;

/// The default address: local only, ONTAP's HTTPS port is 443 but that needs privileges.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Serve plain HTTP (behind a TLS-terminating proxy).
    pub http: bool,
    /// How many connections may be open at once; at the limit the longest idle one is closed.
    pub max_connections: usize,
    /// PEM certificate chain and key for HTTPS; generated into the data dir when absent.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub cluster: ClusterConfig,
    pub security: SecurityConfig,
    pub login: LoginConfig,
    /// How many audit records are kept; the oldest go first.
    pub audit_max_records: usize,
}

/// ONTAP's `security login role config` settings for failed logins (`[login]` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginConfig {
    /// 0 (ONTAP's default): accounts are never locked.
    pub max_failed_login_attempts: u32,
    pub lockout_duration: std::time::Duration,
    /// Failures from one address within a minute before it is refused for the rest of it;
    /// 0: off.
    pub max_failed_logins_per_address: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failed_login_attempts: 0,
            lockout_duration: std::time::Duration::from_secs(86_400),
            max_failed_logins_per_address: 10,
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLogin {
    max_failed_login_attempts: Option<u32>,
    /// `30s`, `15m`, `2h` or `1d`; ONTAP counts whole days.
    lockout_duration: Option<String>,
    max_failed_logins_per_address: Option<u32>,
}

/// The cluster's security configuration to apply at start (`[security]` in the file); what it
/// leaves out keeps its stored value, which `PATCH /api/security` changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// FIPS mode: TLS 1.2 and 1.3 with FIPS-approved suites only.
    pub fips: Option<bool>,
    /// `TLSv1.3`, `TLSv1.2`, `TLSv1.1`, `TLSv1`: every version from the lowest given up.
    pub tls_protocol_versions: Option<Vec<String>>,
    /// IANA names, such as `TLS_RSA_WITH_AES_128_CBC_SHA256`.
    pub tls_cipher_suites: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    cluster: FileCluster,
    #[serde(default)]
    security: SecurityConfig,
    #[serde(default)]
    login: FileLogin,
    #[serde(default)]
    audit: FileAudit,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    max_records: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    listen: Option<String>,
    max_connections: Option<usize>,
    data_dir: Option<PathBuf>,
    http: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCluster {
    name: Option<String>,
    version: Option<String>,
    metrocluster: Option<bool>,
    nodes: Option<Vec<String>>,
}

/// Where each setting may come from, as plain optional values.
#[derive(Debug, Default)]
struct Layer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    http: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    cluster_name: Option<String>,
    cluster_version: Option<String>,
    metrocluster: Option<bool>,
    nodes: Option<Vec<String>>,
    security: SecurityConfig,
    max_failed_login_attempts: Option<u32>,
    lockout_duration: Option<String>,
    max_failed_logins_per_address: Option<u32>,
    audit_max_records: Option<usize>,
    max_connections: Option<usize>,
}

impl Layer {
    fn over(self, base: Layer) -> Layer {
        Layer {
            listen: self.listen.or(base.listen),
            data_dir: self.data_dir.or(base.data_dir),
            http: self.http.or(base.http),
            tls_cert: self.tls_cert.or(base.tls_cert),
            tls_key: self.tls_key.or(base.tls_key),
            cluster_name: self.cluster_name.or(base.cluster_name),
            cluster_version: self.cluster_version.or(base.cluster_version),
            metrocluster: self.metrocluster.or(base.metrocluster),
            nodes: self.nodes.or(base.nodes),
            security: self.security.or(base.security),
            max_failed_login_attempts: self
                .max_failed_login_attempts
                .or(base.max_failed_login_attempts),
            lockout_duration: self.lockout_duration.or(base.lockout_duration),
            max_failed_logins_per_address: self
                .max_failed_logins_per_address
                .or(base.max_failed_logins_per_address),
            audit_max_records: self.audit_max_records.or(base.audit_max_records),
            max_connections: self.max_connections.or(base.max_connections),
        }
    }
}

/// Command-line values, which win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub http: bool,
}

impl Config {
    /// Reads the file (if given), then the environment, then the flags.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let from_file = match file {
            Some(path) => file_layer(path)?,
            None => Layer::default(),
        };
        let from_env = env_layer(|name| std::env::var(name).ok())?;
        let from_flags = Layer {
            listen: overrides.listen,
            data_dir: overrides.data_dir,
            http: overrides.http.then_some(true),
            ..Layer::default()
        };
        build(from_flags.over(from_env.over(from_file)))
    }
}

fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Layer {
        listen: file.server.listen,
        data_dir: file.server.data_dir,
        http: file.server.http,
        tls_cert: file.server.tls_cert,
        tls_key: file.server.tls_key,
        cluster_name: file.cluster.name,
        cluster_version: file.cluster.version,
        metrocluster: file.cluster.metrocluster,
        nodes: file.cluster.nodes,
        security: file.security,
        max_failed_login_attempts: file.login.max_failed_login_attempts,
        lockout_duration: file.login.lockout_duration,
        max_failed_logins_per_address: file.login.max_failed_logins_per_address,
        audit_max_records: file.audit.max_records,
        max_connections: file.server.max_connections,
    })
}

fn env_layer(var: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let boolean = |name: &str| -> Result<Option<bool>, ConfigError> {
        match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("1" | "true" | "yes") => Ok(Some(true)),
            Some("0" | "false" | "no") => Ok(Some(false)),
            Some(other) => Err(ConfigError::Invalid(format!(
                "{name}={other} is not a boolean"
            ))),
        }
    };
    let number = |name: &str| -> Result<Option<u32>, ConfigError> {
        var(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| ConfigError::Invalid(format!("{name}={v} is not a whole number")))
            })
            .transpose()
    };
    Ok(Layer {
        listen: var("KEYMGR_LISTEN"),
        data_dir: var("KEYMGR_DATA_DIR").map(PathBuf::from),
        http: boolean("KEYMGR_HTTP")?,
        tls_cert: var("KEYMGR_TLS_CERT").map(PathBuf::from),
        tls_key: var("KEYMGR_TLS_KEY").map(PathBuf::from),
        cluster_name: var("KEYMGR_CLUSTER_NAME"),
        cluster_version: var("KEYMGR_CLUSTER_VERSION"),
        metrocluster: boolean("KEYMGR_CLUSTER_METROCLUSTER")?,
        nodes: var("KEYMGR_CLUSTER_NODES")
            .map(|list| list.split(',').map(|n| n.trim().to_string()).collect()),
        security: SecurityConfig {
            fips: boolean("KEYMGR_FIPS")?,
            ..SecurityConfig::default()
        },
        max_failed_login_attempts: number("KEYMGR_MAX_FAILED_LOGIN_ATTEMPTS")?,
        lockout_duration: var("KEYMGR_LOCKOUT_DURATION"),
        max_failed_logins_per_address: number("KEYMGR_MAX_FAILED_LOGINS_PER_ADDRESS")?,
        audit_max_records: number("KEYMGR_AUDIT_MAX_RECORDS")?.map(|n| n as usize),
        max_connections: number("KEYMGR_MAX_CONNECTIONS")?.map(|n| n as usize),
    })
}

fn build(layer: Layer) -> Result<Config, ConfigError> {
    let listen_text = layer.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_text.parse().map_err(|_| {
        ConfigError::Invalid(format!("listen address \"{listen_text}\" is not IP:PORT"))
    })?;
    let nodes = layer
        .nodes
        .unwrap_or_else(|| vec!["node-01".to_string(), "node-02".to_string()]);
    if nodes.is_empty() || nodes.iter().any(|n| n.is_empty()) {
        return Err(ConfigError::Invalid(
            "cluster nodes must be non-empty names".into(),
        ));
    }
    if layer.tls_cert.is_some() != layer.tls_key.is_some() {
        return Err(ConfigError::Invalid(
            "tls_cert and tls_key go together".into(),
        ));
    }
    Ok(Config {
        listen,
        data_dir: layer.data_dir.unwrap_or_else(|| PathBuf::from("data")),
        http: layer.http.unwrap_or(false),
        max_connections: match layer.max_connections {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "max_connections must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => DEFAULT_MAX_CONNECTIONS,
        },
        tls_cert: layer.tls_cert,
        tls_key: layer.tls_key,
        cluster: ClusterConfig {
            name: layer
                .cluster_name
                .unwrap_or_else(|| "keymgr-cluster".to_string()),
            version: OntapVersion::parse(layer.cluster_version.as_deref().unwrap_or("9.14.1"))
                .map_err(ConfigError::Invalid)?,
            metrocluster: layer.metrocluster.unwrap_or(false),
            nodes,
        },
        security: layer.security,
        login: LoginConfig {
            max_failed_login_attempts: layer.max_failed_login_attempts.unwrap_or(0),
            lockout_duration: match layer.lockout_duration {
                Some(text) => parse_duration(&text)?,
                None => LoginConfig::default().lockout_duration,
            },
            max_failed_logins_per_address: layer
                .max_failed_logins_per_address
                .unwrap_or(LoginConfig::default().max_failed_logins_per_address),
        },
        audit_max_records: match layer.audit_max_records {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "the audit trail keeps at least one record (max_records >= 1)".into(),
                ));
            }
            Some(n) => n,
            None => crate::domain::audit::DEFAULT_RETENTION,
        },
    })
}

/// `30s`, `15m`, `2h`, `1d`, or a number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, ConfigError> {
    let text = text.trim();
    let bad = || {
        ConfigError::Invalid(format!(
            "lockout duration \"{text}\" is not like 30s, 15m, 2h or 1d"
        ))
    };
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    number
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

impl SecurityConfig {
    /// Each setting from `self`, else from `base`.
    fn or(self, base: SecurityConfig) -> SecurityConfig {
        SecurityConfig {
            fips: self.fips.or(base.fips),
            tls_protocol_versions: self.tls_protocol_versions.or(base.tls_protocol_versions),
            tls_cipher_suites: self.tls_cipher_suites.or(base.tls_cipher_suites),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        let v = OntapVersion::parse("9.14.1").expect("valid");
        assert_eq!((v.generation, v.major, v.minor), (9, 14, 1));
        assert!(
            OntapVersion::parse("9.5").expect("valid")
                < OntapVersion::parse("9.6.0").expect("valid")
        );
        assert!(OntapVersion::parse("nine").is_err());
    }

    #[test]
    fn flags_win_over_environment_which_wins_over_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("keymgr.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1000\"\n[cluster]\nname = \"from-file\"\nversion = \"9.5.0\"\nmetrocluster = true\n",
        )
        .expect("write");
        let from_file = file_layer(&file).expect("file");
        let env = env_layer(|name| match name {
            "KEYMGR_CLUSTER_NAME" => Some("from-env".into()),
            "KEYMGR_CLUSTER_NODES" => Some("a, b, c".into()),
            _ => None,
        })
        .expect("env");
        let flags = Layer {
            listen: Some("127.0.0.1:2000".into()),
            ..Layer::default()
        };
        let config = build(flags.over(env.over(from_file))).expect("config");
        assert_eq!(config.listen.port(), 2000);
        assert_eq!(config.cluster.name, "from-env");
        assert_eq!(config.cluster.version.to_string(), "9.5.0");
        assert!(config.cluster.metrocluster);
        assert_eq!(config.cluster.nodes, ["a", "b", "c"]);
    }

    #[test]
    fn durations_have_units() {
        let seconds = |t: &str| parse_duration(t).map(|d| d.as_secs()).ok();
        assert_eq!(seconds("30s"), Some(30));
        assert_eq!(seconds("15m"), Some(900));
        assert_eq!(seconds("1d"), Some(86_400));
        assert_eq!(seconds("45"), Some(45));
        for bad in ["", "0s", "1w", "m", "-1d", "99999999999999999999d"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("keymgr.toml");
        std::fs::write(&file, "[cluster]\nnmae = \"typo\"\n").expect("write");
        assert!(matches!(file_layer(&file), Err(ConfigError::Parse { .. })));
    }
}
