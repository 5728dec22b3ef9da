//! Installing, listing and removing certificates (`/api/security/certificates`); reading them is
//! `x509.rs`, and PEM `pem.rs`.

use std::time::SystemTime;

use super::store::StoreFailure;

use super::catalogue::Catalogue;
use super::error::{Error, Result};
use super::limits::{MAX_CERTIFICATES, check_room};
use super::model::{Certificate, CertificateId, CertificateType, Secret, SvmRef};
use super::store::internal;
use super::svms::SvmSelector;
use super::x509::validate_installation;

/// A certificate as a client asks to install it.
#[derive(Debug, Clone, Default)]
pub struct NewCertificate {
    pub cert_type: String,
    pub public_certificate: Option<String>,
    pub private_key: Option<Secret>,
    pub name: Option<String>,
    pub svm: Option<SvmSelector>,
}

impl Catalogue {
    pub async fn certificates(&self) -> Result<std::sync::Arc<Vec<Certificate>>> {
        self.store.list_certificates().await.map_err(internal)
    }

    pub async fn certificate(&self, uuid: &CertificateId) -> Result<Certificate> {
        self.certificates()
            .await?
            .iter()
            .find(|c| &c.uuid == uuid)
            .cloned()
            .ok_or(Error::NotFound { target: "uuid" })
    }

    pub async fn install_certificate(&self, new: NewCertificate) -> Result<Certificate> {
        let cert_type = CertificateType::parse(&new.cert_type).ok_or_else(|| {
            Error::CertificateTypeNotSupported {
                given: new.cert_type.clone(),
                suggestion: CertificateType::suggest(&new.cert_type).map(CertificateType::as_str),
            }
        })?;
        let public_certificate = new
            .public_certificate
            .ok_or_else(|| Error::MissingValue("public_certificate".into()))?;
        let svm = match &new.svm {
            Some(selector) => Some(self.resolve_svm(selector).await?),
            None => None,
        };
        check_room(
            "certificates",
            self.certificates().await?.len(),
            MAX_CERTIFICATES,
        )?;
        let key = new.private_key.as_ref().map(Secret::expose);
        let parsed = validate_installation(cert_type, &public_certificate, key, SystemTime::now())?;
        let name = match new.name {
            Some(name) => check_name(name)?,
            None => default_name(&parsed.common_name, &parsed.serial_number),
        };
        let certificate = Certificate {
            uuid: CertificateId::new_random(),
            name: name.clone(),
            cert_type,
            svm,
            public_certificate,
            private_key: new.private_key.filter(|_| cert_type.has_private_key()),
            common_name: parsed.common_name,
            serial_number: parsed.serial_number,
            ca: parsed.ca,
            expiry_time: parsed.expiry_time,
        };
        self.store
            .insert_certificate(certificate.clone())
            .await
            .map_err(|e| {
                StoreFailure {
                    conflict: Error::AlreadyExists {
                        what: "Certificate",
                        name,
                        target: "name",
                    },
                    ..StoreFailure::default()
                }
                .into_error(e)
            })?;
        Ok(certificate)
    }

    pub async fn delete_certificate(&self, uuid: &CertificateId) -> Result<()> {
        let certificate = self.certificate(uuid).await?;
        self.store.delete_certificate(uuid).await.map_err(|e| {
            StoreFailure {
                conflict: Error::CertificateInUse(certificate.name.clone()),
                ..StoreFailure::default()
            }
            .into_error(e)
        })
    }

    /// A certificate a key manager refers to, by uuid or by name within the key manager's
    /// scope, of the expected type (65536821 otherwise).
    pub(super) async fn find_certificate(
        &self,
        reference: &CertificateRef,
        scope: Option<&SvmRef>,
        expected: CertificateType,
        role: super::error::CertificateRole,
    ) -> Result<Certificate> {
        let all = self.certificates().await?;
        let found = all.iter().find(|c| {
            let same_scope = c.svm.as_ref().map(|s| &s.uuid) == scope.map(|s| &s.uuid);
            let uuid_ok = reference
                .uuid
                .as_ref()
                .is_none_or(|u| CertificateId::parse(u).as_ref() == Some(&c.uuid));
            let name_ok = reference.name.as_ref().is_none_or(|n| *n == c.name);
            let by_uuid = reference.uuid.is_some();
            uuid_ok && name_ok && (by_uuid || same_scope) && c.cert_type == expected
        });
        found
            .cloned()
            .ok_or_else(|| Error::CertificateNotInstalled {
                role,
                uuid: reference
                    .uuid
                    .clone()
                    .or_else(|| reference.name.clone())
                    .unwrap_or_default(),
            })
    }
}

/// How a key manager names a certificate: by uuid, by name, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateRef {
    pub uuid: Option<String>,
    pub name: Option<String>,
}

fn check_name(name: String) -> Result<String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(name)
    } else {
        Err(Error::InvalidValue {
            field: "name".into(),
            message: format!(
                "The value \"{name}\" is invalid for field \"name\": use 1 to 255 letters, \
                 digits, '-', '_' and '.'."
            ),
        })
    }
}

/// ONTAP names an unnamed certificate after its common name and serial number.
fn default_name(common_name: &str, serial_number: &str) -> String {
    let base: String = common_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tail: String = serial_number
        .chars()
        .rev()
        .take(16)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{}_{}",
        if base.is_empty() {
            "certificate"
        } else {
            &base
        },
        tail
    )
}
