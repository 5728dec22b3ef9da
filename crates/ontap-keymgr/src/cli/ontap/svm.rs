//! `svm create` and `svm show` (ONTAP's `vserver create` / `vserver show`): the tenants that
//! SVM-scoped key managers belong to.

use serde_json::json;

use super::client::{Client, with_query};
use super::failure::Failure;
use super::table::{Table, cell};

#[derive(Debug, clap::Subcommand)]
pub enum SvmCommand {
    /// Create a storage VM.
    Create(CreateArgs),
    /// Show storage VMs.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The new SVM's name.
    #[arg(long, value_name = "NAME")]
    vserver: String,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only this SVM.
    #[arg(long, value_name = "NAME")]
    vserver: Option<String>,
}

pub fn run(client: &Client, command: &SvmCommand) -> Result<(), Failure> {
    match command {
        SvmCommand::Create(args) => create(client, args),
        SvmCommand::Show(args) => show(client, args),
    }
}

fn create(client: &Client, args: &CreateArgs) -> Result<(), Failure> {
    client.post("/api/svm/svms", &json!({ "name": args.vserver }))?;
    // ONTAP's last line of a `vserver create`.
    println!("Vserver creation completed.");
    Ok(())
}

fn show(client: &Client, args: &ShowArgs) -> Result<(), Failure> {
    let mut query = vec![("fields", "name,uuid,state,subtype")];
    if let Some(name) = &args.vserver {
        query.push(("name", name));
    }
    let svms = client.get_all(&with_query("/api/svm/svms", &query))?;
    let mut table = Table::new(&["Vserver", "Subtype", "Admin State", "UUID"]);
    for svm in &svms {
        table.push(vec![
            cell(&svm["name"]),
            cell(&svm["subtype"]),
            cell(&svm["state"]),
            cell(&svm["uuid"]),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
