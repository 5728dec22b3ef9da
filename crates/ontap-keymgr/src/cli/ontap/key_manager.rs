//! `security key-manager external ...`: external key managers and their key servers, as ONTAP's
//! CLI manages them, over the service's REST API.

use serde_json::{Map, Value, json};

use super::client::{Client, encode, with_query};
use super::failure::Failure;
use super::scope::{
    Scope, cluster_name, external_key_manager, key_server_path, key_servers_path, vserver_of,
};
use super::secret;
use super::table::{EMPTY, Table, cell};

#[derive(Debug, clap::Subcommand)]
pub enum KeyManagerCommand {
    /// External KMIP key managers and their key servers.
    External {
        #[command(subcommand)]
        command: ExternalCommand,
    },
    /// The keys the key managers hold.
    Key {
        #[command(subcommand)]
        command: super::keys::KeyCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ExternalCommand {
    /// Add primary key servers to a Vserver's external key manager (at most 4 in all). Each is
    /// checked over KMIP with the key manager's certificates before anything is added.
    AddServers(ServersArgs),
    /// Change a key server's timeout, KMIP credentials or secondary key servers.
    ModifyServer(ModifyServerArgs),
    /// Remove primary key servers from a Vserver's external key manager.
    RemoveServers(ServersArgs),
    /// Show the key servers of external key managers.
    Show(VserverArgs),
    /// Show whether each node reaches each key server (a live KMIP round trip).
    ShowStatus(ShowStatusArgs),
    /// Enable external key management for a Vserver: its client certificate, the CAs its key
    /// servers' certificates are signed by, and its first key servers.
    Enable(EnableArgs),
    /// Remove a Vserver's external key manager.
    Disable(VserverArgs),
    /// Read back from the key servers the keys this node lacks (a job; waits for it).
    Restore(super::keys::RestoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct VserverArgs {
    /// The Vserver (SVM); omitted or the cluster's name: the cluster (admin Vserver).
    #[arg(long)]
    vserver: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ShowStatusArgs {
    #[command(flatten)]
    target: VserverArgs,
    /// One entry per node and key server with every field, the negotiated TLS version and
    /// cipher suite included.
    #[arg(long)]
    instance: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServersArgs {
    #[command(flatten)]
    target: VserverArgs,
    /// Key servers: HOST, HOST:PORT, IPv4[:PORT] or [IPv6][:PORT], comma-separated; the port
    /// defaults to 5696.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "SERVER,..."
    )]
    key_servers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ModifyServerArgs {
    #[command(flatten)]
    target: VserverArgs,
    /// The key server to change, as configured (the port defaults to 5696).
    #[arg(long, value_name = "SERVER")]
    key_server: String,
    /// Seconds to wait for the key server: -1 waits indefinitely, 0 does not wait, at most 60.
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    timeout: Option<i64>,
    /// KMIP username. Its password is read from KEYMGR_KMIP_PASSWORD or asked for without echo;
    /// it is never taken from the command line. The pair is checked against the key server.
    #[arg(long)]
    username: Option<String>,
    /// Secondary key servers (host names or addresses, at most 3), comma-separated; they use
    /// the primary's port. Replaces the list; "-" or "" empties it.
    #[arg(long, value_delimiter = ',', value_name = "HOST,...")]
    secondary_key_servers: Option<Vec<String>>,
}

#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    #[command(flatten)]
    target: VserverArgs,
    /// The installed client certificate the key manager presents to its key servers.
    #[arg(long, value_name = "NAME")]
    client_cert: String,
    /// Installed server CA certificates that the key servers' certificates must chain to,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', required = true, value_name = "NAME,...")]
    server_ca_certs: Vec<String>,
    /// The first key servers, comma-separated (at most 4).
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "SERVER,..."
    )]
    key_servers: Vec<String>,
}

pub fn run(client: &Client, command: &KeyManagerCommand) -> Result<(), Failure> {
    let command = match command {
        KeyManagerCommand::External { command } => command,
        KeyManagerCommand::Key { command } => return super::keys::run(client, command),
    };
    match command {
        ExternalCommand::AddServers(args) => add_servers(client, args),
        ExternalCommand::ModifyServer(args) => modify_server(client, args),
        ExternalCommand::RemoveServers(args) => remove_servers(client, args),
        ExternalCommand::Show(args) => show(client, args),
        ExternalCommand::ShowStatus(args) => show_status(client, args),
        ExternalCommand::Enable(args) => enable(client, args),
        ExternalCommand::Disable(args) => disable(client, args),
        ExternalCommand::Restore(args) => super::keys::restore(client, args),
    }
}

fn scope(client: &Client, vserver: Option<&str>) -> Result<Scope, Failure> {
    Ok(Scope::of(vserver, &cluster_name(client)?))
}

/// The items of a comma-separated list, without blanks; "-" alone is ONTAP's empty list.
fn list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|item| item.trim())
        .filter(|item| !item.is_empty() && *item != EMPTY)
        .map(str::to_string)
        .collect()
}

