//! Implementations of the domain's store port (`crate::domain::store`): SQLite now
//! ([`sqlite::SqliteStore`]), PostgreSQL can follow. A store keeps the domain's objects, encrypts
//! their secrets at rest, and enforces the invariants that must hold under concurrent requests
//! inside its own transactions. This room depends on the domain, never the reverse.

pub mod read_model;
pub mod secrets;
pub mod sqlite;

pub use crate::domain::store::{MAX_PRIMARY_KEY_SERVERS, Store, StoreError, StoreResult};
