//! The TLS side of a key-server connection: our identity (client certificate and key), the CAs we
//! trust, and a verifier that remembers which certificate the server presented so that a failure
//! can name it.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::IdentityError;

/// A key manager's TLS identity: the client certificate chain and key it presents, and the
/// server CA certificates it trusts (and nothing else: no system roots).
pub struct TlsIdentity {
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
}

/// Written by hand so that the private key can never reach a log line.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("client_chain_len", &self.client_chain.len())
            .field("client_key", &"<redacted>")
            .field("server_cas", &self.roots.len())
            .finish()
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            client_chain: self.client_chain.clone(),
            client_key: self.client_key.clone_key(),
            roots: self.roots.clone(),
        }
    }
}

impl TlsIdentity {
    /// Reads a client certificate (chain), its private key and the server CA certificates, all
    /// PEM. Checks that the key belongs to the certificate.
    pub fn from_pem(
        client_certificate: &str,
        client_key: &str,
        server_cas: &[&str],
    ) -> Result<Self, IdentityError> {
        let client_chain = certificates(client_certificate);
        if client_chain.is_empty() {
            return Err(IdentityError::NoClientCertificate);
        }
        let client_key = PrivateKeyDer::from_pem_slice(client_key.as_bytes())
            .map_err(|e| IdentityError::BadPrivateKey(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for pem in server_cas {
            let found = certificates(pem);
            if found.is_empty() {
                return Err(IdentityError::BadServerCa("no certificate in PEM".into()));
            }
            for ca in found {
                roots
                    .add(ca)
                    .map_err(|e| IdentityError::BadServerCa(e.to_string()))?;
            }
        }
        if roots.is_empty() {
            return Err(IdentityError::NoServerCa);
        }
        let identity = TlsIdentity {
            client_chain,
            client_key,
            roots: Arc::new(roots),
        };
        // Building a configuration once checks that the key matches the certificate.
        identity.client_config()?;
        Ok(identity)
    }

    /// A rustls configuration for one connection, and what its verifier will learn of the
    /// server's certificate.
    pub(crate) fn client_config(
        &self,
    ) -> Result<(rustls::ClientConfig, Arc<PresentedCertificate>), IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|e| IdentityError::BadServerCa(e.to_string()))?;
        let presented = Arc::new(PresentedCertificate::default());
        let verifier = Arc::new(RecordingVerifier {
            inner,
            presented: presented.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::BadClientIdentity(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.client_chain.clone(), self.client_key.clone_key())
            .map_err(|e| IdentityError::BadClientIdentity(e.to_string()))?;
        Ok((config, presented))
    }
}

fn certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// The subject, issuer and names of the certificate a server presented, once it has.
#[derive(Debug, Default)]
pub(crate) struct PresentedCertificate(Mutex<Option<CertificateSummary>>);

#[derive(Debug, Clone)]
pub(crate) struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
}

impl PresentedCertificate {
    pub fn get(&self) -> Option<CertificateSummary> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, summary: CertificateSummary) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary);
    }
}

fn summarize(certificate: &CertificateDer<'_>) -> CertificateSummary {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    match X509Certificate::from_der(certificate.as_ref()) {
        Ok((_, cert)) => {
            let names = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|name| match name {
                            GeneralName::DNSName(dns) => Some(dns.to_string()),
                            GeneralName::IPAddress(ip) => ip_to_string(ip),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            CertificateSummary {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                names,
            }
        }
        Err(_) => CertificateSummary {
            subject: "<unparsable certificate>".into(),
            issuer: "<unparsable certificate>".into(),
            names: Vec::new(),
        },
    }
}

fn ip_to_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Verifies like rustls' WebPKI verifier, and records the certificate it was shown.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    presented: Arc<PresentedCertificate>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.presented.set(summarize(end_entity));
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Plain words for why the server's certificate was not accepted.
pub(crate) fn untrusted_server_detail(
    error: &CertificateError,
    presented: Option<&CertificateSummary>,
) -> String {
    let issuer = presented.map(|c| c.issuer.as_str()).unwrap_or("unknown");
    let subject = presented.map(|c| c.subject.as_str()).unwrap_or("unknown");
    match error {
        CertificateError::UnknownIssuer => format!(
            "server certificate is not signed by any of the key manager's server CA certificates \
             (issuer: {issuer})"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = presented
                .map(|c| c.names.join(", "))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "none".into());
            format!(
                "server certificate ({subject}) is not valid for this address (names in the \
                 certificate: {names})"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("server certificate ({subject}) has expired")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("server certificate ({subject}) is not valid yet")
        }
        CertificateError::BadSignature => format!(
            "server certificate ({subject}) has a signature that does not verify against its \
             issuer ({issuer})"
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("server certificate ({subject}) is not meant for TLS server authentication")
        }
        other => format!("server certificate ({subject}, issuer {issuer}) is not trusted: {other}"),
    }
}