/// A list that must not be empty, for the options that name what to act on.
fn required_list(items: &[String], option: &str) -> Result<Vec<String>, Failure> {
    let items = list(items);
    match items.is_empty() {
        true => Err(Failure::Usage(format!(
            "-{option} needs at least one value"
        ))),
        false => Ok(items),
    }
}

/// All new servers in one request, so that the service adds all or none of them.
fn add_servers(client: &Client, args: &ServersArgs) -> Result<(), Failure> {
    let servers = required_list(&args.key_servers, "key-servers")?;
    let scope = scope(client, args.target.vserver.as_deref())?;
    let key_manager = external_key_manager(client, &scope)?;
    let records: Vec<Value> = servers.iter().map(|s| json!({ "server": s })).collect();
    client.post(
        &key_servers_path(&key_manager),
        &json!({ "records": records }),
    )?;
    Ok(())
}

fn modify_server(client: &Client, args: &ModifyServerArgs) -> Result<(), Failure> {
    let scope = scope(client, args.target.vserver.as_deref())?;
    // Find the key manager before asking for a password that would then be thrown away.
    let key_manager = external_key_manager(client, &scope)?;
    let changes = server_changes(args)?;
    client.patch(
        &key_server_path(&key_manager, args.key_server.trim()),
        &Value::Object(changes),
    )?;
    Ok(())
}

/// The PATCH body. Nothing to change is sent as it is: the service answers with ONTAP's error,
/// which names the options that can be changed.
fn server_changes(args: &ModifyServerArgs) -> Result<Map<String, Value>, Failure> {
    let mut changes = Map::new();
    if let Some(timeout) = args.timeout {
        changes.insert("timeout".into(), timeout.into());
    }
    if let Some(username) = &args.username {
        let password =
            secret::from_env_or_prompt(crate::cli::KMIP_PASSWORD, "Enter the password: ", true)?;
        changes.insert("username".into(), username.clone().into());
        changes.insert("password".into(), password.into());
    }
    if let Some(secondaries) = &args.secondary_key_servers {
        changes.insert("secondary_key_servers".into(), list(secondaries).into());
    }
    Ok(changes)
}

/// Every named server is looked up before the first is removed, so that a typo removes nothing.
fn remove_servers(client: &Client, args: &ServersArgs) -> Result<(), Failure> {
    let servers = required_list(&args.key_servers, "key-servers")?;
    let scope = scope(client, args.target.vserver.as_deref())?;
    let key_manager = external_key_manager(client, &scope)?;
    let paths: Vec<String> = servers
        .iter()
        .map(|server| key_server_path(&key_manager, server))
        .collect();
    for path in &paths {
        client.get(&with_query(path, &[("fields", "server")]))?;
    }
    for path in &paths {
        client.delete(path)?;
    }
    Ok(())
}

fn enable(client: &Client, args: &EnableArgs) -> Result<(), Failure> {
    let cas = required_list(&args.server_ca_certs, "server-ca-certs")?;
    let servers = required_list(&args.key_servers, "key-servers")?;
    let scope = scope(client, args.target.vserver.as_deref())?;
    let mut body = json!({
        "external": {
            "client_certificate": { "name": args.client_cert },
            "server_ca_certificates": cas.iter().map(|n| json!({ "name": n })).collect::<Vec<_>>(),
            "servers": servers.iter().map(|s| json!({ "server": s })).collect::<Vec<_>>(),
        }
    });
    if let Some(svm) = scope.svm() {
        body["svm"] = svm;
    }
    client.post("/api/security/key-managers", &body)?;
    Ok(())
}

fn disable(client: &Client, args: &VserverArgs) -> Result<(), Failure> {
    let scope = scope(client, args.vserver.as_deref())?;
    let key_manager = external_key_manager(client, &scope)?;
    client.delete(&format!(
        "/api/security/key-managers/{}",
        encode(&key_manager)
    ))?;
    Ok(())
}

/// The external key managers of `-vserver` (all when omitted), with `fields`.
fn key_managers(
    client: &Client,
    vserver: Option<&str>,
    cluster: &str,
    fields: &str,
) -> Result<Vec<Value>, Failure> {
    let mut query = vec![("fields", fields)];
    let scope = vserver.map(|v| Scope::of(Some(v), cluster));
    if let Some(scope) = &scope {
        query.push(scope.filter());
    }
    let all = client.get_all(&with_query("/api/security/key-managers", &query))?;
    Ok(all
        .into_iter()
        .filter(|km| km["onboard"]["enabled"].as_bool() != Some(true))
        .collect())
}

