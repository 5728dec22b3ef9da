//! The objects the service keeps: storage VMs, certificates, key managers and their key servers,
//! users and audit records. Values here are already valid: they are built by the parsing
//! functions of the domain and by the store, never straight from client input.

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::address::KeyServerAddress;
pub use super::ids::{CertificateId, KeyManagerId, SvmId, VolumeId};

/// A secret: a KMIP password, a private key or a passphrase. It never shows in `Debug` output and
/// is not serializable, so it cannot leak into a response or a log line by accident. The store
/// encrypts it at rest.
#[derive(Clone)]
pub struct Secret(String);

impl PartialEq for Secret {
    /// In constant time, over digests so that the length does not show either: secrets are
    /// compared with what clients send (an existing passphrase), and how long a comparison takes
    /// must not tell how much of it matched.
    fn eq(&self, other: &Secret) -> bool {
        let digest = |secret: &Secret| Sha256::digest(secret.0.as_bytes());
        digest(self)
            .as_slice()
            .ct_eq(digest(other).as_slice())
            .into()
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the few places that must use it (a KMIP credential, a TLS key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The cluster's security configuration as stored: FIPS mode and the TLS offer to key servers,
/// by ONTAP's names (`TLSv1.2`, IANA suite names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    pub fips: bool,
    pub protocol_versions: Vec<String>,
    pub cipher_suites: Vec<String>,
}

/// The cluster's key manager configuration (`/api/security/key-manager-configs`) as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyManagerConfig {
    /// How often the health monitor checks every key server, in minutes.
    pub health_monitor_polling_interval: u32,
    /// Kept and shown as ONTAP does; the service has no cloud key managers to retry.
    pub cloud_kms_retry_count: u32,
}

/// A storage VM (a tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svm {
    pub uuid: SvmId,
    pub name: String,
}

/// A reference to an SVM, as ONTAP embeds it in other objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvmRef {
    pub uuid: SvmId,
    pub name: String,
}

impl From<&Svm> for SvmRef {
    fn from(svm: &Svm) -> SvmRef {
        SvmRef {
            uuid: svm.uuid.clone(),
            name: svm.name.clone(),
        }
    }
}

/// ONTAP's certificate types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateType {
    Client,
    Server,
    ClientCa,
    ServerCa,
    RootCa,
}

impl CertificateType {
    pub const ALL: [CertificateType; 5] = [
        CertificateType::Client,
        CertificateType::Server,
        CertificateType::ClientCa,
        CertificateType::ServerCa,
        CertificateType::RootCa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateType::Client => "client",
            CertificateType::Server => "server",
            CertificateType::ClientCa => "client_ca",
            CertificateType::ServerCa => "server_ca",
            CertificateType::RootCa => "root_ca",
        }
    }

    pub fn parse(text: &str) -> Option<CertificateType> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The type a mistyped name most likely meant: `server-ca` or `Server_CA` for `server_ca`.
    pub fn suggest(text: &str) -> Option<CertificateType> {
        let normalized = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Self::parse(&normalized)
    }

    /// Whether certificates of this type come with their private key.
    pub fn has_private_key(self) -> bool {
        matches!(self, CertificateType::Client | CertificateType::Server)
    }
}

/// An installed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub uuid: CertificateId,
    pub name: String,
    pub cert_type: CertificateType,
    /// The owning SVM; `None` for cluster-scoped certificates.
    pub svm: Option<SvmRef>,
    pub public_certificate: String,
    pub private_key: Option<Secret>,
    pub common_name: String,
    pub serial_number: String,
    /// The issuer's common name (ONTAP's `ca` field).
    pub ca: String,
    /// When the certificate expires, RFC 3339.
    pub expiry_time: String,
}

/// ONTAP's key-server `timeout`, in its three meanings: `-1`, `0` and 1–60 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyServerTimeout {
    /// `-1`.
    WaitIndefinitely,
    /// `0`.
    DoNotWait,
    /// 1 to 60.
    Seconds(u8),
}

impl KeyServerTimeout {
    /// What ONTAP shows for servers added without one.
    pub const DEFAULT: KeyServerTimeout = KeyServerTimeout::Seconds(25);
    /// The longest wait in seconds ONTAP accepts.
    pub const MAX_SECONDS: u8 = 60;
    /// `timeout = 0` does not wait in ONTAP; a check still needs a moment to connect.
    const SHORTEST_CHECK: Duration = Duration::from_secs(1);
    /// `timeout = -1` waits indefinitely in ONTAP; an API request must end, so it is capped.
    const LONGEST_CHECK: Duration = Duration::from_secs(120);

    /// The timeout ONTAP means by `value`, when it is one (-1 to 60).
    pub fn from_ontap(value: i64) -> Option<KeyServerTimeout> {
        match value {
            -1 => Some(KeyServerTimeout::WaitIndefinitely),
            0 => Some(KeyServerTimeout::DoNotWait),
            1..=60 => u8::try_from(value).ok().map(KeyServerTimeout::Seconds),
            _ => None,
        }
    }

    /// As ONTAP writes it.
    pub fn as_ontap(self) -> i64 {
        match self {
            KeyServerTimeout::WaitIndefinitely => -1,
            KeyServerTimeout::DoNotWait => 0,
            KeyServerTimeout::Seconds(seconds) => i64::from(seconds),
        }
    }

