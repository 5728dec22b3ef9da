//! An async KMIP client over mutual TLS: a [`Session`] is one connection on which requests are
//! answered one at a time, all within one deadline.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::certificate::CertificateSummary;
use crate::endpoint::Endpoint;
use crate::error::{Error, Failure};
use crate::message::{
    self, BatchResult, Credential, ProtocolVersion, QueryAnswer, QueryFunction, Request, Response,
    ResultStatus,
};
use crate::offer::TlsVersion;
use crate::probe;
use crate::tls::{Connector, Presented, first_reason, untrusted_server_detail};
use crate::ttlv::{self, HEADER_LEN, Item};

/// Asks the server which KMIP protocol versions it speaks (DiscoverVersions), most preferred first.
pub async fn discover_versions(
    connector: &Connector,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    timeout: Duration,
) -> Result<Vec<ProtocolVersion>, Error> {
    let mut session = connector.connect(endpoint, timeout).await?;
    let versions = session.discover_versions(credential).await;
    session.close().await;
    versions
}

/// Asks the server what it supports (Query).
pub async fn query(
    connector: &Connector,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    functions: Vec<QueryFunction>,
    timeout: Duration,
) -> Result<QueryAnswer, Error> {
    let mut session = connector.connect(endpoint, timeout).await?;
    let answer = session.query(credential, functions).await;
    session.close().await;
    answer
}

/// What the TLS handshake established.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub version: Option<TlsVersion>,
    /// The negotiated suite's IANA name.
    pub cipher_suite: String,
    /// From the start to the established TCP connection (name resolution included).
    pub connect_time: Duration,
    pub handshake_time: Duration,
    pub server_certificate: Option<CertificateSummary>,
    /// The server resumed an earlier session: its certificate was verified by the handshake
    /// that made that session, not by this one.
    pub resumed: bool,
}

/// One connection to a key server.
pub struct Session {
    tls: SslStream<TcpStream>,
    server: String,
    handshake: Handshake,
    connector: Connector,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

/// How far an exchange got: a timeout names the step it interrupted.
#[derive(Debug, Clone, Copy)]
enum Step {
    Resolving,
    Connecting,
    Handshaking,
    Exchanging,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Resolving => "resolving the host name",
            Step::Connecting => "connecting",
            Step::Handshaking => "the TLS handshake",
            Step::Exchanging => "waiting for the KMIP response",
        })
    }
}

impl Connector {
    /// Connects and completes the TLS handshake; everything done on the session afterwards
    /// shares the same `timeout`.
    pub async fn connect(&self, endpoint: &Endpoint, timeout: Duration) -> Result<Session, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut step = Step::Resolving;
        let outcome = tokio::time::timeout_at(
            deadline,
            self.connect_steps(endpoint, deadline, timeout, &mut step),
        )
        .await;
        match outcome {
            Ok(result) => result.map_err(|e| with_client_usage_hint(e, self)),
            Err(_) => Err(timed_out(&endpoint.to_string(), timeout, step)),
        }
    }

    async fn connect_steps(
        &self,
        endpoint: &Endpoint,
        deadline: tokio::time::Instant,
        timeout: Duration,
        step: &mut Step,
    ) -> Result<Session, Error> {
        let server = endpoint.to_string();
        let started = Instant::now();
        let addresses = resolve(endpoint).await?;
        *step = Step::Connecting;
        let tcp = connect(&server, &addresses).await?;
        let connect_time = started.elapsed();
        *step = Step::Handshaking;
        let (ssl, presented) = self
            .ssl(endpoint)
            .map_err(|e| Error::new(&server, Failure::Tls, e))?;
        let mut tls = SslStream::new(ssl, tcp)
            .map_err(|e| Error::new(&server, Failure::Tls, first_reason(&e)))?;
        if let Err(error) = Pin::new(&mut tls).connect().await {
            let cause = Cause::of(&error);
            return Err(match cause {
                Cause::Alert(alert) if refuses_our_offer(alert) => {
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let accepted = probe::server_offer(self, endpoint, remaining).await;
                    Error::new(
                        &server,
                        Failure::Tls,
                        no_common_suite_detail(alert, self, &accepted),
                    )
                }
                cause => handshake_error(&server, cause, &presented, tls.ssl()),
            });
        }
        let handshake = Handshake {
            version: negotiated_version(tls.ssl()),
            cipher_suite: negotiated_suite(tls.ssl()),
            connect_time,
            handshake_time: started.elapsed().saturating_sub(connect_time),
            // A resumed handshake presents no certificate: the session holds the one verified.
            server_certificate: presented.certificate().or_else(|| {
                let der = tls.ssl().peer_certificate()?.to_der().ok()?;
                Some(CertificateSummary::from_der(&der))
            }),
            resumed: tls.ssl().session_reused(),
        };
        Ok(Session {
            tls,
            server,
            handshake,
            connector: self.clone(),
            deadline,
            timeout,
        })
    }
}

