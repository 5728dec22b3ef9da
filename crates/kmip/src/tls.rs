//! The TLS side of a key-server connection, on OpenSSL as ONTAP's own KMIP client is: our identity
//! (client certificate and key), the CAs we trust, what we offer (see [`TlsOffer`]), and a
//! verifier that remembers which certificate the server presented and why it was refused, so
//! that a failure can say so.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509VerifyResult};

use crate::certificate::{CertificateSummary, format_time};
use crate::endpoint::Endpoint;
use crate::error::IdentityError;
use crate::offer::TlsOffer;
use crate::resumption::Sessions;

/// A key manager's TLS identity: the client certificate chain and key it presents, and the
/// server CA certificates it trusts (and nothing else: no system roots).
#[derive(Clone)]
pub struct TlsIdentity {
    client_chain: Vec<X509>,
    client_key: PKey<Private>,
    server_cas: Vec<X509>,
}

/// Written by hand so that the private key can never reach a log line.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("client_chain_len", &self.client_chain.len())
            .field("client_key", &"<redacted>")
            .field("server_cas", &self.server_cas.len())
            .finish()
    }
}

impl TlsIdentity {
    /// Reads a client certificate (chain), its private key (PKCS#1, PKCS#8 or SEC1) and the
    /// server CA certificates, all PEM. Checks that the key belongs to the certificate.
    pub fn from_pem(
        client_certificate: &str,
        client_key: &str,
        server_cas: &[&str],
    ) -> Result<Self, IdentityError> {
        let client_chain = X509::stack_from_pem(client_certificate.as_bytes())
            .map_err(|_| IdentityError::NoClientCertificate)?;
        let Some(leaf) = client_chain.first() else {
            return Err(IdentityError::NoClientCertificate);
        };
        let client_key = PKey::private_key_from_pem(client_key.as_bytes())
            .map_err(|e| IdentityError::BadPrivateKey(first_reason(&e)))?;
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&client_key))
            .unwrap_or(false);
        if !matches {
            return Err(IdentityError::BadClientIdentity(
                "the private key does not belong to the client certificate".into(),
            ));
        }
        let mut cas = Vec::new();
        for pem in server_cas {
            let found = X509::stack_from_pem(pem.as_bytes())
                .map_err(|e| IdentityError::BadServerCa(first_reason(&e)))?;
            if found.is_empty() {
                return Err(IdentityError::BadServerCa("no certificate in PEM".into()));
            }
            cas.extend(found);
        }
        if cas.is_empty() {
            return Err(IdentityError::NoServerCa);
        }
        Ok(TlsIdentity {
            client_chain,
            client_key,
            server_cas: cas,
        })
    }

    /// The facts of our client certificate, for reports and hints.
    pub fn client_certificate(&self) -> CertificateSummary {
        let der = self
            .client_chain
            .first()
            .and_then(|c| c.to_der().ok())
            .unwrap_or_default();
        CertificateSummary::from_der(&der)
    }
}

/// Everything needed to open connections to key servers: an identity and an offer, compiled once
/// into an OpenSSL context. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    context: SslContext,
    identity: TlsIdentity,
    offer: Arc<TlsOffer>,
    /// The sessions servers gave this context's connections, when it resumes them.
    sessions: Option<Arc<Sessions>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("identity", &self.identity)
            .field("offer", &self.offer.describe())
            .finish()
    }
}

impl Connector {
    /// Every connection makes a full handshake, verifying the server's certificate.
    pub fn new(identity: &TlsIdentity, offer: &TlsOffer) -> Result<Connector, IdentityError> {
        let context = context(identity, |builder| offer.configure(builder))?;
        Ok(Connector {
            context,
            identity: identity.clone(),
            offer: Arc::new(offer.clone()),
            sessions: None,
        })
    }

    /// Resumes the TLS session of a server this connector reached before, when the server
    /// allows it, for `max_age` after the full handshake that verified the server's certificate
    /// (see `resumption.rs`). For checks repeated often; a connection that verifies a
    /// configuration wants [`Connector::new`].
    pub fn resuming(
        identity: &TlsIdentity,
        offer: &TlsOffer,
        max_age: Duration,
    ) -> Result<Connector, IdentityError> {
        let mut sessions = None;
        let context = context(identity, |builder| {
            sessions = Some(Sessions::install(builder, max_age));
            offer.configure(builder)
        })?;
        Ok(Connector {
            context,
            identity: identity.clone(),
            offer: Arc::new(offer.clone()),
            sessions,
        })
    }

    pub fn identity(&self) -> &TlsIdentity {
        &self.identity
    }

    pub fn offer(&self) -> &TlsOffer {
        &self.offer
    }

