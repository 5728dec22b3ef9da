//! A throw-away PostgreSQL server for a whole test run (scripts/test.sh): starts one, prints
//! `PORT <port>`, and stops it when its standard input closes — when the script that started it
//! ends, however it ends.

use std::io::{Read, Write};

fn main() {
    let server = test_support::postgres::Postgres::start();
    println!("PORT {}", server.port);
    let _ = std::io::stdout().flush();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(server);
}