impl Session {
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one request with one batch item and returns that item's successful result.
    pub async fn call(
        &mut self,
        request: &Request,
        credential: Option<&Credential>,
    ) -> Result<BatchResult, Error> {
        let deadline = self.deadline;
        let result = tokio::time::timeout_at(deadline, self.call_steps(request, credential)).await;
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(timed_out(&self.server, self.timeout, Step::Exchanging)),
        };
        result.map_err(|e| with_client_usage_hint(e, &self.connector))
    }

    async fn call_steps(
        &mut self,
        request: &Request,
        credential: Option<&Credential>,
    ) -> Result<BatchResult, Error> {
        let bytes = message::encode_request(std::slice::from_ref(request), credential);
        if let Err(e) = self.tls.write_all(&bytes).await {
            return Err(after_handshake_error(&self.server, &e, &self.handshake));
        }
        if let Err(e) = self.tls.flush().await {
            return Err(after_handshake_error(&self.server, &e, &self.handshake));
        }
        let response = self.read_response().await?;
        first_successful_item(&self.server, response)
    }

    pub async fn discover_versions(
        &mut self,
        credential: Option<&Credential>,
    ) -> Result<Vec<ProtocolVersion>, Error> {
        let result = self
            .call(&Request::DiscoverVersions(Vec::new()), credential)
            .await?;
        result
            .discovered_versions()
            .map_err(|e| malformed_at(&self.server, e.to_string()))
    }

    pub async fn query(
        &mut self,
        credential: Option<&Credential>,
        functions: Vec<QueryFunction>,
    ) -> Result<QueryAnswer, Error> {
        let result = self.call(&Request::Query(functions), credential).await?;
        Ok(result.query_answer())
    }

    /// Closes the connection; best effort, the answers are in hand whatever the server does.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout_at(self.deadline, self.tls.shutdown()).await;
    }

    async fn read_response(&mut self) -> Result<Response, Error> {
        let server = self.server.clone();
        let mut header = [0u8; HEADER_LEN];
        if let Err(e) = self.tls.read_exact(&mut header).await {
            return Err(after_handshake_error(&server, &e, &self.handshake));
        }
        let body_len = ttlv::message_body_len(header).map_err(|e| {
            malformed_at(
                &server,
                format!("the server did not answer with a KMIP message: {e}"),
            )
        })?;
        let mut message = Vec::with_capacity(HEADER_LEN + body_len);
        message.extend_from_slice(&header);
        message.resize(HEADER_LEN + body_len, 0);
        self.tls
            .read_exact(&mut message[HEADER_LEN..])
            .await
            .map_err(|e| {
                malformed_at(
                    &server,
                    format!("the connection ended in the middle of the KMIP response: {e}"),
                )
            })?;
        let item = Item::from_bytes(&message).map_err(|e| {
            malformed_at(&server, format!("the KMIP response cannot be decoded: {e}"))
        })?;
        Response::from_item(&item)
            .map_err(|e| malformed_at(&server, format!("unexpected KMIP response: {e}")))
    }
}

pub(crate) async fn resolve(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, Error> {
    let server = endpoint.to_string();
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| {
                Error::new(
                    &server,
                    Failure::Unreachable,
                    format!("cannot resolve host name \"{}\": {e}", endpoint.host),
                )
            })?
            .collect();
    if addresses.is_empty() {
        return Err(Error::new(
            &server,
            Failure::Unreachable,
            format!("host name \"{}\" has no address", endpoint.host),
        ));
    }
    Ok(addresses)
}

pub(crate) async fn connect(server: &str, addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_error = Some((address, e)),
        }
    }
    // The resolved address is worth showing only when the server was named otherwise.
    let at = |address: &SocketAddr| match address.to_string() == server {
        true => String::new(),
        false => format!(" (at {address})"),
    };
    let detail = match last_error {
        Some((address, e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            format!(
                "connection refused{}: no key server listens there",
                at(address)
            )
        }
        Some((address, e)) => format!("cannot connect{}: {e}", at(address)),
        None => "no address to connect to".to_string(),
    };
    Err(Error::new(server, Failure::Unreachable, detail))
}

fn first_successful_item(server: &str, response: Response) -> Result<BatchResult, Error> {
    let Some(item) = response.batch.into_iter().next() else {
        return Err(malformed_at(server, "the KMIP response has no batch item"));
    };
    if item.status == ResultStatus::Success {
        return Ok(item);
    }
    let reason = item
        .reason
        .map(message::result_reason_name)
        .unwrap_or_else(|| "no reason given".into());
    let said = item
        .message
        .as_deref()
        .map(|m| format!(": \"{m}\""))
        .unwrap_or_default();
    let mut error = Error::new(
        server,
        Failure::OperationFailed,
        format!(
            "the key server answered the KMIP request with {} ({reason}){said}",
            item.status
        ),
    );
    error.result = Some((item.status, item.reason));
    Err(error)
}

