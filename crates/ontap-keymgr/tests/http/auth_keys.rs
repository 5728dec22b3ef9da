//! Authentication keys end to end (`/api/security/key-managers/{uuid}/auth-keys`): the real
//! binary, the cluster's external key manager on test-support's KMIP object servers (which keep
//! ONTAP's attributes) and on PyKMIP (which refuses them), curl-like requests and NetApp's own
//! Python client.

use serde_json::{Value, json};
use test_support::kmip_server::{Faults, KmipObjectServer};
use test_support::pki::TestPki;

use crate::support::{Keymgr, create_key_manager, create_svm, good_kmip};

/// Two object servers on a runtime of their own (the tests are synchronous).
struct ObjectServers {
    servers: Vec<KmipObjectServer>,
    _runtime: tokio::runtime::Runtime,
}

impl ObjectServers {
    fn start(pki: &TestPki, count: usize) -> ObjectServers {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let servers = (0..count)
            .map(|_| runtime.block_on(KmipObjectServer::start_for(pki, Faults::default())))
            .collect();
        ObjectServers {
            servers,
            _runtime: runtime,
        }
    }

    fn addresses(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.address.to_string()).collect()
    }

    /// The `x-NETAPP-*` attributes of every key each server holds.
    fn attributes(&self) -> Vec<Vec<Vec<(String, String)>>> {
        self.servers
            .iter()
            .map(|s| s.attributes().into_values().collect())
            .collect()
    }
}

fn node_uuid(keymgr: &Keymgr) -> String {
    let nodes = keymgr.get("/api/cluster/nodes");
    nodes.body["records"][0]["uuid"]
        .as_str()
        .expect("a node")
        .to_string()
}

fn auth_keys_path(key_manager: &str) -> String {
    format!("/api/security/key-managers/{key_manager}/auth-keys")
}

fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> &'a str {
    attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[test]
