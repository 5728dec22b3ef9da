//! Idle connections cannot crowd out clients: at the connection limit the longest idle one is
//! closed to make room, and it is logged.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use support::Keymgr;

#[test]
fn idle_connections_make_room_for_clients_at_the_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let keymgr = Keymgr::start_in(
        &dir.path().join("data"),
        &[("KEYMGR_MAX_CONNECTIONS", "20")],
    );
    // Twice the limit of connections that never say a word.
    let mut idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", keymgr.port)).expect("connect"))
        .collect();
    // Let the service accept them all.
    std::thread::sleep(Duration::from_millis(500));

    let response = keymgr.get("/api/cluster");
    assert_eq!(response.status, 200, "a client still gets in: {response:?}");

    // The service closed the idle connections it had to, and said so once.
    // A closed socket reads end of file at once; an open one times out.
    let mut closed = 0;
    for socket in &mut idle {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        if matches!(socket.read(&mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 20, "{closed} idle connections were closed");
    // The service raised its open files soft limit to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", keymgr.pid())).expect("limits");
    let files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line")
        .split_whitespace()
        .collect();
    assert_eq!(files[3], files[4], "soft = hard: {limits}");
    let log = keymgr.log();
    assert_eq!(
        log.matches("too many open connections").count(),
        1,
        "logged once per episode: {log}"
    );
}
