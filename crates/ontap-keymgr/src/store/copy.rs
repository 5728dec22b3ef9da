//! Copying everything one store holds into another, empty one (`ontap-keymgr store migrate`):
//! through the store port, so that secrets are opened with the source's key and sealed anew for
//! their place in the target, and every rule of the target holds for what it receives. Then
//! everything is read back from the target and compared with the source.

use super::{Store, StoreError, StoreResult};
use crate::domain::model::AuditRecord;

/// Audit records are copied this many at a time.
const AUDIT_PAGE: usize = 1_000;

/// How many objects of each kind were copied and read back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub users: usize,
    pub svms: usize,
    pub certificates: usize,
    pub key_managers: usize,
    pub key_servers: usize,
    pub audit_records: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} SVMs, {} certificates, {} key managers with {} key servers, {} audit records",
            self.users,
            self.svms,
            self.certificates,
            self.key_managers,
            self.key_servers,
            self.audit_records
        )
    }
}

/// Copies `from` into `to`, which must be empty, then checks that `to` reads back the same.
pub async fn copy_all(from: &dyn Store, to: &dyn Store) -> StoreResult<Copied> {
    refuse_unless_empty(to).await?;
    let mut copied = Copied::default();
    for user in from.list_users().await? {
        to.insert_user(user).await?;
        copied.users += 1;
    }
    for svm in from.list_svms().await? {
        to.insert_svm(svm).await?;
        copied.svms += 1;
    }
    for certificate in from.list_certificates().await?.iter() {
        to.insert_certificate(certificate.clone()).await?;
        copied.certificates += 1;
    }
    for key_manager in from.list_key_managers().await?.iter() {
        copied.key_servers += key_manager.servers().len();
        to.insert_key_manager(key_manager.clone()).await?;
        copied.key_managers += 1;
        for key in from.list_auth_keys(&key_manager.uuid).await? {
            to.insert_auth_key(key).await?;
        }
    }
    for volume in from.list_volumes().await? {
        to.insert_volume(volume).await?;
    }
    if let Some(security) = from.load_security().await? {
        to.save_security(security).await?;
    }
    if let Some(config) = from.load_key_manager_config().await? {
        to.save_key_manager_config(config).await?;
    }
    copied.audit_records = copy_audit(from, to).await?;
    read_back(from, to).await?;
    Ok(copied)
}

async fn refuse_unless_empty(to: &dyn Store) -> StoreResult<()> {
    let empty = to.count_users().await? == 0
        && to.list_svms().await?.is_empty()
        && to.list_certificates().await?.is_empty()
        && to.list_key_managers().await?.is_empty()
        && to.list_audit_after(0, 1).await?.is_empty();
    if empty {
        return Ok(());
    }
    Err(StoreError::Conflict(
        "data in the target database: migrate into an empty one".into(),
    ))
}

/// The trail, oldest first, a page at a time; the target numbers the records anew, in order.
async fn copy_audit(from: &dyn Store, to: &dyn Store) -> StoreResult<usize> {
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = from.list_audit_after(after, AUDIT_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(count);
        };
        after = last.index;
        for record in page {
            to.append_audit(record, usize::MAX).await?;
            count += 1;
        }
    }
}

/// Everything the target holds, compared with the source: secrets included, audit records but
/// their numbers.
async fn read_back(from: &dyn Store, to: &dyn Store) -> StoreResult<()> {
    let differs =
        |what: &str| StoreError::Backend(format!("the copied {what} read back differently"));
    let login_state = |mut users: Vec<crate::domain::model::User>| {
        for user in &mut users {
            (user.failed_logins, user.locked_until) = (0, None);
        }
        users
    };
    if login_state(from.list_users().await?) != login_state(to.list_users().await?) {
        return Err(differs("users"));
    }
    if from.list_svms().await? != to.list_svms().await? {
        return Err(differs("SVMs"));
    }
    if from.list_certificates().await? != to.list_certificates().await? {
        return Err(differs("certificates"));
    }
    let key_managers = from.list_key_managers().await?;
    if key_managers != to.list_key_managers().await? {
        return Err(differs("key managers"));
    }
    if from.list_volumes().await? != to.list_volumes().await? {
        return Err(differs("volumes"));
    }
    for key_manager in key_managers.iter() {
        let uuid = &key_manager.uuid;
        if from.list_auth_keys(uuid).await? != to.list_auth_keys(uuid).await? {
            return Err(differs("authentication keys"));
        }
    }
    if from.load_security().await? != to.load_security().await?
        || from.load_key_manager_config().await? != to.load_key_manager_config().await?
    {
        return Err(differs("settings"));
    }
    compare_audit(from, to).await
}

/// The two trails, a page of each at a time (not whole: a trail may be large), but for the
/// records' numbers.
async fn compare_audit(from: &dyn Store, to: &dyn Store) -> StoreResult<()> {
    let (mut after_from, mut after_to) = (0, 0);
    loop {
        let source = from.list_audit_after(after_from, AUDIT_PAGE).await?;
        let target = to.list_audit_after(after_to, AUDIT_PAGE).await?;
        let unnumbered = |page: &[AuditRecord]| -> Vec<AuditRecord> {
            page.iter()
                .map(|record| AuditRecord {
                    index: 0,
                    ..record.clone()
                })
                .collect()
        };
        if unnumbered(&source) != unnumbered(&target) {
            return Err(StoreError::Backend(
                "the copied audit records read back differently".into(),
            ));
        }
        match (source.last(), target.last()) {
            (Some(s), Some(t)) => (after_from, after_to) = (s.index, t.index),
            _ => return Ok(()),
        }
    }
}
