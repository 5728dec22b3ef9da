//! ONTAP's command line, end to end: the real binary's `security ...` and `svm ...` commands
//! against the real service, with real PyKMIP key servers on 127.0.0.1.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use support::{
    ADMIN_PASSWORD, Keymgr, create_key_manager, create_svm, good_kmip, key_servers_path,
};
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig};

const CERTIFICATE_HEADERS: [&str; 6] = [
    "Vserver",
    "Certificate Name",
    "Type",
    "Common Name",
    "Serial Number",
    "Expiration",
];

const SHOW_HEADERS: [&str; 5] = [
    "Vserver",
    "Key Server",
    "Timeout",
    "Username",
    "Secondary Key Servers",
];

/// What a command did.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    #[track_caller]
    fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "{self:?}");
        assert!(self.stderr.is_empty(), "{self:?}");
        self
    }

    /// Asserts a failure with this exit code whose `Error:` line carries this ONTAP code.
    #[track_caller]
    fn assert_api_error(&self, code: &str) -> &Self {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(self.stderr.starts_with("Error: "), "{self:?}");
        assert!(
            self.stderr.trim_end().ends_with(&format!("(code {code})")),
            "{self:?}"
        );
        assert!(self.stdout.is_empty(), "{self:?}");
        self
    }
}

/// Runs `ontap-keymgr` against `keymgr`, connected through the environment as a user would be.
fn cli_with(keymgr: &Keymgr, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ontap-keymgr"));
    command
        .args(args)
        .env("KEYMGR_URL", format!("https://127.0.0.1:{}", keymgr.port))
        .env("KEYMGR_USER", "admin")
        .env("KEYMGR_PASSWORD", ADMIN_PASSWORD)
        .env("KEYMGR_CA_CERT", keymgr.data_dir.join("tls/cert.pem"))
        .env_remove("KEYMGR_KMIP_PASSWORD")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run ontap-keymgr");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn cli(keymgr: &Keymgr, args: &[&str]) -> Outcome {
    cli_with(keymgr, args, &[])
}

/// `security key-manager external <args>`.
fn external(keymgr: &Keymgr, args: &[&str]) -> Outcome {
    let mut all = vec!["security", "key-manager", "external"];
    all.extend_from_slice(args);
    cli(keymgr, &all)
}

/// The cells of an ONTAP table, split where the dashes under the headers say the columns are.
/// Checks on the way that the header and every row are aligned on those columns.
#[track_caller]
fn table(output: &str, headers: &[&str]) -> Vec<Vec<String>> {
    let lines: Vec<&str> = output.lines().collect();
    assert!(lines.len() >= 3, "not a table:\n{output}");
    let columns = columns(lines[1]);
    assert_eq!(columns.len(), headers.len(), "{output}");
    assert_eq!(cells(lines[0], &columns), headers, "{output}");
    let rows: Vec<Vec<String>> = lines[2..]
        .iter()
        .take_while(|line| !line.is_empty())
        .map(|line| {
            for &(start, _) in &columns[1..] {
                let bytes = line.as_bytes();
                assert!(
                    bytes.get(start - 1) == Some(&b' ') && bytes.get(start) != Some(&b' '),
                    "row not aligned on column {start}:\n{output}"
                );
            }
            cells(line, &columns)
        })
        .collect();
    let count = match rows.len() {
        1 => None,
        n => Some(format!("{n} entries were displayed.")),
    };
    assert_eq!(
        lines.get(rows.len() + 3).map(|s| s.to_string()),
        count,
        "{output}"
    );
    rows
}

