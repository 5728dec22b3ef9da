//! The whole service's router over a fresh data dir, for the api's unit tests: requests go
//! through authentication, the handlers and the domain to a real SQLite store, without a socket.

use axum::Router;

use crate::config::{Config, Overrides};
use crate::server::{AdminStart, prepare};

/// The router and the data dir it lives on (removed when this is dropped).
pub struct TestApp {
    pub router: Router,
    _dir: tempfile::TempDir,
}

/// A fresh service whose `admin` has `password`.
pub async fn start(password: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("dir");
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().join("data")),
        http: false,
        database_url: None,
    };
    let config = Config::load(None, overrides).expect("config");
    let admin = AdminStart {
        password: Some(password.into()),
        reset: false,
    };
    let router = prepare(&config, &admin).await.expect("service").router;
    TestApp { router, _dir: dir }
}
