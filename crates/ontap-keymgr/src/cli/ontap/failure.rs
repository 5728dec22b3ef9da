//! Why an ONTAP-style command failed, and the exit code that tells scripts which kind of
//! failure it was.

use std::process::ExitCode;

/// A failed command. Each kind has its own exit code, so that a script can tell "the service said
/// no" (retrying will not help) from "the service was not there" (retrying may).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The service refused the request: ONTAP's message and code, as the service sent them.
    Api { message: String, code: String },
    /// Input the service never saw was wrong: an unreadable file, no password to send.
    Usage(String),
    /// The service could not be reached, its certificate was not trusted, or it did not answer
    /// like an ONTAP API.
    Connection(String),
}

/// Exit codes; clap's own usage errors exit with 2 as well.
pub const EXIT_API: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONNECTION: u8 = 3;

impl Failure {
    /// An error ONTAP would report with this code, decided here rather than by the service
    /// (e.g. an unknown Vserver found while looking up its key manager).
    pub fn api(message: impl Into<String>, code: u64) -> Failure {
        Failure::Api {
            message: message.into(),
            code: code.to_string(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Api { .. } => EXIT_API,
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Connection(_) => EXIT_CONNECTION,
        })
    }

    /// The line printed on standard error: ONTAP's `Error: <message>`, with the code that
    /// scripts and NetApp's documentation know the error by.
    pub fn line(&self) -> String {
        match self {
            Failure::Api { message, code } if code.is_empty() => format!("Error: {message}"),
            Failure::Api { message, code } => format!("Error: {message} (code {code})"),
            Failure::Usage(message) | Failure::Connection(message) => format!("Error: {message}"),
        }
    }
}

/// Prints the outcome of a command and turns it into the process's exit code.
pub fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.line());
            failure.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_their_code() {
        let failure = Failure::api("entry doesn't exist", 4);
        assert_eq!(failure.line(), "Error: entry doesn't exist (code 4)");
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_API));
    }

    #[test]
    fn other_failures_have_their_own_exit_codes() {
        assert_eq!(
            Failure::Usage("x".into()).exit_code(),
            ExitCode::from(EXIT_USAGE)
        );
        assert_eq!(
            Failure::Connection("x".into()).exit_code(),
            ExitCode::from(EXIT_CONNECTION)
        );
    }
}