/// (start, end) of each run of dashes.
fn columns(dashes: &str) -> Vec<(usize, usize)> {
    let mut columns = Vec::new();
    let mut start = None;
    for (i, c) in dashes.char_indices().chain([(dashes.len(), ' ')]) {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                columns.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    columns
}

fn cells(line: &str, columns: &[(usize, usize)]) -> Vec<String> {
    columns
        .iter()
        .enumerate()
        .map(|(i, &(start, end))| {
            let end = if i + 1 == columns.len() {
                line.len()
            } else {
                end
            };
            line.get(start..end.min(line.len()))
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect()
}

/// Writes the key manager's certificates: client certificate and key, and the server CA.
fn certificate_files(pki: &TestPki, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (client, key) = pki.client.write(dir, "client");
    let ca = pki.ca.write(dir, "server-ca");
    (client, key, ca)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn cluster_name(keymgr: &Keymgr) -> String {
    keymgr.get("/api/cluster").body["name"]
        .as_str()
        .expect("cluster name")
        .to_string()
}

#[test]
fn full_flow_from_svm_to_key_servers() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let first = kmip.address();
    let second = format!("localhost:{}", kmip.port);
    let keymgr = Keymgr::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (client, key, ca) = certificate_files(&pki, dir.path());

    // The tenant.
    let created = cli(&keymgr, &["svm", "create", "-vserver", "svm1"]);
    assert_eq!(
        created.assert_success().stdout,
        "Vserver creation completed.\n"
    );
    let svms = cli(&keymgr, &["svm", "show"]);
    let rows = table(
        &svms.assert_success().stdout,
        &["Vserver", "Subtype", "Admin State", "UUID"],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..3], ["svm1", "default", "running"]);

    // Its certificates, from files, ONTAP-style and clap-style options mixed.
    let installed = cli(
        &keymgr,
        &[
            "security",
            "certificate",
            "install",
            "-vserver",
            "svm1",
            "-type",
            "client",
            "-cert-name",
            "km-client",
            "--cert-file",
            path(&client),
            "--key-file",
            path(&key),
        ],
    );
    assert!(
        installed.assert_success().stdout.contains("CA: test-ca"),
        "{installed:?}"
    );
    cli(
        &keymgr,
        &[
            "security",
            "certificate",
            "install",
            "--vserver",
            "svm1",
            "--type",
            "server-ca",
            "--cert-name",
            "km-ca",
            "--cert-file",
            path(&ca),
        ],
    )
    .assert_success();
    let certificates = cli(
        &keymgr,
        &["security", "certificate", "show", "-vserver", "svm1"],
    );
    let rows = table(&certificates.assert_success().stdout, &CERTIFICATE_HEADERS);
    let mut summary: Vec<[&str; 4]> = rows
        .iter()
        .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            ["svm1", "km-ca", "server-ca", "test-ca"],
            ["svm1", "km-client", "client", "key-manager"]
        ]
    );

    let cas = cli(
        &keymgr,
        &["security", "certificate", "show", "-type", "server-ca"],
    );
    let rows = table(&cas.assert_success().stdout, &CERTIFICATE_HEADERS);
    assert_eq!(rows.len(), 1, "{cas:?}");
    assert_eq!(rows[0][1], "km-ca");

    // The key manager, then a second key server.
    external(
        &keymgr,
        &[
            "enable",
            "-vserver",
            "svm1",
            "-client-cert",
            "km-client",
            "-server-ca-certs",
            "km-ca",
            "-key-servers",
            &first,
        ],
    )
    .assert_success();
    let added = external(
        &keymgr,
        &["add-servers", "--vserver", "svm1", "--key-servers", &second],
    );
    assert_eq!(added.assert_success().stdout, "");

    let shown = external(&keymgr, &["show", "-vserver", "svm1"]);
    let rows = table(&shown.assert_success().stdout, &SHOW_HEADERS);
    assert_eq!(
        rows,
        [
            ["svm1", first.as_str(), "25", "-", "-"],
            ["svm1", second.as_str(), "25", "-", "-"],
        ]
    );

    // Reachability, node by node, as ONTAP's CLI spells it.
    let status = external(&keymgr, &["show-status", "-vserver", "svm1"]);
    let rows = table(
        &status.assert_success().stdout,
        &["Node", "Vserver", "Key Server", "Status"],
    );
    assert_eq!(rows.len(), 4, "two nodes, two servers: {status:?}");
    assert!(
        rows.iter().all(|r| r[1] == "svm1" && r[3] == "available"),
        "{status:?}"
    );
    assert!(
        rows.windows(2).all(|w| w[0][0] <= w[1][0]),
        "sorted by node: {status:?}"
    );
    // With -instance, each entry in full, with how its connection was secured: PyKMIP on RSA
    // certificates negotiates TLS 1.2 with one of its CBC suites.
    let instance = external(&keymgr, &["show-status", "-vserver", "svm1", "-instance"]);
    let text = &instance.assert_success().stdout;
    assert_eq!(
        text.matches("                Node: node-0").count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.matches("TLS Protocol Version: TLSv1.2\n").count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.matches("        Cipher Suite: TLS_").count(),
        4,
        "{text}"
    );
    assert!(text.contains("_CBC_SHA"), "{text}");
    assert!(text.ends_with("\n4 entries were displayed.\n"), "{text}");

    // Timeout and secondary key servers.
    external(
        &keymgr,
        &[
            "modify-server",
            "-vserver",
            "svm1",
            "-key-server",
            &second,
            "-timeout",
            "40",
            "-secondary-key-servers",
            "ks2.example.com,10.0.0.2",
        ],
    )
    .assert_success();
    let rows = table(
        &external(&keymgr, &["show", "-vserver", "svm1"]).stdout,
        &SHOW_HEADERS,
    );
    assert_eq!(
        rows[1],
        [
            "svm1",
            second.as_str(),
            "40",
            "-",
            "ks2.example.com,10.0.0.2"
        ]
    );
    external(
        &keymgr,
        &[
            "modify-server",
            "-vserver",
            "svm1",
            "-key-server",
            &second,
            "-timeout",
            "-1",
            "-secondary-key-servers",
            "-",
        ],
    )
    .assert_success();
    let rows = table(&external(&keymgr, &["show"]).stdout, &SHOW_HEADERS);
    assert_eq!(rows[1], ["svm1", second.as_str(), "-1", "-", "-"]);

    // Removal, then the key manager itself.
    external(
        &keymgr,
        &[
            "remove-servers",
            "-vserver",
            "svm1",
            "-key-servers",
            &second,
        ],
    )
    .assert_success();
    let rows = table(
        &external(&keymgr, &["show", "-vserver", "svm1"]).stdout,
        &SHOW_HEADERS,
    );
    assert_eq!(rows, [["svm1", first.as_str(), "25", "-", "-"]]);
    external(&keymgr, &["disable", "-vserver", "svm1"]).assert_success();
    let none = external(&keymgr, &["show", "-vserver", "svm1"]);
    assert_eq!(
        none.assert_success().stdout,
        "There are no entries matching your query.\n"
    );
}

