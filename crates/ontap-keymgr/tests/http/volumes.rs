//! Encrypted volumes end to end (`/api/storage/volumes`): the real binary, key managers on
//! test-support's KMIP object servers and on PyKMIP, jobs polled by curl-like requests and by
//! NetApp's own Python client.

use serde_json::{Value, json};
use test_support::kmip_server::{Faults, KmipObjectServer};
use test_support::pki::TestPki;

use crate::support::{Keymgr, create_key_manager, create_svm, good_kmip};

struct ObjectServer {
    server: KmipObjectServer,
    _runtime: tokio::runtime::Runtime,
}

impl ObjectServer {
    fn start(pki: &TestPki) -> ObjectServer {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let server = runtime.block_on(KmipObjectServer::start_for(pki, Faults::default()));
        ObjectServer {
            server,
            _runtime: runtime,
        }
    }

    fn address(&self) -> String {
        self.server.address.to_string()
    }

    /// The value of `name` of each key it holds.
    fn values(&self, name: &str) -> Vec<String> {
        self.server
            .attributes()
            .into_values()
            .map(|attributes| {
                attributes
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Polls a job until it ends (bounded): its record.
fn ended_job(keymgr: &Keymgr, answer: &Value) -> Value {
    let href = answer["job"]["_links"]["self"]["href"]
        .as_str()
        .expect("a job link")
        .to_string();
    let mut job = Value::Null;
    crate::support::wait_until("the job ends", std::time::Duration::from_secs(30), || {
        job = keymgr.get(&href).body;
        matches!(job["state"].as_str(), Some("success" | "failure"))
    });
    job
}

fn svm_uuid(keymgr: &Keymgr, name: &str) -> String {
    let svms = keymgr.get(&format!("/api/svm/svms?name={name}"));
    svms.body["records"][0]["uuid"]
        .as_str()
        .expect("svm")
        .to_string()
}

#[test]
fn an_encrypted_volume_keeps_its_key_on_its_svms_key_servers() {
    let pki = TestPki::new();
    let kmip = ObjectServer::start(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let key_manager = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let body = json!({
        "name": "vol1",
        "svm": { "name": "svm1" },
        "size": 100 << 20,
        "encryption": { "enabled": true },
    });
    let accepted = keymgr.post("/api/storage/volumes", &body);
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let location = accepted.location.clone().expect("Location");
    let job = ended_job(&keymgr, &accepted.body);
    assert_eq!(job["state"], "success", "{job}");

    let volume = keymgr.get(&format!("{location}?fields=*"));
    assert_eq!(volume.status, 200, "{volume:?}");
    assert_eq!(volume.body["encryption"]["enabled"], true);
    assert_eq!(volume.body["encryption"]["state"], "encrypted");
    let key_id = volume.body["encryption"]["key_id"]
        .as_str()
        .expect("key id")
        .to_string();
    assert!(
        key_id.starts_with("00000000000000000200000000000500"),
        "{key_id}"
    );
    assert_eq!(kmip.values("x-NETAPP-KeyId"), std::slice::from_ref(&key_id));
    assert_eq!(kmip.values("x-NETAPP-KeyType"), ["vek"]);
    assert_eq!(
        kmip.values("x-NETAPP-VserverId"),
        [svm_uuid(&keymgr, "svm1")]
    );

    // The key manager's key-ids show it, the SVM's key.
    let node = keymgr.get("/api/cluster/nodes").body["records"][0]["uuid"]
        .as_str()
        .expect("node")
        .to_string();
    let held = keymgr.get(&format!(
        "/api/security/key-managers/{key_manager}/keys/{node}/key-ids?fields=*"
    ));
    let record = &held.body["records"][0];
    assert_eq!(record["key_id"], key_id.as_str(), "{held:?}");
    assert_eq!(record["key_type"], "vek");
    assert_eq!(record["key_user"], "svm1");
    assert_eq!(record["key_tag"], volume.body["uuid"]);

    // What the volume needs stays while it does.
    keymgr
        .delete(&format!("/api/svm/svms/{}", svm_uuid(&keymgr, "svm1")))
        .assert_error(409, "8");
    keymgr
        .delete(&format!("/api/security/key-managers/{key_manager}"))
        .assert_error(409, "8");
    keymgr
        .post("/api/storage/volumes", &body)
        .assert_error(409, "1");

    // Deleting it destroys its key, waiting for the job this time.
    let deleted = keymgr.delete(&format!("{location}?return_timeout=30"));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(deleted.body["job"]["state"], "success");
    assert!(kmip.values("x-NETAPP-KeyId").is_empty());
    keymgr.get(&location).assert_error(404, "4");
}

#[test]
fn volumes_are_checked_before_their_job_and_fall_back_to_the_clusters_key_manager() {
    let pki = TestPki::new();
    let kmip = ObjectServer::start(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm2");
    let volume = |name: &str, encrypted: bool| json!({ "name": name, "svm": { "name": "svm2" }, "encryption": { "enabled": encrypted } });
    // No key manager anywhere: an encrypted volume is refused at once; a plain one is made.
    keymgr
        .post("/api/storage/volumes", &volume("vol_a", true))
        .assert_error(400, "65536828");
    let plain = keymgr.post(
        "/api/storage/volumes?return_timeout=30",
        &volume("vol_b", false),
    );
    assert_eq!(plain.status, 201, "{plain:?}");
    assert_eq!(plain.body["job"]["state"], "success");
    let refusals = [
        (
            json!({ "name": "1vol", "svm": { "name": "svm2" } }),
            "262197",
        ),
        (
            json!({ "name": "vol_c", "svm": { "name": "svm2" }, "size": 1024 }),
            "262197",
        ),
        (
            json!({ "name": "vol_c", "svm": { "name": "nowhere" } }),
            "2621462",
        ),
        (json!({ "name": "vol_c" }), "262212"),
    ];
    for (body, code) in refusals {
        let refused = keymgr.post("/api/storage/volumes", &body);
        assert_eq!(refused.code(), code, "{body}: {refused:?}");
    }
    // The cluster's key manager keeps the key of an SVM that has none.
    create_key_manager(&keymgr, &pki, None, &[kmip.address()]);
    let encrypted = keymgr.post(
        "/api/storage/volumes?return_timeout=30",
        &volume("vol_a", true),
    );
    assert_eq!(encrypted.status, 201, "{encrypted:?}");
    assert_eq!(
        kmip.values("x-NETAPP-VserverId"),
        [svm_uuid(&keymgr, "svm2")]
    );
    let listed = keymgr.get("/api/storage/volumes?fields=encryption.enabled&order_by=name");
    let enabled: Vec<&Value> = listed.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["encryption"]["enabled"])
        .collect();
    assert_eq!(enabled, [&json!(true), &json!(false)], "{listed:?}");
}

/// PyKMIP refuses ONTAP's attributes: the volume's job fails with 65536921 and PyKMIP's words,
/// and no volume is made.
#[test]
fn a_key_server_that_refuses_ontaps_keys_fails_the_volume() {
    let pki = TestPki::new();
    let pykmip = good_kmip(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm3");
    create_key_manager(&keymgr, &pki, Some("svm3"), &[pykmip.address()]);
    let body =
        json!({ "name": "vol1", "svm": { "name": "svm3" }, "encryption": { "enabled": true } });
    let accepted = keymgr.post("/api/storage/volumes", &body);
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let job = ended_job(&keymgr, &accepted.body);
    assert_eq!(job["state"], "failure", "{job}");
    assert_eq!(job["code"], 65536921);
    assert!(
        job["message"]
            .as_str()
            .unwrap_or("")
            .contains("The x-NETAPP-KeyId attribute is unsupported."),
        "{job}"
    );
    let listed = keymgr.get("/api/storage/volumes");
    assert_eq!(listed.body["num_records"], 0, "{listed:?}");
}

/// netapp-ontap's `Volume`, unmodified: an encrypted volume created and deleted through jobs.
#[test]
fn netapp_ontap_creates_and_deletes_an_encrypted_volume() {
    let pki = TestPki::new();
    let kmip = ObjectServer::start(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let stdout =
        crate::support::run_python_client(&keymgr, "volumes_client.py", &[("SVM", "svm1")]);
    assert_eq!(
        stdout.lines().last().unwrap_or_default().len(),
        80,
        "{stdout}"
    );
    assert!(
        kmip.values("x-NETAPP-KeyId").is_empty(),
        "the key is destroyed"
    );
}

/// An SVM's volume keys migrate to the cluster's key manager and back: stored on the
/// destination's servers first, the volume updated, the source's copies destroyed; the same key
/// id and material all along.
#[test]
fn an_svms_keys_migrate_to_the_clusters_key_manager_and_back() {
    let pki = TestPki::new();
    let svm_kmip = ObjectServer::start(&pki);
    let cluster_kmip = ObjectServer::start(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let svm_km = create_key_manager(&keymgr, &pki, Some("svm1"), &[svm_kmip.address()]);
    let cluster_km = create_key_manager(&keymgr, &pki, None, &[cluster_kmip.address()]);
    for name in ["vol_a", "vol_b"] {
        let body =
            json!({ "name": name, "svm": { "name": "svm1" }, "encryption": { "enabled": true } });
        let made = keymgr.post("/api/storage/volumes?return_timeout=30", &body);
        assert_eq!(made.status, 201, "{made:?}");
    }
    let mut key_ids = svm_kmip.values("x-NETAPP-KeyId");
    key_ids.sort();
    assert_eq!(key_ids.len(), 2);
    let key_manager_of = |name: &str| {
        let listed = keymgr.get(&format!(
            "/api/storage/volumes?name={name}&fields=encryption"
        ));
        listed.body["records"][0]["encryption"]["key_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let migrate = |from: &str, to: &str| {
        keymgr.post(
            &format!("/api/security/key-managers/{from}/migrate?return_timeout=30"),
            &json!({ "uuid": to }),
        )
    };

    let moved = migrate(&svm_km, &cluster_km);
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        moved.body["job"]["message"],
        format!("Migrated 2 key(s) of SVM svm1 to key manager {cluster_km}.")
    );
    assert!(svm_kmip.values("x-NETAPP-KeyId").is_empty());
    let mut on_cluster = cluster_kmip.values("x-NETAPP-KeyId");
    on_cluster.sort();
    assert_eq!(on_cluster, key_ids, "the same keys, by id");
    assert!(key_ids.contains(&key_manager_of("vol_a")));
    // The SVM's key manager holds nothing now; the cluster's does.
    keymgr
        .delete(&format!("/api/security/key-managers/{cluster_km}"))
        .assert_error(409, "8");

    let back = migrate(&cluster_km, &svm_km);
    assert_eq!(back.status, 200, "{back:?}");
    assert!(cluster_kmip.values("x-NETAPP-KeyId").is_empty());
    let mut on_svm = svm_kmip.values("x-NETAPP-KeyId");
    on_svm.sort();
    assert_eq!(on_svm, key_ids);

    // The refusals come before any job.
    migrate(&svm_km, &svm_km).assert_error(400, "262197");
    migrate(&svm_km, "11111111-2222-3333-4444-555555555555").assert_error(400, "262197");
    keymgr
        .post(
            &format!("/api/security/key-managers/{svm_km}/migrate"),
            &json!({}),
        )
        .assert_error(400, "262212");
}
