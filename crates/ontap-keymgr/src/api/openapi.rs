//! The OpenAPI 3 document of every endpoint the service serves, built from the same tables the
//! service uses: each resource's fields, types and arrays are its query schema's (one table per
//! resource, in `api/<resource>.rs`), each write's body fields are the table its handler reads
//! the body with (`Body::allow_in`), and the router is built from [`PATHS`] (`api/mod.rs`), so
//! no route exists that is not documented here. Served at `/docs/api/openapi.json` and kept in
//! the repository as `docs/openapi.json`.
//!
//! Why not utoipa's derive macros: the service's request bodies are read field by field (to give
//! ONTAP's error codes and targets) and its responses are built as JSON, so there are no Rust
//! types for utoipa to describe; a table that tests keep true is smaller and cannot drift.

use serde_json::{Map, Value, json};

use super::query::{Field, Schema, Type, names};
use crate::domain::error::ontap_message;

/// A resource: its name, and its fields (normal and expensive), types and arrays, read from the
/// same table the query engine uses.
pub struct Resource {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
}

impl Resource {
    fn fields(&self) -> Vec<Field> {
        self.schema
            .fields
            .iter()
            .chain(self.schema.expensive)
            .copied()
            .collect()
    }
}

/// One operation of one path.
pub struct Operation {
    pub method: &'static str,
    pub summary: &'static str,
    pub resource: &'static Resource,
    /// Whether it takes ONTAP's query parameters (collections and instances), over its
    /// resource's fields.
    pub query: bool,
    /// The fields a request body may set (any other is refused with 262179); `None`: no body.
    pub body: Option<&'static [(&'static str, Type)]>,
    /// Whether the body may be left out: a PATCH without one changes nothing and answers 200.
    pub body_optional: bool,
    pub status: u16,
    /// The ONTAP error codes it answers besides the common ones; their descriptions come from
    /// the domain's catalogue.
    pub codes: &'static [u64],
}

pub struct Path {
    pub path: &'static str,
    pub operations: &'static [Operation],
}

const SECURITY: Resource = Resource {
    name: "security",
    description: "The cluster's security configuration: FIPS mode and the TLS protocol versions \
                  and cipher suites (IANA names) offered to KMIP key servers.",
    schema: &super::security::SECURITY_SCHEMA,
};

const KEY_MANAGER_CONFIG: Resource = Resource {
    name: "key_manager_config",
    description: "The key server health monitor's polling interval (minutes, 15 to 30) and ONTAP's \
                  other key manager options. Common Criteria mode is not available.",
    schema: &super::key_manager_configs::KEY_MANAGER_CONFIG_SCHEMA,
};

const CLUSTER: Resource = Resource {
    name: "cluster",
    description: "The cluster the service presents (from its configuration).",
    schema: &super::cluster::CLUSTER_SCHEMA,
};

const NODE: Resource = Resource {
    name: "node",
    description: "A node of the cluster.",
    schema: &super::cluster::NODE_SCHEMA,
};

const SVM: Resource = Resource {
    name: "svm",
    description: "A storage VM.",
    schema: &super::svms::SVM_SCHEMA,
};

const CERTIFICATE: Resource = Resource {
    name: "security_certificate",
    description: "An installed certificate. `private_key` may be sent, never read back.",
    schema: &super::certificates::CERTIFICATE_SCHEMA,
};

const KEY_MANAGER: Resource = Resource {
    name: "security_key_manager",
    description: "An external or onboard key manager, one per SVM or one for the cluster. \
                  `status` is expensive: returned only when named in `fields` or with `**`.",
    schema: &super::key_managers::KEY_MANAGER_SCHEMA,
};

const KEY_SERVER: Resource = Resource {
    name: "key_server",
    description: "A primary key server of an external key manager. `connectivity` is expensive: \
                  returned only when named in `fields` or with `**`.",
    schema: &super::key_servers::KEY_SERVER_SCHEMA,
};

const AUTH_KEY: Resource = Resource {
    name: "key_manager_auth_key",
    description: "An NSE authentication key of the cluster's external key manager, stored on \
                  every key server as ONTAP stores keys (`x-NETAPP-KeyId` and ONTAP's other \
                  attributes). `passphrase` may be sent, never read back.",
    schema: &super::auth_keys::AUTH_KEY_SCHEMA,
};

