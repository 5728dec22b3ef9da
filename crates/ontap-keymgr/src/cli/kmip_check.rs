//! `ontap-keymgr kmip check`: the key server check of the service, alone, from files, as a
//! pre-flight report: the connection and its TLS facts, both certificates, what the server says
//! in KMIP, and on request which suites it accepts, whether it can store a key as ONTAP does, and
//! whether its secondaries receive the keys stored through it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use kmip::{Connector, Credential, Endpoint, Failure, QueryFunction, TlsIdentity, TlsOffer};

use super::kmip_report::{Format, Report};
use ontap_keymgr::domain::error::{kmip_code, ontap_kmip_message};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The key server: HOST, HOST:PORT, IPv4[:PORT] or [IPv6][:PORT]; the port defaults to 5696.
    #[arg(long, value_name = "HOST[:PORT]")]
    server: Endpoint,
    /// The key manager's client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    client_cert: PathBuf,
    /// The client certificate's private key (PEM: PKCS#1, PKCS#8 or SEC1).
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
    /// Seconds the whole check may take: connection, TLS handshake and KMIP exchanges.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
    /// Offer what ONTAP offers in FIPS mode: TLS 1.2 and 1.3 with FIPS-approved suites only.
    #[arg(long)]
    fips: bool,
    /// TLS versions to offer, as ONTAP names them (TLSv1.3,TLSv1.2,TLSv1.1,TLSv1); every version
    /// from the lowest given up is offered. Default: ONTAP's (TLSv1.3,TLSv1.2).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    tls_versions: Vec<String>,
    /// Cipher suites to offer, by IANA name (TLS_RSA_WITH_AES_128_CBC_SHA256,...). Default:
    /// ONTAP's default list.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    cipher_suites: Vec<String>,
    /// Also try each TLS version and suite of the offer alone, and say which the server accepts.
    #[arg(long)]
    suites: bool,
    /// Also store, find, read back and destroy a throw-away AES-256 key, as ONTAP does with its
    /// keys. It writes to the key server.
    #[arg(long)]
    key_round_trip: bool,
    /// Also store a throw-away key through the server (the primary) and check that each
    /// `--secondary` has it, found by its `x-NETAPP-KeyId`, within `--replication-wait`. It writes
    /// to the primary.
    #[arg(long, requires = "secondary")]
    replication: bool,
    /// A secondary key server of the primary (HOST[:PORT]); repeat for several. Reached with the
    /// same certificates and credential.
    #[arg(long, value_name = "HOST[:PORT]", requires = "replication")]
    secondary: Vec<Endpoint>,
    /// Seconds each secondary may take to have the key.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    replication_wait: u64,
    /// `text` for people, `json` for automation (one object; see docs/cli.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Exit codes, one per kind of failure, so that scripts can tell them apart.
const EXIT_BAD_INPUT: u8 = 2;

pub fn exit_code(failure: Failure) -> u8 {
    match failure {
        Failure::ServerNotTrusted => 3,
        Failure::ClientCertificateRejected => 4,
        Failure::Tls => 5,
        Failure::Unreachable => 6,
        Failure::OperationFailed => 7,
    }
}

/// What to do about each kind of failure.
pub fn remedy(failure: Failure) -> &'static str {
    match failure {
        Failure::ServerNotTrusted => {
            "install the CA certificate that signed the key server's certificate as a server CA, \
             or give the key server a valid certificate for the name or address used to reach it"
        }
        Failure::ClientCertificateRejected => {
            "make the key server trust the CA that signed the client certificate, and give the \
             client certificate the extended key usage clientAuth"
        }
        Failure::Tls => {
            "compare the TLS versions and cipher suites of both sides (--suites lists which of \
             ONTAP's the server accepts)"
        }
        Failure::Unreachable => {
            "check the address, the port and the firewall, and that a KMIP server listens there"
        }
        Failure::OperationFailed => {
            "the key server refused the request: check the KMIP username and password and its \
             client policy"
        }
    }
}

/// How long each probing handshake of `--suites` may take.
const SUITE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(args: CheckArgs) -> ExitCode {
    let connector = match offer(&args).and_then(|offer| {
        let identity = load_identity(&args)?;
        Connector::new(&identity, &offer).map_err(|e| e.to_string())
    }) {
        Ok(connector) => connector,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let credential = match (&args.username, &args.password) {
        (Some(username), Some(password)) => Some(Credential {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    };
    let report = check(&args, &connector, credential.as_ref()).await;
    report.print(args.format);
    match &report.failure {
        None => ExitCode::SUCCESS,
        Some(failure) => ExitCode::from(exit_code(*failure)),
    }
}

async fn check(args: &CheckArgs, connector: &Connector, credential: Option<&Credential>) -> Report {
    let timeout = Duration::from_secs(args.timeout);
    let mut report = Report::new(&args.server, connector);
    match connector.connect(&args.server, timeout).await {
        Err(error) => report.fail(&error),
        Ok(mut session) => {
            report.connected(session.handshake(), &args.server.host);
            match session.discover_versions(credential).await {
                Err(error) => report.fail(&error),
                Ok(versions) => {
                    report.versions(&versions);
                    let functions = vec![
                        QueryFunction::Operations,
                        QueryFunction::Objects,
                        QueryFunction::ServerInformation,
                    ];
                    match session.query(credential, functions).await {
                        Ok(answer) => report.query(&answer),
                        Err(error) => {
                            report.warn(format!("the server did not answer Query: {error}"))
                        }
                    }
                    if args.key_round_trip {
                        let trip = kmip::round_trip::key_round_trip(&mut session, credential).await;
                        report.round_trip(&trip);
                    }
                    if args.replication {
                        let replication = kmip::replication::check_replication(
                            &mut session,
                            credential,
                            connector,
                            &args.secondary,
                            timeout,
                            Duration::from_secs(args.replication_wait),
                        )
                        .await;
                        report.replication(&replication);
                    }
                }
            }
            session.close().await;
        }
    }
    if args.suites {
        let verdicts = kmip::probe::scan_suites(
            connector,
            &args.server,
            connector.offer(),
            SUITE_PROBE_TIMEOUT,
        )
        .await;
        report.suites(&verdicts);
    }
    report
}

/// ONTAP's offer, changed by the flags as `PATCH /api/security` would change it.
fn offer(args: &CheckArgs) -> Result<TlsOffer, String> {
    let base = TlsOffer::ontap_default().with_fips(args.fips);
    if args.tls_versions.is_empty() && args.cipher_suites.is_empty() {
        return Ok(base);
    }
    let versions = match args.tls_versions.is_empty() {
        true => base.versions().to_vec(),
        false => args
            .tls_versions
            .iter()
            .map(|name| {
                kmip::TlsVersion::from_ontap_name(name).ok_or_else(|| {
                    format!(
                        "\"{name}\" is not a TLS version: use TLSv1.3, TLSv1.2, TLSv1.1 or TLSv1"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let suites = match args.cipher_suites.is_empty() {
        true => base.cipher_suites().to_vec(),
        false => args.cipher_suites.clone(),
    };
    TlsOffer::new(&versions, &suites, args.fips).map_err(|e| e.to_string())
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

/// The ONTAP error code the API answers for a failure, and ONTAP's message.
pub fn ontap_error(failure: Failure) -> (u64, &'static str) {
    (kmip_code(failure), ontap_kmip_message(failure))
}
