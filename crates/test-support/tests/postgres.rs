//! The throw-away PostgreSQL server the store tests of issue 12 build on.

use test_support::postgres::Postgres;

#[test]
fn a_server_starts_answers_survives_a_restart_and_stops() {
    let mut postgres = Postgres::start();
    postgres.create_database("keymgr");
    postgres.psql(
        "keymgr",
        "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')",
    );
    assert_eq!(postgres.psql("keymgr", "SELECT v FROM t"), "kept");
    assert!(
        postgres
            .url("keymgr")
            .starts_with("postgres://keymgr@127.0.0.1:"),
        "{}",
        postgres.url("keymgr")
    );

    let port = postgres.port;
    postgres.restart();
    assert_eq!(postgres.psql("keymgr", "SELECT v FROM t"), "kept");
    assert_eq!(postgres.port, port, "restarted on its port");

    postgres.stop();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stopped"
    );
}
