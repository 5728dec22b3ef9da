//! Reading the certificates and private keys clients install (`/api/security/certificates`).
//!
//! Everything here refuses bad input with the ONTAP error a client would get, and never panics:
//! the PEM text comes straight from the request body. Private key material never appears in an
//! error message, so messages about keys are fixed strings.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::asn1_rs::Tag;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::error::Error;
use super::model::CertificateType;
use super::pem::{PemBlock, canonical_pem, pem_blocks};

/// The largest PEM text accepted, checked before any parsing: a certificate chain or key is a
/// few KiB, so anything larger is a mistake or an attempt to make the service work hard.
pub const MAX_PEM_LEN: usize = 64 * 1024;

/// At most this many characters of a PEM label are quoted back in an error message.
const MAX_QUOTED_LABEL: usize = 40;

/// What the service needs to know about an installed certificate, read from its PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    pub common_name: String,
    /// Upper-case hex, no colons, as ONTAP shows it.
    pub serial_number: String,
    /// The issuer's common name, or the full issuer DN if it has no CN.
    pub ca: String,
    /// RFC 3339 UTC, e.g. `2030-01-25T06:20:13Z`.
    pub expiry_time: String,
    pub is_ca: bool,
    pub der: Vec<u8>,
}

/// Parses a PEM text holding exactly one X.509 certificate.
pub fn parse_certificate(pem: &str) -> Result<ParsedCertificate, Error> {
    parse_with_expiry(pem).map(|(parsed, _)| parsed)
}

/// Checks the private key is valid PEM (PKCS#8, PKCS#1 RSA or SEC1 EC) and matches the certificate.
pub fn check_private_key(certificate: &ParsedCertificate, key_pem: &str) -> Result<(), Error> {
    let key = read_private_key(key_pem)?;
    let key_bits = private_key_public_bits(&key)?;
    let certificate_bits = certificate_public_bits(&certificate.der)?;
    if key_bits == certificate_bits {
        Ok(())
    } else {
        Err(Error::KeyMismatch)
    }
}

/// The whole installation check for a POST: parse, refuse expired certificates (now > notAfter),
/// key presence rules by type, key match.
pub fn validate_installation(
    cert_type: CertificateType,
    public_certificate: &str,
    private_key: Option<&str>,
    now: SystemTime,
) -> Result<ParsedCertificate, Error> {
    let (parsed, not_after) = parse_with_expiry(public_certificate)?;
    if unix_nanos(now) > not_after.unix_timestamp_nanos() {
        return Err(Error::CertificateExpired(parsed.expiry_time));
    }
    // A key of only whitespace is what a form sends for "no key": treat it as absent.
    let private_key = private_key.filter(|key| !key.trim().is_empty());
    match (cert_type.has_private_key(), private_key) {
        (true, None) => Err(Error::PrivateKeyMissing),
        (true, Some(key)) => check_private_key(&parsed, key).map(|()| parsed),
        (false, Some(_)) => Err(Error::PrivateKeyNotAccepted),
        (false, None) => Ok(parsed),
    }
}

// ---- certificates -------------------------------------------------------------------------

/// Parses the certificate and also returns its notAfter as a time, which the expiry check needs
/// and the string form would only lose.
fn parse_with_expiry(pem: &str) -> Result<(ParsedCertificate, OffsetDateTime), Error> {
    if pem.len() > MAX_PEM_LEN {
        return Err(bad_certificate("the certificate is larger than 64 KiB"));
    }
    let block = single_certificate_block(pem)?;
    let der = CertificateDer::from_pem_slice(canonical_pem(&block).as_bytes())
        .map_err(|_| bad_certificate("the PEM certificate is not valid base64"))?
        .to_vec();
    // The parsed certificate borrows `der`: read what is needed, then move `der` into the result.
    let (common_name, serial_number, ca, is_ca, not_after) = {
        let certificate = parse_der(&der)?;
        (
            common_name_or_dn(certificate.subject()),
            serial_hex(certificate.raw_serial()),
            common_name_or_dn(certificate.issuer()),
            certificate.is_ca(),
            certificate.validity().not_after.to_datetime(),
        )
    };
    let parsed = ParsedCertificate {
        common_name,
        serial_number,
        ca,
        expiry_time: rfc3339(not_after)?,
        is_ca,
        der,
    };
    Ok((parsed, not_after))
}

/// The one CERTIFICATE block of the text; anything else in it is refused rather than ignored,
/// so a client pasting a chain or a key by mistake learns about it.
fn single_certificate_block(pem: &str) -> Result<PemBlock, Error> {
    let blocks = pem_blocks(pem).map_err(|error| bad_certificate(error.reason()))?;
    if let Some(other) = blocks.iter().find(|block| block.label != "CERTIFICATE") {
        let label: String = other.label.chars().take(MAX_QUOTED_LABEL).collect();
        return Err(Error::BadCertificate(format!(
            "expected a PEM CERTIFICATE block, found \"{label}\""
        )));
    }
    let count = blocks.len();
    let mut blocks = blocks.into_iter();
    match (blocks.next(), count) {
        (Some(block), 1) => Ok(block),
        (None, _) => Err(bad_certificate("no PEM certificate found")),
        _ => Err(Error::BadCertificate(format!(
            "{count} certificates given, expected 1"
        ))),
    }
}

fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], certificate)) => Ok(certificate),
        Ok(_) => Err(bad_certificate("unexpected data after the certificate")),
        Err(x509_parser::nom::Err::Incomplete(_)) => {
            Err(bad_certificate("the certificate is truncated"))
        }
        Err(x509_parser::nom::Err::Error(error) | x509_parser::nom::Err::Failure(error)) => Err(
            Error::BadCertificate(format!("not a valid X.509 certificate: {error}")),
        ),
    }
}

/// The first common name of `name`, or the whole name when it has none we can read: ONTAP shows
/// something in its `common_name` and `ca` fields for every certificate.
fn common_name_or_dn(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .find_map(|attribute| {
            let value = attribute.attr_value();
            match value.tag() {
                Tag::BmpString => utf16_be(value.data),
                _ => attribute.as_str().ok().map(str::to_owned),
            }
        })
        .unwrap_or_else(|| name.to_string())
}

/// A BMPString (UCS-2, big-endian), which `as_str` does not read; old Windows CAs write them.
fn utf16_be(bytes: &[u8]) -> Option<String> {
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// The serial as OpenSSL prints it (`openssl x509 -serial`): two upper-case hex digits per byte,
/// without the sign byte DER puts before a serial whose top bit is set.
fn serial_hex(raw: &[u8]) -> String {
    let significant = match raw.iter().position(|byte| *byte != 0) {
        Some(first) => &raw[first..],
        None => return "00".to_string(),
    };
    significant
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

fn rfc3339(time: OffsetDateTime) -> Result<String, Error> {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|_| bad_certificate("the expiry date cannot be represented"))
}

/// `now` in nanoseconds since the Unix epoch, the unit `OffsetDateTime` compares in exactly.
fn unix_nanos(now: SystemTime) -> i128 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => i128::try_from(before.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

fn bad_certificate(reason: &str) -> Error {
    Error::BadCertificate(reason.to_string())
}

// ---- private keys -------------------------------------------------------------------------

/// Reads the one private key block of the text. Messages are fixed strings: nothing of the key,
/// not even its PEM label, is echoed.
fn read_private_key(key_pem: &str) -> Result<PrivateKeyDer<'static>, Error> {
    if key_pem.len() > MAX_PEM_LEN {
        return Err(bad_key("the private key is larger than 64 KiB"));
    }
    let blocks = pem_blocks(key_pem).map_err(|error| bad_key(error.reason()))?;
    let block = match blocks.as_slice() {
        [] => return Err(bad_key("no PEM private key found")),
        [block] => block,
        _ => {
            return Err(bad_key(
                "several PEM blocks given, expected one private key",
            ));
        }
    };
    // Only plain keys of the three encodings the provider loads; the label says which one.
    match block.label.as_str() {
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => return Err(bad_key("encrypted private keys are not supported")),
        _ => {
            return Err(bad_key(
                "expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
            ));
        }
    }
    PrivateKeyDer::from_pem_slice(canonical_pem(block).as_bytes())
        .map_err(|_| bad_key("the PEM key is not valid base64"))
}

/// The public key bits of a private key, computed by the crypto provider. Loading the key also
/// checks it is well formed (ring validates RSA keys and the embedded public point of EC keys).
fn private_key_public_bits(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, Error> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key).map_err(|_| {
        bad_key("not a valid RSA (2048 to 8192 bits), ECDSA P-256/P-384 or Ed25519 private key")
    })?;
    let spki = signing_key
        .public_key()
        .ok_or_else(|| bad_key("the public key of this private key cannot be computed"))?;
    let (_, info) = SubjectPublicKeyInfo::from_der(spki.as_ref())
        .map_err(|_| Error::Internal("cannot read the public key of a private key".into()))?;
    Ok(info.subject_public_key.data.into_owned())
}

/// The certificate's public key bits. Only the bits are compared, not the whole
/// SubjectPublicKeyInfo: the same key can come with differently encoded algorithm parameters
/// (RSA with or without NULL, rsaEncryption or RSASSA-PSS), and the bits alone identify the key.
fn certificate_public_bits(der: &[u8]) -> Result<Vec<u8>, Error> {
    let certificate = parse_der(der)?;
    Ok(certificate.public_key().subject_public_key.data.to_vec())
}

fn bad_key(reason: &str) -> Error {
    Error::BadPrivateKey(reason.to_string())
}

#[cfg(test)]
mod tests;