    /// A connection's TLS state for `endpoint`, checking the server's certificate against our
    /// CAs and against its host (a DNS name or an IP address), and recording what it saw; with
    /// the server's session offered, when this connector resumes them.
    pub(crate) fn ssl(&self, endpoint: &Endpoint) -> Result<(Ssl, Arc<Presented>), String> {
        let (mut ssl, presented) = ssl_for(&self.context, &endpoint.host, true)?;
        if let Some(sessions) = &self.sessions {
            // The same context's sessions: what `Sessions::prepare` requires.
            sessions.prepare(&mut ssl, &endpoint.to_string());
        }
        Ok((ssl, presented))
    }

    /// A probe's connection: same identity, another offer, the server's certificate not checked
    /// (only the server's choice of version and suite matters).
    pub(crate) fn probe_ssl(
        &self,
        host: &str,
        configure: impl FnOnce(
            &mut openssl::ssl::SslContextBuilder,
        ) -> Result<(), openssl::error::ErrorStack>,
    ) -> Result<(Ssl, Arc<Presented>), String> {
        let context = context(&self.identity, configure).map_err(|e| e.to_string())?;
        ssl_for(&context, host, false)
    }
}

fn context(
    identity: &TlsIdentity,
    configure: impl FnOnce(
        &mut openssl::ssl::SslContextBuilder,
    ) -> Result<(), openssl::error::ErrorStack>,
) -> Result<SslContext, IdentityError> {
    let tls = |e: openssl::error::ErrorStack| IdentityError::BadClientIdentity(first_reason(&e));
    let mut builder = SslContext::builder(SslMethod::tls_client()).map_err(tls)?;
    configure(&mut builder).map_err(tls)?;
    let mut chain = identity.client_chain.iter();
    if let Some(leaf) = chain.next() {
        builder.set_certificate(leaf).map_err(tls)?;
    }
    for extra in chain {
        builder.add_extra_chain_cert(extra.clone()).map_err(tls)?;
    }
    builder.set_private_key(&identity.client_key).map_err(tls)?;
    builder.check_private_key().map_err(tls)?;
    let mut store = X509StoreBuilder::new().map_err(tls)?;
    for ca in &identity.server_cas {
        store
            .add_cert(ca.clone())
            .map_err(|e| IdentityError::BadServerCa(first_reason(&e)))?;
    }
    builder.set_cert_store(store.build());
    builder.set_verify(SslVerifyMode::PEER);
    Ok(builder.build())
}

fn ssl_for(
    context: &SslContext,
    host: &str,
    verify: bool,
) -> Result<(Ssl, Arc<Presented>), String> {
    let mut ssl = Ssl::new(context).map_err(|e| first_reason(&e))?;
    match host.parse::<IpAddr>() {
        Ok(ip) => ssl.param_mut().set_ip(ip).map_err(|e| first_reason(&e))?,
        Err(_) => {
            ssl.param_mut()
                .set_host(host)
                .map_err(|e| first_reason(&e))?;
            // Server Name Indication carries host names only, never addresses.
            ssl.set_hostname(host).map_err(|e| first_reason(&e))?;
        }
    }
    let presented = Arc::new(Presented::default());
    let recorder = presented.clone();
    ssl.set_verify_callback(SslVerifyMode::PEER, move |preverified, context| {
        if context.error_depth() == 0
            && let Some(der) = context.current_cert().and_then(|c| c.to_der().ok())
        {
            recorder.set_certificate(&der);
        }
        if !preverified {
            recorder.set_refusal(context.error());
        }
        preverified || !verify
    });
    Ok((ssl, presented))
}

/// What the verifier saw of the server's certificate: the leaf, and the first reason to refuse it.
#[derive(Debug, Default)]
pub(crate) struct Presented(Mutex<(Option<CertificateSummary>, Option<X509VerifyResult>)>);

impl Presented {
    pub fn certificate(&self) -> Option<CertificateSummary> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    pub fn refusal(&self) -> Option<X509VerifyResult> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn set_certificate(&self, der: &[u8]) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0.is_none() {
            seen.0 = Some(CertificateSummary::from_der(der));
        }
    }

    fn set_refusal(&self, refusal: X509VerifyResult) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.1.is_none() {
            seen.1 = Some(refusal);
        }
    }
}

/// OpenSSL's verification error codes we explain (`X509_V_ERR_*`).
mod verify_code {
    pub const CERT_NOT_YET_VALID: i32 = 9;
    pub const CERT_HAS_EXPIRED: i32 = 10;
    pub const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    pub const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    pub const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
    pub const CERT_SIGNATURE_FAILURE: i32 = 7;
    pub const INVALID_PURPOSE: i32 = 26;
    pub const HOSTNAME_MISMATCH: i32 = 62;
    pub const IP_ADDRESS_MISMATCH: i32 = 64;
}