/// What the authentication key operations answer besides the common codes: not the cluster's
/// external key manager, and what storing or destroying a key on a server meets.
const AUTH_KEY_CODES: [u64; 10] = [
    NOT_FOUND,
    65538802,
    65536048,
    65537201,
    65536821,
    KMIP_CHECK_CODES[0],
    KMIP_CHECK_CODES[1],
    KMIP_CHECK_CODES[2],
    KMIP_CHECK_CODES[3],
    KMIP_CHECK_CODES[4],
];

const KEY_ID: Resource = Resource {
    name: "key_manager_keys",
    description: "A key a key manager holds, as a node sees it, with the key server that keeps \
                  it (ONTAP's `security key-manager key query`).",
    schema: &super::key_ids::KEY_ID_SCHEMA,
};

const JOB: Resource = Resource {
    name: "job",
    description: "An asynchronous operation (restoring keys): `queued`, `running`, then \
                  `success` or `failure` with ONTAP's `code` and a `message`; kept 300 s after \
                  it ends.",
    schema: &super::jobs::JOB_SCHEMA,
};

const VOLUME: Resource = Resource {
    name: "volume",
    description: "A volume, minimal: name, SVM, size and encryption. An encrypted volume's key \
                  (`vek`) is stored on the key servers of its SVM's key manager, or the \
                  cluster's; creating and deleting run as jobs.",
    schema: &super::volumes::VOLUME_SCHEMA,
};

const ACCOUNT: Resource = Resource {
    name: "account",
    description: "A user of the API and its role (`admin` or `readonly`). `password` may be sent, never read back.",
    schema: &super::accounts::ACCOUNT_SCHEMA,
};

const AUDIT: Resource = Resource {
    name: "security_audit_log",
    description: "One write through the API, refused write or failed login; secrets in `input` \
                  are replaced by `<redacted>`; `location` is the client's address.",
    schema: &super::audit::AUDIT_SCHEMA,
};

const NOT_FOUND: u64 = 4;
const KEY_SERVER_SCOPE_CODES: [u64; 3] = [65536822, 65536824, 65536828];
const KMIP_CHECK_CODES: [u64; 5] = [65536852, 65536921, 66060338, 66060339, 66060340];

