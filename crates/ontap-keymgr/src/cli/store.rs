//! `ontap-keymgr store migrate`: a data dir's SQLite database into PostgreSQL.

use std::path::PathBuf;
use std::process::ExitCode;

use ontap_keymgr::server;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Copy everything of a data dir's SQLite database (users, SVMs, certificates, key managers
    /// with their key servers, settings, the audit trail) into an empty PostgreSQL database, and
    /// check that it reads back the same. Stop the service first. The database keeps the data
    /// dir's cluster uuid and its secrets are sealed with the data dir's secret.key, which every
    /// instance of the database then needs.
    Migrate {
        /// The data dir holding keymgr.db, secret.key and cluster-uuid.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The PostgreSQL database: postgres://user@host:port/database.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

pub async fn run(command: StoreCommand) -> ExitCode {
    let StoreCommand::Migrate { from, to } = command;
    match server::migrate_store(&from, &to).await {
        Ok(copied) => {
            println!("Copied and read back {copied}.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