fn show(client: &Client, args: &VserverArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let fields = "scope,svm.name,external.servers";
    let managers = key_managers(client, args.vserver.as_deref(), &cluster, fields)?;
    let mut table = Table::new(&[
        "Vserver",
        "Key Server",
        "Timeout",
        "Username",
        "Secondary Key Servers",
    ]);
    for manager in &managers {
        let vserver = vserver_of(manager, &cluster);
        for server in manager["external"]["servers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            table.push(server_row(&vserver, server));
        }
    }
    print!("{}", table.render());
    Ok(())
}

fn server_row(vserver: &str, server: &Value) -> Vec<String> {
    vec![
        vserver.to_string(),
        cell(&server["server"]),
        cell(&server["timeout"]),
        cell(&server["username"]),
        secondaries(&server["secondary_key_servers"]),
    ]
}

/// Secondary key servers come as a list from `/key-servers` and as a comma-delimited string
/// embedded in a key manager; ONTAP's CLI shows them comma-separated.
fn secondaries(value: &Value) -> String {
    let items: Vec<String> = match value {
        Value::Array(items) => items.iter().map(cell).collect(),
        Value::String(joined) => joined.split(',').map(|s| s.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
    match items.is_empty() {
        true => EMPTY.to_string(),
        false => items.join(","),
    }
}

/// The columns of `show-status`; `-instance` adds the TLS facts.
const STATUS_COLUMNS: [&str; 4] = ["Node", "Vserver", "Key Server", "Status"];
const STATUS_INSTANCE_FIELDS: [&str; 6] = [
    "Node",
    "Vserver",
    "Key Server",
    "Status",
    "TLS Protocol Version",
    "Cipher Suite",
];

fn show_status(client: &Client, args: &ShowStatusArgs) -> Result<(), Failure> {
    let cluster = cluster_name(client)?;
    let managers = key_managers(
        client,
        args.target.vserver.as_deref(),
        &cluster,
        "scope,svm.name",
    )?;
    let mut table = match args.instance {
        true => Table::new(&STATUS_INSTANCE_FIELDS),
        false => Table::new(&STATUS_COLUMNS),
    };
    for manager in &managers {
        let Some(uuid) = manager["uuid"].as_str() else {
            continue;
        };
        let vserver = vserver_of(manager, &cluster);
        let path = with_query(&key_servers_path(uuid), &[("fields", "connectivity")]);
        for server in client.get_all(&path)? {
            status_rows(&mut table, &vserver, &server);
        }
    }
    // ONTAP lists the status node by node.
    table.sort_by_columns(&[0]);
    match args.instance {
        true => print!("{}", table.render_instances()),
        false => print!("{}", table.render()),
    }
    Ok(())
}

/// One row per node that reported on the server; a server nobody reported on is unknown.
fn status_rows(table: &mut Table, vserver: &str, server: &Value) {
    let name = cell(&server["server"]);
    let states = server["connectivity"]["node_states"].as_array();
    let states = states.map(Vec::as_slice).unwrap_or(&[]);
    if states.is_empty() {
        table.push(vec![EMPTY.into(), vserver.into(), name, "unknown".into()]);
        return;
    }
    for state in states {
        // Dropped by a table of four columns.
        table.push(vec![
            cell(&state["node"]["name"]),
            vserver.to_string(),
            name.clone(),
            status(&state["state"]),
            cell(&server["connectivity"]["tls_version"]),
            cell(&server["connectivity"]["cipher_suite"]),
        ]);
    }
}

/// The REST API says `not_responding`, ONTAP's CLI `not-responding`.
fn status(state: &Value) -> String {
    state.as_str().unwrap_or("unknown").replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_drop_blanks_and_the_empty_marker() {
        let given = vec![" a ".to_string(), String::new(), "-".into(), "b".into()];
        assert_eq!(list(&given), ["a", "b"]);
        assert!(required_list(&["-".into()], "key-servers").is_err());
    }

    #[test]
    fn secondaries_show_comma_separated_either_way() {
        assert_eq!(secondaries(&json!("ks2, 10.0.0.2")), "ks2,10.0.0.2");
        assert_eq!(secondaries(&json!(["ks2", "10.0.0.2"])), "ks2,10.0.0.2");
        assert_eq!(secondaries(&Value::Null), "-");
    }

    #[test]
    fn states_are_spelled_as_in_ontaps_cli() {
        assert_eq!(status(&json!("not_responding")), "not-responding");
        assert_eq!(status(&json!("available")), "available");
        assert_eq!(status(&Value::Null), "unknown");
    }

    #[test]
    fn a_server_nobody_reported_on_is_unknown() {
        let mut table = Table::new(&["Node", "Vserver", "Key Server", "Status"]);
        status_rows(&mut table, "vs1", &json!({ "server": "ks1:5696" }));
        assert!(table.render().contains("-    vs1     ks1:5696   unknown"));
    }
}