#[test]
fn kmip_credentials_come_from_the_environment_never_the_command_line() {
    let pki = TestPki::new();
    let plain = good_kmip(&pki);
    let with_credentials = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: Some(("kmip-user", "kmip-secret-1")),
    });
    let server = with_credentials.address();
    let keymgr = Keymgr::start();
    let cluster = cluster_name(&keymgr);
    // The cluster's key manager; the server that wants credentials is added with them.
    let km = create_key_manager(&keymgr, &pki, None, &[plain.address()]);
    let added = keymgr.post(
        &key_servers_path(&km),
        &json!({ "server": server, "username": "kmip-user", "password": "kmip-secret-1" }),
    );
    assert_eq!(added.status, 201, "{added:?}");

    let modify = |password: &str| {
        cli_with(
            &keymgr,
            &[
                "security",
                "key-manager",
                "external",
                "modify-server",
                "-key-server",
                &server,
                "-username",
                "kmip-user",
            ],
            &[("KEYMGR_KMIP_PASSWORD", password)],
        )
    };
    modify("kmip-secret-1").assert_success();
    let wrong = modify("wrong-secret-9");
    wrong.assert_api_error("65536921");
    assert!(!wrong.stderr.contains("wrong-secret-9"), "{wrong:?}");

    // The cluster is the admin Vserver: no -vserver, or the cluster's name.
    let rows = table(
        &external(&keymgr, &["show", "-vserver", &cluster]).stdout,
        &SHOW_HEADERS,
    );
    assert_eq!(
        rows[1],
        [cluster.as_str(), server.as_str(), "25", "kmip-user", "-"]
    );
    assert_eq!(rows[0][3], "-");

    // A password on the command line is refused, before anything is sent.
    for option in ["-password", "--password"] {
        let refused = external(
            &keymgr,
            &[
                "modify-server",
                "-key-server",
                &server,
                "-username",
                "kmip-user",
                option,
                "x",
            ],
        );
        assert_eq!(refused.code, 2, "{refused:?}");
        assert!(
            refused.stderr.contains("unexpected argument '--password'"),
            "{refused:?}"
        );
    }
}