fn an_authentication_key_is_stored_on_every_key_server_as_ontap_stores_it() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 2);
    let keymgr = Keymgr::start();
    let key_manager = create_key_manager(&keymgr, &pki, None, &kmip.addresses());
    let path = auth_keys_path(&key_manager);
    let passphrase = "AuthenticationKey_01";

    let created = keymgr.post(
        &path,
        &json!({ "key_tag": "ak-1", "passphrase": passphrase }),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.location.clone().expect("Location");
    let key_id = location.rsplit('/').next().expect("key id").to_string();
    assert_eq!(location, format!("{path}/{key_id}"));
    assert_eq!(key_id.len(), 80);
    assert!(
        key_id.starts_with("00000000000000000200000000000100"),
        "{key_id}"
    );

    // On both servers, once, with ONTAP's attributes.
    for held in kmip.attributes() {
        assert_eq!(held.len(), 1, "{held:?}");
        let attributes = &held[0];
        assert_eq!(attribute(attributes, "x-NETAPP-KeyId"), key_id);
        assert_eq!(attribute(attributes, "x-NETAPP-KeyType"), "nse_ak");
        assert_eq!(attribute(attributes, "x-NETAPP-Product"), "Data ONTAP");
        assert!(!attribute(attributes, "x-NETAPP-ClusterId").is_empty());
    }

    // Listed and read, never with the passphrase.
    let listed = keymgr.get(&format!("{path}?fields=*"));
    assert_eq!(listed.body["num_records"], 1, "{listed:?}");
    let record = &listed.body["records"][0];
    assert_eq!(record["key_id"], key_id.as_str());
    assert_eq!(record["key_tag"], "ak-1");
    assert_eq!(record["security_key_manager"]["uuid"], key_manager.as_str());
    let one = keymgr.get(&location);
    assert_eq!(one.body["key_tag"], "ak-1", "{one:?}");
    for text in [listed.body.to_string(), one.body.to_string()] {
        assert!(!text.contains(passphrase), "{text}");
    }

    // The key-ids of the node show it, kept by the first server.
    let node = node_uuid(&keymgr);
    let key_ids = format!("/api/security/key-managers/{key_manager}/keys/{node}/key-ids");
    let held = keymgr.get(&format!("{key_ids}?fields=*"));
    assert_eq!(held.body["num_records"], 1, "{held:?}");
    let record = &held.body["records"][0];
    assert_eq!(record["key_id"], key_id.as_str());
    assert_eq!(record["key_type"], "nse_ak");
    assert_eq!(record["key_tag"], "ak-1");
    assert_eq!(record["key_store"], "external");
    assert_eq!(record["key_server"], kmip.addresses()[0].as_str());
    assert_eq!(record["restored"], true);
    assert_eq!(record["node"]["uuid"], node.as_str());
    let one = keymgr.get(&format!("{key_ids}/{key_id}?fields=key_type"));
    assert_eq!(one.body["key_type"], "nse_ak", "{one:?}");
    keymgr
        .get(&format!(
            "/api/security/key-managers/{key_manager}/keys/nowhere/key-ids"
        ))
        .assert_error(404, "4");
    keymgr
        .get(&format!("{key_ids}/{}", "0".repeat(80)))
        .assert_error(404, "4");

    // Without a passphrase one is made; the tag defaults to the node's name.
    let generated = keymgr.post(&format!("{path}?return_records=true"), &json!({}));
    assert_eq!(generated.status, 201, "{generated:?}");
    assert_eq!(generated.body["records"][0]["key_tag"], "node-01");
    assert!(generated.body["records"][0].get("passphrase").is_none());

    // ONTAP's checks; nothing is stored when they refuse.
    let refusals = [
        (json!({ "passphrase": "short" }), "passphrase"),
        (json!({ "key_tag": "t".repeat(33) }), "key_tag"),
    ];
    for (body, target) in refusals {
        let refused = keymgr.post(&path, &body);
        refused.assert_error(400, "262197");
        assert_eq!(refused.target(), target);
    }
    assert!(kmip.attributes().iter().all(|held| held.len() == 2));

    // The key manager keeps its keys until they are deleted.
    keymgr
        .delete(&format!("/api/security/key-managers/{key_manager}"))
        .assert_error(409, "8");

    // Deleting destroys it on every server.
    assert_eq!(keymgr.delete(&location).status, 200);
    keymgr.get(&location).assert_error(404, "4");
    keymgr.delete(&location).assert_error(404, "4");
    for held in kmip.attributes() {
        assert!(
            held.iter()
                .all(|a| attribute(a, "x-NETAPP-KeyId") != key_id)
        );
        assert_eq!(held.len(), 1);
    }
}

/// PyKMIP refuses ONTAP's attributes: the key is refused with ONTAP's code and PyKMIP's own
/// reason, and the copy already stored on the first server is destroyed again.
#[test]
fn a_server_that_refuses_ontaps_attributes_fails_the_key_on_every_server() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 1);
    let pykmip = good_kmip(&pki);
    let keymgr = Keymgr::start();
    let servers = [kmip.addresses()[0].clone(), pykmip.address()];
    let key_manager = create_key_manager(&keymgr, &pki, None, &servers);
    let refused = keymgr.post(&auth_keys_path(&key_manager), &json!({}));
    refused.assert_error(400, "65536921");
    assert!(
        refused
            .message()
            .contains("The x-NETAPP-KeyId attribute is unsupported."),
        "{refused:?}"
    );
    assert!(refused.message().contains(&pykmip.address()), "{refused:?}");
    assert_eq!(kmip.attributes(), [Vec::<Vec<(String, String)>>::new()]);
    let listed = keymgr.get(&auth_keys_path(&key_manager));
    assert_eq!(listed.body["num_records"], 0, "{listed:?}");
}

#[test]
fn only_the_clusters_external_key_manager_keeps_authentication_keys() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 1);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let svm_key_manager = create_key_manager(&keymgr, &pki, Some("svm1"), &kmip.addresses());
    let path = auth_keys_path(&svm_key_manager);
    keymgr.post(&path, &json!({})).assert_error(400, "65538802");
    keymgr.get(&path).assert_error(400, "65538802");
    keymgr
        .get(&auth_keys_path("11111111-2222-3333-4444-555555555555"))
        .assert_error(404, "4");
    assert!(kmip.attributes()[0].is_empty());
}

