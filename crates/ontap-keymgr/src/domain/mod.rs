//! The rules of key management, free of HTTP and SQL: parsing client input into values that
//! cannot be invalid, ONTAP's checks in ONTAP's order, the KMIP checks, and the catalogue of
//! ONTAP error codes ([`Error`]).

pub mod address;
pub mod audit;
pub mod certificates;
pub mod cluster;
pub mod connectivity;
pub mod error;
pub mod health_monitor;
pub mod ids;
pub mod key_managers;
pub mod key_servers;
pub mod kmip_check;
pub mod limits;
pub mod login;
pub mod model;
pub mod pem;
pub mod security;
pub mod service;
pub mod store;
pub mod svms;
pub mod users;
pub mod versions;
pub mod x509;

pub use error::{Error, Result, Status};
pub use service::Service;
