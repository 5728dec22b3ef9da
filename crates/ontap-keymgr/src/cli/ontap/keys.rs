//! `security key-manager key create|query|delete|migrate` and `security key-manager external
//! restore`: the keys of key managers as ONTAP's CLI shows and changes them, over the service's
//! REST API. Restore and migrate are jobs: the command waits for them (up to two minutes) and
//! prints how they ended.

use serde_json::{Value, json};

use super::client::{Client, encode, with_query};
use super::failure::Failure;
use super::scope::{Scope, cluster_name, external_key_manager};
use super::secret;
use super::table::{Table, cell};

/// Where `-prompt-for-key true` takes the passphrase from when it is set (scripts).
const PASSPHRASE_VARIABLE: &str = "KEYMGR_AUTHENTICATION_PASSPHRASE";

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create an authentication key on the admin Vserver's key servers.
    Create(CreateArgs),
    /// Show the keys the key managers hold.
    Query(QueryArgs),
    /// Delete an authentication key from every key server.
    Delete(DeleteArgs),
    /// Move a Vserver's keys between its key manager and the cluster's.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The key's tag; ONTAP's default: the node's name.
    #[arg(long)]
    key_tag: Option<String>,
    /// Ask for the authentication passphrase (20 to 32 characters, also read from
    /// KEYMGR_AUTHENTICATION_PASSPHRASE) instead of generating one.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, value_name = "true|false")]
    prompt_for_key: bool,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Only the keys of this Vserver's key manager (the cluster's name: the admin Vserver's).
    #[arg(long)]
    vserver: Option<String>,
    /// Only keys of this type: NSE-AK, VEK.
    #[arg(long)]
    key_type: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The key's id (80 hexadecimal digits).
    #[arg(long)]
    key_id: String,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The Vserver whose key manager holds the keys now (the cluster's name: the admin
    /// Vserver's).
    #[arg(long)]
    from_vserver: String,
    /// The Vserver whose key manager is to hold them.
    #[arg(long)]
    to_vserver: String,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The Vserver whose key manager restores (omitted: the admin Vserver).
    #[arg(long)]
    vserver: Option<String>,
    /// Only this key.
    #[arg(long)]
    key_id: Option<String>,
}

pub fn run(client: &Client, command: &KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Create(args) => create(client, args),
        KeyCommand::Query(args) => query(client, args),
        KeyCommand::Delete(args) => delete(client, args),
        KeyCommand::Migrate(args) => migrate(client, args),
    }
}

fn cluster_key_manager(client: &Client) -> Result<String, Failure> {
    external_key_manager(client, &Scope::Cluster)
}

fn create(client: &Client, args: &CreateArgs) -> Result<(), Failure> {
    let key_manager = cluster_key_manager(client)?;
    let mut body = json!({});
    if let Some(tag) = &args.key_tag {
        body["key_tag"] = tag.clone().into();
    }
    if args.prompt_for_key {
        let passphrase = secret::from_env_or_prompt(
            PASSPHRASE_VARIABLE,
            "Enter the authentication passphrase: ",
            true,
        )?;
        body["passphrase"] = passphrase.into();
    }
    let path = format!(
        "/api/security/key-managers/{}/auth-keys?return_records=true",
        encode(&key_manager)
    );
    let created = client.post(&path, &body)?;
    let key_id = created["records"][0]["key_id"].as_str().unwrap_or_default();
    println!("Key ID: {key_id}");
    Ok(())
}

fn delete(client: &Client, args: &DeleteArgs) -> Result<(), Failure> {
    let key_manager = cluster_key_manager(client)?;
    client.delete(&format!(
        "/api/security/key-managers/{}/auth-keys/{}",
        encode(&key_manager),
        encode(&args.key_id)
    ))?;
    Ok(())
}

fn query(client: &Client, args: &QueryArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let node = client.get("/api/cluster/nodes?fields=uuid,name")?;
    let node_uuid = node["records"][0]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut query = vec![("fields", "uuid,svm.name")];
    let scope = args
        .vserver
        .as_deref()
        .map(|v| Scope::of(Some(v), &cluster));
    if let Some(scope) = &scope {
        query.push(scope.filter());
    }
    let managers = client.get_all(&with_query("/api/security/key-managers", &query))?;
    let wanted = args
        .key_type
        .as_deref()
        .map(|t| t.to_lowercase().replace('-', "_"));
    let mut table = Table::new(&[
        "Node",
        "Vserver",
        "Key Manager",
        "Key Type",
        "Key ID",
        "Key Tag",
        "Restored",
    ]);
    for manager in &managers {
        let uuid = manager["uuid"].as_str().unwrap_or_default();
        let path = format!(
            "/api/security/key-managers/{}/keys/{}/key-ids?fields=*",
            encode(uuid),
            encode(&node_uuid)
        );
        for key in client.get_all(&path)? {
            let key_type = key["key_type"].as_str().unwrap_or_default();
            if wanted.as_deref().is_some_and(|w| w != key_type) {
                continue;
            }
            table.push(vec![
                cell(&key["node"]["name"]),
                cell(&key["svm"]["name"]),
                cell(&key["key_manager"]),
                key_type.to_uppercase().replace('_', "-"),
                cell(&key["key_id"]),
                cell(&key["key_tag"]),
                if key["restored"] == Value::Bool(true) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ]);
        }
    }
    print!("{}", table.render());
    Ok(())
}

/// Waits for a job the service answered (up to two minutes), then prints how it ended.
fn finished(answer: &Value) -> Result<(), Failure> {
    let job = &answer["job"];
    match job["state"].as_str() {
        Some("success") => {
            println!("{}", job["message"].as_str().unwrap_or_default());
            Ok(())
        }
        _ => Err(Failure::api(
            format!(
                "the job {} did not end within two minutes: see GET /api/cluster/jobs/{}",
                job["uuid"].as_str().unwrap_or_default(),
                job["uuid"].as_str().unwrap_or_default()
            ),
            0,
        )),
    }
}

fn migrate(client: &Client, args: &MigrateArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let from = external_key_manager(client, &Scope::of(Some(&args.from_vserver), &cluster))?;
    let to = external_key_manager(client, &Scope::of(Some(&args.to_vserver), &cluster))?;
    let path = format!(
        "/api/security/key-managers/{}/migrate?return_timeout=120",
        encode(&from)
    );
    finished(&client.post(&path, &json!({ "uuid": to }))?)
}

pub fn restore(client: &Client, args: &RestoreArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let key_manager = external_key_manager(client, &Scope::of(args.vserver.as_deref(), &cluster))?;
    let mut body = json!({});
    if let Some(key_id) = &args.key_id {
        body["key_id"] = key_id.clone().into();
    }
    let path = format!(
        "/api/security/key-managers/{}/restore?return_timeout=120",
        encode(&key_manager)
    );
    finished(&client.post(&path, &body)?)
}