    /// How long a check of a server with this timeout may take.
    pub fn check_duration(self) -> Duration {
        match self {
            KeyServerTimeout::WaitIndefinitely => Self::LONGEST_CHECK,
            KeyServerTimeout::DoNotWait => Self::SHORTEST_CHECK,
            KeyServerTimeout::Seconds(seconds) => Duration::from_secs(u64::from(seconds)),
        }
    }

    /// This timeout, waiting `seconds` at most (the health monitor's bound).
    pub fn at_most(self, seconds: u8) -> KeyServerTimeout {
        match self {
            KeyServerTimeout::DoNotWait => KeyServerTimeout::DoNotWait,
            KeyServerTimeout::Seconds(own) => KeyServerTimeout::Seconds(own.min(seconds)),
            KeyServerTimeout::WaitIndefinitely => KeyServerTimeout::Seconds(seconds),
        }
    }
}

/// A primary key server of an external key manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyServer {
    pub server: KeyServerAddress,
    /// How long to wait for the server.
    pub timeout: KeyServerTimeout,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Host names or addresses, tried in order when the primary does not answer.
    pub secondary_key_servers: Vec<String>,
}

/// Why a key server check failed, as ONTAP reports it: its error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    pub code: u64,
    pub message: String,
}

/// A key server check as a shared store keeps it, for the instances that did not make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCheck {
    /// The server's address.
    pub server: String,
    /// ONTAP's state: `available`, `not_responding` or `unknown`.
    pub state: String,
    pub problem: Option<CheckProblem>,
    /// The TLS version and cipher suite negotiated (ONTAP's and IANA's names).
    pub tls: Option<(String, String)>,
    /// RFC 3339.
    pub check_time: String,
}

/// What kind of key manager, with what belongs to each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyManagerKind {
    External {
        client_certificate: CertificateId,
        server_ca_certificates: Vec<CertificateId>,
        servers: Vec<KeyServer>,
    },
    Onboard {
        passphrase: Secret,
    },
}

/// A key manager: one per SVM, or one for the cluster (the admin SVM) when `svm` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyManager {
    pub uuid: KeyManagerId,
    pub svm: Option<SvmRef>,
    pub kind: KeyManagerKind,
}

impl KeyManager {
    /// The key servers of an external key manager; none for an onboard one.
    pub fn servers(&self) -> &[KeyServer] {
        match &self.kind {
            KeyManagerKind::External { servers, .. } => servers,
            KeyManagerKind::Onboard { .. } => &[],
        }
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Readonly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }
}

/// A user of the API; the password is kept only as an Argon2 hash (PHC string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    /// Failed logins since the last success or lockout.
    pub failed_logins: u32,
    /// Seconds since the Unix epoch until which the account is locked out.
    pub locked_until: Option<i64>,
}

/// One write through the API, as the audit trail keeps it. `input` has every secret replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the store, increasing.
    pub index: i64,
    /// RFC 3339.
    pub time: String,
    pub user: String,
    pub method: String,
    pub path: String,
    pub input: String,
    pub status: u16,
    /// The ONTAP error code when the request failed.
    pub error_code: Option<String>,
    /// The client's IP address.
    pub address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(Secret::new("same"), Secret::new("same"));
        assert_ne!(Secret::new("same"), Secret::new("Same"));
        assert_ne!(Secret::new("same"), Secret::new("same "));
        assert_ne!(Secret::new(""), Secret::new("x"));
    }
}

/// An NSE authentication key of the cluster's external key manager, as the service records it:
/// the key itself lives only on the key servers, never in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKey {
    pub key_manager: KeyManagerId,
    /// ONTAP's key id (80 hexadecimal digits), its `x-NETAPP-KeyId` on the servers.
    pub key_id: String,
    pub key_tag: String,
    /// Where it is stored: each primary key server's address and the key's unique identifier
    /// there.
    pub stored_on: Vec<StoredOn>,
}

/// A copy of a key on one key server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredOn {
    pub server: String,
    pub unique_identifier: String,
}

/// ONTAP's job states (`paused` never happens here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Success,
    Failure,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failure => "failure",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Success,
            JobState::Failure,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn ended(self) -> bool {
        matches!(self, JobState::Success | JobState::Failure)
    }
}

/// An asynchronous operation, as ONTAP's `/api/cluster/jobs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub uuid: String,
    pub description: String,
    pub state: JobState,
    pub message: String,
    /// ONTAP's code of the outcome: 0 for success.
    pub code: u64,
    /// Seconds since the epoch.
    pub start_time: i64,
    pub end_time: Option<i64>,
    /// When the instance running it last said it still does (seconds): a job whose instance
    /// stopped stops being renewed.
    pub heartbeat: i64,
}

/// A volume, as far as keys concern it: its name, SVM and size, and the key that encrypts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub uuid: VolumeId,
    pub name: String,
    pub svm: SvmRef,
    /// Bytes.
    pub size: u64,
    /// The volume encryption key, when the volume is encrypted.
    pub key: Option<VolumeKey>,
}

/// A volume's encryption key (`vek`), kept by a key manager's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeKey {
    pub key_id: String,
    pub key_manager: KeyManagerId,
    pub stored_on: Vec<StoredOn>,
}
