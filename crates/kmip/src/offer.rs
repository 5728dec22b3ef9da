//! What we offer a key server in the TLS handshake, as ONTAP's cluster-wide security
//! configuration (`security config`, `/api/security`) describes it: the protocol versions, the
//! cipher suites by their IANA names, and FIPS mode.

use std::fmt;

use openssl::ssl::{SslContextBuilder, SslVersion};

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls1_0,
    Tls1_1,
    Tls1_2,
    Tls1_3,
}

impl TlsVersion {
    /// Every version, newest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls1_3,
        TlsVersion::Tls1_2,
        TlsVersion::Tls1_1,
        TlsVersion::Tls1_0,
    ];

    /// ONTAP's name, also OpenSSL's: `TLSv1.3`, `TLSv1.2`, `TLSv1.1`, `TLSv1`.
    pub fn ontap_name(self) -> &'static str {
        match self {
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }

    /// Reads ONTAP's name, in any case.
    pub fn from_ontap_name(name: &str) -> Option<TlsVersion> {
        TlsVersion::ALL
            .into_iter()
            .find(|v| v.ontap_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether FIPS mode allows the version (ONTAP: TLSv1.2 and TLSv1.3 only).
    pub fn is_fips_approved(self) -> bool {
        self >= TlsVersion::Tls1_2
    }

    pub(crate) fn openssl(self) -> SslVersion {
        match self {
            TlsVersion::Tls1_0 => SslVersion::TLS1,
            TlsVersion::Tls1_1 => SslVersion::TLS1_1,
            TlsVersion::Tls1_2 => SslVersion::TLS1_2,
            TlsVersion::Tls1_3 => SslVersion::TLS1_3,
        }
    }
}

impl fmt::Display for TlsVersion {
    /// `TLS 1.2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls1_0 => "TLS 1.0",
            TlsVersion::Tls1_1 => "TLS 1.1",
            TlsVersion::Tls1_2 => "TLS 1.2",
            TlsVersion::Tls1_3 => "TLS 1.3",
        })
    }
}

/// ONTAP's default `tls.protocol_versions` (`security config show`, ONTAP 9.11.1 and later).
pub const ONTAP_DEFAULT_VERSIONS: [TlsVersion; 2] = [TlsVersion::Tls1_3, TlsVersion::Tls1_2];

