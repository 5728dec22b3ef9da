//! An async KMIP client over mutual TLS: one request, one response, one connection, all within
//! one deadline.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::AlertDescription;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::endpoint::Endpoint;
use crate::error::{Error, Failure};
use crate::message::{
    self, BatchResult, Credential, ProtocolVersion, QueryAnswer, QueryFunction, Request, Response,
    ResultStatus,
};
use crate::tls::{PresentedCertificate, TlsIdentity, untrusted_server_detail};
use crate::ttlv::{self, HEADER_LEN, Item};

/// Asks the server which KMIP protocol versions it speaks (DiscoverVersions), most preferred first.
pub async fn discover_versions(
    identity: &TlsIdentity,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    timeout: Duration,
) -> Result<Vec<ProtocolVersion>, Error> {
    let request = Request::DiscoverVersions(Vec::new());
    let result = exchange(identity, endpoint, credential, &request, timeout).await?;
    result
        .discovered_versions()
        .map_err(|e| malformed(endpoint, e.to_string()))
}

/// Asks the server what it supports (Query).
pub async fn query(
    identity: &TlsIdentity,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    functions: Vec<QueryFunction>,
    timeout: Duration,
) -> Result<QueryAnswer, Error> {
    let request = Request::Query(functions);
    let result = exchange(identity, endpoint, credential, &request, timeout).await?;
    Ok(result.query_answer())
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

/// Sends one request with one batch item and returns that item's successful result.
async fn exchange(
    identity: &TlsIdentity,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    request: &Request,
    timeout: Duration,
) -> Result<BatchResult, Error> {
    let mut step = Step::Resolving;
    let outcome = tokio::time::timeout(
        timeout,
        exchange_steps(identity, endpoint, credential, request, &mut step),
    )
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            &endpoint.to_string(),
            Failure::Unreachable,
            format!(
                "no answer within the {} timeout, during {step}",
                seconds(timeout)
            ),
        )),
    }
}

async fn exchange_steps(
    identity: &TlsIdentity,
    endpoint: &Endpoint,
    credential: Option<&Credential>,
    request: &Request,
    step: &mut Step,
) -> Result<BatchResult, Error> {
    let server = endpoint.to_string();
    let addresses = resolve(endpoint).await?;
    *step = Step::Connecting;
    let tcp = connect(&server, &addresses).await?;
    *step = Step::Handshaking;
    let (config, presented) = identity
        .client_config()
        .map_err(|e| Error::new(&server, Failure::Tls, e.to_string()))?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
        Error::new(
            &server,
            Failure::Unreachable,
            "not a valid host name or IP address",
        )
    })?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| handshake_error(&server, e, &presented))?;
    *step = Step::Exchanging;
    let bytes = message::encode_request(std::slice::from_ref(request), credential);
    tls.write_all(&bytes)
        .await
        .map_err(|e| after_handshake_error(&server, e, &tls))?;
    tls.flush()
        .await
        .map_err(|e| after_handshake_error(&server, e, &tls))?;
    let response = read_response(&server, &mut tls).await?;
    // Best effort: the answer is in hand whether or not the server acknowledges the close.
    let _ = tls.shutdown().await;
    first_successful_item(&server, response)
}

