//! `ontap-keymgr serve`: the REST service.

use std::path::PathBuf;
use std::process::ExitCode;

use ontap_keymgr::config::{Config, Overrides};
use ontap_keymgr::server;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Where the database, the secret key and the HTTPS certificate live [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file (docs/operations.md lists its settings).
    #[arg(long, value_name = "FILE", env = "KEYMGR_CONFIG", hide_env = true)]
    config: Option<PathBuf>,
    /// Keep the configuration in this PostgreSQL database (postgres://user@host:port/db), which
    /// several instances may share, instead of the data dir's SQLite file.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Serve plain HTTP, for use behind a TLS-terminating proxy.
    #[arg(long)]
    http: bool,
    /// Set the password of the existing user `admin` at this start, to KEYMGR_ADMIN_PASSWORD or,
    /// if that is unset, to a generated one printed once: for a lost password.
    #[arg(long)]
    reset_admin_password: bool,
}

pub async fn run(args: ServeArgs) -> ExitCode {
    init_logging();
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        http: args.http,
        database_url: args.database_url,
    };
    let config = match Config::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let admin = server::AdminStart {
        password: std::env::var("KEYMGR_ADMIN_PASSWORD").ok(),
        reset: args.reset_admin_password,
    };
    match server::serve(config, admin).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to standard error; `KEYMGR_LOG` sets the level (e.g. `debug`, `ontap_keymgr=trace`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYMGR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
