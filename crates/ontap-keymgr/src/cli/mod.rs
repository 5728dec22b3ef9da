//! The command line: every subcommand, parsed by clap and dispatched here.

mod kmip_check;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ontap-keymgr", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the REST service.
    Serve(serve::ServeArgs),
    /// Print the OpenAPI document of the REST API (as served at /docs/api/openapi.json).
    Openapi,
    /// Talk to a KMIP key server directly, without the service.
    Kmip {
        #[command(subcommand)]
        command: KmipCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KmipCommand {
    /// Check a key server as ONTAP does before it accepts it: mutual TLS with the given client
    /// certificate, trusting only the given server CA certificates, then KMIP DiscoverVersions.
    Check(kmip_check::CheckArgs),
}

pub async fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Serve(serve) => serve::run(serve).await,
        Command::Openapi => {
            print!("{}", ontap_keymgr::api::openapi_text());
            ExitCode::SUCCESS
        }
        Command::Kmip {
            command: KmipCommand::Check(check),
        } => kmip_check::run(check).await,
    }
}
