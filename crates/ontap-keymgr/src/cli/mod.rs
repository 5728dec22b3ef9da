//! The command line: every subcommand, parsed by clap and dispatched here.

mod kmip_check;
mod kmip_report;
mod ontap;
mod serve;
mod store;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

/// The variable a KMIP password may come from instead of the command line or a prompt, which
/// keeps it out of the process list (`kmip check`, `modify-server`).
const KMIP_PASSWORD: &str = "KEYMGR_KMIP_PASSWORD";

/// The parsed command line. It parses like the derived [`Cli`], except that ONTAP-style options
/// (`-vserver`) of the `security` and `svm` commands are first rewritten to clap's `--vserver`
/// (see [`ontap::normalize`]); `main` keeps calling `Args::parse()`.
#[derive(Debug)]
pub struct Args(Cli);

#[derive(Debug, Parser)]
#[command(name = "ontap-keymgr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the REST service.
    #[command(after_help = ontap_keymgr::config::environment_help())]
    Serve(serve::ServeArgs),
    /// Print the OpenAPI document of the REST API (as served at /docs/api/openapi.json).
    Openapi,
    /// Talk to a KMIP key server directly, without the service.
    Kmip {
        #[command(subcommand)]
        command: KmipCommand,
    },
    /// The store: moving a data dir's SQLite database to PostgreSQL.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// ONTAP's `security` commands (key managers, certificates) against a running service.
    /// Options may be written ONTAP's way, with one dash: `-vserver svm1`.
    Security {
        #[command(flatten)]
        connection: ontap::Connection,
        #[command(subcommand)]
        command: ontap::SecurityCommand,
    },
    /// ONTAP's `vserver` commands (storage VMs) against a running service.
    Svm {
        #[command(flatten)]
        connection: ontap::Connection,
        #[command(subcommand)]
        command: ontap::SvmCommand,
    },
    /// ONTAP's `volume` commands, minimal (encrypted volumes) against a running service.
    Volume {
        #[command(flatten)]
        connection: ontap::Connection,
        #[command(subcommand)]
        command: ontap::VolumeCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KmipCommand {
    /// Check a key server as ONTAP does before it accepts it: mutual TLS with the given client
    /// certificate, trusting only the given server CA certificates, then KMIP DiscoverVersions.
    Check(kmip_check::CheckArgs),
}

fn normalized<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    ontap::normalize(args, &Cli::command())
}

impl CommandFactory for Args {
    fn command() -> clap::Command {
        Cli::command()
    }

    fn command_for_update() -> clap::Command {
        Cli::command_for_update()
    }
}

impl FromArgMatches for Args {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Cli::from_arg_matches(matches).map(Args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl Parser for Args {
    fn parse() -> Self {
        Args(Cli::parse_from(normalized(std::env::args_os())))
    }

    fn try_parse() -> Result<Self, clap::Error> {
        Cli::try_parse_from(normalized(std::env::args_os())).map(Args)
    }

    fn parse_from<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Args(Cli::parse_from(normalized(args)))
    }

    fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::try_parse_from(normalized(args)).map(Args)
    }
}

pub async fn run(args: Args) -> ExitCode {
    match args.0.command {
        Command::Serve(serve) => serve::run(serve).await,
        Command::Openapi => {
            print!("{}", ontap_keymgr::api::openapi_text());
            ExitCode::SUCCESS
        }
        Command::Kmip {
            command: KmipCommand::Check(check),
        } => kmip_check::run(check).await,
        Command::Store { command } => store::run(command).await,
        // Blocking HTTP and terminal prompts: nothing else runs on the runtime meanwhile.
        Command::Security {
            connection,
            command,
        } => ontap::security(&connection, &command),
        Command::Svm {
            connection,
            command,
        } => ontap::svm(&connection, &command),
        Command::Volume {
            connection,
            command,
        } => ontap::volume(&connection, &command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ontap_style_options_parse() {
        let args = Args::try_parse_from([
            "ontap-keymgr",
            "security",
            "key-manager",
            "external",
            "modify-server",
            "-vserver",
            "svm1",
            "-key-server",
            "ks1",
            "-timeout",
            "-1",
            "-url",
            "https://127.0.0.1:1",
        ]);
        assert!(args.is_ok(), "{args:?}");
    }

    #[test]
    fn modify_server_takes_no_password() {
        let args = Args::try_parse_from([
            "ontap-keymgr",
            "security",
            "key-manager",
            "external",
            "modify-server",
            "-key-server",
            "ks1",
            "-username",
            "u",
            "-password",
            "p",
        ]);
        assert!(args.is_err(), "{args:?}");
    }
}