/// Why OpenSSL gave up on a connection.
#[derive(Debug)]
pub(crate) enum Cause {
    /// The peer sent this fatal TLS alert.
    Alert(u8),
    /// We refused the server's certificate.
    Verify,
    /// The connection ended.
    Closed,
    /// Anything else, in OpenSSL's words.
    Other(String),
}

/// OpenSSL's library code for its TLS layer (`ERR_LIB_SSL`).
const LIB_SSL: i32 = 20;
/// OpenSSL reports a received alert as this offset plus the alert's number.
const ALERT_REASON_OFFSET: i32 = 1000;
/// `SSL_R_CERTIFICATE_VERIFY_FAILED`
const REASON_VERIFY_FAILED: i32 = 134;
/// `SSL_R_UNEXPECTED_EOF_WHILE_READING`
const REASON_UNEXPECTED_EOF: i32 = 294;

impl Cause {
    pub(crate) fn of(error: &openssl::ssl::Error) -> Cause {
        if let Some(stack) = error.ssl_error() {
            for e in stack.errors() {
                if e.library_code() != LIB_SSL {
                    continue;
                }
                match e.reason_code() {
                    REASON_VERIFY_FAILED => return Cause::Verify,
                    REASON_UNEXPECTED_EOF => return Cause::Closed,
                    code if (ALERT_REASON_OFFSET..ALERT_REASON_OFFSET + 256).contains(&code) => {
                        return Cause::Alert((code - ALERT_REASON_OFFSET) as u8);
                    }
                    _ => {}
                }
            }
            return Cause::Other(first_reason(stack));
        }
        match error.io_error() {
            Some(e) if is_closed(e) => Cause::Closed,
            Some(e) => Cause::Other(e.to_string()),
            None => Cause::Closed, // a clean close, or EOF reported as a bare SYSCALL error
        }
    }
}

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

/// TLS alert numbers (RFC 8446 section 6) and names.
const ALERTS: [(u8, &str); 22] = [
    (10, "unexpected_message"),
    (20, "bad_record_mac"),
    (40, "handshake_failure"),
    (42, "bad_certificate"),
    (43, "unsupported_certificate"),
    (44, "certificate_revoked"),
    (45, "certificate_expired"),
    (46, "certificate_unknown"),
    (47, "illegal_parameter"),
    (48, "unknown_ca"),
    (49, "access_denied"),
    (50, "decode_error"),
    (51, "decrypt_error"),
    (70, "protocol_version"),
    (71, "insufficient_security"),
    (80, "internal_error"),
    (86, "inappropriate_fallback"),
    (90, "user_canceled"),
    (109, "missing_extension"),
    (110, "unsupported_extension"),
    (112, "unrecognized_name"),
    (116, "certificate_required"),
];

pub(crate) fn alert_name(alert: u8) -> String {
    ALERTS
        .iter()
        .find(|(number, _)| *number == alert)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| format!("alert {alert}"))
}

/// Alerts by which a server says it does not accept the certificate we presented.
fn rejects_our_certificate(alert: u8) -> bool {
    matches!(alert, 42..=46 | 48 | 49 | 116)
}

/// Alerts by which a server says it shares no version or suite with us.
pub(crate) fn refuses_our_offer(alert: u8) -> bool {
    matches!(alert, 40 | 70 | 71)
}

fn handshake_error(
    server: &str,
    cause: Cause,
    presented: &Presented,
    ssl: &openssl::ssl::SslRef,
) -> Error {
    let seen = presented.certificate();
    match cause {
        Cause::Verify => {
            let refusal = presented.refusal().unwrap_or_else(|| ssl.verify_result());
            Error::new(
                server,
                Failure::ServerNotTrusted,
                untrusted_server_detail(refusal, seen.as_ref()),
            )
        }
        Cause::Alert(alert) if rejects_our_certificate(alert) => Error::new(
            server,
            Failure::ClientCertificateRejected,
            format!(
                "the key server rejected the key manager's client certificate during the TLS \
                 handshake (TLS alert: {})",
                alert_name(alert)
            ),
        ),
        Cause::Alert(alert) => Error::new(
            server,
            Failure::Tls,
            format!(
                "the TLS handshake failed: the key server sent the TLS alert {}",
                alert_name(alert)
            ),
        ),
        Cause::Closed if seen.is_some() => Error::new(
            server,
            Failure::ClientCertificateRejected,
            "the key server closed the connection during the TLS handshake, after it had sent its \
             certificate: it most likely rejected the key manager's client certificate",
        ),
        Cause::Closed => Error::new(
            server,
            Failure::Tls,
            "the server closed the connection before the TLS handshake completed: is it a TLS \
             (KMIP) server?",
        ),
        Cause::Other(reason) if reason.contains("wrong version number") => Error::new(
            server,
            Failure::Tls,
            "the server did not answer in TLS (OpenSSL: wrong version number): is it a TLS \
             (KMIP) server, and is this its KMIP port?",
        ),
        Cause::Other(reason) => Error::new(
            server,
            Failure::Tls,
            format!("the TLS handshake failed: {reason}"),
        ),
    }
}

