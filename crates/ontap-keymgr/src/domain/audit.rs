//! The audit trail: every write through the API, with its input stripped of secrets
//! (ONTAP: "This is not audited" for passwords and private keys).

use serde_json::Value;

use super::error::Result;
use super::model::AuditRecord;
use super::service::{Service, internal};

/// What replaces a secret in the trail.
pub const REDACTED: &str = "<redacted>";

/// Fields whose values are never audited, at any depth.
const SECRET_FIELDS: [&str; 5] = [
    "password",
    "passphrase",
    "existing_passphrase",
    "private_key",
    "key_backup",
];

/// A copy of `input` with every secret field replaced by [`REDACTED`].
pub fn redact(input: &Value) -> Value {
    match input {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = if SECRET_FIELDS.contains(&key.as_str()) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// One write to record.
pub struct AuditEntry<'a> {
    pub user: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The request body as parsed, if it was JSON; anything else is not recorded.
    pub input: Option<&'a Value>,
    pub status: u16,
    pub error_code: Option<String>,
}

impl Service {
    pub async fn audit(&self, entry: AuditEntry<'_>) -> Result<()> {
        let input = entry
            .input
            .map(redact)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.store
            .append_audit(AuditRecord {
                index: 0,
                time,
                user: entry.user.to_string(),
                method: entry.method.to_string(),
                path: entry.path.to_string(),
                input,
                status: entry.status,
                error_code: entry.error_code,
            })
            .await
            .map_err(internal)
    }

    pub async fn audit_records(&self) -> Result<Vec<AuditRecord>> {
        self.store.list_audit().await.map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_at_any_depth() {
        let input = json!({
            "records": [{"server": "ks1", "username": "u", "password": "hunter2"}],
            "onboard": {"passphrase": "p".repeat(32), "existing_passphrase": "old"},
            "private_key": "-----BEGIN PRIVATE KEY-----",
        });
        let redacted = redact(&input).to_string();
        for secret in ["hunter2", "ppppp", "old", "BEGIN PRIVATE KEY"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(redacted.contains("\"username\":\"u\""));
        assert!(redacted.contains("ks1"));
    }
}
