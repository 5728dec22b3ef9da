//! A throw-away PKI: certificate authorities that issue server and client certificates. RSA 2048
//! by default, as `openssl req -newkey rsa:2048` makes them and as most key servers are set up;
//! ECDSA P-256 on request. rcgen signs; OpenSSL makes the RSA keys (ring cannot).

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

/// The kind of key a CA makes for itself and for the certificates it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    EcdsaP256,
}

impl KeyKind {
    fn generate(self) -> KeyPair {
        match self {
            KeyKind::EcdsaP256 => KeyPair::generate().expect("ECDSA key"),
            KeyKind::Rsa2048 => {
                let rsa = openssl::rsa::Rsa::generate(2048).expect("RSA key");
                let pkcs8 = openssl::pkey::PKey::from_rsa(rsa)
                    .and_then(|k| k.private_key_to_pem_pkcs8())
                    .expect("PKCS#8");
                let pem = String::from_utf8(pkcs8).expect("PEM is text");
                KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
                    .expect("RSA key pair")
            }
        }
    }
}

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    kind: KeyKind,
    pub cert_pem: String,
}

impl Ca {
    /// An RSA 2048 CA.
    pub fn new(common_name: &str) -> Ca {
        Ca::with_keys(common_name, KeyKind::Rsa2048)
    }

    pub fn with_keys(common_name: &str, kind: KeyKind) -> Ca {
        let key = kind.generate();
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
            kind,
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, common_name: &str, names: &[&str]) -> Issued {
        self.issue(common_name, names, &[ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A server certificate that expired a day ago.
    pub fn expired_server(&self, common_name: &str, names: &[&str]) -> Issued {
        self.server_expiring_in(common_name, names, -1)
    }

    /// A server certificate that expires in `days` days (negative: expired that long ago).
    pub fn server_expiring_in(&self, common_name: &str, names: &[&str], days: i64) -> Issued {
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(
            common_name,
            names,
            &[ExtendedKeyUsagePurpose::ServerAuth],
            (
                now - time::Duration::days(30),
                now + time::Duration::days(days),
            ),
        )
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
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(
            common_name,
            names,
            usages,
            (
                now - time::Duration::days(1),
                now + time::Duration::days(365),
            ),
        )
    }

    fn issue_valid(
        &self,
        common_name: &str,
        names: &[&str],
        usages: &[ExtendedKeyUsagePurpose],
        (not_before, not_after): (time::OffsetDateTime, time::OffsetDateTime),
    ) -> Issued {
        let key = self.kind.generate();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = usages.to_vec();
        params.key_usages = match self.kind {
            // Static-RSA suites encrypt the premaster secret with the server's key.
            KeyKind::Rsa2048 => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            KeyKind::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.not_before = not_before;
        params.not_after = not_after;
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
    /// RSA 2048 throughout.
    pub fn new() -> TestPki {
        TestPki::with_keys(KeyKind::Rsa2048)
    }

    pub fn with_keys(kind: KeyKind) -> TestPki {
        let ca = Ca::with_keys("test-ca", kind);
        let rogue_ca = Ca::with_keys("rogue-ca", kind);
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
