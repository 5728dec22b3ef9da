//! The service's REST API as the ONTAP-style commands use it: where it is, whom to trust, who we
//! are, and ONTAP's error envelope turned into a [`Failure`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use ureq::http;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use super::failure::Failure;
use super::secret;

/// Where the service is and how to talk to it. `--password` is deliberately not global: it is
/// accepted only right after `security`/`svm`, so that `-password` on a command such as
/// `modify-server` is refused instead of being mistaken for the KMIP password.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The service's base URL.
    #[arg(
        long,
        env = "KEYMGR_URL",
        default_value = "https://127.0.0.1:8443",
        global = true,
        value_name = "URL"
    )]
    url: String,
    /// The API user (role admin for changes, readonly is enough for `show`).
    #[arg(long, env = "KEYMGR_USER", default_value = "admin", global = true)]
    user: String,
    /// The API user's password, accepted only right after `security`/`svm`. Prefer
    /// KEYMGR_PASSWORD, or let the command ask for it without echo: a password on the command
    /// line shows in `ps` and the shell history.
    #[arg(long, env = "KEYMGR_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// PEM certificates to trust for the service's HTTPS, e.g. `<data-dir>/tls/cert.pem` for
    /// the certificate the service made for itself [default: the system's CA bundle].
    #[arg(long, env = "KEYMGR_CA_CERT", global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Do not verify the service's certificate at all (overrides --ca-cert).
    #[arg(long, global = true)]
    insecure: bool,
}

/// ONTAP's content type; the service accepts plain JSON requests too.
const HAL_JSON: &str = "application/hal+json";

/// Connecting must be quick; a request may take a while, since adding a key server waits for
/// the KMIP check of every server (each bounded by its timeout, at most 60 s) and `show-status`
/// measures connectivity.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// CA bundles of the common Linux distributions and BSDs, used when neither `--ca-cert` nor
/// `--insecure` is given (`SSL_CERT_FILE` first, as OpenSSL does).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];

/// One path segment or query value, percent-encoded as the service encodes them.
pub fn encode(text: &str) -> String {
    ontap_keymgr::api::envelope::encode_segment(text)
}

/// `path?name=value&...`, each value percent-encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    match query.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{}", query.join("&")),
    }
}

/// The records of a collection answer; none when the answer has no `records`.
pub fn records(collection: &Value) -> &[Value] {
    collection["records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: String,
}

impl Client {
    /// A client for the service, asking for the API password on the terminal when it was given
    /// neither with `--password` nor in KEYMGR_PASSWORD.
    pub fn connect(connection: &Connection) -> Result<Client, Failure> {
        let base = base_url(&connection.url)?;
        let agent = agent(tls_config(&base, connection)?);
        let password = match &connection.password {
            Some(password) => password.clone(),
            None => secret::from_env_or_prompt(
                "KEYMGR_PASSWORD",
                &format!("Password of {} at {base}: ", connection.user),
                false,
            )?,
        };
        let credentials = format!("{}:{password}", connection.user);
        Ok(Client {
            agent,
            base,
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ),
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send("GET", path, None)
    }

    /// Every record of a collection, following `_links.next` when the service cut the list.
    pub fn get_all(&self, path: &str) -> Result<Vec<Value>, Failure> {
        let mut all = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next.take() {
            let page = self.get(&path)?;
            all.extend_from_slice(records(&page));
            next = page["_links"]["next"]["href"]
                .as_str()
                .filter(|href| href.starts_with('/') && *href != path)
                .map(str::to_string);
        }
        Ok(all)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.send("DELETE", path, None)
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(Value::to_string).unwrap_or_default().into_bytes();
        let request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", &self.authorization)
            .header("Accept", HAL_JSON)
            .header("Content-Type", "application/json")
            .body(bytes)
            .map_err(|error| Failure::Usage(format!("invalid request {method} {url}: {error}")))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|error| unreachable(&self.base, &error))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|error| unreachable(&self.base, &error))?;
        answer(status, &text, &url)
    }
}

/// The base URL without a trailing slash; only http and https make sense.
fn base_url(url: &str) -> Result<String, Failure> {
    let base = url.trim().trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Failure::Usage(format!(
            "the service's URL must start with https:// or http://: \"{url}\""
        )));
    }
    Ok(base.to_string())
}

