//! One configuration, from a TOML file, overridden by `KEYMGR_*` environment variables, overridden
//! by command-line flags (the caller applies those last).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

pub use crate::domain::cluster::{ClusterConfig, OntapVersion};
pub use crate::domain::connectivity::MonitorSettings;
pub use crate::domain::login::LockoutPolicy;

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
    /// ONTAP's `security login role config` settings for failed logins (`[login]`).
    pub login: LockoutPolicy,
    /// How many audit records are kept; the oldest go first.
    pub audit_max_records: usize,
    /// The key server health monitor (`[health_monitor]`).
    pub health_monitor: MonitorSettings,
    /// Where the configuration is kept (`[store]`).
    pub store: StoreConfig,
}

/// Where the configuration is kept: the data dir's SQLite file unless a PostgreSQL URL is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://user@host:port/database`: several instances may share it.
    pub url: Option<String>,
    /// The key that seals the stored secrets [default: `secret.key` in the data dir]. Instances
    /// sharing one PostgreSQL database must share this key.
    pub secret_key_file: Option<PathBuf>,
    /// How many PostgreSQL connections an instance opens at most.
    pub max_connections: usize,
}

/// PostgreSQL connections per instance unless configured otherwise: enough for the two cores'
/// workers and the writers they wait on, few enough for many instances on one server.
pub const DEFAULT_STORE_CONNECTIONS: usize = 16;

impl StoreConfig {
    /// The key file: the configured one, or the data dir's.
    pub fn secret_key_path(&self, data_dir: &Path) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("secret.key"))
    }
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

