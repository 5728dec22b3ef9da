//! The end-to-end tests of the HTTP API that no timing or process boundary sets apart, in one
//! test binary (one link of the service and of tests/support instead of one per file): ONTAP's
//! conventions, the seeds' key servers, the audit trail, hostile input, the security
//! configuration and the OpenAPI document. Each file is a module, as it was a binary before.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod audit_trail;
mod auth_keys;
mod hostile_input;
mod key_servers;
mod openapi;
mod security_config;
mod volumes;
