//! `security certificate install` and `show`: the certificates key managers are built from.
//! ONTAP asks for the PEM text on standard input; here it comes from files.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::client::{Client, records, with_query};
use super::failure::Failure;
use super::scope::{Scope, cluster_name, vserver_of};
use super::table::{Table, cell};

#[derive(Debug, clap::Subcommand)]
pub enum CertificateCommand {
    /// Install a certificate for a Vserver (or the cluster).
    Install(InstallArgs),
    /// Show installed certificates.
    Show(ShowArgs),
}

/// The certificate types a key manager needs, spelled as ONTAP's CLI spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertificateType {
    /// The key manager's own certificate, with its private key (--key-file).
    Client,
    /// A CA certificate that key servers' certificates must chain to.
    #[value(name = "server-ca", alias = "server_ca")]
    ServerCa,
}

impl CertificateType {
    /// The REST API's name of the type.
    fn api(self) -> &'static str {
        match self {
            CertificateType::Client => "client",
            CertificateType::ServerCa => "server_ca",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The Vserver (SVM); omitted or the cluster's name: the cluster (admin Vserver).
    #[arg(long)]
    vserver: Option<String>,
    /// What the certificate is for.
    #[arg(long = "type", value_enum)]
    cert_type: CertificateType,
    /// The name to install it under [default: chosen by the service].
    #[arg(long, value_name = "NAME")]
    cert_name: Option<String>,
    /// The certificate (PEM).
    #[arg(long, value_name = "FILE")]
    cert_file: PathBuf,
    /// The private key (PEM), required for a client certificate.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only this Vserver's certificates (the cluster's name: the cluster's).
    #[arg(long)]
    vserver: Option<String>,
    /// Only certificates of this type.
    #[arg(long = "type", value_enum)]
    cert_type: Option<CertificateType>,
}

pub fn run(client: &Client, command: &CertificateCommand) -> Result<(), Failure> {
    match command {
        CertificateCommand::Install(args) => install(client, args),
        CertificateCommand::Show(args) => show(client, args),
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", path.display())))
}

fn install(client: &Client, args: &InstallArgs) -> Result<(), Failure> {
    // Files first: a wrong path should not cost a round trip.
    let public_certificate = read(&args.cert_file)?;
    let private_key = args.key_file.as_deref().map(read).transpose()?;
    let scope = Scope::of(args.vserver.as_deref(), &cluster_name(client)?);
    let mut body = json!({
        "type": args.cert_type.api(),
        "public_certificate": public_certificate,
    });
    if let Some(name) = &args.cert_name {
        body["name"] = name.clone().into();
    }
    if let Some(key) = private_key {
        body["private_key"] = key.into();
    }
    if let Some(svm) = scope.svm() {
        body["svm"] = svm;
    }
    let answer = client.post("/api/security/certificates?return_records=true", &body)?;
    if let Some(installed) = records(&answer).first() {
        print!("{}", reference(installed));
    }
    Ok(())
}

/// What ONTAP prints after an installation, to find the certificate again later.
fn reference(installed: &Value) -> String {
    format!(
        "The installed certificate's CA and serial number for reference:\n\
         CA: {}\nserial: {}\nname: {}\n",
        cell(&installed["ca"]),
        cell(&installed["serial_number"]),
        cell(&installed["name"]),
    )
}

/// The REST API's `server_ca` is ONTAP's CLI's `server-ca`.
fn cli_type(value: &Value) -> String {
    cell(value).replace('_', "-")
}

fn show(client: &Client, args: &ShowArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let mut query = vec![(
        "fields",
        "name,type,common_name,scope,svm.name,serial_number,expiry_time",
    )];
    let scope = args
        .vserver
        .as_deref()
        .map(|v| Scope::of(Some(v), &cluster));
    if let Some(scope) = &scope {
        query.push(scope.filter());
    }
    if let Some(cert_type) = args.cert_type {
        query.push(("type", cert_type.api()));
    }
    let certificates = client.get_all(&with_query("/api/security/certificates", &query))?;
    let mut table = Table::new(&[
        "Vserver",
        "Certificate Name",
        "Type",
        "Common Name",
        "Serial Number",
        "Expiration",
    ]);
    for certificate in &certificates {
        table.push(vec![
            vserver_of(certificate, &cluster),
            cell(&certificate["name"]),
            cli_type(&certificate["type"]),
            cell(&certificate["common_name"]),
            cell(&certificate["serial_number"]),
            cell(&certificate["expiry_time"]),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_between_the_cli_and_the_api() {
        assert_eq!(CertificateType::ServerCa.api(), "server_ca");
        assert_eq!(CertificateType::Client.api(), "client");
        assert_eq!(cli_type(&json!("server_ca")), "server-ca");
    }

    #[test]
    fn the_reference_names_ca_and_serial() {
        let installed = json!({ "ca": "test-ca", "serial_number": "1A2B", "name": "c1" });
        assert_eq!(
            reference(&installed),
            "The installed certificate's CA and serial number for reference:\n\
             CA: test-ca\nserial: 1A2B\nname: c1\n"
        );
    }
}
