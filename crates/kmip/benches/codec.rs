//! How fast the KMIP codec is: encoding a DiscoverVersions request with a credential, and
//! decoding and reading a DiscoverVersions answer of six versions, as every key-server check does.
//!
//! `cargo bench -p kmip`. Hand-timed rather than with criterion: criterion, as a
//! dev-dependency, would be compiled into every `cargo test` of this crate, and a median of a
//! few runs is all these figures need.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kmip::Credential;
use kmip::message::{Request, Response, encode_request, tag};
use kmip::ttlv::{Item, Value};

/// Runs `f` in batches for about `budget` and prints the median time per call.
fn bench(name: &str, budget: Duration, mut f: impl FnMut()) {
    const BATCHES: usize = 15;
    let calibration = Instant::now();
    let mut per_batch = 1usize;
    while calibration.elapsed() < budget / (BATCHES as u32 * 4) {
        for _ in 0..per_batch {
            f();
        }
        per_batch *= 2;
    }
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            started.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:<48} {:>10.0} ns/call (median of {BATCHES} x {per_batch})",
        samples[BATCHES / 2]
    );
}

fn version(major: i32, minor: i32) -> Item {
    Item::new(
        tag::PROTOCOL_VERSION,
        Value::Structure(vec![
            Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(major)),
            Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
        ]),
    )
}

/// A DiscoverVersions answer as PyKMIP gives it: 2.0, 1.4, 1.3, 1.2, 1.1, 1.0.
fn discover_versions_answer() -> Vec<u8> {
    let versions = [(2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]
        .map(|(major, minor)| version(major, minor));
    let batch_item = Item::new(
        tag::BATCH_ITEM,
        Value::Structure(vec![
            Item::new(tag::OPERATION, Value::Enumeration(0x1E)),
            Item::new(tag::RESULT_STATUS, Value::Enumeration(0)),
            Item::new(tag::RESPONSE_PAYLOAD, Value::Structure(versions.to_vec())),
        ]),
    );
    let header = Item::new(
        tag::RESPONSE_HEADER,
        Value::Structure(vec![
            version(1, 2),
            Item::new(tag::BATCH_COUNT, Value::Integer(1)),
        ]),
    );
    Item::new(
        tag::RESPONSE_MESSAGE,
        Value::Structure(vec![header, batch_item]),
    )
    .to_bytes()
}

fn main() {
    let budget = Duration::from_millis(600);
    let credential = Credential {
        username: "kmip-user".into(),
        password: "kmip-secret-1".into(),
    };
    bench(
        "encode DiscoverVersions request + credential",
        budget,
        || {
            black_box(encode_request(
                black_box(&[Request::DiscoverVersions(vec![])]),
                Some(black_box(&credential)),
            ));
        },
    );
    let answer = discover_versions_answer();
    bench("decode + read DiscoverVersions answer", budget, || {
        let item = Item::from_bytes(black_box(&answer)).expect("decodes");
        let response = Response::from_item(&item).expect("a response");
        black_box(response.batch[0].discovered_versions().expect("versions"));
    });
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    bench("refuse 4 KiB of garbage", budget, || {
        black_box(Item::from_bytes(black_box(&garbage)).is_err());
    });
}