/// ONTAP's default `tls.cipher_suites`, in ONTAP's order, as its REST reference shows them for
/// `GET /api/security` (ONTAP 9.11.1 and later; the `security config modify` reference of
/// ONTAP 9.14.1 gives the same list). It is OpenSSL's `ALL:!LOW:!aNULL:!EXP:!eNULL` by IANA
/// names: static-RSA and CBC suites included, as the KMIP profiles require.
pub const ONTAP_DEFAULT_CIPHER_SUITES: [&str; 128] = [
    "TLS_RSA_WITH_AES_128_CCM",
    "TLS_RSA_WITH_AES_128_CCM_8",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CCM",
    "TLS_RSA_WITH_AES_256_CCM_8",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_RSA_WITH_ARIA_128_GCM_SHA256",
    "TLS_RSA_WITH_ARIA_256_GCM_SHA384",
    "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
    "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
    "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256",
    "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384",
    "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",
    "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA",
    "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256",
    "TLS_DHE_PSK_WITH_AES_128_CBC_SHA",
    "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_PSK_WITH_AES_128_CCM",
    "TLS_PSK_DHE_WITH_AES_128_CCM_8",
    "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_PSK_WITH_AES_256_CBC_SHA",
    "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384",
    "TLS_DHE_PSK_WITH_AES_256_CCM",
    "TLS_PSK_DHE_WITH_AES_256_CCM_8",
    "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256",
    "TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384",
    "TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_CCM",
    "TLS_DHE_RSA_WITH_AES_128_CCM_8",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_CCM",
    "TLS_DHE_RSA_WITH_AES_256_CCM_8",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384",
    "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA",
    "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
    "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_PSK_WITH_AES_128_CBC_SHA",
    "TLS_PSK_WITH_AES_128_CBC_SHA256",
    "TLS_PSK_WITH_AES_128_CCM",
    "TLS_PSK_WITH_AES_128_CCM_8",
    "TLS_PSK_WITH_AES_128_GCM_SHA256",
    "TLS_PSK_WITH_AES_256_CBC_SHA",
    "TLS_PSK_WITH_AES_256_CBC_SHA384",
    "TLS_PSK_WITH_AES_256_CCM",
    "TLS_PSK_WITH_AES_256_CCM_8",
    "TLS_PSK_WITH_AES_256_GCM_SHA384",
    "TLS_PSK_WITH_ARIA_128_GCM_SHA256",
    "TLS_PSK_WITH_ARIA_256_GCM_SHA384",
    "TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_RSA_PSK_WITH_AES_128_CBC_SHA",
    "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_PSK_WITH_AES_256_CBC_SHA",
    "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384",
    "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256",
    "TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384",
    "TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256",
    "TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384",
    "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_SRP_SHA_WITH_AES_128_CBC_SHA",
    "TLS_SRP_SHA_WITH_AES_256_CBC_SHA",
    "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA",
    "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA",
    "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA",
    "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Why a set of versions and suites cannot be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("no TLS protocol version is given")]
    NoVersion,
    #[error("\"{0}\" is not a TLS protocol version: use TLSv1.3, TLSv1.2, TLSv1.1 or TLSv1")]
    UnknownVersion(String),
    #[error("no cipher suite is given")]
    NoSuite,
    #[error(
        "\"{0}\" is not a cipher suite name OpenSSL knows: give IANA names, such as \
         TLS_RSA_WITH_AES_128_CBC_SHA256 or TLS_AES_256_GCM_SHA384"
    )]
    UnknownSuite(String),
    #[error("{} is not supported when FIPS is enabled: only TLSv1.2 and TLSv1.3 are", .0.ontap_name())]
    VersionNotFips(TlsVersion),
    #[error(
        "\"{0}\" is not FIPS-approved: in FIPS mode only AES suites with RSA, DHE or ECDHE key \
         exchange (TLS 1.2) and TLS_AES_*_GCM/CCM suites (TLS 1.3) are allowed"
    )]
    SuiteNotFips(String),
    #[error(
        "none of the cipher suites can be used with the protocol versions: TLS 1.3 needs one of \
         the TLS_AES_*/TLS_CHACHA20_* suites, earlier versions one of the others"
    )]
    NoUsableSuite,
}

/// The protocol versions and cipher suites offered to key servers. Valid by construction: its
/// suites are known to OpenSSL, some suite fits some version, and in FIPS mode everything is
/// FIPS-approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOffer {
    versions: Vec<TlsVersion>,
    cipher_suites: Vec<String>,
    fips: bool,
}

impl Default for TlsOffer {
    fn default() -> Self {
        TlsOffer::ontap_default()
    }
}

impl TlsOffer {
    /// What ONTAP offers out of the box: TLS 1.3 and 1.2, its default suites, FIPS mode off.
    pub fn ontap_default() -> TlsOffer {
        TlsOffer {
            versions: ONTAP_DEFAULT_VERSIONS.to_vec(),
            cipher_suites: ONTAP_DEFAULT_CIPHER_SUITES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            fips: false,
        }
    }

    /// Checks and builds an offer. Versions and suites keep their order; duplicates are dropped.
    pub fn new(
        versions: &[TlsVersion],
        cipher_suites: &[String],
        fips: bool,
    ) -> Result<TlsOffer, OfferError> {
        let mut unique_versions: Vec<TlsVersion> = Vec::new();
        for version in versions {
            if fips && !version.is_fips_approved() {
                return Err(OfferError::VersionNotFips(*version));
            }
            if !unique_versions.contains(version) {
                unique_versions.push(*version);
            }
        }
        let mut suites: Vec<String> = Vec::new();
        for suite in cipher_suites {
            let suite = suite.trim().to_ascii_uppercase();
            if openssl_name(&suite).is_none() {
                return Err(OfferError::UnknownSuite(suite));
            }
            if fips && !is_fips_approved(&suite) {
                return Err(OfferError::SuiteNotFips(suite));
            }
            if !suites.contains(&suite) {
                suites.push(suite);
            }
        }
        let offer = TlsOffer {
            versions: unique_versions,
            cipher_suites: suites,
            fips,
        };
        match () {
            _ if offer.versions.is_empty() => Err(OfferError::NoVersion),
            _ if offer.cipher_suites.is_empty() => Err(OfferError::NoSuite),
            _ if offer.enabled_versions().is_empty() => Err(OfferError::NoUsableSuite),
            _ => Ok(offer),
        }
    }

