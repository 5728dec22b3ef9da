//! The one error type of the service. Each variant is one ONTAP error: it knows its ONTAP code,
//! its HTTP status, the request field it is about (the `target`) and its message. `api` renders
//! it as ONTAP's error envelope; nothing else builds error responses.

use kmip::Failure;

/// The HTTP status class of an error, without tying the domain to an HTTP library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    TooManyRequests,
    Internal,
    Unavailable,
}

impl Status {
    pub fn as_u16(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::Conflict => 409,
            Status::TooManyRequests => 429,
            Status::Internal => 500,
            Status::Unavailable => 503,
        }
    }
}

/// Which of the key manager's certificates is missing (65536821).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRole {
    Client,
    ServerCa,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // ---- generic ONTAP errors -------------------------------------------------------------
    #[error("entry doesn't exist")]
    NotFound { target: &'static str },
    #[error("Unexpected argument \"{0}\".")]
    UnexpectedArgument(String),
    #[error("The value \"{value}\" is invalid for field \"{field}\"")]
    InvalidFieldsValue { field: String, value: String },
    #[error("{message}")]
    InvalidValue { field: String, message: String },
    #[error("Field \"{0}\" is required.")]
    MissingValue(String),
    #[error("Field \"{first}\" cannot be used with field \"{second}\".")]
    ConflictingFields { first: String, second: String },
    #[error("Invalid JSON input: {0}")]
    InvalidJson(String),
    /// Answered at once, and the connection closed: the rest of the body is never read.
    #[error("Invalid JSON input: the body is larger than {0} bytes.")]
    BodyTooLarge(usize),
    #[error("Invalid JSON input, an array was expected for field \"{0}\".")]
    ArrayExpected(String),
    #[error("Invalid JSON input, an array was not expected for field \"{0}\".")]
    ArrayNotExpected(String),
    #[error("Field \"{0}\" cannot be set in this operation.")]
    ReadOnlyField(String),
    #[error("User is not authenticated.")]
    Unauthenticated,
    #[error(
        "User is not authenticated: too many failed logins from this address; retry in {0} seconds."
    )]
    LoginThrottled(u64),
    #[error("The service is busy verifying other logins; retry in a moment.")]
    Busy,
    #[error(
        "The change cannot be stored: the disk holding the service's database is full. Retry \
         once space is freed."
    )]
    StorageFull,
    #[error("The service cannot reach its database; nothing was changed. Retry in a few seconds.")]
    StoreUnavailable,
    #[error("Permission denied: the \"{role}\" role cannot {method} this resource.")]
    PermissionDenied { role: String, method: String },
    #[error("The {method} method is not supported on this resource.")]
    MethodNotAllowed { method: String },
    #[error("{what} \"{name}\" already exists.")]
    AlreadyExists {
        what: &'static str,
        name: String,
        target: &'static str,
    },
    #[error("{0}")]
    InUse(String),
    #[error(
        "The cluster already holds {limit} {what}, the most this service keeps: delete one first."
    )]
    LimitReached { what: &'static str, limit: usize },
    #[error("The specified SVM \"{0}\" does not exist or cannot be accessed by this user.")]
    SvmNotFound(String),
    #[error("Internal error: {0}")]
    Internal(String),
    /// An error about a field of an object nested in the body (`external.servers`): ONTAP's
    /// target names the whole path (`external.servers.timeout`).
    #[error("{error}")]
    InField {
        path: &'static str,
        error: Box<Error>,
    },

    // ---- the security configuration ---------------------------------------------------------
    #[error("SSLv3 is not supported when FIPS is enabled.")]
    SslV3NotFips,
    #[error("{0} is not supported when FIPS is enabled: only TLSv1.2 and TLSv1.3 are.")]
    TlsVersionNotFips(String),

    // ---- certificates ---------------------------------------------------------------------
    #[error("Failed to read the certificate due to incorrect formatting: {0}")]
    BadCertificate(String),
    #[error("Failed to read the key due to incorrect formatting: {0}")]
    BadPrivateKey(String),
    #[error("The certificate and private key do not match.")]
    KeyMismatch,
    #[error("The certificate has expired (it was valid until {0}).")]
    CertificateExpired(String),
    #[error("The certificate installation failed as private key was empty.")]
    PrivateKeyMissing,
    #[error("Cannot accept private key for server_ca or client_ca.")]
    PrivateKeyNotAccepted,
    #[error("The certificate type \"{given}\" is not supported.{}", match suggestion {
        Some(meant) => format!(" Did you mean \"{meant}\"?"),
        None => " Use client, server, client_ca, server_ca or root_ca.".to_string(),
    })]
    CertificateTypeNotSupported {
        given: String,
        suggestion: Option<&'static str>,
    },
    #[error(
        "Cannot remove this certificate while external key manager is configured: certificate \"{0}\" is used by a key manager."
    )]
    CertificateInUse(String),

    // ---- key managers ---------------------------------------------------------------------
    #[error("The SVM has key manager already configured.")]
    KeyManagerExists,
    #[error("The Admin SVM has a key manager already configured.")]
    AdminKeyManagerExists,
    #[error(
        "External key management requires client and server CA certificates installed and with \
         one or more key servers provided."
    )]
    ExternalConfigIncomplete { target: &'static str },
    #[error("The Onboard Key Manager is only supported for an admin SVM.")]
    OnboardOnlyForAdmin,
    #[error(
        "The Onboard Key Manager passphrase length is incorrect: it must be 32 to 256 ASCII characters."
    )]
    PassphraseLengthOnCreate,
    #[error(
        "The passphrase does not match the accepted length: it must be 32 to 256 ASCII characters."
    )]
    PassphraseLengthOnUpdate,
    // The first sentence is ONTAP's own, which Ansible's key-manager module looks for.
    #[error(
        "Cluster-wide passphrase is incorrect. The existing passphrase given does not match the \
         configured one."
    )]
    PassphraseMismatch,
    #[error("The new passphrase is same as old passphrase.")]
    PassphraseUnchanged,
    #[error("Updating an onboard passphrase requires both new and existing cluster passphrase.")]
    PassphrasePairRequired,

    // ---- key servers (the seeds) ----------------------------------------------------------
    #[error(
        "Multitenant key management is not supported in the current cluster version ({0}); it needs ONTAP 9.6 or later."
    )]
    MultitenantUnsupportedVersion(String),
    #[error("Multitenant key management is not supported in MetroCluster configurations.")]
    MultitenantMetroCluster,
    #[error(
        "External key management is not enabled for the SVM: key manager {0} is an onboard key manager."
    )]
    NotExternal(String),
    #[error(
        "A maximum of 4 active primary key servers are allowed: the key manager has {existing} and the request adds {added}."
    )]
    TooManyKeyServers { existing: usize, added: usize },
    #[error("Duplicate key management servers exist: \"{0}\" is given more than once.")]
    DuplicateKeyServers(String),
    #[error(
        "Key management servers are already configured: \"{0}\" is already a key server of this key manager."
    )]
    KeyServerAlreadyConfigured(String),
    #[error("Cannot add key server \"{0}\" because it is already a secondary key server.")]
    AlreadySecondary(String),
    #[error("The certificate is not installed: the key manager's {} certificate {uuid} no longer exists.", match role { CertificateRole::Client => "client", CertificateRole::ServerCa => "server CA" })]
    CertificateNotInstalled { role: CertificateRole, uuid: String },
    #[error("Failed to get existing key-server details for the SVM: {0}")]
    KeyServersUnreadable(String),
    #[error("{}", kmip_message(.0))]
    Kmip(kmip::Error),
    #[error(
        "Authentication keys are kept by the admin SVM's external key manager only: key manager {0} is not it."
    )]
    AuthKeysNeedClusterExternal(String),
    #[error(
        "The key servers already store the most authentication keys allowed ({0}): delete unused keys first."
    )]
    AuthKeyLimit(usize),
    #[error(
        "There are no key servers configured for key manager {0}: a key has nowhere to be stored."
    )]
    NoKeyServers(String),
    /// A job that ended in failure, as a request that waited for it answers it.
    #[error("{message}")]
    JobFailed { code: u64, message: String },
    #[error(
        "No external key manager is configured for SVM \"{0}\" or for the cluster: an encrypted volume needs one to keep its key."
    )]
    NoKeyManagerForVolume(String),
    #[error(
        "The key server \"{server}\" holds the only copy of {keys} key(s) in use: delete those keys, or keep the server."
    )]
    KeysOnlyOnServer { server: String, keys: usize },
    #[error("Some keys could not be {action}: {details}")]
    KeysIncomplete {
        action: &'static str,
        code: u64,
        details: String,
    },
    #[error("Failed to delete the key from key server \"{server}\": {reason}")]
    KeyDestroyFailed { server: String, reason: String },
    #[error("Missing username: a password is given but no username is configured.")]
    MissingUsername,
    #[error("Missing password: a username is given without its password.")]
    MissingPassword,
    #[error("The key management server \"{0}\" is not configured for the SVM.")]
    KeyServerNotConfigured(String),
    #[error(
        "One or more of the following values must be provided \"timeout\", \"username\", \
         \"password\", \"secondary_key_servers\", \"create_remove_timeout\"."
    )]
    NothingToModify,
    #[error("Exceeded maximum number of secondary key servers: at most 3 are allowed.")]
    TooManySecondaries,
    #[error("A secondary key server is a duplicate of the associated primary key server: \"{0}\".")]
    SecondaryIsItsPrimary(String),
    #[error("The list of secondary key servers contains duplicates: \"{0}\".")]
    DuplicateSecondaries(String),
    #[error("A secondary key server address is not formatted correctly: \"{address}\": {reason}.")]
    BadSecondaryAddress { address: String, reason: String },
    #[error("A secondary key server is also a primary key server: \"{0}\".")]
    SecondaryIsPrimary(String),

    // ---- key manager configuration ------------------------------------------------------------
    #[error(
        "Common Criteria mode is disabled on the cluster: ontap-keymgr does not provide it, so cc_mode_enabled can only be false."
    )]
    CommonCriteriaUnavailable,
    #[error(
        "Modifying polling period requires an effective cluster version of ONTAP 9.10 or later; the cluster is {0}."
    )]
    PollingUnsupportedVersion(String),
    #[error(
        "Unable to modify polling period because no external key management is configured on the cluster: create an external key manager first."
    )]
    PollingWithoutExternalKeyManager,
}