#[test]
fn errors_carry_ontaps_message_code_and_an_exit_code() {
    let pki = TestPki::new();
    let one = good_kmip(&pki);
    let two = good_kmip(&pki);
    let untrusted = PyKmip::start(PyKmipConfig {
        server: &pki.rogue_server,
        trusted_ca: &pki.ca,
        credential: None,
    });
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    create_svm(&keymgr, "svm2");
    create_svm(&keymgr, "bare");
    let four = [
        one.address(),
        format!("localhost:{}", one.port),
        two.address(),
        format!("localhost:{}", two.port),
    ];
    create_key_manager(&keymgr, &pki, Some("svm1"), &four);
    create_key_manager(&keymgr, &pki, Some("svm2"), &[one.address()]);

    // Unknown Vserver; a Vserver without external key manager.
    let unknown = external(
        &keymgr,
        &["add-servers", "-vserver", "nosuch", "-key-servers", "ks9"],
    );
    unknown.assert_api_error("2621462");
    assert!(unknown.stderr.contains("\"nosuch\""), "{unknown:?}");
    external(
        &keymgr,
        &["remove-servers", "-vserver", "bare", "-key-servers", "ks9"],
    )
    .assert_api_error("65536828");

    // A fifth primary key server; an untrusted one; an unknown one to remove: nothing changes.
    let fifth = external(
        &keymgr,
        &[
            "add-servers",
            "-vserver",
            "svm1",
            "-key-servers",
            "ks5.example.com",
        ],
    );
    fifth.assert_api_error("65536038");
    assert!(fifth.stderr.contains("A maximum of 4"), "{fifth:?}");
    let rogue = external(
        &keymgr,
        &[
            "add-servers",
            "-vserver",
            "svm2",
            "-key-servers",
            &untrusted.address(),
        ],
    );
    rogue.assert_api_error("66060338");
    assert!(rogue.stderr.contains(&untrusted.address()), "{rogue:?}");
    external(
        &keymgr,
        &[
            "remove-servers",
            "-vserver",
            "svm2",
            "-key-servers",
            &format!("{},ks9", one.address()),
        ],
    )
    .assert_api_error("65536843");
    let rows = table(
        &external(&keymgr, &["show", "-vserver", "svm2"]).stdout,
        &SHOW_HEADERS,
    );
    assert_eq!(rows, [["svm2", one.address().as_str(), "25", "-", "-"]]);
    external(
        &keymgr,
        &[
            "modify-server",
            "-vserver",
            "svm2",
            "-key-server",
            "ks9",
            "-timeout",
            "10",
        ],
    )
    .assert_api_error("65536843");

    // Wrong API password: ONTAP's authentication error.
    cli_with(
        &keymgr,
        &["svm", "show"],
        &[("KEYMGR_PASSWORD", "not-the-password")],
    )
    .assert_api_error("6");

    // ... which the API password given right after `svm`/`security` overrides.
    cli_with(
        &keymgr,
        &["svm", "-password", ADMIN_PASSWORD, "show"],
        &[("KEYMGR_PASSWORD", "not-the-password")],
    )
    .assert_success();

    // Usage: an unknown option, an unreadable file, a bad URL.
    let bogus = external(&keymgr, &["show", "-bogus"]);
    assert_eq!(bogus.code, 2, "{bogus:?}");
    assert!(bogus.stderr.contains("'--bogus'"), "{bogus:?}");
    let missing = cli(
        &keymgr,
        &[
            "security",
            "certificate",
            "install",
            "-type",
            "server-ca",
            "-cert-file",
            "/nonexistent.pem",
        ],
    );
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("/nonexistent.pem"), "{missing:?}");
    let bad_url = cli_with(&keymgr, &["svm", "show"], &[("KEYMGR_URL", "127.0.0.1:1")]);
    assert_eq!(bad_url.code, 2, "{bad_url:?}");

    // Connection problems: nobody listening; a service whose certificate is not trusted.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let refused = cli_with(
        &keymgr,
        &["svm", "show"],
        &[("KEYMGR_URL", &format!("https://127.0.0.1:{closed}"))],
    );
    assert_eq!(refused.code, 3, "{refused:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let other_ca = pki.ca.write(dir.path(), "other");
    let distrusted = cli_with(
        &keymgr,
        &["svm", "show"],
        &[("KEYMGR_CA_CERT", path(&other_ca))],
    );
    assert_eq!(distrusted.code, 3, "{distrusted:?}");
    assert!(distrusted.stderr.contains("--ca-cert"), "{distrusted:?}");
    // ... unless verification is explicitly skipped.
    let insecure = cli_with(
        &keymgr,
        &["svm", "--insecure", "show"],
        &[("KEYMGR_CA_CERT", path(&other_ca))],
    );
    assert_eq!(
        table(
            &insecure.assert_success().stdout,
            &["Vserver", "Subtype", "Admin State", "UUID"]
        )
        .len(),
        3
    );
}