/// Every path and operation the service serves.
pub const PATHS: &[Path] = &[
    Path {
        path: "/api/cluster",
        operations: &[Operation {
            method: "get",
            summary: "Retrieve the cluster",
            resource: &CLUSTER,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[],
        }],
    },
    Path {
        path: "/api/cluster/nodes",
        operations: &[Operation {
            method: "get",
            summary: "List the nodes",
            resource: &NODE,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[],
        }],
    },
    Path {
        path: "/api/security",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve the security configuration",
                resource: &SECURITY,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "patch",
                summary: "Change FIPS mode and the TLS offer to key servers",
                resource: &SECURITY,
                query: false,
                body: Some(super::security::PATCH_BODY),
                body_optional: true,
                status: 200,
                codes: &[52428817, 52428824],
            },
        ],
    },
    Path {
        path: super::key_manager_configs::KEY_MANAGER_CONFIGS_PATH,
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve the key manager configuration",
                resource: &KEY_MANAGER_CONFIG,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "patch",
                summary: "Change the health monitor's polling interval",
                resource: &KEY_MANAGER_CONFIG,
                query: false,
                body: Some(super::key_manager_configs::PATCH_BODY),
                body_optional: true,
                status: 200,
                codes: &[65536809, 65537303, 65537304],
            },
        ],
    },
    Path {
        path: "/api/svm/svms",
        operations: &[
            Operation {
                method: "get",
                summary: "List SVMs",
                resource: &SVM,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "post",
                summary: "Create an SVM",
                resource: &SVM,
                query: false,
                body: Some(super::svms::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &[1],
            },
        ],
    },
    Path {
        path: "/api/svm/svms/{uuid}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve an SVM",
                resource: &SVM,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "delete",
                summary: "Delete an SVM",
                resource: &SVM,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 8],
            },
        ],
    },
    Path {
        path: "/api/security/certificates",
        operations: &[
            Operation {
                method: "get",
                summary: "List certificates",
                resource: &CERTIFICATE,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "post",
                summary: "Install a certificate",
                resource: &CERTIFICATE,
                query: false,
                body: Some(super::certificates::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &[
                    3735618, 3735622, 3735693, 52559973, 52559975, 52559976, 52560123, 2621462,
                ],
            },
        ],
    },
    Path {
        path: "/api/security/certificates/{uuid}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve a certificate",
                resource: &CERTIFICATE,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "delete",
                summary: "Delete a certificate",
                resource: &CERTIFICATE,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 3735683],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers",
        operations: &[
            Operation {
                method: "get",
                summary: "List key managers",
                resource: &KEY_MANAGER,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "post",
                summary: "Create a key manager",
                resource: &KEY_MANAGER,
                query: false,
                body: Some(super::key_managers::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &[
                    65536038,
                    65536821,
                    65536822,
                    65536823,
                    65536824,
                    65536871,
                    65536876,
                    65536916,
                    65536920,
                    65539216,
                    KMIP_CHECK_CODES[0],
                    KMIP_CHECK_CODES[1],
                    KMIP_CHECK_CODES[2],
                    KMIP_CHECK_CODES[3],
                    KMIP_CHECK_CODES[4],
                ],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve a key manager",
                resource: &KEY_MANAGER,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "patch",
                summary: "Update a key manager",
                resource: &KEY_MANAGER,
                query: false,
                body: Some(super::key_managers::PATCH_BODY),
                body_optional: true,
                status: 200,
                codes: &[NOT_FOUND, 65536139, 65536150, 65536404, 65536821, 65536917],
            },
            Operation {
                method: "delete",
                summary: "Delete a key manager",
                resource: &KEY_MANAGER,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/key-servers",
        operations: &[
            Operation {
                method: "get",
                summary: "List key servers configured in an external key manager",
                resource: &KEY_SERVER,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 65536834],
            },
            Operation {
                method: "post",
                summary: "Add primary key servers to an external key manager",
                resource: &KEY_SERVER,
                query: false,
                body: Some(super::key_servers::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &[
                    NOT_FOUND,
                    65536038,
                    65536821,
                    KEY_SERVER_SCOPE_CODES[0],
                    KEY_SERVER_SCOPE_CODES[1],
                    KEY_SERVER_SCOPE_CODES[2],
                    65536834,
                    65536845,
                    65536846,
                    65536870,
                    65536871,
                    KMIP_CHECK_CODES[0],
                    KMIP_CHECK_CODES[1],
                    KMIP_CHECK_CODES[2],
                    KMIP_CHECK_CODES[3],
                    KMIP_CHECK_CODES[4],
                ],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/auth-keys",
        operations: &[
            Operation {
                method: "get",
                summary: "List the authentication keys of the cluster's external key manager",
                resource: &AUTH_KEY,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 65538802],
            },
            Operation {
                method: "post",
                summary: "Create an authentication key and store it on every key server",
                resource: &AUTH_KEY,
                query: false,
                body: Some(super::auth_keys::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &AUTH_KEY_CODES,
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/auth-keys/{key_id}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve an authentication key",
                resource: &AUTH_KEY,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 65538802],
            },
            Operation {
                method: "delete",
                summary: "Destroy an authentication key on every key server",
                resource: &AUTH_KEY,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 65538802, 66060296],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/keys/{node_uuid}/key-ids",
        operations: &[Operation {
            method: "get",
            summary: "List the keys a key manager holds, as a node sees them",
            resource: &KEY_ID,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[NOT_FOUND],
        }],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/keys/{node_uuid}/key-ids/{key_id}",
        operations: &[Operation {
            method: "get",
            summary: "Retrieve a key a key manager holds",
            resource: &KEY_ID,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[NOT_FOUND],
        }],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/restore",
        operations: &[Operation {
            method: "post",
            summary: "Restore the keys the key servers hold for the key manager (a job)",
            resource: &JOB,
            query: false,
            body: Some(super::jobs::RESTORE_BODY),
            body_optional: true,
            status: 202,
            codes: &[
                NOT_FOUND,
                65536828,
                65536843,
                65536821,
                KMIP_CHECK_CODES[0],
                KMIP_CHECK_CODES[1],
                KMIP_CHECK_CODES[2],
                KMIP_CHECK_CODES[3],
                KMIP_CHECK_CODES[4],
            ],
        }],
    },
    Path {
        path: "/api/storage/volumes",
        operations: &[
            Operation {
                method: "get",
                summary: "List volumes",
                resource: &VOLUME,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "post",
                summary: "Create a volume, encrypted with a key on the key servers when asked (a job)",
                resource: &VOLUME,
                query: false,
                body: Some(super::volumes::POST_BODY),
                body_optional: false,
                status: 202,
                codes: &[
                    1,
                    2621462,
                    65536828,
                    65537201,
                    KMIP_CHECK_CODES[0],
                    KMIP_CHECK_CODES[1],
                    KMIP_CHECK_CODES[2],
                    KMIP_CHECK_CODES[3],
                    KMIP_CHECK_CODES[4],
                ],
            },
        ],
    },
    Path {
        path: "/api/storage/volumes/{uuid}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve a volume",
                resource: &VOLUME,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "delete",
                summary: "Delete a volume and destroy its key on the key servers (a job)",
                resource: &VOLUME,
                query: false,
                body: None,
                body_optional: false,
                status: 202,
                codes: &[NOT_FOUND, 66060296],
            },
        ],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/migrate",
        operations: &[Operation {
            method: "post",
            summary: "Migrate an SVM's keys between the cluster's key manager and the SVM's (a job)",
            resource: &JOB,
            query: false,
            body: Some(super::jobs::MIGRATE_BODY),
            body_optional: false,
            status: 202,
            codes: &[
                NOT_FOUND,
                65536828,
                65537201,
                65536821,
                KMIP_CHECK_CODES[0],
                KMIP_CHECK_CODES[1],
                KMIP_CHECK_CODES[2],
                KMIP_CHECK_CODES[3],
                KMIP_CHECK_CODES[4],
            ],
        }],
    },
    Path {
        path: "/api/cluster/jobs",
        operations: &[Operation {
            method: "get",
            summary: "List the jobs",
            resource: &JOB,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[],
        }],
    },
    Path {
        path: "/api/cluster/jobs/{uuid}",
        operations: &[Operation {
            method: "get",
            summary: "Retrieve a job",
            resource: &JOB,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[NOT_FOUND],
        }],
    },
    Path {
        path: "/api/security/key-managers/{uuid}/key-servers/{server}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve a key server",
                resource: &KEY_SERVER,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 65536843],
            },
            Operation {
                method: "patch",
                summary: "Update a primary key server",
                resource: &KEY_SERVER,
                query: false,
                body: Some(super::key_servers::PATCH_BODY),
                body_optional: false,
                status: 200,
                codes: &[
                    NOT_FOUND,
                    KEY_SERVER_SCOPE_CODES[0],
                    KEY_SERVER_SCOPE_CODES[1],
                    KEY_SERVER_SCOPE_CODES[2],
                    65536843,
                    65536845,
                    65536846,
                    65536880,
                    65537400,
                    65538407,
                    65538408,
                    65538413,
                    65538502,
                    KMIP_CHECK_CODES[0],
                    KMIP_CHECK_CODES[1],
                    KMIP_CHECK_CODES[2],
                    KMIP_CHECK_CODES[3],
                    KMIP_CHECK_CODES[4],
                ],
            },
            Operation {
                method: "delete",
                summary: "Delete a primary key server",
                resource: &KEY_SERVER,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[
                    NOT_FOUND,
                    65536700,
                    KEY_SERVER_SCOPE_CODES[0],
                    KEY_SERVER_SCOPE_CODES[1],
                    KEY_SERVER_SCOPE_CODES[2],
                    65536843,
                ],
            },
        ],
    },
    Path {
        path: "/api/security/audit/messages",
        operations: &[Operation {
            method: "get",
            summary: "List the audit trail of writes",
            resource: &AUDIT,
            query: true,
            body: None,
            body_optional: false,
            status: 200,
            codes: &[],
        }],
    },
    Path {
        path: "/api/security/accounts",
        operations: &[
            Operation {
                method: "get",
                summary: "List API users",
                resource: &ACCOUNT,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[],
            },
            Operation {
                method: "post",
                summary: "Create an API user",
                resource: &ACCOUNT,
                query: false,
                body: Some(super::accounts::POST_BODY),
                body_optional: false,
                status: 201,
                codes: &[1],
            },
        ],
    },
    Path {
        path: "/api/security/accounts/{owner}/{name}",
        operations: &[
            Operation {
                method: "get",
                summary: "Retrieve an API user",
                resource: &ACCOUNT,
                query: true,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "patch",
                summary: "Change an API user's password",
                resource: &ACCOUNT,
                query: false,
                body: Some(super::accounts::PATCH_BODY),
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND],
            },
            Operation {
                method: "delete",
                summary: "Delete an API user",
                resource: &ACCOUNT,
                query: false,
                body: None,
                body_optional: false,
                status: 200,
                codes: &[NOT_FOUND, 8],
            },
        ],
    },
];

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for path in PATHS {
        let mut operations = Map::new();
        for operation in path.operations {
            operations.insert(
                operation.method.to_string(),
                operation_json(path.path, operation),
            );
        }
        paths.insert(path.path.to_string(), Value::Object(operations));
    }
    // Every resource an operation answers with, each once: no `$ref` can name a missing one.
    let mut resources: Vec<&Resource> = Vec::new();
    for operation in PATHS.iter().flat_map(|path| path.operations) {
        if !resources.iter().any(|r| r.name == operation.resource.name) {
            resources.push(operation.resource);
        }
    }
    let mut schemas = Map::new();
    for resource in resources {
        let mut schema = object_schema(&resource.fields(), resource.schema.arrays, false);
        schema["properties"]["_links"] = json!({ "type": "object" });
        schema["description"] = resource.description.into();
        schemas.insert(resource.name.to_string(), schema);
    }
    schemas.insert("error".into(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ontap-keymgr",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "ONTAP-compatible REST API for external KMIP key managers and their key servers. \
                            Paths, envelopes, status codes and ONTAP error codes follow ONTAP's REST API.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "basic_auth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "basic_auth": { "type": "http", "scheme": "basic" } },
            "schemas": schemas,
        },
    })
}

