//! The HTTPS certificate: the configured one, or a self-signed one shaped like ONTAP's, made in
//! the data dir at first start and renewed at a start near its end.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::{StartError, create_private_dir, fail};
use crate::config::Config;

/// The HTTPS certificate: the configured one, or the self-signed one of the data dir, made at
/// first start.
pub(super) fn tls_acceptor(config: &Config) -> Result<TlsAcceptor, StartError> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => self_signed(&config.data_dir, config.listen.ip())?,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            fail("cannot read the HTTPS certificate")(format!("{}: {e}", cert_path.display()))
        })?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| fail("cannot read the HTTPS key")(format!("{}: {e}", key_path.display())))?;
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("TLS")(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| fail("the HTTPS certificate and key do not fit")(e.to_string()))?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

/// How long a self-signed HTTPS certificate is valid: ONTAP's default for the certificates it
/// makes (`security certificate create -expire-days 365`).
const SELF_SIGNED_DAYS: i64 = 365;
/// A self-signed certificate this close to its end is replaced at start.
const RENEW_WITHIN_DAYS: i64 = 30;

/// `tls/cert.pem` and `tls/key.pem` in the data dir, for localhost, 127.0.0.1, ::1 and the
/// listen address: made at first start, and again at a start when they expire within 30 days.
pub fn self_signed(data_dir: &Path, listen: IpAddr) -> Result<(PathBuf, PathBuf), StartError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        match days_left(&cert_path) {
            Some(days) if days > RENEW_WITHIN_DAYS => return Ok((cert_path, key_path)),
            days => tracing::warn!(
                certificate = %cert_path.display(),
                days_left = ?days,
                "renewing the self-signed HTTPS certificate"
            ),
        }
    }
    create_private_dir(&dir).map_err(fail("cannot create the TLS dir"))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !listen.is_unspecified() && !names.contains(&listen.to_string()) {
        names.push(listen.to_string());
    }
    let key = rcgen::KeyPair::generate().map_err(|e| fail("cannot make a key")(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| fail("cannot make a certificate")(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ontap-keymgr");
    // Shaped like the server certificates ONTAP makes: a year, for TLS servers, not a CA.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail("cannot make a certificate")(e.to_string()))?;
    write_private(&key_path, &key.serialize_pem()).map_err(fail("cannot write the HTTPS key"))?;
    std::fs::write(&cert_path, cert.pem())
        .map_err(|e| fail("cannot write the HTTPS certificate")(e.to_string()))?;
    tracing::info!(certificate = %cert_path.display(), "made a self-signed HTTPS certificate");
    Ok((cert_path, key_path))
}

/// Whole days until the certificate in this PEM file expires; `None` when it cannot be read.
fn days_left(cert_path: &Path) -> Option<i64> {
    let pem = std::fs::read(cert_path).ok()?;
    let der = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let seconds =
        cert.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    Some(seconds.div_euclid(86_400))
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(pem_path: &Path) -> (i64, bool, bool) {
        let pem = std::fs::read(pem_path).expect("certificate");
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .expect("a PEM block")
            .expect("PEM");
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("X.509");
        let server_auth = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.server_auth);
        let not_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| !b.value.ca);
        (days_left(pem_path).expect("days"), server_auth, not_ca)
    }

    #[test]
    fn the_self_signed_certificate_is_shaped_like_ontaps_and_renewed_near_its_end() {
        let dir = tempfile::tempdir().expect("dir");
        let localhost = IpAddr::from([127, 0, 0, 1]);
        let (cert, key) = self_signed(dir.path(), localhost).expect("made");
        let (days, server_auth, not_ca) = parsed(&cert);
        assert!((363..=365).contains(&days), "{days} days");
        assert!(server_auth && not_ca);
        // Kept while it has time left.
        let first = std::fs::read(&cert).expect("read");
        self_signed(dir.path(), localhost).expect("kept");
        assert_eq!(std::fs::read(&cert).expect("read"), first);
        // Replaced when it expires within 30 days.
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        let soon = params.self_signed(&key_pair).expect("certificate");
        std::fs::write(&cert, soon.pem()).expect("write");
        std::fs::write(&key, key_pair.serialize_pem()).expect("write");
        self_signed(dir.path(), localhost).expect("renewed");
        assert!(parsed(&cert).0 > 300, "renewed for a year");
    }
}