/// Without a terminal (`setsid` detaches from it) nobody can be asked for a password: the
/// command says which variable to set instead, and sends nothing.
#[test]
fn without_a_terminal_passwords_come_from_the_environment() {
    if Command::new("setsid").arg("true").status().is_err() {
        eprintln!("setsid is not available: skipped");
        return;
    }
    let keymgr = Keymgr::start();
    let run = |args: &[&str], remove: &str| {
        let output = Command::new("setsid")
            .arg(env!("CARGO_BIN_EXE_ontap-keymgr"))
            .args(args)
            .env("KEYMGR_URL", format!("https://127.0.0.1:{}", keymgr.port))
            .env("KEYMGR_PASSWORD", ADMIN_PASSWORD)
            .env("KEYMGR_CA_CERT", keymgr.data_dir.join("tls/cert.pem"))
            .env_remove("KEYMGR_KMIP_PASSWORD")
            .env_remove(remove)
            .stdin(Stdio::null())
            .output()
            .expect("run ontap-keymgr");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["svm", "show"], "KEYMGR_PASSWORD");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("set KEYMGR_PASSWORD"), "{stderr}");
    create_svm(&keymgr, "svm1");
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let (code, stderr) = run(
        &[
            "security",
            "key-manager",
            "external",
            "modify-server",
            "-vserver",
            "svm1",
            "-key-server",
            &kmip.address(),
            "-username",
            "u",
        ],
        "KEYMGR_KMIP_PASSWORD",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("set KEYMGR_KMIP_PASSWORD"), "{stderr}");
}