    /// The same offer with FIPS mode switched. Switching it on drops what FIPS does not allow,
    /// as ONTAP does ("unapproved algorithms ... will be disabled"); if nothing would be left,
    /// the FIPS-approved part of ONTAP's default takes its place.
    pub fn with_fips(&self, fips: bool) -> TlsOffer {
        if !fips {
            return TlsOffer {
                fips: false,
                ..self.clone()
            };
        }
        let keep = |offer: &TlsOffer| {
            TlsOffer::new(
                &offer
                    .versions
                    .iter()
                    .copied()
                    .filter(|v| v.is_fips_approved())
                    .collect::<Vec<_>>(),
                &offer
                    .cipher_suites
                    .iter()
                    .filter(|s| is_fips_approved(s))
                    .cloned()
                    .collect::<Vec<_>>(),
                true,
            )
        };
        keep(self)
            .or_else(|_| keep(&TlsOffer::ontap_default()))
            .unwrap_or_else(|_| TlsOffer::ontap_default())
    }

    /// The versions as configured (ONTAP's `tls.protocol_versions`).
    pub fn versions(&self) -> &[TlsVersion] {
        &self.versions
    }

    /// The suites as configured (ONTAP's `tls.cipher_suites`).
    pub fn cipher_suites(&self) -> &[String] {
        &self.cipher_suites
    }

    pub fn fips(&self) -> bool {
        self.fips
    }

    /// The versions actually offered, newest first: as in ONTAP, every version from the lowest
    /// configured one up, less those no configured suite can be used with.
    pub fn enabled_versions(&self) -> Vec<TlsVersion> {
        let Some(lowest) = self.versions.iter().min().copied() else {
            return Vec::new();
        };
        TlsVersion::ALL
            .into_iter()
            .filter(|v| *v >= lowest)
            .filter(|v| !self.suites_for(*v).is_empty())
            .collect()
    }

    /// The configured suites that can be negotiated with `version`.
    pub fn suites_for(&self, version: TlsVersion) -> Vec<&str> {
        self.cipher_suites
            .iter()
            .map(String::as_str)
            .filter(|s| is_tls13_suite(s) == (version == TlsVersion::Tls1_3))
            .collect()
    }

    /// One line for messages: `TLS 1.3, TLS 1.2 with 128 cipher suites (FIPS mode off)`.
    pub fn describe(&self) -> String {
        let versions: Vec<String> = self
            .enabled_versions()
            .iter()
            .map(ToString::to_string)
            .collect();
        let count = self.offered_suite_count();
        format!(
            "{} with {count} cipher suite{} (FIPS mode {})",
            versions.join(", "),
            if count == 1 { "" } else { "s" },
            if self.fips { "on" } else { "off" }
        )
    }

    /// How many configured suites are offered: those that fit an offered version.
    pub fn offered_suite_count(&self) -> usize {
        let enabled = self.enabled_versions();
        let tls13 = enabled.contains(&TlsVersion::Tls1_3);
        let earlier = enabled.iter().any(|v| *v < TlsVersion::Tls1_3);
        self.cipher_suites
            .iter()
            .filter(|s| match is_tls13_suite(s) {
                true => tls13,
                false => earlier,
            })
            .count()
    }