/// Every setting, declared once, as the file lays them out: every key is optional, and the
/// environment and the flags are read into the same shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    server: ServerSettings,
    #[serde(default)]
    cluster: ClusterSettings,
    #[serde(default)]
    security: SecurityConfig,
    #[serde(default)]
    login: LoginSettings,
    #[serde(default)]
    audit: AuditSettings,
    #[serde(default)]
    health_monitor: HealthMonitorSettings,
    #[serde(default)]
    store: StoreSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSettings {
    url: Option<String>,
    secret_key_file: Option<PathBuf>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSettings {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    http: Option<bool>,
    max_connections: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSettings {
    name: Option<String>,
    version: Option<String>,
    metrocluster: Option<bool>,
    nodes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginSettings {
    max_failed_login_attempts: Option<u32>,
    /// `30s`, `15m`, `2h` or `1d`; ONTAP counts whole days.
    lockout_duration: Option<String>,
    max_failed_logins_per_address: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSettings {
    max_records: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthMonitorSettings {
    /// `30s`, `15m`...: polls at this interval instead of the API's
    /// `health_monitor_polling_interval` (minutes, 15 to 30 as in ONTAP).
    interval: Option<String>,
    max_concurrent_checks: Option<usize>,
}

/// One setting, declared once: its place in the file, its environment variable, its flag, its
/// default and what it does. The environment's merge, `serve --help` and the table of
/// docs/operations.md are all read from [`SETTINGS`] (a test holds the document to it).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// `server.listen`; `None` for a variable that is not a file setting (`KEYMGR_LOG`).
    pub path: Option<&'static str>,
    pub env: Option<&'static str>,
    pub flag: Option<&'static str>,
    /// What applies when it is not set, as the document shows it.
    pub default: &'static str,
    pub help: &'static str,
}

const fn setting(
    path: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        path: Some(path),
        env: Some(env),
        flag: None,
        default,
        help,
    }
}

/// Every setting of the service.
pub const SETTINGS: &[Setting] = &[
    Setting {
        flag: Some("--listen"),
        ..setting(
            "server.listen",
            "KEYMGR_LISTEN",
            "`127.0.0.1:8443`",
            "the address to listen on (port 0: any free port)",
        )
    },
    Setting {
        flag: Some("--data-dir"),
        ..setting(
            "server.data_dir",
            "KEYMGR_DATA_DIR",
            "`./data`",
            "where the database, the secret key and the HTTPS certificate live",
        )
    },
    Setting {
        flag: Some("--http"),
        ..setting(
            "server.http",
            "KEYMGR_HTTP",
            "`false` (HTTPS)",
            "serve plain HTTP, behind a TLS-terminating proxy",
        )
    },
    setting(
        "server.max_connections",
        "KEYMGR_MAX_CONNECTIONS",
        "`1000`",
        "connections open at once, at most the open-files limit (raised at start to its hard limit) less 32 and less `max_concurrent_checks`; at the limit the longest idle one is closed",
    ),
    setting(
        "server.tls_cert",
        "KEYMGR_TLS_CERT",
        "self-signed, made in `DIR/tls/`",
        "the HTTPS certificate chain (PEM), with `tls_key`",
    ),
    setting(
        "server.tls_key",
        "KEYMGR_TLS_KEY",
        "self-signed, made in `DIR/tls/`",
        "the HTTPS private key (PEM), with `tls_cert`",
    ),
    setting(
        "audit.max_records",
        "KEYMGR_AUDIT_MAX_RECORDS",
        "`100000`",
        "audit records kept; the oldest go first",
    ),
    setting(
        "cluster.name",
        "KEYMGR_CLUSTER_NAME",
        "`keymgr-cluster`",
        "the cluster's name",
    ),
    setting(
        "cluster.version",
        "KEYMGR_CLUSTER_VERSION",
        "`9.14.1`",
        "the ONTAP version the service presents",
    ),
    setting(
        "cluster.metrocluster",
        "KEYMGR_CLUSTER_METROCLUSTER",
        "`false`",
        "whether the cluster is in a MetroCluster configuration",
    ),
    setting(
        "cluster.nodes",
        "KEYMGR_CLUSTER_NODES",
        "`[\"node-01\", \"node-02\"]`",
        "the nodes' names (a comma list in the environment)",
    ),
    setting(
        "security.fips",
        "KEYMGR_FIPS",
        "stored value, else `false`",
        "FIPS mode: TLS 1.2 and 1.3 with FIPS-approved suites only",
    ),
    Setting {
        env: None,
        ..setting(
            "security.tls_protocol_versions",
            "",
            "stored value, else ONTAP's `[\"TLSv1.3\", \"TLSv1.2\"]`",
            "the TLS versions offered to key servers",
        )
    },
    Setting {
        env: None,
        ..setting(
            "security.tls_cipher_suites",
            "",
            "stored value, else ONTAP's 128 default suites",
            "the cipher suites (IANA names) offered to key servers",
        )
    },
    setting(
        "login.max_failed_login_attempts",
        "KEYMGR_MAX_FAILED_LOGIN_ATTEMPTS",
        "`0` (never lock, as ONTAP)",
        "failed logins that lock an account",
    ),
    setting(
        "login.lockout_duration",
        "KEYMGR_LOCKOUT_DURATION",
        "`1d`",
        "how long a locked account stays locked (`30s`, `15m`, `2h`, `1d`)",
    ),
    setting(
        "login.max_failed_logins_per_address",
        "KEYMGR_MAX_FAILED_LOGINS_PER_ADDRESS",
        "`10`",
        "failed logins from one address within a minute before it is refused for the rest of it (`0`: off)",
    ),
    setting(
        "health_monitor.interval",
        "KEYMGR_HEALTH_MONITOR_INTERVAL",
        "unset: `health_monitor_polling_interval` of `/api/security/key-manager-configs` (ONTAP's 15 minutes; 15 to 30)",
        "how often every key server is checked (`30s`, `15m`...)",
    ),
    setting(
        "health_monitor.max_concurrent_checks",
        "KEYMGR_HEALTH_MONITOR_MAX_CONCURRENT_CHECKS",
        "`32`",
        "KMIP checks at once, the monitor's and requests' together",
    ),
    Setting {
        flag: Some("--database-url"),
        ..setting(
            "store.url",
            "KEYMGR_DATABASE_URL",
            "unset: SQLite in the data dir",
            "a PostgreSQL database (`postgres://user[:password]@host:port/database`) that several instances may share",
        )
    },
    setting(
        "store.secret_key_file",
        "KEYMGR_SECRET_KEY_FILE",
        "`DIR/secret.key`",
        "the key that seals stored secrets; instances sharing a database share it",
    ),
    setting(
        "store.max_connections",
        "KEYMGR_STORE_MAX_CONNECTIONS",
        "`16`",
        "PostgreSQL connections per instance",
    ),
    Setting {
        path: None,
        env: Some("KEYMGR_ADMIN_PASSWORD"),
        flag: None,
        default: "generated and printed once",
        help: "the password of the user `admin` when it is created at first start (or reset with `--reset-admin-password`)",
    },
    Setting {
        path: None,
        env: Some("KEYMGR_LOG"),
        flag: None,
        default: "`info`",
        help: "the log level (`debug`, `ontap_keymgr=trace`...)",
    },
    Setting {
        path: None,
        env: Some("KEYMGR_CONFIG"),
        flag: Some("--config"),
        default: "none",
        help: "a TOML configuration file",
    },
];

/// `server.listen` as the file writes it: `[server] listen`.
fn file_key(path: &str) -> String {
    match path.split_once('.') {
        Some((section, key)) => format!("`[{section}] {key}`"),
        None => format!("`{path}`"),
    }
}

/// The table of docs/operations.md.
pub fn settings_markdown() -> String {
    let mut text = String::from(
        "| TOML | Environment | Flag | Default | What it does |\n|---|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let quoted = |name: Option<&str>| name.map(|n| format!("`{n}`")).unwrap_or_default();
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            setting.path.map(file_key).unwrap_or_default(),
            quoted(setting.env),
            quoted(setting.flag),
            setting.default,
            setting.help
        ));
    }
    text
}

/// The environment section of `serve --help`.
pub fn environment_help() -> String {
    let mut text =
        String::from("Environment (and the --config file's settings: docs/operations.md):\n");
    for setting in SETTINGS {
        let Some(env) = setting.env else {
            continue;
        };
        let also = setting.flag.map(|f| format!(" ({f})")).unwrap_or_default();
        text.push_str(&format!(
            "  {env}{also}\n      {}\n",
            setting.help.replace('`', "")
        ));
    }
    text
}

/// Command-line values, which win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub http: bool,
    pub database_url: Option<String>,
}

