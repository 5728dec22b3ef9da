//! A small KMIP client: the TTLV encoding, the few KMIP messages a key manager needs, and an async
//! mutual-TLS client on OpenSSL whose errors say precisely why a key server cannot be used.
//!
//! It knows nothing of HTTP, ONTAP's REST API or databases; it does know ONTAP's TLS offer
//! ([`TlsOffer::ontap_default`]), since reaching every key server ONTAP reaches is its purpose.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let identity = kmip::TlsIdentity::from_pem("client PEM", "key PEM", &["server CA PEM"])?;
//! let connector = kmip::Connector::new(&identity, &kmip::TlsOffer::ontap_default())?;
//! let server = kmip::Endpoint { host: "127.0.0.1".into(), port: kmip::DEFAULT_PORT };
//! let versions = kmip::discover_versions(&connector, &server, None, Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
// One `unsafe` call, in `resumption.rs`: the `openssl` crate's `set_session`, whose one
// requirement (the session comes from the same context) that module's ownership upholds.
#![deny(unsafe_code)]

mod certificate;
mod client;
mod endpoint;
mod error;
pub mod message;
mod offer;
pub mod ontap;
pub mod probe;
pub mod replication;
mod resumption;
pub mod round_trip;
mod tls;
/// The TTLV codec, a crate of its own so that the test key servers share it.
pub use ttlv;

pub use certificate::{CertificateSummary, format_time, now};
pub use client::{Handshake, Session, discover_versions, query};
pub use endpoint::{DEFAULT_PORT, Endpoint, EndpointError};
pub use error::{Error, Failure, IdentityError};
pub use message::{Credential, ProtocolVersion, QueryAnswer, QueryFunction, ResultStatus};
pub use offer::{
    ONTAP_DEFAULT_CIPHER_SUITES, ONTAP_DEFAULT_VERSIONS, OfferError, TlsOffer, TlsVersion,
    is_fips_approved, is_tls13_suite,
};
pub use tls::{Connector, TlsIdentity};
