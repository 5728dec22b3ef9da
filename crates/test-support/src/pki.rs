//! A throw-away PKI: certificate authorities that issue server and client certificates, all ECDSA
//! P-256 (PyKMIP's TLS 1.2 suite offers AEAD ciphers that rustls accepts only with ECDSA keys).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes `<name>.pem` and `<name>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
}

impl Ca {
    pub fn new(common_name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed CA");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, common_name: &str, names: &[&str]) -> Issued {
        self.issue(common_name, names, &[ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A client certificate marked for TLS client authentication.
    pub fn client(&self, common_name: &str) -> Issued {
        self.issue(common_name, &[], &[ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// A client certificate with no extended key usage, which PyKMIP refuses in KMIP (not in TLS).
    pub fn client_without_client_auth(&self, common_name: &str) -> Issued {
        self.issue(common_name, &[], &[])
    }

    /// Writes the CA certificate as `<name>.pem` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.cert_pem).expect("write CA certificate");
        path
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Issued {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = usages.to_vec();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("issue certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Everything the KMIP tests need: our CA with a server and a client certificate, and an
/// unrelated ("rogue") CA with its own.
pub struct TestPki {
    pub ca: Ca,
    pub server: Issued,
    pub client: Issued,
    pub rogue_ca: Ca,
    pub rogue_server: Issued,
    pub rogue_client: Issued,
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca = Ca::new("test-ca");
        let rogue_ca = Ca::new("rogue-ca");
        TestPki {
            server: ca.server("kmip-server", &["127.0.0.1", "localhost"]),
            client: ca.client("key-manager"),
            rogue_server: rogue_ca.server("rogue-kmip-server", &["127.0.0.1", "localhost"]),
            rogue_client: rogue_ca.client("rogue-key-manager"),
            ca,
            rogue_ca,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