/// `security key-manager key create|query|delete|migrate`, `external restore` and
/// `volume create|show|delete -encrypt true`, against key servers that keep ONTAP's keys.
#[test]
fn keys_and_encrypted_volumes_through_ontaps_commands() {
    use test_support::kmip_server::{Faults, KmipObjectServer};
    let pki = TestPki::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let start = || runtime.block_on(KmipObjectServer::start_for(&pki, Faults::default()));
    let (cluster_kmip, svm_kmip) = (start(), start());
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    create_key_manager(&keymgr, &pki, None, &[cluster_kmip.address.to_string()]);
    create_key_manager(&keymgr, &pki, Some("svm1"), &[svm_kmip.address.to_string()]);

    let created = cli(
        &keymgr,
        &[
            "security",
            "key-manager",
            "key",
            "create",
            "-key-tag",
            "shelf-1",
        ],
    );
    let line = created.assert_success().stdout.trim().to_string();
    let key_id = line
        .strip_prefix("Key ID: ")
        .expect("Key ID: ...")
        .to_string();
    assert_eq!(key_id.len(), 80, "{line}");
    assert_eq!(cluster_kmip.len(), 1);

    let made = cli(
        &keymgr,
        &[
            "volume", "create", "-vserver", "svm1", "-volume", "vol1", "-size", "100MB",
            "-encrypt", "true",
        ],
    );
    made.assert_success();
    assert_eq!(svm_kmip.len(), 1);
    let shown = cli(&keymgr, &["volume", "show", "-vserver", "svm1"]);
    let rows = table(
        &shown.assert_success().stdout,
        &["Vserver", "Volume", "Size", "Encrypted", "Key ID"],
    );
    assert_eq!(
        rows[0][..4],
        ["svm1", "vol1", "104857600", "true"],
        "{rows:?}"
    );

    let query = cli(&keymgr, &["security", "key-manager", "key", "query"]);
    let rows = table(
        &query.assert_success().stdout,
        &[
            "Node",
            "Vserver",
            "Key Manager",
            "Key Type",
            "Key ID",
            "Key Tag",
            "Restored",
        ],
    );
    let types: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert!(
        types.contains(&"NSE-AK") && types.contains(&"VEK"),
        "{rows:?}"
    );
    let only_vek = cli(
        &keymgr,
        &[
            "security",
            "key-manager",
            "key",
            "query",
            "-key-type",
            "VEK",
        ],
    );
    let rows = table(
        &only_vek.assert_success().stdout,
        &[
            "Node",
            "Vserver",
            "Key Manager",
            "Key Type",
            "Key ID",
            "Key Tag",
            "Restored",
        ],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], "svm1");

    let restored = cli(&keymgr, &["security", "key-manager", "external", "restore"]);
    assert!(
        restored
            .assert_success()
            .stdout
            .starts_with("Restored 1 key(s)"),
        "{restored:?}"
    );

    let cluster = cluster_name(&keymgr);
    let migrated = cli(
        &keymgr,
        &[
            "security",
            "key-manager",
            "key",
            "migrate",
            "-from-vserver",
            "svm1",
            "-to-vserver",
            &cluster,
        ],
    );
    assert!(
        migrated
            .assert_success()
            .stdout
            .starts_with("Migrated 1 key(s) of SVM svm1"),
        "{migrated:?}"
    );
    assert_eq!((svm_kmip.len(), cluster_kmip.len()), (0, 2));

    cli(
        &keymgr,
        &["volume", "delete", "-vserver", "svm1", "-volume", "vol1"],
    )
    .assert_success();
    cli(
        &keymgr,
        &[
            "security",
            "key-manager",
            "key",
            "delete",
            "-key-id",
            &key_id,
        ],
    )
    .assert_success();
    assert!(cluster_kmip.is_empty());
    cli(
        &keymgr,
        &["volume", "delete", "-vserver", "svm1", "-volume", "vol1"],
    )
    .assert_api_error("4");
}
