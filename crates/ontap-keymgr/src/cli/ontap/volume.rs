//! `volume create|show|delete`, minimal: a volume's name, Vserver, size and encryption (ONTAP's
//! `-encrypt true` stores its key on the key servers). The service runs creating and deleting as
//! jobs; the command waits for them (up to two minutes).

use serde_json::{Value, json};

use super::client::{Client, encode, records, with_query};
use super::failure::Failure;
use super::table::{Table, cell};

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume; `-encrypt true` keeps its key on the key servers.
    Create(CreateArgs),
    /// Show volumes.
    Show(ShowArgs),
    /// Delete a volume (its key is destroyed on the key servers).
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    vserver: String,
    #[arg(long)]
    volume: String,
    /// Bytes, or with a unit: 20MB, 1GB (ONTAP's units are powers of 1024).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, value_name = "true|false")]
    encrypt: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(long)]
    vserver: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[arg(long)]
    vserver: String,
    #[arg(long)]
    volume: String,
}

pub fn run(client: &Client, command: &VolumeCommand) -> Result<(), Failure> {
    match command {
        VolumeCommand::Create(args) => create(client, args),
        VolumeCommand::Show(args) => show(client, args),
        VolumeCommand::Delete(args) => delete(client, args),
    }
}

/// ONTAP's sizes: a number with an optional unit (KB, MB, GB, TB, powers of 1024).
fn bytes(size: &str) -> Result<u64, Failure> {
    let text = size.trim().to_uppercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(Failure::Usage(format!(
                "\"{size}\" is not a size: use 20MB, 1GB..."
            )));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| Failure::Usage(format!("\"{size}\" is not a size: use 20MB, 1GB...")))
}

fn waited(answer: &Value) -> Result<(), Failure> {
    match answer["job"]["state"].as_str() {
        Some("success") => Ok(()),
        _ => Err(Failure::api(
            format!(
                "the job did not end within two minutes: see GET /api/cluster/jobs/{}",
                answer["job"]["uuid"].as_str().unwrap_or_default()
            ),
            0,
        )),
    }
}

fn create(client: &Client, args: &CreateArgs) -> Result<(), Failure> {
    let mut body = json!({
        "name": args.volume,
        "svm": { "name": args.vserver },
        "encryption": { "enabled": args.encrypt },
    });
    if let Some(size) = &args.size {
        body["size"] = bytes(size)?.into();
    }
    waited(&client.post("/api/storage/volumes?return_timeout=120", &body)?)
}

fn delete(client: &Client, args: &DeleteArgs) -> Result<(), Failure> {
    let path = with_query(
        "/api/storage/volumes",
        &[
            ("name", &args.volume),
            ("svm.name", &args.vserver),
            ("fields", "uuid"),
        ],
    );
    let found = client.get(&path)?;
    let Some(uuid) = records(&found).first().and_then(|v| v["uuid"].as_str()) else {
        return Err(Failure::api(
            format!(
                "entry doesn't exist: volume \"{}\" in Vserver \"{}\"",
                args.volume, args.vserver
            ),
            4,
        ));
    };
    let path = format!("/api/storage/volumes/{}?return_timeout=120", encode(uuid));
    waited(&client.delete(&path)?)
}

fn show(client: &Client, args: &ShowArgs) -> Result<(), Failure> {
    let mut query = vec![("fields", "name,svm.name,size,encryption")];
    if let Some(vserver) = &args.vserver {
        query.push(("svm.name", vserver));
    }
    let volumes = client.get_all(&with_query("/api/storage/volumes", &query))?;
    let mut table = Table::new(&["Vserver", "Volume", "Size", "Encrypted", "Key ID"]);
    for volume in &volumes {
        table.push(vec![
            cell(&volume["svm"]["name"]),
            cell(&volume["name"]),
            cell(&volume["size"]),
            cell(&volume["encryption"]["enabled"]),
            cell(&volume["encryption"]["key_id"]),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_as_ontap_writes_them() {
        assert_eq!(bytes("20MB").ok(), Some(20 << 20));
        assert_eq!(bytes("1gb").ok(), Some(1 << 30));
        assert_eq!(bytes("4096").ok(), Some(4096));
        assert!(bytes("12XB").is_err());
        assert!(bytes("99999999999999TB").is_err());
    }
}