/// ONTAP's description of each error code the service answers, in ONTAP's words: the one
/// catalogue of them. The messages of [`Error`] start from these where ONTAP's message is fixed
/// (the KMIP failures), and the OpenAPI document lists them per operation.
pub const ONTAP_MESSAGES: &[(u64, &str)] = &[
    (1, "An object of this name already exists."),
    (4, "An entry with the specified identifiers was not found."),
    (
        8,
        "The object is still in use: remove what depends on it first.",
    ),
    (
        2621462,
        "The specified SVM does not exist or cannot be accessed by this user.",
    ),
    (
        3735618,
        "Cannot accept private key for server_ca or client_ca.",
    ),
    (3735622, "The certificate type is not supported."),
    (
        3735683,
        "Cannot remove this certificate while external key manager is configured.",
    ),
    (
        3735693,
        "The certificate installation failed as private key was empty.",
    ),
    (52428817, "SSLv3 is not supported when FIPS is enabled."),
    (52428824, "TLSv1 is not supported when FIPS is enabled."),
    (52559973, "The certificate has expired."),
    (
        52559975,
        "Failed to read the certificate due to incorrect formatting.",
    ),
    (52559976, "The certificate and private key do not match."),
    (
        52560123,
        "Failed to read the key due to incorrect formatting.",
    ),
    (
        65536038,
        "A maximum of 4 active primary key servers are allowed.",
    ),
    (
        65536048,
        "The key management servers already store the maximum number of authentication keys.",
    ),
    (
        65536139,
        "The existing passphrase value provided does not match the configured passphrase.",
    ),
    (65536150, "The new passphrase is same as old passphrase."),
    (
        65536404,
        "The passphrase does not match the accepted length.",
    ),
    (
        65536700,
        "The key server contains keys that are currently in use and not available from any other configured key server in the SVM.",
    ),
    (
        65536809,
        "Common Criteria mode is disabled on the cluster. Contact technical support for assistance in enabling Common Criteria mode.",
    ),
    (65536821, "The certificate is not installed."),
    (
        65536822,
        "Multitenant key management is not supported in the current cluster version.",
    ),
    (65536823, "The SVM has key manager already configured."),
    (
        65536824,
        "Multitenant key management is not supported in MetroCluster configurations.",
    ),
    (
        65536828,
        "External key management is not enabled for the SVM.",
    ),
    (
        65536834,
        "Failed to get existing key-server details for the SVM.",
    ),
    (
        65536843,
        "The key management server is not configured for the SVM.",
    ),
    (65536845, "Missing username."),
    (65536846, "Missing password."),
    (
        65536852,
        "Failed to query supported KMIP protocol versions.",
    ),
    (65536870, "Key management servers are already configured."),
    (65536871, "Duplicate key management servers exist."),
    (
        65536876,
        "External key management requires client and server CA certificates installed and with one or more key servers provided.",
    ),
    (
        65536880,
        "One or more of the following values must be provided \"timeout\", \"username\", \"password\", \"secondary_key_servers\", \"create_remove_timeout\".",
    ),
    (
        65536916,
        "The Onboard Key Manager is only supported for an admin SVM.",
    ),
    (
        65536917,
        "Updating an onboard passphrase requires both new and existing cluster passphrase.",
    ),
    (
        65536920,
        "The Onboard Key Manager passphrase length is incorrect.",
    ),
    (
        65536921,
        "Unable to execute the command on the KMIP server.",
    ),
    (
        65537201,
        "There are no key servers configured for this SVM in the local cluster.",
    ),
    (
        65537303,
        "Modifying polling period requires an effective cluster version of ONTAP 9.10 or later.",
    ),
    (
        65537304,
        "Unable to modify polling period because no external key management is configured on the cluster.",
    ),
    (
        65537400,
        "Exceeded maximum number of secondary key servers.",
    ),
    (
        65538407,
        "A secondary key server is a duplicate of the associated primary key server.",
    ),
    (
        65538408,
        "The list of secondary key servers contains duplicates.",
    ),
    (
        65538413,
        "A secondary key server address is not formatted correctly.",
    ),
    (
        65538502,
        "A secondary key server is also a primary key server.",
    ),
    (
        65538802,
        "This operation is only supported for the admin SVM's external key manager.",
    ),
    (
        65539216,
        "The Admin SVM has a key manager already configured.",
    ),
    (
        66060296,
        "Failed to delete the key from one or more key servers.",
    ),
    (
        66060338,
        "Unable to establish secure connection to KMIP server due to incorrect server_ca certificates.",
    ),
    (
        66060339,
        "Unable to establish secure connection to KMIP server due to incorrect client certificates.",
    ),
    (
        66060340,
        "Unable to establish secure connection to KMIP server due to Cryptsoft error.",
    ),
];