impl Config {
    /// Reads the file (if given), then the environment, then the flags.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => file_table(path)?,
            None => Table::new(),
        };
        merge(&mut table, env_table(|name| std::env::var(name).ok())?);
        merge(&mut table, flags_table(overrides));
        let settings = Settings::deserialize(table)
            .map_err(|e| ConfigError::Invalid(format!("invalid configuration: {e}")))?;
        build(settings)
    }
}

fn file_table(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let table: Table = toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    // Checked alone first, so that its mistakes name the file.
    Settings::deserialize(table.clone()).map_err(|e| parse_error(e.to_string()))?;
    Ok(table)
}

/// The settings given in the environment. A value is read as the type its setting takes:
/// `true`, `15m` and `a, b` become a boolean, a string and a list where those are expected.
fn env_table(var: impl Fn(&str) -> Option<String>) -> Result<Table, ConfigError> {
    let mut table = Table::new();
    let variables = SETTINGS.iter().filter_map(|s| Some((s.env?, s.path?)));
    for (name, path) in variables {
        let Some(text) = var(name) else {
            continue;
        };
        let value = env_value(path, &text).ok_or_else(|| {
            ConfigError::Invalid(format!("{name}={text} is not a valid value for {path}"))
        })?;
        merge(&mut table, at(path, value));
    }
    Ok(table)
}