/// netapp-ontap's `KeyManagerAuthKey`, unmodified: create, list, read, a refusal, delete.
#[test]
fn netapp_ontap_manages_authentication_keys() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 1);
    let keymgr = Keymgr::start();
    let key_manager = create_key_manager(&keymgr, &pki, None, &kmip.addresses());
    let node = node_uuid(&keymgr);
    let stdout = crate::support::run_python_client(
        &keymgr,
        "auth_keys_client.py",
        &[("KEY_MANAGER", &key_manager), ("NODE", &node)],
    );
    let key_id = stdout.lines().last().unwrap_or_default();
    assert_eq!(key_id.len(), 80, "{stdout}");
    // Created on the server, then destroyed by the client's delete.
    assert!(kmip.attributes()[0].is_empty());
    let audit: Value = keymgr.get("/api/security/audit/messages?fields=*").body;
    let trail = audit.to_string();
    assert!(trail.contains("auth-keys"), "{trail}");
    assert!(!trail.contains("AuthenticationKey_01"), "{trail}");
}

/// Polls a job until it ends (bounded): its record.
fn ended_job(keymgr: &Keymgr, href: &str) -> Value {
    let mut job = Value::Null;
    crate::support::wait_until("the job ends", std::time::Duration::from_secs(30), || {
        job = keymgr.get(href).body;
        matches!(job["state"].as_str(), Some("success" | "failure"))
    });
    job
}

fn cluster_uuid(keymgr: &Keymgr) -> String {
    keymgr.get("/api/cluster").body["uuid"]
        .as_str()
        .expect("uuid")
        .to_string()
}

/// A key of this cluster that another node stored (the server has it, this node does not) is
/// read back by a restore job, confirmed, and recorded; another cluster's key is left alone.
#[test]
fn a_restore_job_reads_back_the_keys_the_node_lacks() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 1);
    let keymgr = Keymgr::start();
    let key_manager = create_key_manager(&keymgr, &pki, None, &kmip.addresses());
    let made = keymgr.post(&auth_keys_path(&key_manager), &json!({ "key_tag": "here" }));
    assert_eq!(made.status, 201, "{made:?}");
    let cluster = cluster_uuid(&keymgr);
    let lacking = format!(
        "{}{}",
        "0".repeat(16),
        "02000000000001001234567890abcdef1234567890abcdef0000000000000000"
    );
    let ours = [
        ("x-NETAPP-KeyId", lacking.as_str()),
        ("x-NETAPP-ClusterId", cluster.as_str()),
        ("x-NETAPP-VserverId", cluster.as_str()),
        ("x-NETAPP-KeyType", "nse_ak"),
    ];
    kmip.servers[0].insert(&[3; 32], &ours);
    let theirs = [
        ("x-NETAPP-KeyId", "another-clusters-key"),
        ("x-NETAPP-ClusterId", "another-cluster"),
        ("x-NETAPP-VserverId", "another-cluster"),
        ("x-NETAPP-KeyType", "nse_ak"),
    ];
    kmip.servers[0].insert(&[4; 32], &theirs);

    let path = format!("/api/security/key-managers/{key_manager}/restore");
    let accepted = keymgr.post(&path, &json!({}));
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let href = accepted.body["job"]["_links"]["self"]["href"]
        .as_str()
        .expect("job link")
        .to_string();
    let job = ended_job(&keymgr, &href);
    assert_eq!(job["state"], "success", "{job}");
    assert_eq!(job["code"], 0);
    assert_eq!(job["message"], "Restored 2 key(s) from 1 key server(s).");
    assert!(job["end_time"].is_string() && job["start_time"].is_string());

    let listed = keymgr.get(&format!("{}?fields=key_id", auth_keys_path(&key_manager)));
    let ids: Vec<&str> = listed.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["key_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{listed:?}");
    assert!(ids.contains(&lacking.as_str()));

    // Waiting for it: the outcome in the answer.
    let waited = keymgr.post(
        &format!("{path}?return_timeout=30"),
        &json!({ "key_id": lacking }),
    );
    assert_eq!(waited.status, 200, "{waited:?}");
    assert_eq!(waited.body["job"]["state"], "success");
    assert_eq!(
        waited.body["job"]["message"],
        "Restored 1 key(s) from 1 key server(s)."
    );

    // The jobs are listed, and the request's checks come before any job.
    let jobs = keymgr.get("/api/cluster/jobs?fields=state");
    assert_eq!(jobs.body["num_records"], 2, "{jobs:?}");
    keymgr
        .post(&path, &json!({ "key_server": "elsewhere:5696" }))
        .assert_error(404, "65536843");
    keymgr
        .post(&format!("{path}?return_timeout=121"), &json!({}))
        .assert_error(400, "262197");
    keymgr
        .get("/api/cluster/jobs/nothing")
        .assert_error(404, "4");
}

