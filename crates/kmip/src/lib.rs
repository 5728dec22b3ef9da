//! A small KMIP client: the TTLV encoding, the DiscoverVersions and Query messages, and an async
//! mutual-TLS client whose errors say precisely why a key server cannot be used.
//!
//! It knows nothing of HTTP, ONTAP or databases.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let identity = kmip::TlsIdentity::from_pem("client PEM", "key PEM", &["server CA PEM"])?;
//! let server = kmip::Endpoint { host: "127.0.0.1".into(), port: kmip::DEFAULT_PORT };
//! let versions = kmip::discover_versions(&identity, &server, None, Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod endpoint;
mod error;
pub mod message;
mod tls;
pub mod ttlv;

pub use client::{discover_versions, query};
pub use endpoint::{DEFAULT_PORT, Endpoint, EndpointError};
pub use error::{Error, Failure, IdentityError};
pub use message::{Credential, ProtocolVersion, QueryAnswer, QueryFunction, ResultStatus};
pub use tls::TlsIdentity;
