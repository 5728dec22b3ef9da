//! The `certificates` table; private keys sealed.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqlResultExt, column, corrupt, exists, open, svm_ref};
use crate::domain::model::{Certificate, CertificateId, CertificateType};
use crate::store::secrets::SecretBox;
use crate::store::{StoreError, StoreResult};
use crate::store::{certificate_name_taken, sealed_private_key};

/// A certificates row, before its secret is opened.
struct CertificateRow {
    uuid: String,
    name: String,
    cert_type: String,
    svm_uuid: Option<String>,
    svm_name: Option<String>,
    public_certificate: String,
    private_key: Option<Vec<u8>>,
    common_name: String,
    serial_number: String,
    ca: String,
    expiry_time: String,
}

impl CertificateRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<CertificateRow> {
        Ok(CertificateRow {
            uuid: row.get(0)?,
            name: row.get(1)?,
            cert_type: row.get(2)?,
            svm_uuid: row.get(3)?,
            svm_name: row.get(4)?,
            public_certificate: row.get(5)?,
            private_key: row.get(6)?,
            common_name: row.get(7)?,
            serial_number: row.get(8)?,
            ca: row.get(9)?,
            expiry_time: row.get(10)?,
        })
    }

    fn into_certificate(self, secrets: &SecretBox) -> StoreResult<Certificate> {
        let cert_type = CertificateType::parse(&self.cert_type)
            .ok_or_else(|| corrupt(&format!("certificate type {}", self.cert_type)))?;
        let private_key = self
            .private_key
            .map(|sealed| open(secrets, &sealed, column::PRIVATE_KEY, &[&self.uuid]))
            .transpose()?;
        Ok(Certificate {
            svm: svm_ref(self.svm_uuid, self.svm_name)?,
            uuid: CertificateId::from_stored(self.uuid),
            name: self.name,
            cert_type,
            public_certificate: self.public_certificate,
            private_key,
            common_name: self.common_name,
            serial_number: self.serial_number,
            ca: self.ca,
            expiry_time: self.expiry_time,
        })
    }
}

pub(super) fn list_certificates(
    connection: &Connection,
    secrets: &SecretBox,
) -> StoreResult<Vec<Certificate>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT c.uuid, c.name, c.type, c.svm_uuid, s.name, c.public_certificate,
                    c.private_key, c.common_name, c.serial_number, c.ca, c.expiry_time
             FROM certificates c LEFT JOIN svms s ON s.uuid = c.svm_uuid
             ORDER BY c.name, c.uuid",
        )
        .db()?;
    let rows = statement
        .query_map([], CertificateRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_certificate(secrets))
        .collect()
}

pub(super) fn insert_certificate(
    connection: &Connection,
    secrets: &SecretBox,
    certificate: &Certificate,
) -> StoreResult<()> {
    let svm_uuid = certificate.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM certificates
                            WHERE COALESCE(svm_uuid, '') = COALESCE(?1, '') AND name = ?2)",
            params![svm_uuid, certificate.name],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(certificate_name_taken(certificate));
    }
    let private_key = sealed_private_key(secrets, certificate)?;
    connection
        .execute(
            "INSERT INTO certificates (uuid, name, type, svm_uuid, public_certificate,
                 private_key, common_name, serial_number, ca, expiry_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                certificate.uuid,
                certificate.name,
                certificate.cert_type.as_str(),
                svm_uuid,
                certificate.public_certificate,
                private_key,
                certificate.common_name,
                certificate.serial_number,
                certificate.ca,
                certificate.expiry_time,
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn delete_certificate(connection: &Connection, uuid: &str) -> StoreResult<()> {
    let name: String = connection
        .query_row(
            "SELECT name FROM certificates WHERE uuid = ?1",
            [uuid],
            |row| row.get(0),
        )
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    let used = exists(
        connection,
        "SELECT 1 FROM key_managers WHERE client_certificate_uuid = ?1
         UNION ALL SELECT 1 FROM key_manager_server_cas WHERE certificate_uuid = ?1",
        uuid,
    )?;
    if used {
        return Err(StoreError::Conflict(format!(
            "a key manager using certificate \"{name}\""
        )));
    }
    connection
        .execute("DELETE FROM certificates WHERE uuid = ?1", [uuid])
        .db()?;
    Ok(())
}
