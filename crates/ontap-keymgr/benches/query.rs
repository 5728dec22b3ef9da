//! How fast ONTAP's collection query parameters are applied: filter, sort, page and project
//! 10,000 records shaped like key servers. No key manager holds that many (4 at most), but the
//! audit trail and the certificates grow, and they go through the same engine.
//!
//! `cargo bench -p ontap-keymgr`. Hand-timed rather than with criterion: criterion, as a
//! dev-dependency, would be compiled into every `cargo test` of this crate, and a median of a
//! few runs is all these figures need.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ontap_keymgr::api::key_servers::KEY_SERVER_SCHEMA;
use ontap_keymgr::api::query::parse;
use serde_json::{Value, json};

/// Runs `f` a few times and prints the median time per call.
fn bench(name: &str, runs: usize, mut f: impl FnMut()) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "{name:<56} {:>8.2} ms/call (median of {runs})",
        samples[runs / 2].as_secs_f64() * 1000.0
    );
}

fn records(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            json!({
                "server": format!("ks{i}.example.com:5696"),
                "timeout": (i % 61) as i64 - 1,
                "username": if i % 3 == 0 { Value::Null } else { json!(format!("user{}", i % 7)) },
                "secondary_key_servers": [format!("ks{i}-a.example.com"), format!("ks{i}-b.example.com")],
                "_links": { "self": { "href": format!("/api/security/key-managers/km/key-servers/ks{i}.example.com%3A5696") } },
            })
        })
        .collect()
}

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn main() {
    let all = records(10_000);
    let cases = [
        ("no parameters (keys only)", pairs(&[])),
        ("fields=*", pairs(&[("fields", "*")])),
        (
            "server=ks1* & timeout=>20, fields=*",
            pairs(&[("server", "ks1*"), ("timeout", ">20"), ("fields", "*")]),
        ),
        (
            "order_by=timeout desc,server & max_records=100",
            pairs(&[("order_by", "timeout desc,server"), ("max_records", "100")]),
        ),
    ];
    bench(
        "10,000 records, cloned only (included in each below)",
        21,
        || {
            black_box(black_box(&all).clone());
        },
    );
    for (name, query) in cases {
        let query = parse(&query, &KEY_SERVER_SCHEMA).expect("a valid query");
        bench(&format!("10,000 records, {name}"), 21, || {
            black_box(query.apply_collection(black_box(all.clone())));
        });
    }
}