fn agent(tls: TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls)
        // ONTAP's errors come with 4xx statuses and a body that says what went wrong: read it.
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT))
        .user_agent(format!("ontap-keymgr/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Whom to trust: `--insecure` nobody checks, `--ca-cert` exactly these certificates, else the
/// system's CA bundle. Plain http needs no trust, so no file is read for it.
fn tls_config(base: &str, connection: &Connection) -> Result<TlsConfig, Failure> {
    let builder = TlsConfig::builder().provider(TlsProvider::Rustls);
    if connection.insecure {
        return Ok(builder.disable_verification(true).build());
    }
    let roots = match (&connection.ca_cert, base.starts_with("https://")) {
        (_, false) => Vec::new(),
        (Some(path), true) => read_certificates(path)?,
        (None, true) => system_certificates()?,
    };
    Ok(builder
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build())
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, Failure> {
    let pem = std::fs::read(path)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", path.display())))?;
    let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(certificate)) => Some(certificate),
            _ => None,
        })
        .collect();
    if certificates.is_empty() {
        return Err(Failure::Usage(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

fn system_certificates() -> Result<Vec<Certificate<'static>>, Failure> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let bundle = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|path| path.is_file());
    match bundle {
        Some(path) => read_certificates(&path),
        None => Err(Failure::Usage(
            "no CA bundle found to verify the service's certificate: give --ca-cert FILE \
             (e.g. <data-dir>/tls/cert.pem) or --insecure"
                .into(),
        )),
    }
}

/// A transport failure, with what to do when it is about trust.
fn unreachable(base: &str, error: &ureq::Error) -> Failure {
    let text = error.to_string();
    let about_trust = matches!(error, ureq::Error::Rustls(_) | ureq::Error::Tls(_))
        || text.to_ascii_lowercase().contains("certificate");
    let hint = match about_trust {
        true => {
            " (trust the service's certificate with --ca-cert FILE, e.g. <data-dir>/tls/cert.pem, \
             or skip verification with --insecure)"
        }
        false => "",
    };
    Failure::Connection(format!(
        "cannot talk to the service at {base}: {text}{hint}"
    ))
}

/// The JSON of a successful answer, or ONTAP's error as a [`Failure`].
fn answer(status: u16, text: &str, url: &str) -> Result<Value, Failure> {
    let body = match text.trim() {
        "" => Value::Null,
        text => serde_json::from_str(text).map_err(|_| not_ontap(status, text, url))?,
    };
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let error = &body["error"];
    match error["message"].as_str() {
        Some(message) => Err(Failure::Api {
            message: message.to_string(),
            code: error_code(&error["code"]),
        }),
        None => Err(not_ontap(status, text, url)),
    }
}

/// ONTAP sends the code as a decimal string; accept a number too.
fn error_code(code: &Value) -> String {
    match code {
        Value::String(code) => code.clone(),
        Value::Number(code) => code.to_string(),
        _ => String::new(),
    }
}

/// Something answered, but not with ONTAP's JSON: a proxy's error page, another service.
fn not_ontap(status: u16, text: &str, url: &str) -> Failure {
    let start: String = text.chars().take(200).collect();
    Failure::Connection(format!(
        "{url} did not answer like an ONTAP API (HTTP {status}): {start}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_are_read_from_ontaps_envelope() {
        let text = r#"{"error": {"message": "entry doesn't exist", "code": "4"}}"#;
        assert_eq!(
            answer(404, text, "u"),
            Err(Failure::api("entry doesn't exist", 4))
        );
        assert_eq!(answer(200, "{}", "u"), Ok(json!({})));
        assert_eq!(answer(200, "", "u"), Ok(Value::Null));
        assert!(matches!(
            answer(502, "<html>bad gateway</html>", "u"),
            Err(Failure::Connection(_))
        ));
        assert!(matches!(
            answer(500, r#"{"x": 1}"#, "u"),
            Err(Failure::Connection(_))
        ));
    }

    #[test]
    fn queries_and_segments_are_encoded() {
        assert_eq!(encode("ks1:5696"), "ks1%3A5696");
        assert_eq!(encode("[fd00::1]:5696"), "%5Bfd00%3A%3A1%5D%3A5696");
        assert_eq!(
            with_query("/api/x", &[("svm.name", "vs 1"), ("fields", "a,b")]),
            "/api/x?svm.name=vs%201&fields=a%2Cb"
        );
        assert_eq!(with_query("/api/x", &[]), "/api/x");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert_eq!(
            base_url("https://127.0.0.1:8443/").as_deref(),
            Ok("https://127.0.0.1:8443")
        );
        assert!(matches!(base_url("127.0.0.1:8443"), Err(Failure::Usage(_))));
    }
}
