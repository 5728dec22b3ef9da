//! ontap-keymgr: an ONTAP-compatible REST service for external KMIP key managers.
//!
//! The rooms: [`api`] speaks HTTP and ONTAP's conventions, [`domain`] holds the rules and the
//! ONTAP error codes, [`store`] persists. A request flows api → domain → store/kmip and back.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod domain;
pub mod server;
pub mod store;
