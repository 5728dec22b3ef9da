//! A fast KMIP responder: mutual TLS as a KMIP server does it (client certificates must chain to
//! the given CA), and to every request the same DiscoverVersions answer (KMIP 1.4 and 1.2). What
//! PyKMIP is too slow to be: the peer of thousands of key server checks in the benchmark.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::kmip_server::discover_versions_reply;

/// KMIP messages are at most this long here: a DiscoverVersions request is about 100 bytes.
const MAX_REQUEST: usize = 64 * 1024;

pub struct KmipResponder {
    pub address: SocketAddr,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

/// What a responder saw.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    /// Handshakes that resumed an earlier session.
    resumed: AtomicUsize,
}

impl KmipResponder {
    /// Listens on 127.0.0.1 (port 0) with this certificate and key, trusting clients of `ca_pem`.
    pub async fn start(cert_pem: &str, key_pem: &str, ca_pem: &str) -> KmipResponder {
        KmipResponder::start_slow(cert_pem, key_pem, ca_pem, Duration::ZERO).await
    }

    /// The same on `address`, as a key server back on its old address after it went away; the
    /// address may take a moment to be free again (at most 2 s).
    pub async fn start_on(
        address: SocketAddr,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
    ) -> KmipResponder {
        let started = std::time::Instant::now();
        let listener = loop {
            match TcpListener::bind(address).await {
                Ok(listener) => break listener,
                Err(e) if started.elapsed() > Duration::from_secs(2) => {
                    panic!("bind {address}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        KmipResponder::serving(
            listener,
            acceptor(cert_pem, key_pem, ca_pem),
            Duration::ZERO,
        )
    }

    /// The same, answering each request only after `delay`: a slow key server.
    pub async fn start_slow(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        delay: Duration,
    ) -> KmipResponder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        KmipResponder::serving(listener, acceptor(cert_pem, key_pem, ca_pem), delay)
    }

    fn serving(listener: TcpListener, acceptor: TlsAcceptor, delay: Duration) -> KmipResponder {
        let address = listener.local_addr().expect("address");
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(serve_counting(
            listener,
            acceptor,
            Arc::clone(&counts),
            delay,
        ));
        KmipResponder {
            address,
            counts,
            task,
        }
    }

    /// How many connections it accepted so far.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// How many of their handshakes resumed an earlier session.
    pub fn resumed(&self) -> usize {
        self.counts.resumed.load(Ordering::SeqCst)
    }
}

impl Drop for KmipResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS acceptor that requires client certificates issued by `ca_pem`.
pub fn acceptor(cert_pem: &str, key_pem: &str, ca_pem: &str) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA certificate")).expect("CA");
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts connections until the task is dropped; each is answered until the client closes it.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor) {
    serve_counting(
        listener,
        acceptor,
        Arc::new(Counts::default()),
        Duration::ZERO,
    )
    .await;
}

async fn serve_counting(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    counts: Arc<Counts>,
    delay: Duration,
) {
    let reply = Arc::new(discover_versions_reply());
    while let Ok((socket, _)) = listener.accept().await {
        counts.accepted.fetch_add(1, Ordering::SeqCst);
        // Small TLS records (session tickets, the answer) must not wait for delayed ACKs.
        let _ = socket.set_nodelay(true);
        let acceptor = acceptor.clone();
        let reply = Arc::clone(&reply);
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(socket).await else {
                return;
            };
            if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                counts.resumed.fetch_add(1, Ordering::SeqCst);
            }
            let mut header = [0u8; 8];
            while tls.read_exact(&mut header).await.is_ok() {
                let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                if length > MAX_REQUEST {
                    return;
                }
                let mut body = vec![0u8; length];
                if tls.read_exact(&mut body).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
                if tls.write_all(&reply).await.is_err() {
                    return;
                }
            }
            let _ = tls.shutdown().await;
        });
    }
}