/// ONTAP's description of an error code, if the catalogue has it.
pub fn ontap_message(code: u64) -> Option<&'static str> {
    ONTAP_MESSAGES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, message)| *message)
}

/// ONTAP's message for each KMIP failure, followed by our precise diagnosis.
fn kmip_message(error: &kmip::Error) -> String {
    format!("{} {error}", ontap_kmip_message(error.failure))
}

/// ONTAP's code for a class of KMIP failure.
pub fn kmip_code(failure: Failure) -> u64 {
    match failure {
        Failure::Unreachable => 65536852,
        Failure::ServerNotTrusted => 66060338,
        Failure::ClientCertificateRejected => 66060339,
        Failure::Tls => 66060340,
        Failure::OperationFailed => 65536921,
    }
}

/// ONTAP's own message for a class of KMIP failure, from the catalogue.
pub fn ontap_kmip_message(failure: Failure) -> &'static str {
    ontap_message(kmip_code(failure)).unwrap_or_default()
}

impl Error {
    /// ONTAP's error code.
    pub fn code(&self) -> u64 {
        use Error::*;
        match self {
            NotFound { .. } => 4,
            UnexpectedArgument(_) => 262179,
            InvalidFieldsValue { .. } | InvalidValue { .. } => 262197,
            MissingValue(_) => 262212,
            ConflictingFields { .. } => 262186,
            InvalidJson(_) | BodyTooLarge(_) => 262199,
            ArrayExpected(_) => 262254,
            ArrayNotExpected(_) => 262255,
            ReadOnlyField(_) => 262196,
            Unauthenticated | LoginThrottled(_) | PermissionDenied { .. } => 6,
            Busy | StorageFull | StoreUnavailable => 262145,
            MethodNotAllowed { .. } => 3,
            AlreadyExists { .. } => 1,
            InUse(_) => 8,
            LimitReached { .. } => 262145,
            SvmNotFound(_) => 2621462,
            Internal(_) => 262145,
            InField { error, .. } => error.code(),
            SslV3NotFips => 52428817,
            TlsVersionNotFips(_) => 52428824,
            BadCertificate(_) => 52559975,
            BadPrivateKey(_) => 52560123,
            KeyMismatch => 52559976,
            CertificateExpired(_) => 52559973,
            PrivateKeyMissing => 3735693,
            PrivateKeyNotAccepted => 3735618,
            CertificateTypeNotSupported { .. } => 3735622,
            CertificateInUse(_) => 3735683,
            KeyManagerExists => 65536823,
            AdminKeyManagerExists => 65539216,
            ExternalConfigIncomplete { .. } => 65536876,
            OnboardOnlyForAdmin => 65536916,
            PassphraseLengthOnCreate => 65536920,
            PassphraseLengthOnUpdate => 65536404,
            PassphraseMismatch => 65536139,
            PassphraseUnchanged => 65536150,
            PassphrasePairRequired => 65536917,
            MultitenantUnsupportedVersion(_) => 65536822,
            MultitenantMetroCluster => 65536824,
            NotExternal(_) => 65536828,
            TooManyKeyServers { .. } => 65536038,
            DuplicateKeyServers(_) => 65536871,
            KeyServerAlreadyConfigured(_) => 65536870,
            AlreadySecondary(_) => 65536042,
            CertificateNotInstalled { .. } => 65536821,
            KeyServersUnreadable(_) => 65536834,
            Kmip(error) => kmip_code(error.failure),
            MissingUsername => 65536845,
            MissingPassword => 65536846,
            KeyServerNotConfigured(_) => 65536843,
            NothingToModify => 65536880,
            TooManySecondaries => 65537400,
            SecondaryIsItsPrimary(_) => 65538407,
            DuplicateSecondaries(_) => 65538408,
            BadSecondaryAddress { .. } => 65538413,
            SecondaryIsPrimary(_) => 65538502,
            CommonCriteriaUnavailable => 65536809,
            PollingUnsupportedVersion(_) => 65537303,
            PollingWithoutExternalKeyManager => 65537304,
            AuthKeysNeedClusterExternal(_) => 65538802,
            KeysOnlyOnServer { .. } => 65536700,
            NoKeyManagerForVolume(_) => 65536828,
            AuthKeyLimit(_) => 65536048,
            NoKeyServers(_) => 65537201,
            KeyDestroyFailed { .. } => 66060296,
            KeysIncomplete { code, .. } | JobFailed { code, .. } => *code,
        }
    }

