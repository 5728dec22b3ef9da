//! Storage VMs, the tenants that own certificates and key managers.

use super::store::StoreFailure;

use super::catalogue::Catalogue;
use super::error::{Error, Result};
use super::limits::{MAX_SVMS, check_room};
use super::model::{Svm, SvmId, SvmRef};
use super::store::internal;

/// ONTAP's limit on SVM names.
const MAX_NAME_LEN: usize = 47;

/// How a request names an SVM: by name, by uuid, or both (they must agree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvmSelector {
    pub name: Option<String>,
    pub uuid: Option<String>,
}

impl Catalogue {
    pub async fn svms(&self) -> Result<Vec<Svm>> {
        self.store.list_svms().await.map_err(internal)
    }

    pub async fn svm(&self, uuid: &SvmId) -> Result<Svm> {
        self.svms()
            .await?
            .into_iter()
            .find(|svm| &svm.uuid == uuid)
            .ok_or(Error::NotFound { target: "uuid" })
    }

    pub async fn create_svm(&self, name: &str) -> Result<Svm> {
        check_name(name)?;
        let existing = self.store.list_svms().await.map_err(internal)?.len();
        check_room("SVMs", existing, MAX_SVMS)?;
        let svm = Svm {
            uuid: SvmId::new_random(),
            name: name.to_string(),
        };
        self.store.insert_svm(svm.clone()).await.map_err(|e| {
            StoreFailure {
                conflict: Error::AlreadyExists {
                    what: "SVM",
                    name: name.to_string(),
                    target: "name",
                },
                ..StoreFailure::default()
            }
            .into_error(e)
        })?;
        Ok(svm)
    }

    pub async fn delete_svm(&self, uuid: &SvmId) -> Result<()> {
        let svm = self.svm(uuid).await?;
        self.store.delete_svm(uuid).await.map_err(|e| {
            StoreFailure {
                conflict: Error::InUse(format!(
                    "SVM \"{}\" still has certificates, a key manager or volumes: delete them first.",
                    svm.name
                )),
                ..StoreFailure::default()
            }
            .into_error(e)
        })
    }

    /// The SVM a request names, or 2621462.
    pub async fn resolve_svm(&self, selector: &SvmSelector) -> Result<SvmRef> {
        let shown = selector
            .name
            .clone()
            .or_else(|| selector.uuid.clone())
            .unwrap_or_default();
        self.svms()
            .await?
            .iter()
            .find(|svm| {
                selector.name.as_ref().is_none_or(|n| *n == svm.name)
                    && selector
                        .uuid
                        .as_ref()
                        .is_none_or(|u| SvmId::parse(u).as_ref() == Some(&svm.uuid))
            })
            .map(SvmRef::from)
            .ok_or(Error::SvmNotFound(shown))
    }
}

fn check_name(name: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !valid_chars || !starts_well {
        return Err(Error::InvalidValue {
            field: "name".into(),
            message: format!(
                "The value \"{name}\" is invalid for field \"name\": an SVM name has 1 to \
                 {MAX_NAME_LEN} characters, letters, digits, '-', '_' and '.', and starts with a \
                 letter or '_'."
            ),
        });
    }
    Ok(())
}
