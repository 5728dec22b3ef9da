//! The ceiling `scripts/bench.sh` compares the service with: a minimal axum handler answering
//! every request with one fixed body, over the same TLS set-up (rustls with ring, TLS 1.2/1.3,
//! the same certificate and key) and the same HTTP/1.1 connection serving. Whatever the service
//! does beyond this, its store, its rules, its authentication, costs the difference.
//!
//! Usage: `reference_server CERT.pem KEY.pem BODY_FILE`; prints `Listening on https://IP:PORT`
//! (port 0: the system picks) and serves until killed.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, cert, key, body] = args.as_slice() else {
        return Err("usage: reference_server CERT.pem KEY.pem BODY_FILE".into());
    };
    let acceptor = acceptor(cert, key)?;
    let body = std::fs::read(body)?;
    let router = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/hal+json")], body) }
    }));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("Listening on https://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (tcp, _) = listener.accept().await?;
        // As the service's connections.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            if let Ok(stream) = acceptor.accept(tcp).await {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
    }
}

fn acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, Failure> {
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