/// The first reading of `text` that the setting at `path` accepts.
fn env_value(path: &str, text: &str) -> Option<Value> {
    let trimmed = text.trim();
    let literal = toml::from_str::<Table>(&format!("v = {trimmed}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let yes_no = match trimmed.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" => Some(Value::Boolean(true)),
        "0" | "no" | "off" => Some(Value::Boolean(false)),
        _ => None,
    };
    let list = Value::Array(
        trimmed
            .split(',')
            .map(|item| Value::String(item.trim().to_string()))
            .collect(),
    );
    let candidates = [
        literal,
        yes_no,
        Some(Value::String(text.to_string())),
        Some(list),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|candidate| Settings::deserialize(at(path, candidate.clone())).is_ok())
}

fn flags_table(overrides: Overrides) -> Table {
    let mut table = Table::new();
    if let Some(listen) = overrides.listen {
        merge(&mut table, at("server.listen", Value::String(listen)));
    }
    if let Some(dir) = overrides.data_dir {
        let dir = Value::String(dir.to_string_lossy().into_owned());
        merge(&mut table, at("server.data_dir", dir));
    }
    if overrides.http {
        merge(&mut table, at("server.http", Value::Boolean(true)));
    }
    if let Some(url) = overrides.database_url {
        merge(&mut table, at("store.url", Value::String(url)));
    }
    table
}

/// A table holding `value` at the dotted `path`.
fn at(path: &str, value: Value) -> Table {
    let mut parts = path.rsplit('.');
    let mut table = Table::new();
    if let Some(last) = parts.next() {
        table.insert(last.to_string(), value);
    }
    for part in parts {
        let mut outer = Table::new();
        outer.insert(part.to_string(), Value::Table(table));
        table = outer;
    }
    table
}

/// Puts `over` onto `base`, table by table: a value of `over` wins.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(more)) => merge(inner, more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The configuration: defaults for what is not set, and the checks.
fn build(settings: Settings) -> Result<Config, ConfigError> {
    let Settings {
        server,
        cluster,
        security,
        login,
        audit,
        health_monitor,
        store,
    } = settings;
    let listen_text = server.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_text.parse().map_err(|_| {
        ConfigError::Invalid(format!("listen address \"{listen_text}\" is not IP:PORT"))
    })?;
    let nodes = cluster
        .nodes
        .unwrap_or_else(|| vec!["node-01".to_string(), "node-02".to_string()]);
    if nodes.is_empty() || nodes.iter().any(|n| n.is_empty()) {
        return Err(ConfigError::Invalid(
            "cluster nodes must be non-empty names".into(),
        ));
    }
    if server.tls_cert.is_some() != server.tls_key.is_some() {
        return Err(ConfigError::Invalid(
            "tls_cert and tls_key go together".into(),
        ));
    }
    Ok(Config {
        listen,
        data_dir: server.data_dir.unwrap_or_else(|| PathBuf::from("data")),
        http: server.http.unwrap_or(false),
        max_connections: match server.max_connections {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "max_connections must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => DEFAULT_MAX_CONNECTIONS,
        },
        tls_cert: server.tls_cert,
        tls_key: server.tls_key,
        cluster: ClusterConfig {
            name: cluster.name.unwrap_or_else(|| "keymgr-cluster".to_string()),
            version: OntapVersion::parse(cluster.version.as_deref().unwrap_or("9.14.1"))
                .map_err(ConfigError::Invalid)?,
            metrocluster: cluster.metrocluster.unwrap_or(false),
            nodes,
        },
        security,
        login: LockoutPolicy {
            max_failed_login_attempts: login
                .max_failed_login_attempts
                .unwrap_or(LockoutPolicy::default().max_failed_login_attempts),
            lockout_duration: match login.lockout_duration {
                Some(text) => parse_duration("lockout duration", &text)?,
                None => LockoutPolicy::default().lockout_duration,
            },
            max_failed_logins_per_address: login
                .max_failed_logins_per_address
                .unwrap_or(LockoutPolicy::default().max_failed_logins_per_address),
        },
        audit_max_records: match audit.max_records {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "the audit trail keeps at least one record (max_records >= 1)".into(),
                ));
            }
            Some(n) => n,
            None => crate::domain::audit::DEFAULT_RETENTION,
        },
        health_monitor: MonitorSettings {
            interval: health_monitor
                .interval
                .map(|text| parse_duration("health monitor interval", &text))
                .transpose()?,
            max_concurrent_checks: match health_monitor.max_concurrent_checks {
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "the health monitor needs max_concurrent_checks >= 1".into(),
                    ));
                }
                Some(n) => n,
                None => MonitorSettings::default().max_concurrent_checks,
            },
        },
        store: StoreConfig {
            url: store.url.filter(|url| !url.is_empty()),
            secret_key_file: store.secret_key_file,
            max_connections: match store.max_connections {
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "the store needs max_connections >= 1".into(),
                    ));
                }
                Some(n) => n,
                None => DEFAULT_STORE_CONNECTIONS,
            },
        },
    })
}