/// A key server that went away fails the restore job with ONTAP's code and the server's name,
/// whether the request waits for the job or polls it.
#[test]
fn a_restore_fails_naming_the_key_server_it_could_not_read() {
    let pki = TestPki::new();
    let mut kmip = ObjectServers::start(&pki, 2);
    let keymgr = Keymgr::start();
    let key_manager = create_key_manager(&keymgr, &pki, None, &kmip.addresses());
    let gone = kmip.addresses()[1].clone();
    drop(kmip.servers.pop());
    let path = format!("/api/security/key-managers/{key_manager}/restore");
    let waited = keymgr.post(&format!("{path}?return_timeout=60"), &json!({}));
    waited.assert_error(400, "65536852");
    assert!(waited.message().contains(&gone), "{waited:?}");
    let accepted = keymgr.post(&path, &json!({}));
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let href = accepted.body["job"]["_links"]["self"]["href"]
        .as_str()
        .expect("job link")
        .to_string();
    let job = ended_job(&keymgr, &href);
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 65536852);
    assert_eq!(job["error"]["code"], "65536852", "{job}");
    assert_eq!(job["error"]["message"], job["message"]);
    assert!(
        job["message"].as_str().unwrap_or("").contains(&gone),
        "{job}"
    );
}

/// A key server that holds the only copy of a key still in use stays (65536700); one whose keys
/// another configured server also holds can go.
#[test]
fn a_key_server_with_the_only_copy_of_a_key_stays() {
    let pki = TestPki::new();
    let kmip = ObjectServers::start(&pki, 3);
    let [a, b, c] = [0, 1, 2].map(|i| kmip.addresses()[i].clone());
    let keymgr = Keymgr::start();
    let key_manager = create_key_manager(&keymgr, &pki, None, &[a.clone(), b.clone()]);
    let key = keymgr.post(&auth_keys_path(&key_manager), &json!({}));
    assert_eq!(key.status, 201, "{key:?}");
    let servers = format!("/api/security/key-managers/{key_manager}/key-servers");
    // b also holds the key: a can go; then b holds its only copy.
    assert_eq!(keymgr.delete(&format!("{servers}/{a}")).status, 200);
    let refused = keymgr.delete(&format!("{servers}/{b}"));
    refused.assert_error(400, "65536700");
    assert!(refused.message().contains(&b), "{refused:?}");
    // A server added later has no copy: b still holds the only one.
    assert_eq!(keymgr.post(&servers, &json!({ "server": c })).status, 201);
    keymgr
        .delete(&format!("{servers}/{b}"))
        .assert_error(400, "65536700");
    // Once the key is gone, so can b be.
    let location = key.location.clone().expect("Location");
    assert_eq!(keymgr.delete(&location).status, 200);
    assert_eq!(keymgr.delete(&format!("{servers}/{b}")).status, 200);
}