    /// Restricts an OpenSSL context to this offer.
    pub(crate) fn configure(
        &self,
        builder: &mut SslContextBuilder,
    ) -> Result<(), openssl::error::ErrorStack> {
        let enabled = self.enabled_versions();
        let (Some(lowest), Some(highest)) = (enabled.last(), enabled.first()) else {
            return Ok(()); // cannot happen: an offer always has a usable version
        };
        builder.set_min_proto_version(Some(lowest.openssl()))?;
        builder.set_max_proto_version(Some(highest.openssl()))?;
        if *lowest < TlsVersion::Tls1_2 {
            // OpenSSL 3 refuses TLS 1.0 and 1.1 above security level 0.
            builder.set_security_level(0);
        }
        let legacy = openssl_list(self.cipher_suites.iter().filter(|s| !is_tls13_suite(s)));
        if !legacy.is_empty() {
            builder.set_cipher_list(&legacy)?;
        }
        let modern = openssl_list(self.cipher_suites.iter().filter(|s| is_tls13_suite(s)));
        builder.set_ciphersuites(&modern)?;
        Ok(())
    }
}

/// TLS 1.3 suites have no key exchange in their name: `TLS_AES_128_GCM_SHA256`.
pub fn is_tls13_suite(iana_name: &str) -> bool {
    !iana_name.contains("_WITH_")
}

/// FIPS-approved suites, after NIST SP 800-52r2: AES in GCM, CCM or CBC, with RSA, DHE or ECDHE
/// key exchange in TLS 1.2 and earlier; AES-GCM and AES-CCM in TLS 1.3. ChaCha20, Camellia,
/// ARIA, PSK and SRP suites are not.
pub fn is_fips_approved(iana_name: &str) -> bool {
    const TLS13: [&str; 4] = [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    ];
    const KEY_EXCHANGES: [&str; 5] = ["RSA", "DHE_RSA", "DHE_DSS", "ECDHE_RSA", "ECDHE_ECDSA"];
    if is_tls13_suite(iana_name) {
        return TLS13.contains(&iana_name);
    }
    let Some((key_exchange, cipher)) = iana_name
        .strip_prefix("TLS_")
        .and_then(|rest| rest.split_once("_WITH_"))
    else {
        return false;
    };
    KEY_EXCHANGES.contains(&key_exchange) && cipher.starts_with("AES_")
}

/// The longest IANA suite name (`TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256` has 45
/// characters) with room to spare: nothing longer is looked up.
const MAX_SUITE_NAME: usize = 64;

/// Whether a text has the shape of an IANA suite name: `TLS_` then upper-case letters, digits
/// and underscores. Checked before OpenSSL sees the text, because OpenSSL takes a C string
/// (`cipher_name` panics on an interior NUL).
fn is_iana_shaped(name: &str) -> bool {
    name.len() <= MAX_SUITE_NAME
        && name.starts_with("TLS_")
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// OpenSSL's name of a suite given by its IANA name, when OpenSSL knows it.
pub fn openssl_name(iana_name: &str) -> Option<&'static str> {
    if !is_iana_shaped(iana_name) {
        return None;
    }
    match openssl::ssl::cipher_name(iana_name) {
        "(NONE)" => None,
        name => Some(name),
    }
}