fn no_common_suite_detail(alert: u8, connector: &Connector, accepted: &[probe::Choice]) -> String {
    let theirs = match accepted.is_empty() {
        true => "none of the versions and suites OpenSSL can offer".to_string(),
        false => probe::describe(accepted),
    };
    format!(
        "the key server refused the TLS handshake (TLS alert: {}): it shares no TLS version or \
         cipher suite with us. We offer {}; the server accepts {theirs}. Compare the key \
         server's TLS settings with the cluster's security configuration (tls.protocol_versions, \
         tls.cipher_suites, fips.enabled)",
        alert_name(alert),
        connector.offer().describe()
    )
}

/// In TLS 1.3 the server checks our certificate after our side of the handshake is done, so its
/// refusal arrives as an alert or a closed connection on the first read.
fn after_handshake_error(server: &str, error: &io::Error, handshake: &Handshake) -> Error {
    let tls13 = handshake.version == Some(TlsVersion::Tls1_3);
    let alert = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<openssl::ssl::Error>())
        .map(Cause::of);
    match alert {
        Some(Cause::Alert(alert)) if rejects_our_certificate(alert) => Error::new(
            server,
            Failure::ClientCertificateRejected,
            format!(
                "the key server rejected the key manager's client certificate (TLS alert: {})",
                alert_name(alert)
            ),
        ),
        Some(Cause::Alert(alert)) => Error::new(
            server,
            Failure::Tls,
            format!("the key server sent the TLS alert {}", alert_name(alert)),
        ),
        _ if is_closed(error) && tls13 => Error::new(
            server,
            Failure::ClientCertificateRejected,
            "the key server closed the connection right after the TLS 1.3 handshake without \
             answering: it most likely rejected the key manager's client certificate",
        ),
        _ if is_closed(error) => malformed_at(
            server,
            "the key server closed the connection without answering the KMIP request",
        ),
        _ => malformed_at(server, format!("the connection failed: {error}")),
    }
}

/// PyKMIP and many key servers require the extended key usage clientAuth on client certificates
/// and refuse others, in TLS or in KMIP ("Authentication Not Successful"). When ours lacks it,
/// that is almost surely why: say so, as a refused client certificate.
fn with_client_usage_hint(mut error: Error, connector: &Connector) -> Error {
    const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x03;
    const PERMISSION_DENIED: u32 = 0x0C;
    let refused_in_kmip = matches!(
        error.result,
        Some((_, Some(AUTHENTICATION_NOT_SUCCESSFUL | PERMISSION_DENIED)))
    );
    let relevant = error.failure == Failure::ClientCertificateRejected
        || (error.failure == Failure::OperationFailed && refused_in_kmip);
    let client = connector.identity().client_certificate();
    if relevant && client.client_auth != Some(true) {
        error.failure = Failure::ClientCertificateRejected;
        error.detail = format!(
            "{}. The key manager's client certificate ({}) has no extended key usage \
             clientAuth, which PyKMIP and many key servers require: issue it with \
             extendedKeyUsage = clientAuth",
            error.detail, client.subject
        );
    }
    error
}

fn negotiated_version(ssl: &openssl::ssl::SslRef) -> Option<TlsVersion> {
    TlsVersion::from_ontap_name(ssl.version_str())
}

pub(crate) fn negotiated_suite(ssl: &openssl::ssl::SslRef) -> String {
    ssl.current_cipher()
        .map(|c| c.standard_name().unwrap_or(c.name()).to_string())
        .unwrap_or_default()
}

fn timed_out(server: &str, timeout: Duration, step: Step) -> Error {
    Error::new(
        server,
        Failure::Unreachable,
        format!(
            "no answer within the {} timeout, during {step}",
            seconds(timeout)
        ),
    )
}

fn malformed_at(server: &str, detail: impl Into<String>) -> Error {
    Error::new(server, Failure::Unreachable, detail)
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs == 1.0 {
        "1-second".into()
    } else {
        format!("{secs}-second")
    }
}