    pub fn status(&self) -> Status {
        use Error::*;
        match self {
            NotFound { .. } | KeyServerNotConfigured(_) => Status::NotFound,
            Unauthenticated => Status::Unauthorized,
            LoginThrottled(_) => Status::TooManyRequests,
            Busy | StorageFull | StoreUnavailable => Status::Unavailable,
            PermissionDenied { .. } => Status::Forbidden,
            MethodNotAllowed { .. } => Status::MethodNotAllowed,
            AlreadyExists { .. } | InUse(_) | LimitReached { .. } => Status::Conflict,
            Internal(_) | KeyServersUnreadable(_) => Status::Internal,
            InField { error, .. } => error.status(),
            _ => Status::BadRequest,
        }
    }

    /// For refusals a client should retry later: after how many seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::LoginThrottled(seconds) => Some(*seconds),
            Error::Busy => Some(1),
            Error::StorageFull => Some(30),
            Error::StoreUnavailable => Some(5),
            _ => None,
        }
    }

    /// The request field the error is about, when there is one.
    pub fn target(&self) -> Option<String> {
        use Error::*;
        let target = match self {
            InField { path, error } => {
                return Some(match error.target() {
                    Some(leaf) => format!("{path}.{leaf}"),
                    None => path.to_string(),
                });
            }
            NotFound { target } => *target,
            UnexpectedArgument(name) | MissingValue(name) | ReadOnlyField(name) => name,
            ArrayExpected(name) | ArrayNotExpected(name) => name,
            InvalidFieldsValue { field, .. } | InvalidValue { field, .. } => field,
            ConflictingFields { second, .. } => second,
            AlreadyExists { target, .. } => target,
            SvmNotFound(_) => "svm",
            SslV3NotFips | TlsVersionNotFips(_) => "tls.protocol_versions",
            BadCertificate(_) | CertificateExpired(_) => "public_certificate",
            BadPrivateKey(_) | KeyMismatch | PrivateKeyMissing | PrivateKeyNotAccepted => {
                "private_key"
            }
            CertificateTypeNotSupported { .. } => "type",
            ExternalConfigIncomplete { target } => target,
            PassphraseLengthOnCreate | PassphraseLengthOnUpdate | PassphraseUnchanged => {
                "onboard.passphrase"
            }
            PassphraseMismatch | PassphrasePairRequired => "onboard.existing_passphrase",
            TooManyKeyServers { .. }
            | DuplicateKeyServers(_)
            | KeyServerAlreadyConfigured(_)
            | AlreadySecondary(_)
            | Kmip(_) => "server",
            MissingUsername => "username",
            MissingPassword => "password",
            KeyServerNotConfigured(_) => "server",
            TooManySecondaries
            | SecondaryIsItsPrimary(_)
            | DuplicateSecondaries(_)
            | BadSecondaryAddress { .. }
            | SecondaryIsPrimary(_) => "secondary_key_servers",
            CertificateNotInstalled { role, .. } => match role {
                CertificateRole::Client => "external.client_certificate",
                CertificateRole::ServerCa => "external.server_ca_certificates",
            },
            _ => return None,
        };
        Some(target.to_string())
    }
}

impl Error {
    /// The same error, about a field of the object at `path` in the body.
    pub fn within(self, path: &'static str) -> Error {
        Error::InField {
            path,
            error: Box::new(self),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