/// `30s`, `15m`, `2h`, `1d`, or a number of seconds.
fn parse_duration(what: &str, text: &str) -> Result<std::time::Duration, ConfigError> {
    let text = text.trim();
    let bad = || ConfigError::Invalid(format!("{what} \"{text}\" is not like 30s, 15m, 2h or 1d"));
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
        let mut table = file_table(&file).expect("file");
        let env = env_table(|name| match name {
            "KEYMGR_CLUSTER_NAME" => Some("from-env".into()),
            "KEYMGR_CLUSTER_NODES" => Some("a, b, c".into()),
            "KEYMGR_LISTEN" => Some("127.0.0.1:1500".into()),
            _ => None,
        })
        .expect("env");
        merge(&mut table, env);
        merge(
            &mut table,
            flags_table(Overrides {
                listen: Some("127.0.0.1:2000".into()),
                ..Overrides::default()
            }),
        );
        let config = build(Settings::deserialize(table).expect("settings")).expect("config");
        assert_eq!(config.listen.port(), 2000);
        assert_eq!(config.cluster.name, "from-env");
        assert_eq!(config.cluster.version.to_string(), "9.5.0");
        assert!(config.cluster.metrocluster);
        assert_eq!(config.cluster.nodes, ["a", "b", "c"]);
    }

    /// docs/operations.md's table of settings is generated from [`SETTINGS`]; when this
    /// fails, paste the table it prints between the document's markers.
    #[test]
    fn the_documented_settings_are_the_declared_ones() {
        let document = include_str!("../../../docs/operations.md");
        let start = "<!-- settings: generated from SETTINGS in crates/ontap-keymgr/src/config.rs; a unit test keeps it equal -->\n";
        let documented = document
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("<!-- end of settings -->"))
            .map(|(table, _)| table)
            .expect("docs/operations.md has the settings markers");
        let generated = settings_markdown();
        assert!(
            documented == generated,
            "docs/operations.md's settings table is stale; it should be:\n{generated}"
        );
    }

    /// The defaults the table shows are the ones applied.
    #[test]
    fn the_declared_defaults_are_the_applied_ones() {
        let config = build(Settings::default()).expect("config");
        let shown = |path: &str| {
            SETTINGS
                .iter()
                .find(|s| s.path == Some(path))
                .map(|s| s.default.split('`').nth(1).unwrap_or_default().to_string())
                .expect("declared")
        };
        assert_eq!(shown("server.listen"), config.listen.to_string());
        assert_eq!(
            shown("server.data_dir"),
            format!("./{}", config.data_dir.display())
        );
        assert_eq!(shown("server.http"), config.http.to_string());
        assert_eq!(
            shown("server.max_connections"),
            config.max_connections.to_string()
        );
        assert_eq!(
            shown("audit.max_records"),
            config.audit_max_records.to_string()
        );
        assert_eq!(shown("cluster.name"), config.cluster.name);
        assert_eq!(shown("cluster.version"), config.cluster.version.to_string());
        assert_eq!(
            shown("cluster.metrocluster"),
            config.cluster.metrocluster.to_string()
        );
        assert_eq!(
            shown("login.max_failed_login_attempts"),
            config.login.max_failed_login_attempts.to_string()
        );
        assert_eq!(
            shown("login.lockout_duration"),
            format!("{}d", config.login.lockout_duration.as_secs() / 86_400)
        );
        assert_eq!(
            shown("login.max_failed_logins_per_address"),
            config.login.max_failed_logins_per_address.to_string()
        );
        assert_eq!(
            shown("health_monitor.max_concurrent_checks"),
            config.health_monitor.max_concurrent_checks.to_string()
        );
        assert_eq!(
            shown("store.max_connections"),
            config.store.max_connections.to_string()
        );
        // Every variable the merge reads is a declared setting's.
        assert!(SETTINGS.iter().filter(|s| s.env.is_some()).count() >= 20);
    }

    #[test]
    fn durations_have_units() {
        let seconds = |t: &str| parse_duration("test", t).map(|d| d.as_secs()).ok();
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
        assert!(matches!(file_table(&file), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn environment_values_are_read_as_their_settings_take_them() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            env_table(move |name| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        let table = env(&[
            ("KEYMGR_HTTP", "yes"),
            ("KEYMGR_FIPS", "true"),
            ("KEYMGR_MAX_CONNECTIONS", "50"),
            ("KEYMGR_CLUSTER_VERSION", "9.5"),
            ("KEYMGR_LOCKOUT_DURATION", "15m"),
            ("KEYMGR_CLUSTER_NODES", "n1"),
        ])
        .expect("env");
        let config = build(Settings::deserialize(table).expect("settings")).expect("config");
        assert!(config.http && config.security.fips == Some(true));
        assert_eq!(config.max_connections, 50);
        assert_eq!(config.cluster.version.to_string(), "9.5.0");
        assert_eq!(config.login.lockout_duration.as_secs(), 900);
        assert_eq!(config.cluster.nodes, ["n1"]);
        // A value its setting cannot take names the variable.
        let error = env(&[("KEYMGR_MAX_CONNECTIONS", "many")]).unwrap_err();
        assert!(
            error.to_string().contains("KEYMGR_MAX_CONNECTIONS=many"),
            "{error}"
        );
        assert!(env(&[("KEYMGR_HTTP", "maybe")]).is_err());
    }

    #[test]
    fn the_store_is_sqlite_unless_a_database_url_is_given_and_the_flag_wins() {
        let config = build(Settings::default()).expect("config");
        assert_eq!(config.store.url, None);
        assert_eq!(config.store.max_connections, DEFAULT_STORE_CONNECTIONS);
        assert_eq!(
            config.store.secret_key_path(Path::new("data")),
            Path::new("data/secret.key")
        );
        let mut table = env_table(|name| match name {
            "KEYMGR_DATABASE_URL" => Some("postgres://env@db/keymgr".into()),
            "KEYMGR_SECRET_KEY_FILE" => Some("/shared/secret.key".into()),
            "KEYMGR_STORE_MAX_CONNECTIONS" => Some("4".into()),
            _ => None,
        })
        .expect("env");
        let from_env = build(Settings::deserialize(table.clone()).expect("settings")).expect("env");
        assert_eq!(
            from_env.store.url.as_deref(),
            Some("postgres://env@db/keymgr")
        );
        assert_eq!(
            from_env.store.secret_key_path(Path::new("data")),
            Path::new("/shared/secret.key")
        );
        assert_eq!(from_env.store.max_connections, 4);
        merge(
            &mut table,
            flags_table(Overrides {
                database_url: Some("postgres://flag@db/keymgr".into()),
                ..Overrides::default()
            }),
        );
        let config = build(Settings::deserialize(table).expect("settings")).expect("config");
        assert_eq!(
            config.store.url.as_deref(),
            Some("postgres://flag@db/keymgr")
        );
    }
}
