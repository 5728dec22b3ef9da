//! Fixtures for the workspace's tests: a throw-away PKI made with rcgen, real PyKMIP servers on
//! 127.0.0.1, and fake peers that misbehave on purpose. Test code only: it panics on set-up
//! failures, which is what a test wants.
#![forbid(unsafe_code)]

pub mod fake;
pub mod kmip_server;
pub mod openssl;
pub mod pki;
pub mod postgres;
pub mod pykmip;
pub mod responder;

use std::path::PathBuf;

/// The workspace's top folder.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}
