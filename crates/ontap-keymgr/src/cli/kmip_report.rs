//! The pre-flight report of `kmip check`: gathered step by step, then printed as text for people
//! or as one JSON object for automation. Its JSON field names are stable (docs/cli.md).

use serde::Serialize;

use kmip::probe::{Pick, SuiteVerdict};
use kmip::replication::Replication as ReplicationCheck;
use kmip::round_trip::RoundTrip;
use kmip::{
    CertificateSummary, Connector, Endpoint, Failure, Handshake, ProtocolVersion, QueryAnswer,
    format_time, now,
};

use super::kmip_check::{ontap_error, remedy};

/// Certificates expiring within this many days are worth a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub ok: bool,
    pub offer: Offer,
    pub connection: Option<Connection>,
    pub server_certificate: Option<Certificate>,
    pub client_certificate: Certificate,
    pub kmip: Option<Kmip>,
    pub suites: Option<Vec<Suite>>,
    pub key_round_trip: Option<KeyRoundTrip>,
    pub replication: Option<Replication>,
    pub warnings: Vec<String>,
    pub error: Option<Problem>,
    #[serde(skip)]
    pub failure: Option<Failure>,
}

#[derive(Debug, Serialize)]
pub struct Offer {
    pub fips: bool,
    pub tls_versions: Vec<String>,
    /// How many suites are offered (those that fit an offered version).
    pub cipher_suites: usize,
}

#[derive(Debug, Serialize)]
pub struct Connection {
    pub connect_ms: f64,
    pub handshake_ms: f64,
    pub tls_version: Option<String>,
    pub cipher_suite: String,
}

#[derive(Debug, Serialize)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub key: String,
    pub not_before: String,
    pub not_after: String,
    pub days_to_expiry: i64,
    /// Extended key usage serverAuth (server) or clientAuth (client); `null`: no EKU extension.
    pub extended_key_usage: Option<bool>,
    /// Server certificate: whether it names the address used. Client: whether the key matches.
    pub matches: bool,
}