fn type_json(field_type: Type) -> Value {
    match field_type {
        Type::String => json!({ "type": "string" }),
        Type::Integer => json!({ "type": "integer" }),
        Type::Boolean => json!({ "type": "boolean" }),
        Type::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        Type::Object => json!({ "type": "object" }),
    }
}

/// Nests dotted fields (`svm.name`) into object schemas; the prefixes in `arrays` are arrays of
/// such objects. A request schema (`closed`) refuses other properties, as the service does.
fn object_schema(fields: &[(&str, Type)], arrays: &[&str], closed: bool) -> Value {
    let mut root = new_object(closed);
    for (path, field_type) in fields {
        let parts: Vec<&str> = path.split('.').collect();
        insert_property(&mut root, &parts, "", *field_type, arrays, closed);
    }
    if let Some(root) = root.as_object_mut() {
        // The body itself must be an object.
        root.remove("nullable");
    }
    root
}

fn new_object(closed: bool) -> Value {
    match closed {
        true => {
            json!({ "type": "object", "properties": {}, "additionalProperties": false, "nullable": true })
        }
        false => json!({ "type": "object", "properties": {} }),
    }
}

fn insert_property(
    schema: &mut Value,
    parts: &[&str],
    prefix: &str,
    field_type: Type,
    arrays: &[&str],
    closed: bool,
) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let properties = &mut schema["properties"];
    if rest.is_empty() {
        properties[*first] = type_json(field_type);
        if closed {
            // A request's `null` means the field is not given (`api/body.rs`).
            properties[*first]["nullable"] = true.into();
        }
        return;
    }
    let path = match prefix {
        "" => first.to_string(),
        _ => format!("{prefix}.{first}"),
    };
    let is_array = arrays.contains(&path.as_str());
    if properties.get(*first).is_none() {
        properties[*first] = match is_array {
            true => json!({ "type": "array", "items": new_object(closed) }),
            false => new_object(closed),
        };
    }
    let inner = match is_array {
        true => &mut properties[*first]["items"],
        false => &mut properties[*first],
    };
    insert_property(inner, rest, &path, field_type, arrays, closed);
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "error": { "type": "object", "properties": {
            "message": { "type": "string" },
            "code": { "type": "string", "description": "The ONTAP error code, a decimal integer in a string." },
            "target": { "type": "string", "description": "The request field the error is about." },
            "arguments": { "type": "array", "items": { "type": "object" } },
        } } },
    })
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// A regular expression for one of these names, dots escaped.
fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let escaped: Vec<String> = names.map(|n| n.replace('.', "\\.")).collect();
    format!("({})", escaped.join("|"))
}

