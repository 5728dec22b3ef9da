//! `ontap-keymgr kmip check`: the key server check of the service, alone, from files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use kmip::{Connector, Credential, Endpoint, Failure, TlsIdentity, TlsOffer};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The key server: HOST, HOST:PORT, IPv4[:PORT] or [IPv6][:PORT]; the port defaults to 5696.
    #[arg(long, value_name = "HOST[:PORT]")]
    server: Endpoint,
    /// The key manager's client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    client_cert: PathBuf,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    client_key: PathBuf,
    /// A server CA certificate to trust (PEM); repeat for several. No other CA is trusted.
    #[arg(long, value_name = "FILE", required = true)]
    server_ca: Vec<PathBuf>,
    /// KMIP username, sent as a Username and Password credential.
    #[arg(long, requires = "password")]
    username: Option<String>,
    /// KMIP password (also read from KEYMGR_KMIP_PASSWORD, which keeps it out of `ps`).
    #[arg(
        long,
        env = super::KMIP_PASSWORD,
        hide_env_values = true,
        requires = "username"
    )]
    password: Option<String>,
    /// Seconds the whole check may take: connection, TLS handshake and KMIP exchange.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
}

/// Exit codes, one per kind of failure, so that scripts can tell them apart.
const EXIT_BAD_INPUT: u8 = 2;

fn exit_code(failure: Failure) -> u8 {
    match failure {
        Failure::ServerNotTrusted => 3,
        Failure::ClientCertificateRejected => 4,
        Failure::Tls => 5,
        Failure::Unreachable => 6,
        Failure::OperationFailed => 7,
    }
}

/// What to do about each kind of failure.
fn remedy(failure: Failure) -> &'static str {
    match failure {
        Failure::ServerNotTrusted => {
            "install the CA certificate that signed the key server's certificate as a server CA, \
             or give the key server a certificate for the name or address used to reach it"
        }
        Failure::ClientCertificateRejected => {
            "make the key server trust the CA that signed the client certificate"
        }
        Failure::Tls => "check the TLS versions, cipher suites and keys of both sides",
        Failure::Unreachable => {
            "check the address, the port and the firewall, and that a KMIP server listens there"
        }
        Failure::OperationFailed => {
            "the key server refused the request: check the KMIP username and password and its \
             client policy"
        }
    }
}

pub async fn run(args: CheckArgs) -> ExitCode {
    let connector = match load_identity(&args).and_then(|identity| {
        Connector::new(&identity, &TlsOffer::ontap_default()).map_err(|e| e.to_string())
    }) {
        Ok(connector) => connector,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let credential = match (args.username, args.password) {
        (Some(username), Some(password)) => Some(Credential { username, password }),
        _ => None,
    };
    let timeout = Duration::from_secs(args.timeout);
    match kmip::discover_versions(&connector, &args.server, credential.as_ref(), timeout).await {
        Ok(versions) => {
            let shown: Vec<String> = versions.iter().map(ToString::to_string).collect();
            println!("{}", shown.join(" "));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!("hint: {}", remedy(error.failure));
            ExitCode::from(exit_code(error.failure))
        }
    }
}

fn load_identity(args: &CheckArgs) -> Result<TlsIdentity, String> {
    let cert = read(&args.client_cert)?;
    let key = read(&args.client_key)?;
    let cas = args
        .server_ca
        .iter()
        .map(|path| read(path))
        .collect::<Result<Vec<_>, _>>()?;
    let ca_refs: Vec<&str> = cas.iter().map(String::as_str).collect();
    TlsIdentity::from_pem(&cert, &key, &ca_refs).map_err(|e| e.to_string())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
