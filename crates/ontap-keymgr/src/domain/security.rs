//! The cluster's security configuration, ONTAP's `security config` (`/api/security`): FIPS mode,
//! and the TLS protocol versions and cipher suites offered to key servers. It is what every KMIP
//! connection of the service offers; changing it applies to the next connection. Kept by the
//! settings part (`settings.rs`).

use kmip::{OfferError, TlsOffer, TlsVersion};

use super::error::{Error, Result};
use super::model::SecuritySettings;

/// What a PATCH of `/api/security` (or the configuration file) asks to change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecurityChanges {
    pub fips: Option<bool>,
    pub protocol_versions: Option<Vec<String>>,
    pub cipher_suites: Option<Vec<String>>,
}

impl SecurityChanges {
    pub fn is_empty(&self) -> bool {
        self.fips.is_none() && self.protocol_versions.is_none() && self.cipher_suites.is_none()
    }
}

const VERSIONS_FIELD: &str = "tls.protocol_versions";
const SUITES_FIELD: &str = "tls.cipher_suites";

/// The offer `changes` make of `current`, in ONTAP's way: switching FIPS mode on drops what
/// FIPS does not allow; explicitly asking for it while FIPS is on is refused.
pub(super) fn offer_of_changes(current: &TlsOffer, changes: &SecurityChanges) -> Result<TlsOffer> {
    let fips = changes.fips.unwrap_or(current.fips());
    let base = current.with_fips(fips);
    let versions = match &changes.protocol_versions {
        Some(names) => parse_versions(names, fips)?,
        None => base.versions().to_vec(),
    };
    let suites = changes
        .cipher_suites
        .clone()
        .unwrap_or_else(|| base.cipher_suites().to_vec());
    TlsOffer::new(&versions, &suites, fips).map_err(offer_error)
}

fn parse_versions(names: &[String], fips: bool) -> Result<Vec<TlsVersion>> {
    names
        .iter()
        .map(|name| {
            if name.trim().eq_ignore_ascii_case("SSLv3") {
                return Err(match fips {
                    true => Error::SslV3NotFips,
                    false => Error::InvalidValue {
                        field: VERSIONS_FIELD.into(),
                        message: "SSLv3 is not supported: OpenSSL 3 no longer implements it."
                            .into(),
                    },
                });
            }
            TlsVersion::from_ontap_name(name).ok_or_else(|| Error::InvalidFieldsValue {
                field: VERSIONS_FIELD.into(),
                value: name.clone(),
            })
        })
        .collect()
}

fn offer_error(error: OfferError) -> Error {
    match error {
        OfferError::VersionNotFips(version) => {
            Error::TlsVersionNotFips(version.ontap_name().to_string())
        }
        OfferError::NoVersion | OfferError::UnknownVersion(_) => Error::InvalidValue {
            field: VERSIONS_FIELD.into(),
            message: capitalized(&error.to_string()),
        },
        other => Error::InvalidValue {
            field: SUITES_FIELD.into(),
            message: capitalized(&other.to_string()),
        },
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

pub(super) fn settings_of(offer: &TlsOffer) -> SecuritySettings {
    SecuritySettings {
        fips: offer.fips(),
        protocol_versions: offer
            .versions()
            .iter()
            .map(|v| v.ontap_name().to_string())
            .collect(),
        cipher_suites: offer.cipher_suites().to_vec(),
    }
}

pub(super) fn offer_from(stored: &SecuritySettings) -> std::result::Result<TlsOffer, OfferError> {
    let versions = stored
        .protocol_versions
        .iter()
        .map(|name| {
            TlsVersion::from_ontap_name(name).ok_or(OfferError::UnknownVersion(name.clone()))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    TlsOffer::new(&versions, &stored.cipher_suites, stored.fips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_store_form() {
        let offer = TlsOffer::ontap_default().with_fips(true);
        assert_eq!(offer_from(&settings_of(&offer)), Ok(offer));
    }

    #[test]
    fn version_errors_carry_ontaps_codes() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_versions(&names(&["SSLv3"]), true).unwrap_err().code(),
            52428817
        );
        assert_eq!(
            parse_versions(&names(&["SSLv3"]), false)
                .unwrap_err()
                .code(),
            262197
        );
        assert_eq!(
            parse_versions(&names(&["TLSv9"]), false)
                .unwrap_err()
                .target(),
            Some(VERSIONS_FIELD.to_string())
        );
        assert_eq!(
            offer_error(OfferError::VersionNotFips(TlsVersion::Tls1_0)).code(),
            52428824
        );
    }
}