/// `fields`: a comma-separated list of field names, `*` and `**`.
fn fields_pattern(schema: &Schema) -> String {
    let all = names(schema.fields).chain(names(schema.expensive));
    let name = format!("(\\*\\*|\\*|{})", &one_of(all));
    // Empty means not given, as ONTAP reads it (docs/compatibility.md).
    format!("^({name}(,{name})*)?$")
}

/// `order_by`: comma-separated `field [asc|desc]`.
fn order_by_pattern(schema: &Schema) -> String {
    let key = format!("{}( (asc|desc))?", one_of(names(schema.fields)));
    format!("^({key}(,{key})*)?$")
}

fn query_parameters(schema: &Schema) -> Vec<Value> {
    let mut parameters = vec![
        json!({ "name": "fields", "in": "query", "schema": { "type": "string", "pattern": fields_pattern(schema) }, "description": "Comma-separated fields to return; `*` all normal fields, `**` also the expensive ones." }),
        json!({ "name": "max_records", "in": "query", "schema": { "type": "integer", "minimum": 0 } }),
        json!({ "name": "order_by", "in": "query", "schema": { "type": "string", "pattern": order_by_pattern(schema) }, "description": "`field [asc|desc]`, comma-separated." }),
        json!({ "name": "return_records", "in": "query", "schema": { "type": "boolean", "default": true } }),
        json!({ "name": "return_timeout", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 120, "default": 15 } }),
    ];
    for field in names(schema.fields).chain(names(schema.expensive)) {
        parameters.push(json!({ "name": field, "in": "query", "schema": { "type": "string" }, "description": "Filter: `*` wildcards, `|` or, `!` not, `<`, `>`, `<=`, `>=`, `a..b`." }));
    }
    parameters
}

