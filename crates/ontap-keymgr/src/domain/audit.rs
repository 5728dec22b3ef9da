//! The audit trail: every write through the API, with its input stripped of secrets
//! (ONTAP: "This is not audited" for passwords and private keys).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::error::Result;
use super::model::AuditRecord;
use super::store::{AuditStore, internal};

/// What replaces a secret in the trail.
pub const REDACTED: &str = "<redacted>";

/// Parts of names whose values are never audited, in any case and at any depth: `password`,
/// `Password`, `existing_passphrase`, `client_secret`, `private_key`...
const SECRET_NAME_PARTS: [&str; 6] = [
    "password",
    "passphrase",
    "secret",
    "private_key",
    "privatekey",
    "key_backup",
];

/// How many records the trail keeps unless configured otherwise; the oldest go first.
pub const DEFAULT_RETENTION: usize = 100_000;

/// At most this much of a request's input is kept, after redaction.
pub const MAX_AUDITED_INPUT: usize = 4096;

/// Whether a field or query parameter of this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// A copy of `input` with every secret replaced by [`REDACTED`]: the values of secret-named
/// fields, and PEM private-key blocks wherever they are.
pub fn redact(input: &Value) -> Value {
    match input {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = match is_secret_name(key) {
                        true => Value::String(REDACTED.into()),
                        false => redact(value),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(text) => Value::String(redact_private_keys(text)),
        other => other.clone(),
    }
}

/// `text` with each PEM private-key block (`-----BEGIN ... PRIVATE KEY-----` to its end line,
/// or to the end of the text when it has none) replaced by [`REDACTED`].
pub fn redact_private_keys(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let label_end = after_begin.find("-----").unwrap_or(after_begin.len());
        let label = &after_begin[..label_end];
        if !label.contains("PRIVATE KEY") {
            let keep = start + BEGIN.len();
            out.push_str(&rest[..keep]);
            rest = &rest[keep..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        let end_marker = format!("-----END {label}-----");
        rest = match after_begin.find(&end_marker) {
            Some(end) => &after_begin[end + end_marker.len()..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// A path with the values of secret-named query parameters replaced by [`REDACTED`].
pub fn redact_query(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&decoded(name)) => format!("{name}={REDACTED}"),
            None if is_secret_name(&decoded(pair)) => format!("{pair}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// At most [`MAX_AUDITED_INPUT`] bytes of `text`, cut at a character boundary.
fn capped(mut text: String) -> String {
    if text.len() > MAX_AUDITED_INPUT {
        let mut cut = MAX_AUDITED_INPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...(truncated)");
    }
    text
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
    /// The client's IP address.
    pub address: Option<String>,
}

/// A write request's audit record, committed by the store in the same transaction as the
/// request's change: no change is ever committed without its record, and no record says a
/// change was made that did not commit. [`Service::audited`] holds it while the request runs;
/// a store's write takes it with [`pending`] and, once committed, says so with [`recorded`]. A
/// request that changes nothing (refused, failed) is recorded afterwards, on its own.
struct PendingAudit {
    record: AuditRecord,
    keep: usize,
    recorded: AtomicBool,
}

tokio::task_local! {
    static PENDING: Arc<PendingAudit>;
}

/// The record the current request's change is to carry, with how many records the trail keeps:
/// none outside a write request, or once its change committed.
pub fn pending() -> Option<(AuditRecord, usize)> {
    PENDING
        .try_with(|pending| {
            (!pending.recorded.load(Ordering::SeqCst))
                .then(|| (pending.record.clone(), pending.keep))
        })
        .ok()
        .flatten()
}

/// Runs `request` with `record` pending (the trail keeping `keep` records): answers its outcome,
/// and whether the record was committed.
pub async fn with_pending<F: Future>(
    record: AuditRecord,
    keep: usize,
    request: F,
) -> (F::Output, bool) {
    let pending = Arc::new(PendingAudit {
        record,
        keep,
        recorded: AtomicBool::new(false),
    });
    let output = PENDING.scope(Arc::clone(&pending), request).await;
    (output, pending.recorded.load(Ordering::SeqCst))
}

/// Says the current request's record was committed with its change.
pub fn recorded() {
    let _ = PENDING.try_with(|pending| pending.recorded.store(true, Ordering::SeqCst));
}

/// The audit part: records requests, keeping the newest `retention` records.
pub struct AuditTrail {
    store: Arc<dyn AuditStore>,
    retention: usize,
}

impl AuditTrail {
    /// Keeps at most `retention` records (at least one).
    pub fn new(store: Arc<dyn AuditStore>, retention: usize) -> AuditTrail {
        AuditTrail {
            store,
            retention: retention.max(1),
        }
    }

    /// Records a request that changed nothing: a refusal, a failure.
    pub async fn record(&self, entry: AuditEntry<'_>) -> Result<()> {
        self.store
            .append_audit(self.audit_record(entry), self.retention)
            .await
            .map_err(internal)
    }

    /// Runs a write request with its record pending (`entry` tells how it ends when it
    /// succeeds): its change commits with the record. Answers the request's outcome, and
    /// whether its record was committed.
    pub async fn run_recorded<F: Future>(
        &self,
        entry: AuditEntry<'_>,
        request: F,
    ) -> (F::Output, bool) {
        with_pending(self.audit_record(entry), self.retention, request).await
    }

    /// The record of `entry`: its input redacted and capped, the time now.
    fn audit_record(&self, entry: AuditEntry<'_>) -> AuditRecord {
        let input = entry
            .input
            .map(redact)
            .map(|v| capped(v.to_string()))
            .unwrap_or_default();
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        AuditRecord {
            index: 0,
            time,
            user: entry.user.to_string(),
            method: entry.method.to_string(),
            path: capped(redact_query(entry.path)),
            input,
            status: entry.status,
            error_code: entry.error_code,
            address: entry.address,
        }
    }

    /// At most `limit` records after index `after`, oldest first.
    pub async fn records_after(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.store
            .list_audit_after(after, limit)
            .await
            .map_err(internal)
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

    #[test]
    fn secrets_are_found_by_what_their_names_say_in_any_case() {
        let input = json!({
            "Password": "a1", "KMIP_PASSWORD": "a2", "client_secret": "a3",
            "new_passphrase": "a4", "PrivateKey": "a5",
            "secondary_key_servers": ["ks2"], "timeout": 5,
        });
        let redacted = redact(&input).to_string();
        for secret in ["a1", "a2", "a3", "a4", "a5"] {
            assert!(!redacted.contains(&format!("\"{secret}\"")), "{redacted}");
        }
        assert!(redacted.contains("ks2") && redacted.contains("\"timeout\":5"));
    }

    #[test]
    fn private_key_blocks_are_removed_wherever_they_are() {
        let certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN RSA PRIVATE KEY-----\nSECRETBITS\n-----END RSA PRIVATE KEY-----\n";
        let input = json!({ "public_certificate": format!("{certificate}{key}"), "note": key });
        let redacted = redact(&input).to_string();
        assert!(!redacted.contains("SECRETBITS"), "{redacted}");
        assert!(redacted.contains("BEGIN CERTIFICATE") && redacted.contains("MIIB"));
        // A block without its end line is removed to the end.
        assert_eq!(
            redact_private_keys("a -----BEGIN PRIVATE KEY-----\nMIIE"),
            format!("a {REDACTED}")
        );
    }

    #[test]
    fn secret_query_parameters_are_redacted_and_long_inputs_capped() {
        assert_eq!(
            redact_query("/api/x?password=S3cret&fields=*&Pass%77ord=b"),
            format!("/api/x?password={REDACTED}&fields=*&Pass%77ord={REDACTED}")
        );
        assert_eq!(redact_query("/api/x"), "/api/x");
        let long = capped("é".repeat(MAX_AUDITED_INPUT));
        assert!(long.len() <= MAX_AUDITED_INPUT + 20 && long.ends_with("...(truncated)"));
    }
}
