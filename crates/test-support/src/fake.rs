//! Peers that misbehave on purpose, on 127.0.0.1, for the failures a real server rarely shows.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::pki::Issued;

/// A TCP listener that accepts connections and never says a word. Dropping it closes it.
pub struct SilentListener {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SilentListener {
    pub async fn start() -> SilentListener {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        SilentListener { address, task }
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS server that completes the handshake, reads whatever comes, answers `reply` and closes.
pub struct FakeTlsServer {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTlsServer {
    pub async fn start(identity: &Issued, reply: Vec<u8>) -> FakeTlsServer {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate");
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let mut request = [0u8; 1024];
                    let _ = tls.read(&mut request).await;
                    let _ = tls.write_all(&reply).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeTlsServer { address, task }
    }
}

impl Drop for FakeTlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A peer that reads the client's hello and answers with a fatal TLS `handshake_failure` alert,
/// as a server does when it shares no cipher suite or protocol version with the client.
pub struct HandshakeFailureServer {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// A TLS 1.2 record: content type alert (21), version 3.3, length 2, level fatal (2),
/// description handshake_failure (40).
const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [21, 3, 3, 0, 2, 2, 40];

impl HandshakeFailureServer {
    pub async fn start() -> HandshakeFailureServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut hello = [0u8; 4096];
                    let _ = socket.read(&mut hello).await;
                    let _ = socket.write_all(&HANDSHAKE_FAILURE_ALERT).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        HandshakeFailureServer { address, task }
    }
}

impl Drop for HandshakeFailureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
