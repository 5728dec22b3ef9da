//! What can go wrong when we talk to a key server, classified the way a key manager needs it:
//! each [`Failure`] class is one remedy for the administrator (and one ONTAP error code in the
//! service), while the message says precisely what happened.

use std::fmt;

use crate::message::ResultStatus;

/// The class of a failed exchange with a key server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server's certificate is not signed by the trusted CAs, or does not name the server.
    ServerNotTrusted,
    /// The server refused our client certificate during or right after the TLS handshake.
    ClientCertificateRejected,
    /// Any other TLS or cryptographic failure (no common cipher suite, bad key, ...).
    Tls,
    /// The server could not be reached or did not answer in KMIP: name resolution, refused
    /// connection, timeout, malformed or unexpected response.
    Unreachable,
    /// The server answered, in KMIP, that the operation failed.
    OperationFailed,
}

/// A failed exchange with one key server. `Display` reads `<server>: <what happened>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The server as `host:port`.
    pub server: String,
    pub failure: Failure,
    /// What happened, in plain words, without the server's name.
    pub detail: String,
    /// For [`Failure::OperationFailed`]: the KMIP Result Status and Result Reason.
    pub result: Option<(ResultStatus, Option<u32>)>,
}

impl Error {
    pub(crate) fn new(server: &str, failure: Failure, detail: impl Into<String>) -> Self {
        Error {
            server: server.to_string(),
            failure,
            detail: detail.into(),
            result: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.detail)
    }
}

impl std::error::Error for Error {}

/// Why a client certificate, its key or the server CA certificates cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the client certificate PEM holds no certificate")]
    NoClientCertificate,
    #[error("the client private key PEM holds no usable private key: {0}")]
    BadPrivateKey(String),
    #[error("no server CA certificate given")]
    NoServerCa,
    #[error("a server CA certificate cannot be used as a trust anchor: {0}")]
    BadServerCa(String),
    #[error("the client certificate and key cannot be used: {0}")]
    BadClientIdentity(String),
}