#[derive(Debug, Serialize)]
pub struct Kmip {
    pub versions: Vec<String>,
    pub operations: Vec<String>,
    pub object_types: Vec<String>,
    pub vendor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Suite {
    pub tls_version: String,
    pub cipher_suite: String,
    pub fips_approved: bool,
    /// `accepted`, `refused`, `not_offerable` (this client cannot offer it) or `failed`.
    pub result: &'static str,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct KeyRoundTrip {
    pub ok: bool,
    /// The test key's `x-NETAPP-KeyId`.
    pub key_id: String,
    /// Its unique identifier on the server, once registered.
    pub unique_identifier: Option<String>,
    pub left_on_server: bool,
    pub steps: Vec<RoundTripStep>,
}

#[derive(Debug, Serialize)]
pub struct Replication {
    pub ok: bool,
    /// The test key's `x-NETAPP-KeyId`.
    pub key_id: String,
    /// Whether the test key was destroyed on the primary at the end.
    pub cleaned_up: bool,
    pub secondaries: Vec<ReplicatedTo>,
}

#[derive(Debug, Serialize)]
pub struct ReplicatedTo {
    pub server: String,
    pub ok: bool,
    /// Milliseconds after the key was stored on the primary; `null` when not within the wait.
    pub found_after_ms: Option<u128>,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct RoundTripStep {
    pub operation: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Problem {
    /// `server_not_trusted`, `client_certificate_rejected`, `tls`, `unreachable`,
    /// `operation_failed`.
    pub kind: &'static str,
    pub ontap_code: u64,
    pub ontap_message: &'static str,
    pub message: String,
    pub hint: &'static str,
}

impl Report {
    pub fn new(server: &Endpoint, connector: &Connector) -> Report {
        let offer = connector.offer();
        let client = connector.identity().client_certificate();
        let mut report = Report {
            server: server.to_string(),
            ok: true,
            offer: Offer {
                fips: offer.fips(),
                tls_versions: offer
                    .enabled_versions()
                    .iter()
                    .map(|v| v.ontap_name().to_string())
                    .collect(),
                cipher_suites: offer.offered_suite_count(),
            },
            connection: None,
            server_certificate: None,
            // The identity was built, so the key matches the certificate.
            client_certificate: certificate(&client, client.client_auth, true),
            kmip: None,
            suites: None,
            key_round_trip: None,
            replication: None,
            warnings: Vec::new(),
            error: None,
            failure: None,
        };
        if client.client_auth != Some(true) {
            report.warn(format!(
                "the client certificate ({}) has no extended key usage clientAuth: PyKMIP and \
                 many key servers refuse such certificates",
                client.subject
            ));
        }
        report.warn_expiry("client", &client);
        report
    }

    pub fn connected(&mut self, handshake: &Handshake, host: &str) {
        self.connection = Some(Connection {
            connect_ms: milliseconds(handshake.connect_time),
            handshake_ms: milliseconds(handshake.handshake_time),
            tls_version: handshake.version.map(|v| v.ontap_name().to_string()),
            cipher_suite: handshake.cipher_suite.clone(),
        });
        if let Some(server) = &handshake.server_certificate {
            self.server_certificate = Some(certificate(
                server,
                server.server_auth,
                server.names_host(host),
            ));
            self.warn_expiry("server", server);
        }
    }

    pub fn versions(&mut self, versions: &[ProtocolVersion]) {
        self.kmip = Some(Kmip {
            versions: versions.iter().map(ToString::to_string).collect(),
            operations: Vec::new(),
            object_types: Vec::new(),
            vendor: None,
        });
    }

    pub fn query(&mut self, answer: &QueryAnswer) {
        if let Some(kmip) = &mut self.kmip {
            kmip.operations = answer
                .operations
                .iter()
                .map(|o| operation_name(*o))
                .collect();
            kmip.object_types = answer
                .object_types
                .iter()
                .map(|o| object_type_name(*o))
                .collect();
            kmip.vendor = answer.vendor_identification.clone();
        }
    }

    pub fn round_trip(&mut self, trip: &RoundTrip) {
        self.key_round_trip = Some(KeyRoundTrip {
            ok: trip.succeeded(),
            key_id: trip.key_id.clone(),
            unique_identifier: trip.unique_identifier.clone(),
            left_on_server: trip.key_left_behind(),
            steps: trip
                .steps
                .iter()
                .map(|s| RoundTripStep {
                    operation: s.operation,
                    ok: s.ok,
                    detail: s.detail.clone(),
                })
                .collect(),
        });
        self.warnings.extend(trip.warnings.iter().cloned());
        if let Some(error) = &trip.error {
            self.fail(error);
        }
    }

    pub fn replication(&mut self, check: &ReplicationCheck) {
        self.replication = Some(Replication {
            ok: check.succeeded(),
            key_id: check.key_id.clone(),
            cleaned_up: check.cleaned_up,
            secondaries: check
                .secondaries
                .iter()
                .map(|s| ReplicatedTo {
                    server: s.server.clone(),
                    ok: s.found_after.is_some(),
                    found_after_ms: s.found_after.map(|d| d.as_millis()),
                    detail: s.detail.clone(),
                })
                .collect(),
        });
        if !check.cleaned_up {
            self.warn(format!(
                "the replication test key (x-NETAPP-KeyId {}) is left on the primary: destroy it there",
                check.key_id
            ));
        }
        if let Some(error) = &check.error {
            self.fail(error);
        } else if let Some(missing) = check.secondaries.iter().find(|s| s.found_after.is_none()) {
            self.fail(&kmip::Error {
                server: missing.server.clone(),
                failure: Failure::OperationFailed,
                detail: format!(
                    "the key stored through the primary did not reach it: {}",
                    missing.detail
                ),
                result: None,
            });
        }
    }

    pub fn suites(&mut self, verdicts: &[SuiteVerdict]) {
        self.suites = Some(
            verdicts
                .iter()
                .map(|v| {
                    let (result, detail) = match &v.outcome {
                        Pick::Chose(_) => ("accepted", None),
                        Pick::Refused => ("refused", None),
                        Pick::CannotOffer(why) => ("not_offerable", Some(why.clone())),
                        Pick::Failed(why) => ("failed", Some(why.clone())),
                    };
                    Suite {
                        tls_version: v.version.ontap_name().to_string(),
                        cipher_suite: v.suite.clone(),
                        fips_approved: v.fips_approved,
                        result,
                        detail,
                    }
                })
                .collect(),
        );
    }

    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    pub fn fail(&mut self, error: &kmip::Error) {
        if self.failure.is_some() {
            return;
        }
        let (ontap_code, ontap_message) = ontap_error(error.failure);
        self.ok = false;
        self.failure = Some(error.failure);
        self.error = Some(Problem {
            kind: failure_kind(error.failure),
            ontap_code,
            ontap_message,
            message: error.to_string(),
            hint: remedy(error.failure),
        });
    }

    fn warn_expiry(&mut self, whose: &str, certificate: &CertificateSummary) {
        let days = certificate.days_to_expiry(now());
        if days < 0 {
            self.warn(format!(
                "the {whose} certificate expired on {}",
                format_time(certificate.not_after)
            ));
        } else if days < EXPIRY_WARNING_DAYS {
            self.warn(format!(
                "the {whose} certificate expires in {days} days, on {}",
                format_time(certificate.not_after)
            ));
        }
    }

    pub fn print(&self, format: Format) {
        match format {
            Format::Json => match serde_json::to_string_pretty(self) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("error: cannot write the report: {e}"),
            },
            Format::Text => {
                print!("{}", self.text());
                if let Some(problem) = &self.error {
                    eprintln!("error: {}", problem.message);
                    eprintln!(
                        "ONTAP would answer {}: {}",
                        problem.ontap_code, problem.ontap_message
                    );
                    eprintln!("hint: {}", problem.hint);
                }
            }
        }
    }

    fn text(&self) -> String {
        let mut out = Vec::new();
        out.push(format!("Key server {}", self.server));
        out.push(format!(
            "  offered: {} with {} cipher suites (FIPS mode {})",
            self.offer.tls_versions.join(", "),
            self.offer.cipher_suites,
            if self.offer.fips { "on" } else { "off" }
        ));
        if let Some(c) = &self.connection {
            out.push(format!(
                "  connected in {:.1} ms; TLS handshake in {:.1} ms: {} with {}",
                c.connect_ms,
                c.handshake_ms,
                c.tls_version.as_deref().unwrap_or("?"),
                c.cipher_suite
            ));
        }
        if let Some(server) = &self.server_certificate {
            out.push("Server certificate".into());
            certificate_lines(&mut out, server, "serverAuth", "names the address used");
        }
        out.push("Client certificate".into());
        certificate_lines(
            &mut out,
            &self.client_certificate,
            "clientAuth",
            "key matches",
        );
        if let Some(kmip) = &self.kmip {
            out.push("KMIP".into());
            out.push(format!("  KMIP versions: {}", kmip.versions.join(" ")));
            if let Some(vendor) = &kmip.vendor {
                out.push(format!("  server: {vendor}"));
            }
            if !kmip.operations.is_empty() {
                out.push(format!("  operations: {}", kmip.operations.join(", ")));
            }
            if !kmip.object_types.is_empty() {
                out.push(format!("  object types: {}", kmip.object_types.join(", ")));
            }
        }
        if let Some(trip) = &self.key_round_trip {
            out.push(format!(
                "Key round trip as ONTAP stores keys (x-NETAPP-KeyId {}): {}",
                trip.key_id,
                if trip.ok { "ok" } else { "FAILED" }
            ));
            for step in &trip.steps {
                let mark = if step.ok { "ok" } else { "FAILED" };
                out.push(format!("  {:<14} {mark}: {}", step.operation, step.detail));
            }
        }
        if let Some(replication) = &self.replication {
            out.push(format!(
                "Replication of a key stored through the primary (x-NETAPP-KeyId {}): {}",
                replication.key_id,
                if replication.ok { "ok" } else { "FAILED" }
            ));
            for secondary in &replication.secondaries {
                let mark = if secondary.ok { "ok" } else { "FAILED" };
                out.push(format!(
                    "  {} {mark}: {}",
                    secondary.server, secondary.detail
                ));
            }
        }
        if let Some(suites) = &self.suites {
            out.push("Cipher suites (each offered alone)".into());
            for suite in suites {
                out.push(format!(
                    "  {:<8} {:<48} {:<13}{}",
                    suite.tls_version,
                    suite.cipher_suite,
                    suite.result,
                    if suite.fips_approved { " FIPS" } else { "" }
                ));
            }
        }
        for warning in &self.warnings {
            out.push(format!("warning: {warning}"));
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }
}

fn certificate_lines(out: &mut Vec<String>, c: &Certificate, usage: &str, matches: &str) {
    out.push(format!("  subject: {}", c.subject));
    out.push(format!("  issuer: {}", c.issuer));
    if !c.names.is_empty() {
        out.push(format!("  names: {}", c.names.join(", ")));
    }
    out.push(format!("  key: {}", c.key));
    out.push(format!(
        "  valid: {} to {} ({} days left)",
        c.not_before, c.not_after, c.days_to_expiry
    ));
    let usage_text = match c.extended_key_usage {
        Some(true) => "yes",
        Some(false) => "no",
        None => "no (no extended key usage)",
    };
    out.push(format!(
        "  {usage}: {usage_text}; {matches}: {}",
        yes_no(c.matches)
    ));
}

fn certificate(summary: &CertificateSummary, usage: Option<bool>, matches: bool) -> Certificate {
    Certificate {
        subject: summary.subject.clone(),
        issuer: summary.issuer.clone(),
        names: summary.names.clone(),
        key: summary.key.clone(),
        not_before: format_time(summary.not_before),
        not_after: format_time(summary.not_after),
        days_to_expiry: summary.days_to_expiry(now()),
        extended_key_usage: usage,
        matches,
    }
}

fn failure_kind(failure: Failure) -> &'static str {
    match failure {
        Failure::ServerNotTrusted => "server_not_trusted",
        Failure::ClientCertificateRejected => "client_certificate_rejected",
        Failure::Tls => "tls",
        Failure::Unreachable => "unreachable",
        Failure::OperationFailed => "operation_failed",
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn milliseconds(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// KMIP operation names (KMIP 1.4, section 9.1.3.2.27), for the ones servers commonly list.
/// KMIP's operations, 1.0 to 2.0 (KMIP 2.0, section 11.38), by value.
fn operation_name(code: u32) -> String {
    const NAMES: [&str; 0x36] = [
        "",
        "Create",
        "Create Key Pair",
        "Register",
        "Re-key",
        "Derive Key",
        "Certify",
        "Re-certify",
        "Locate",
        "Check",
        "Get",
        "Get Attributes",
        "Get Attribute List",
        "Add Attribute",
        "Modify Attribute",
        "Delete Attribute",
        "Obtain Lease",
        "Get Usage Allocation",
        "Activate",
        "Revoke",
        "Destroy",
        "Archive",
        "Recover",
        "Validate",
        "Query",
        "Cancel",
        "Poll",
        "Notify",
        "Put",
        "Re-key Key Pair",
        "Discover Versions",
        "Encrypt",
        "Decrypt",
        "Sign",
        "Signature Verify",
        // KMIP 1.2
        "MAC",
        "MAC Verify",
        "RNG Retrieve",
        "RNG Seed",
        "Hash",
        "Create Split Key",
        "Join Split Key",
        // KMIP 1.4
        "Import",
        "Export",
        // KMIP 2.0
        "Log",
        "Login",
        "Logout",
        "Delegated Login",
        "Adjust Attribute",
        "Set Attribute",
        "Set Endpoint Role",
        "PKCS#11",
        "Interop",
        "Re-Provision",
    ];
    enumeration_name(&NAMES, code)
}

/// KMIP's object types, 1.0 to 2.0, by value.
fn object_type_name(code: u32) -> String {
    const NAMES: [&str; 0x0B] = [
        "",
        "Certificate",
        "Symmetric Key",
        "Public Key",
        "Private Key",
        "Split Key",
        "Template",
        "Secret Data",
        "Opaque Object",
        // KMIP 1.2
        "PGP Key",
        // KMIP 2.0
        "Certificate Request",
    ];
    enumeration_name(&NAMES, code)
}

/// The name of a KMIP enumeration value from a table indexed by value, else its hex value.
fn enumeration_name(names: &[&str], code: u32) -> String {
    usize::try_from(code)
        .ok()
        .and_then(|i| names.get(i))
        .filter(|name| !name.is_empty())
        .map(|name| name.to_string())
        .unwrap_or_else(|| format!("0x{code:X}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation and object type of KMIP 1.0 to 2.0 is named; only unknown values are
    /// shown as hex.
    #[test]
    fn kmip_operations_and_object_types_are_named_up_to_kmip_2_0() {
        for (code, name) in [
            (0x01, "Create"),
            (0x1E, "Discover Versions"),
            (0x23, "MAC"),
            (0x29, "Join Split Key"),
            (0x2A, "Import"),
            (0x2B, "Export"),
            (0x2C, "Log"),
            (0x35, "Re-Provision"),
        ] {
            assert_eq!(operation_name(code), name);
        }
        assert!((0x01..=0x35).all(|code| !operation_name(code).starts_with("0x")));
        assert_eq!(operation_name(0x36), "0x36");
        assert_eq!(operation_name(0), "0x0");
        assert_eq!(object_type_name(0x09), "PGP Key");
        assert_eq!(object_type_name(0x0A), "Certificate Request");
        assert_eq!(object_type_name(0x0B), "0xB");
    }
}
