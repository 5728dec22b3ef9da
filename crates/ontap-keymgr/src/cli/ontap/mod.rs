//! ONTAP's command line against a running service: `security key-manager external ...`,
//! `security certificate ...` and `svm ...`, each a few REST calls, printed as ONTAP prints them.
//!
//! ONTAP writes long options with one dash (`-vserver svm1`); clap would read that as a bundle of
//! short flags. [`normalize`] rewrites such arguments to `--vserver` before clap parses them, so
//! both spellings work.

mod certificate;
mod client;
mod failure;
mod key_manager;
mod keys;
mod scope;
mod secret;
mod svm;
mod table;
mod volume;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::ExitCode;

pub use client::Connection;
pub use svm::SvmCommand;
pub use volume::VolumeCommand;

use client::Client;
use failure::finish;

#[derive(Debug, clap::Subcommand)]
pub enum SecurityCommand {
    /// Key managers (ONTAP: `security key-manager`).
    KeyManager {
        #[command(subcommand)]
        command: key_manager::KeyManagerCommand,
    },
    /// Certificates (ONTAP: `security certificate`).
    Certificate {
        #[command(subcommand)]
        command: certificate::CertificateCommand,
    },
}

/// The top-level commands whose options may be written ONTAP's way.
const ONTAP_COMMANDS: [&str; 3] = ["security", "svm", "volume"];

pub fn security(connection: &Connection, command: &SecurityCommand) -> ExitCode {
    finish(
        Client::connect(connection).and_then(|client| match command {
            SecurityCommand::KeyManager { command } => key_manager::run(&client, command),
            SecurityCommand::Certificate { command } => certificate::run(&client, command),
        }),
    )
}

pub fn volume(connection: &Connection, command: &VolumeCommand) -> ExitCode {
    finish(Client::connect(connection).and_then(|client| volume::run(&client, command)))
}

pub fn svm(connection: &Connection, command: &SvmCommand) -> ExitCode {
    finish(Client::connect(connection).and_then(|client| svm::run(&client, command)))
}

/// The command line with ONTAP-style options (`-vserver`) turned into clap's (`--vserver`).
///
/// Only for `security`, `svm` and `volume` (the first word), only before a `--`, only for a dash followed
/// by a name of two or more characters (`-h` stays a short option, `-1` a number), and never for
/// the value of the option before it: in `-username -bob`, `-bob` is the user's name.
pub fn normalize<I, T>(args: I, command: &clap::Command) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let valued = match args.get(1).and_then(|word| word.to_str()) {
        Some(word) if ONTAP_COMMANDS.contains(&word) => match command.find_subcommand(word) {
            Some(subcommand) => valued_options(subcommand),
            None => return args,
        },
        _ => return args,
    };
    let mut normalized: Vec<OsString> = Vec::with_capacity(args.len());
    let mut positional = false;
    for (index, arg) in args.into_iter().enumerate() {
        let rewritten = match (index < 2 || positional, arg.to_str()) {
            (false, Some(text)) => rewrite(text, normalized.last(), &valued),
            _ => None,
        };
        positional |= index >= 2 && arg == "--";
        normalized.push(rewritten.map(OsString::from).unwrap_or(arg));
    }
    normalized
}

fn rewrite(arg: &str, previous: Option<&OsString>, valued: &BTreeSet<String>) -> Option<String> {
    let is_a_value = previous
        .and_then(|previous| previous.to_str())
        .is_some_and(|previous| awaits_value(previous, valued));
    match is_a_value {
        true => None,
        false => doubled(arg),
    }
}

/// `--name` without `=value`, for an option that takes a value: the next argument is its value.
fn awaits_value(arg: &str, valued: &BTreeSet<String>) -> bool {
    arg.strip_prefix("--")
        .is_some_and(|name| !name.contains('=') && valued.contains(name))
}

/// `-name` or `-name=value` → `--name...`.
fn doubled(arg: &str) -> Option<String> {
    let rest = arg.strip_prefix('-')?;
    let name = rest.split_once('=').map_or(rest, |(name, _)| name);
    let ontap_style = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ontap_style.then(|| format!("-{arg}"))
}

/// The long options, of a command and its subcommands, that take a value.
fn valued_options(command: &clap::Command) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect_valued_options(command, &mut names);
    names
}

fn collect_valued_options(command: &clap::Command, names: &mut BTreeSet<String>) {
    names.extend(
        command
            .get_arguments()
            .filter(|arg| arg.get_action().takes_values())
            .filter_map(|arg| arg.get_long())
            .map(str::to_string),
    );
    for subcommand in command.get_subcommands() {
        collect_valued_options(subcommand, names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("ontap-keymgr")
            .subcommand(
                clap::Command::new("security")
                    .arg(clap::Arg::new("url").long("url"))
                    .arg(
                        clap::Arg::new("insecure")
                            .long("insecure")
                            .action(clap::ArgAction::SetTrue),
                    )
                    .subcommand(
                        clap::Command::new("add-servers")
                            .arg(clap::Arg::new("vserver").long("vserver"))
                            .arg(clap::Arg::new("key-servers").long("key-servers"))
                            .arg(clap::Arg::new("timeout").long("timeout")),
                    ),
            )
            .subcommand(clap::Command::new("serve").arg(clap::Arg::new("x").long("vserver")))
    }

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize(args.iter().copied(), &command())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn ontap_options_get_two_dashes() {
        assert_eq!(
            normalized(&[
                "k",
                "security",
                "-url",
                "u",
                "add-servers",
                "-vserver",
                "vs1",
                "-key-servers=a,b",
                "--timeout",
                "-1",
            ]),
            [
                "k",
                "security",
                "--url",
                "u",
                "add-servers",
                "--vserver",
                "vs1",
                "--key-servers=a,b",
                "--timeout",
                "-1",
            ]
        );
    }

    #[test]
    fn values_shorts_other_commands_and_positionals_are_left_alone() {
        assert_eq!(
            normalized(&[
                "k",
                "security",
                "add-servers",
                "-vserver",
                "-bogus",
                "-h",
                "-x"
            ]),
            [
                "k",
                "security",
                "add-servers",
                "--vserver",
                "-bogus",
                "-h",
                "-x"
            ]
        );
        assert_eq!(
            normalized(&[
                "k",
                "security",
                "-insecure",
                "-bogus",
                "-vserver=a",
                "-timeout"
            ]),
            [
                "k",
                "security",
                "--insecure",
                "--bogus",
                "--vserver=a",
                "--timeout"
            ]
        );
        assert_eq!(
            normalized(&["k", "serve", "-vserver"]),
            ["k", "serve", "-vserver"]
        );
        assert_eq!(
            normalized(&["k", "security", "--", "-vserver"]),
            ["k", "security", "--", "-vserver"]
        );
        assert_eq!(
            normalized(&["k", "security", "-help"]),
            ["k", "security", "--help"]
        );
    }
}
