//! What stands between the service and those without credentials: a bounded number of password
//! verifications at a time, the same cost for unknown users and wrong passwords, lockout after
//! repeated failures, throttling of addresses that keep failing, and a trail of it all.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Keymgr;

/// The service's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib / 1024)
        .expect("VmHWM")
}

fn start(env: &[(&str, &str)]) -> (tempfile::TempDir, Keymgr) {
    let dir = tempfile::tempdir().expect("dir");
    let keymgr = Keymgr::start_in(&dir.path().join("data"), env);
    (dir, keymgr)
}

/// Every client of these tests is 127.0.0.1: without this, the address throttle would answer
/// most of them before any verification.
const NO_ADDRESS_THROTTLE: (&str, &str) = ("KEYMGR_MAX_FAILED_LOGINS_PER_ADDRESS", "0");

/// The flood of 500 logins and the timing comparison do not run at once: the flood's Argon2
/// verifications and disk writes would be in the times compared.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn five_hundred_concurrent_wrong_passwords_leave_memory_flat() {
    let _alone = alone();
    const REQUESTS: usize = 500;
    let (_dir, keymgr) = start(&[NO_ADDRESS_THROTTLE]);
    let responses: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let keymgr = &keymgr;
        let running: Vec<_> = (0..REQUESTS)
            .map(|i| {
                scope.spawn(move || {
                    let response = keymgr.request_as(
                        "admin",
                        &format!("wrong-{i}"),
                        "GET",
                        "/api/cluster",
                        None,
                    );
                    (response.status, response.body)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|r| r.join().expect("client thread"))
            .collect()
    });
    let refused = responses.iter().filter(|(s, _)| *s == 401).count();
    let busy = responses.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(refused + busy, REQUESTS, "only 401 and 503: {responses:?}");
    assert!(refused > 0, "some were verified");
    for (status, body) in &responses {
        let code = if *status == 401 { "6" } else { "262145" };
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let peak = peak_rss_mib(keymgr.pid());
    assert!(peak < 150, "peak RSS {peak} MiB");
    assert_eq!(keymgr.get("/api/cluster").status, 200);
}

#[test]
fn unknown_users_and_wrong_passwords_cost_the_same() {
    let _alone = alone();
    let (_dir, keymgr) = start(&[NO_ADDRESS_THROTTLE]);
    let median = |user: &str| {
        let mut times: Vec<Duration> = (0..7)
            .map(|i| {
                let started = Instant::now();
                let response =
                    keymgr.request_as(user, &format!("wrong-{i}"), "GET", "/api/cluster", None);
                assert_eq!(response.status, 401);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown) = (median("admin"), median("nobody-by-that-name"));
    let ratio = known.as_secs_f64().max(unknown.as_secs_f64())
        / known.as_secs_f64().min(unknown.as_secs_f64());
    assert!(
        ratio < 2.0,
        "wrong password {known:?}, unknown user {unknown:?}: the timing tells"
    );
}

#[test]
fn an_account_locks_after_repeated_failures_and_unlocks_after_the_duration() {
    let (_dir, keymgr) = start(&[
        NO_ADDRESS_THROTTLE,
        ("KEYMGR_MAX_FAILED_LOGIN_ATTEMPTS", "3"),
        ("KEYMGR_LOCKOUT_DURATION", "3s"),
    ]);
    let created = keymgr.post(
        "/api/security/accounts",
        &json!({ "name": "ops", "password": "ops-password-1", "role": { "name": "admin" } }),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let login = |password: &str| {
        keymgr
            .request_as("ops", password, "GET", "/api/cluster", None)
            .status
    };
    assert_eq!(login("ops-password-1"), 200);
    for _ in 0..3 {
        assert_eq!(login("wrong"), 401);
    }
    let locked_at = Instant::now();
    // Locked: the right password is refused too, even though it was verified before.
    assert_eq!(login("ops-password-1"), 401);
    assert_eq!(
        keymgr.get("/api/cluster").status,
        200,
        "other accounts work"
    );
    std::thread::sleep(
        Duration::from_secs(3).saturating_sub(locked_at.elapsed()) + Duration::from_millis(500),
    );
    assert_eq!(login("ops-password-1"), 200, "the lockout ends");

    // Every failed login is in the trail, with who and from where.
    let audit = keymgr.get("/api/security/audit/messages?user=ops&state=error&fields=*");
    let records = audit.body["records"].as_array().expect("records").clone();
    assert_eq!(records.len(), 4, "{audit:?}");
    for record in &records {
        assert_eq!(record["location"], "127.0.0.1", "{record}");
        assert_eq!(record["status"], 401, "{record}");
        assert!(record["timestamp"].is_string());
    }
}

#[test]
fn an_address_that_keeps_failing_is_throttled_but_verified_credentials_pass() {
    let (_dir, keymgr) = start(&[]);
    let reader = json!({ "name": "reader", "role": { "name": "readonly" }, "password": "reader-password-1" });
    assert_eq!(keymgr.post("/api/security/accounts", &reader).status, 201);
    // The admin's credentials are verified now (on a shared store, an account change drops
    // every verified credential of every instance: this comes after it); a reader's never were.
    assert_eq!(keymgr.get("/api/cluster").status, 200);
    for i in 0..10 {
        let response =
            keymgr.request_as("admin", &format!("wrong-{i}"), "GET", "/api/cluster", None);
        assert_eq!(response.status, 401);
    }
    // The next unverified attempt from this address is refused without a verification, even a
    // right password that was never verified...
    let guess = keymgr.request_as("admin", "wrong-again", "GET", "/api/cluster", None);
    guess.assert_error(429, "6");
    assert!(guess.message().contains("retry in"), "{guess:?}");
    let unverified = keymgr.request_as("reader", "reader-password-1", "GET", "/api/cluster", None);
    unverified.assert_error(429, "6");
    // ...while the credentials verified before are served from the same address.
    assert_eq!(keymgr.get("/api/cluster").status, 200);
}

#[test]
fn refused_writes_of_readonly_users_are_audited() {
    let (_dir, keymgr) = start(&[]);
    let created = keymgr.post(
        "/api/security/accounts",
        &json!({ "name": "auditor", "password": "auditor-password", "role": { "name": "readonly" } }),
    );
    assert_eq!(created.status, 201, "{created:?}");
    keymgr
        .request_as(
            "auditor",
            "auditor-password",
            "POST",
            "/api/svm/svms",
            Some(r#"{"name":"svm9"}"#),
        )
        .assert_error(403, "6");
    let audit = keymgr.get("/api/security/audit/messages?user=auditor&fields=*");
    assert_eq!(audit.body["num_records"], 1, "{audit:?}");
    assert_eq!(audit.body["records"][0]["status"], 403);
    assert_eq!(audit.body["records"][0]["location"], "127.0.0.1");
}

#[test]
fn unknown_paths_need_credentials_first() {
    let (_dir, keymgr) = start(&[]);
    keymgr
        .request_as("", "", "GET", "/api/no/such/thing", None)
        .assert_error(401, "6");
    keymgr.get("/api/no/such/thing").assert_error(404, "262179");
}

#[test]
fn passwords_change_through_the_api_and_a_lost_one_is_reset_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let mut keymgr = Keymgr::start_in(&data, &[]);
    let owner = keymgr.get("/api/cluster").body["uuid"]
        .as_str()
        .expect("cluster uuid")
        .to_string();
    let changed = keymgr.patch(
        &format!("/api/security/accounts/{owner}/admin"),
        &json!({ "password": "second-password" }),
    );
    assert_eq!(changed.status, 200, "{changed:?}");
    let login = |keymgr: &Keymgr, password: &str| {
        keymgr
            .request_as("admin", password, "GET", "/api/cluster", None)
            .status
    };
    assert_eq!(
        login(&keymgr, &keymgr.password),
        401,
        "the old one stops working"
    );
    assert_eq!(login(&keymgr, "second-password"), 200);
    keymgr
        .request_as(
            "admin",
            "second-password",
            "PATCH",
            &format!("/api/security/accounts/{owner}/admin"),
            Some(r#"{"password": "short"}"#),
        )
        .assert_error(400, "262197");

    // KEYMGR_ADMIN_PASSWORD is not applied to an existing admin, and the log says so.
    assert!(keymgr.stop());
    let keymgr = Keymgr::start_in(&data, &[("KEYMGR_ADMIN_PASSWORD", "third-password")]);
    assert_eq!(login(&keymgr, "third-password"), 401);
    assert_eq!(login(&keymgr, "second-password"), 200);
    assert!(
        keymgr
            .log()
            .contains("KEYMGR_ADMIN_PASSWORD is set but not applied"),
        "{}",
        keymgr.log()
    );
    // A lost password: reset once at start.
    let mut keymgr = keymgr;
    assert!(keymgr.stop());
    let keymgr = Keymgr::start_with(
        &data,
        &[("KEYMGR_ADMIN_PASSWORD", "third-password")],
        &["--reset-admin-password"],
    );
    assert_eq!(login(&keymgr, "third-password"), 200);
    assert_eq!(login(&keymgr, "second-password"), 401);
}