/// Plain words for why the server's certificate was not accepted.
pub(crate) fn untrusted_server_detail(
    refusal: X509VerifyResult,
    presented: Option<&CertificateSummary>,
) -> String {
    use verify_code::*;
    let issuer = presented.map(|c| c.issuer.as_str()).unwrap_or("unknown");
    let subject = presented.map(|c| c.subject.as_str()).unwrap_or("unknown");
    match refusal.as_raw() {
        UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | DEPTH_ZERO_SELF_SIGNED_CERT
        | SELF_SIGNED_CERT_IN_CHAIN => format!(
            "server certificate is not signed by any of the key manager's server CA certificates \
             (issuer: {issuer})"
        ),
        HOSTNAME_MISMATCH | IP_ADDRESS_MISMATCH => {
            let names = presented
                .map(CertificateSummary::names_text)
                .unwrap_or_else(|| "none".into());
            format!(
                "server certificate ({subject}) is not valid for this address (names in the \
                 certificate: {names})"
            )
        }
        CERT_HAS_EXPIRED => format!(
            "server certificate ({subject}) has expired: it was valid until {}",
            presented
                .map(|c| format_time(c.not_after))
                .unwrap_or_else(|| "an unknown date".into())
        ),
        CERT_NOT_YET_VALID => format!(
            "server certificate ({subject}) is not valid yet: it is valid from {}",
            presented
                .map(|c| format_time(c.not_before))
                .unwrap_or_else(|| "an unknown date".into())
        ),
        CERT_SIGNATURE_FAILURE => format!(
            "server certificate ({subject}) has a signature that does not verify against its \
             issuer ({issuer})"
        ),
        INVALID_PURPOSE => {
            format!("server certificate ({subject}) is not meant for TLS server authentication")
        }
        _ => format!(
            "server certificate ({subject}, issuer {issuer}) is not trusted: {}",
            refusal.error_string()
        ),
    }
}

/// The first reason in an OpenSSL error stack, in OpenSSL's words.
pub(crate) fn first_reason(errors: &openssl::error::ErrorStack) -> String {
    errors
        .errors()
        .first()
        .and_then(|e| e.reason())
        .map(str::to_string)
        .unwrap_or_else(|| errors.to_string())
}

#[cfg(test)]
mod tests {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    use super::*;

    /// A self-signed certificate for `key` (given as PKCS#8), made by rcgen.
    fn certificate_for(pkcs8: &str, algorithm: &'static rcgen::SignatureAlgorithm) -> String {
        let pair = rcgen::KeyPair::from_pem_and_sign_algo(pkcs8, algorithm).expect("key pair");
        rcgen::CertificateParams::new(vec!["key-manager".to_string()])
            .expect("params")
            .self_signed(&pair)
            .expect("certificate")
            .pem()
    }

    fn text(pem: Vec<u8>) -> String {
        String::from_utf8(pem).expect("PEM is text")
    }

    #[test]
    fn rsa_and_ec_keys_are_read_in_pkcs1_pkcs8_and_sec1() {
        let rsa = Rsa::generate(2048).expect("RSA key");
        let rsa_pkcs1 = text(rsa.private_key_to_pem().expect("PKCS#1"));
        let rsa_pkcs8 = text(
            PKey::from_rsa(rsa)
                .and_then(|k| k.private_key_to_pem_pkcs8())
                .expect("PKCS#8"),
        );
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let ec = EcKey::generate(&group).expect("EC key");
        let ec_sec1 = text(ec.private_key_to_pem().expect("SEC1"));
        let ec_pkcs8 = text(
            PKey::from_ec_key(ec)
                .and_then(|k| k.private_key_to_pem_pkcs8())
                .expect("PKCS#8"),
        );
        assert!(rsa_pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(ec_sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let rsa_cert = certificate_for(&rsa_pkcs8, &rcgen::PKCS_RSA_SHA256);
        let ec_cert = certificate_for(&ec_pkcs8, &rcgen::PKCS_ECDSA_P256_SHA256);
        for (cert, key) in [
            (&rsa_cert, &rsa_pkcs1),
            (&rsa_cert, &rsa_pkcs8),
            (&ec_cert, &ec_sec1),
            (&ec_cert, &ec_pkcs8),
        ] {
            let identity = TlsIdentity::from_pem(cert, key, &[cert]).expect("identity");
            Connector::new(&identity, &TlsOffer::ontap_default()).expect("connector");
        }
        // A key of another certificate is refused, whatever its format.
        assert!(matches!(
            TlsIdentity::from_pem(&rsa_cert, &ec_sec1, &[&rsa_cert]),
            Err(IdentityError::BadClientIdentity(_))
        ));
        assert!(matches!(
            TlsIdentity::from_pem(&rsa_cert, "not a key", &[&rsa_cert]),
            Err(IdentityError::BadPrivateKey(_))
        ));
        assert_eq!(
            TlsIdentity::from_pem("no certificate", &rsa_pkcs1, &[&rsa_cert]).unwrap_err(),
            IdentityError::NoClientCertificate
        );
    }
}