fn openssl_list<'a>(iana_names: impl Iterator<Item = &'a String>) -> String {
    iana_names
        .filter_map(|name| openssl_name(name))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ontaps_default_is_tls_1_2_and_1_3_with_static_rsa_cbc_suites() {
        let offer = TlsOffer::ontap_default();
        assert_eq!(
            offer.enabled_versions(),
            [TlsVersion::Tls1_3, TlsVersion::Tls1_2]
        );
        // The two suites the KMIP profiles make mandatory for TLS 1.2.
        for mandatory in [
            "TLS_RSA_WITH_AES_128_CBC_SHA256",
            "TLS_RSA_WITH_AES_256_CBC_SHA256",
        ] {
            assert!(offer.suites_for(TlsVersion::Tls1_2).contains(&mandatory));
        }
        assert_eq!(offer.suites_for(TlsVersion::Tls1_3).len(), 3);
        assert_eq!(offer.offered_suite_count(), 128);
        let tls13_only =
            TlsOffer::new(&[TlsVersion::Tls1_3], offer.cipher_suites(), false).expect("offer");
        assert_eq!(tls13_only.offered_suite_count(), 3);
        assert_eq!(
            tls13_only.describe(),
            "TLS 1.3 with 3 cipher suites (FIPS mode off)"
        );
        assert!(
            ONTAP_DEFAULT_CIPHER_SUITES
                .iter()
                .all(|s| openssl_name(s).is_some())
        );
    }

    #[test]
    fn names_that_are_not_iana_shaped_never_reach_openssl() {
        for name in [
            "A\u{0}",
            "TLS_RSA_WITH_AES_128_CBC_SHA256\u{0}",
            "\u{0}",
            "",
            "TLS_",
            "tls_rsa_with_aes_128_cbc_sha256",
            "TLS_RSA_WITH_AES_128_CBC_SHA256\n",
            "TLS_\u{7f}",
            "TLS_\u{e9}",
            &format!("TLS_{}", "A".repeat(100)),
        ] {
            assert_eq!(openssl_name(name), None, "{name:?}");
        }
        assert_eq!(
            openssl_name("TLS_RSA_WITH_AES_128_CBC_SHA256"),
            Some("AES128-SHA256")
        );
        let refused = TlsOffer::new(&[TlsVersion::Tls1_2], &["A\u{0}".to_string()], false);
        assert!(matches!(refused, Err(OfferError::UnknownSuite(_))));
    }

    #[test]
    fn lower_versions_enable_everything_above_them() {
        let suites = ["TLS_RSA_WITH_AES_128_CBC_SHA".to_string()];
        let offer = TlsOffer::new(&[TlsVersion::Tls1_1], &suites, false).expect("offer");
        // TLS 1.3 has no suite here, so it is not offered.
        assert_eq!(
            offer.enabled_versions(),
            [TlsVersion::Tls1_2, TlsVersion::Tls1_1]
        );
    }

    #[test]
    fn bad_offers_are_refused() {
        let suite = |s: &str| vec![s.to_string()];
        let v12 = [TlsVersion::Tls1_2];
        assert_eq!(
            TlsOffer::new(&[], &suite("TLS_AES_128_GCM_SHA256"), false),
            Err(OfferError::NoVersion)
        );
        assert_eq!(TlsOffer::new(&v12, &[], false), Err(OfferError::NoSuite));
        assert_eq!(
            TlsOffer::new(&v12, &suite("TLS_NOT_A_SUITE"), false),
            Err(OfferError::UnknownSuite("TLS_NOT_A_SUITE".into()))
        );
        assert_eq!(
            TlsOffer::new(
                &[TlsVersion::Tls1_3],
                &suite("TLS_RSA_WITH_AES_128_CBC_SHA256"),
                false
            )
            .map(|o| o.enabled_versions()),
            Err(OfferError::NoUsableSuite)
        );
        assert_eq!(
            TlsOffer::new(
                &[TlsVersion::Tls1_0],
                &suite("TLS_RSA_WITH_AES_128_CBC_SHA"),
                true
            ),
            Err(OfferError::VersionNotFips(TlsVersion::Tls1_0))
        );
        assert_eq!(
            TlsOffer::new(
                &v12,
                &suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
                true
            ),
            Err(OfferError::SuiteNotFips(
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into()
            ))
        );
    }

    #[test]
    fn fips_mode_keeps_only_approved_algorithms() {
        let offer = TlsOffer::ontap_default().with_fips(true);
        assert!(offer.fips());
        assert!(offer.cipher_suites().iter().all(|s| is_fips_approved(s)));
        assert!(
            offer
                .cipher_suites()
                .contains(&"TLS_RSA_WITH_AES_128_CBC_SHA256".to_string())
        );
        assert!(
            !offer
                .cipher_suites()
                .iter()
                .any(|s| s.contains("CHACHA20") || s.contains("CAMELLIA") || s.contains("PSK"))
        );
        assert_eq!(
            offer.with_fips(false).cipher_suites(),
            offer.cipher_suites()
        );
    }

    #[test]
    fn version_names_are_ontaps() {
        for version in TlsVersion::ALL {
            assert_eq!(
                TlsVersion::from_ontap_name(version.ontap_name()),
                Some(version)
            );
        }
        assert_eq!(
            TlsVersion::from_ontap_name("tlsv1.2"),
            Some(TlsVersion::Tls1_2)
        );
        assert_eq!(TlsVersion::from_ontap_name("SSLv3"), None);
    }
}