async fn resolve(endpoint: &Endpoint) -> Result<Vec<SocketAddr>, Error> {
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

async fn connect(server: &str, addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
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

async fn read_response(server: &str, tls: &mut TlsStream<TcpStream>) -> Result<Response, Error> {
    let mut header = [0u8; HEADER_LEN];
    if let Err(e) = tls.read_exact(&mut header).await {
        return Err(after_handshake_error(server, e, tls));
    }
    let body_len = ttlv::message_body_len(header).map_err(|e| {
        malformed_at(
            server,
            format!("the server did not answer with a KMIP message: {e}"),
        )
    })?;
    let mut message = Vec::with_capacity(HEADER_LEN + body_len);
    message.extend_from_slice(&header);
    message.resize(HEADER_LEN + body_len, 0);
    tls.read_exact(&mut message[HEADER_LEN..])
        .await
        .map_err(|e| {
            malformed_at(
                server,
                format!("the connection ended in the middle of the KMIP response: {e}"),
            )
        })?;
    let item = Item::from_bytes(&message)
        .map_err(|e| malformed_at(server, format!("the KMIP response cannot be decoded: {e}")))?;
    Response::from_item(&item)
        .map_err(|e| malformed_at(server, format!("unexpected KMIP response: {e}")))
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

/// Alerts by which a server says it does not accept the certificate we presented.
fn rejects_our_certificate(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied
    )
}

fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
}

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn handshake_error(server: &str, error: io::Error, presented: &PresentedCertificate) -> Error {
    let seen = presented.get();
    match rustls_error(&error) {
        Some(rustls::Error::InvalidCertificate(cause)) => Error::new(
            server,
            Failure::ServerNotTrusted,
            untrusted_server_detail(cause, seen.as_ref()),
        ),
        Some(rustls::Error::AlertReceived(alert)) if rejects_our_certificate(*alert) => Error::new(
            server,
            Failure::ClientCertificateRejected,
            format!(
                "the key server rejected the key manager's client certificate during the \
                     TLS handshake (TLS alert: {})",
                alert_name(*alert)
            ),
        ),
        Some(rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)) => Error::new(
            server,
            Failure::Tls,
            "the key server refused the TLS handshake (TLS alert: handshake_failure): it shares \
             no TLS version or cipher suite with us (we offer TLS 1.2 and 1.3 with ECDHE and \
             AES-GCM or ChaCha20-Poly1305 only)",
        ),
        Some(other) => Error::new(
            server,
            Failure::Tls,
            format!("the TLS handshake failed: {other}"),
        ),
        None if is_closed(&error) && seen.is_some() => Error::new(
            server,
            Failure::ClientCertificateRejected,
            "the key server closed the connection during the TLS handshake, after it had sent its \
             certificate: it most likely rejected the key manager's client certificate",
        ),
        None if is_closed(&error) => Error::new(
            server,
            Failure::Tls,
            "the server closed the connection before the TLS handshake completed: is it a TLS \
             (KMIP) server?",
        ),
        None => Error::new(
            server,
            Failure::Tls,
            format!("the TLS handshake failed: {error}"),
        ),
    }
}

/// In TLS 1.3 the server checks our certificate after our side of the handshake is done, so its
/// refusal arrives as an alert or a closed connection on the first read.
fn after_handshake_error<S>(server: &str, error: io::Error, tls: &TlsStream<S>) -> Error {
    let tls13 = tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    match rustls_error(&error) {
        Some(rustls::Error::AlertReceived(alert)) if rejects_our_certificate(*alert) => Error::new(
            server,
            Failure::ClientCertificateRejected,
            format!(
                "the key server rejected the key manager's client certificate (TLS alert: {})",
                alert_name(*alert)
            ),
        ),
        Some(other) => Error::new(server, Failure::Tls, format!("TLS failure: {other}")),
        None if is_closed(&error) && tls13 => Error::new(
            server,
            Failure::ClientCertificateRejected,
            "the key server closed the connection right after the TLS 1.3 handshake without \
             answering: it most likely rejected the key manager's client certificate",
        ),
        None if is_closed(&error) => malformed_at(
            server,
            "the key server closed the connection without answering the KMIP request",
        ),
        None => malformed_at(server, format!("the connection failed: {error}")),
    }
}

fn alert_name(alert: AlertDescription) -> String {
    let name = match alert {
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::CertificateRequired => "certificate_required",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::AccessDenied => "access_denied",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

fn malformed(endpoint: &Endpoint, detail: impl Into<String>) -> Error {
    malformed_at(&endpoint.to_string(), detail)
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
