//! The fast KMIP responder as a program, for `scripts/bench.sh`:
//! `kmip_responder CERT KEY CA` listens on 127.0.0.1 (a free port), prints `LISTENING <port>`
//! and answers until it is stopped.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cert, key, ca] = args.as_slice() else {
        eprintln!("usage: kmip_responder CERT.pem KEY.pem CLIENT-CA.pem");
        std::process::exit(2);
    };
    let read = |path: &str| {
        std::fs::read_to_string(path).unwrap_or_else(|error| {
            eprintln!("cannot read {path}: {error}");
            std::process::exit(1);
        })
    };
    let acceptor = test_support::responder::acceptor(&read(cert), &read(key), &read(ca));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        println!("LISTENING {port}");
        let _ = std::io::stdout().flush();
        test_support::responder::serve(listener, acceptor).await;
    });
}