fn operation_json(path: &str, operation: &Operation) -> Value {
    let mut parameters = path_parameters(path);
    match operation.query {
        true => parameters.extend(query_parameters(operation.resource.schema)),
        false if operation.method == "post" => parameters.push(json!({ "name": "return_records", "in": "query", "schema": { "type": "boolean", "default": false } })),
        false => {}
    }
    let codes: Vec<String> = operation
        .codes
        .iter()
        .map(|code| format!("| {code} | {} |", ontap_message(*code).unwrap_or_default()))
        .collect();
    let errors = if codes.is_empty() {
        "ONTAP error envelope.".to_string()
    } else {
        format!(
            "ONTAP error envelope. ONTAP error codes:\n\n| Code | Description |\n|---|---|\n{}",
            codes.join("\n")
        )
    };
    let schema_ref = format!("#/components/schemas/{}", operation.resource.name);
    let success = match (operation.method, operation.query, path.ends_with('}')) {
        ("get", _, true) => {
            json!({ "description": "The object.", "content": { "application/hal+json": { "schema": { "$ref": schema_ref } } } })
        }
        ("get", _, false) => {
            json!({ "description": "The collection.", "content": { "application/hal+json": { "schema": {
            "type": "object",
            "properties": { "num_records": { "type": "integer" }, "records": { "type": "array", "items": { "$ref": schema_ref } }, "_links": { "type": "object" } },
        } } } })
        }
        ("post", _, _) => {
            json!({ "description": "Created; `Location` holds the new object's path.", "headers": { "Location": { "schema": { "type": "string" } } } })
        }
        _ => json!({ "description": "Done; the body is `{}`." }),
    };
    let mut result = json!({
        "summary": operation.summary,
        "operationId": format!("{}_{}", operation.method, path.trim_start_matches("/api/").replace(['/', '-'], "_").replace(['{', '}'], "")),
        "parameters": parameters,
        "responses": {
            operation.status.to_string(): success,
            "default": { "description": errors, "content": { "application/hal+json": { "schema": { "$ref": "#/components/schemas/error" } } } },
        },
    });
    if let Some(writable) = operation.body {
        let input = object_schema(writable, operation.resource.schema.arrays, true);
        result["requestBody"] = json!({ "required": !operation.body_optional, "content": { "application/json": { "schema": input } } });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_code_is_in_the_catalogue() {
        for path in PATHS {
            for operation in path.operations {
                for code in operation.codes {
                    assert!(ontap_message(*code).is_some(), "{code} of {}", path.path);
                }
            }
        }
    }

    /// Every `$ref` in the document, wherever it is.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target.clone());
                }
                map.values().for_each(|v| references(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for target in found {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{target} is dangling");
        }
    }

    #[test]
    fn the_document_names_every_seed_error_code() {
        let text = document().to_string();
        for code in [
            65536038, 65536821, 65536822, 65536824, 65536828, 65536834, 65536852, 65536870,
            65536871, 65536921, 66060338, 66060339, 66060340, 65536843, 65536845, 65536846,
        ] {
            assert!(text.contains(&code.to_string()), "{code}");
        }
    }
}
