//! The query engine's tests: parsing, filters, sorting, paging, projection.

use super::filter::{compare_text, wildcard_matches};
use super::*;
use serde_json::{Map, json};

const KEY_SERVERS: Schema = Schema {
    fields: &[
        ("server", Type::String),
        ("timeout", Type::Integer),
        ("username", Type::String),
        ("secondary_key_servers", Type::String),
        ("create_remove_timeout", Type::Integer),
    ],
    expensive: &[
        ("connectivity.cluster_availability", Type::String),
        ("connectivity.node_states.node.name", Type::String),
        ("connectivity.node_states.node.uuid", Type::String),
        ("connectivity.node_states.state", Type::String),
    ],
    keys: &["server"],
    path_params: &["uuid"],
    collection_default: &[],
    arrays: &[],
};

const KEY_MANAGERS: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("scope", Type::String),
        ("svm.name", Type::String),
        ("svm.uuid", Type::String),
        ("external.client_certificate.uuid", Type::String),
        ("external.client_certificate.name", Type::String),
        ("external.server_ca_certificates.uuid", Type::String),
        ("external.server_ca_certificates.name", Type::String),
        ("external.servers.server", Type::String),
        ("external.servers.timeout", Type::Integer),
        ("external.servers.username", Type::String),
        ("external.servers.secondary_key_servers", Type::String),
        ("onboard.enabled", Type::String),
        ("onboard.key_backup", Type::String),
    ],
    expensive: &[
        ("status.code", Type::Integer),
        ("status.message", Type::String),
    ],
    keys: &["uuid"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn query(schema: &Schema, list: &[(&str, &str)]) -> Query {
    parse(&pairs(list), schema).expect("valid query")
}

fn error(schema: &Schema, list: &[(&str, &str)]) -> QueryError {
    parse(&pairs(list), schema).expect_err("invalid query")
}

fn key_server(server: &str, timeout: i64, secondaries: &[&str]) -> Value {
    json!({
        "server": server,
        "timeout": timeout,
        "username": format!("user-{server}"),
        "secondary_key_servers": secondaries,
        "create_remove_timeout": 60,
        "connectivity": {
            "cluster_availability": true,
            "node_states": [{"node": {"name": "node1", "uuid": "n-1"}, "state": "available"}]
        },
        "_links": {"self": {"href": format!("/api/x/{server}")}}
    })
}

fn key_servers() -> Vec<Value> {
    vec![
        key_server("ks1.example.com:5696", 10, &["ks1b.example.com"]),
        key_server("KS2.example.com:5696", 25, &[]),
        key_server(
            "ks10.other.net:5696",
            5,
            &["backup.other.net", "ks1b.example.com"],
        ),
        json!({"server": "ks3.example.com:5696", "username": null}),
    ]
}

fn key_manager(uuid: &str, svm: Option<&str>, servers: &[(&str, i64)]) -> Value {
    let servers: Vec<Value> = servers
        .iter()
        .map(|(server, timeout)| {
            json!({"server": server, "timeout": timeout, "username": "admin",
                   "secondary_key_servers": [], "_links": {"self": {"href": "/s"}}})
        })
        .collect();
    let scope = if svm.is_some() { "svm" } else { "cluster" };
    let mut record = json!({
        "uuid": uuid,
        "scope": scope,
        "external": {
            "client_certificate": {"uuid": "c-1", "name": "client"},
            "server_ca_certificates": [{"uuid": "ca-1", "name": "ca"}],
            "servers": servers
        },
        "onboard": {"enabled": false},
        "status": {"code": 65537300, "message": "ok"},
        "_links": {"self": {"href": format!("/api/security/key-managers/{uuid}")}}
    });
    if let Some(name) = svm {
        record["svm"] = json!({"name": name, "uuid": format!("svm-{name}"), "_links": {"self": {"href": "/svm"}}});
    }
    record
}

fn servers_of(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record["server"].as_str().unwrap_or("?"))
        .collect()
}

fn filter_servers(list: &[(&str, &str)]) -> Vec<String> {
    let records = query(&KEY_SERVERS, list).filter(key_servers());
    servers_of(&records).iter().map(|s| s.to_string()).collect()
}

// --- parsing -------------------------------------------------------------------------

#[test]
fn defaults_without_parameters() {
    let query = query(&KEY_SERVERS, &[]);
    assert!(query.return_records);
    assert_eq!(query.max_records, None);
    assert_eq!(query.offset, 0);
    assert_eq!(query.return_timeout, None);
    assert!(!query.ignore_unknown_fields);
    assert_eq!(query.filter(key_servers()).len(), 4);
}

#[test]
fn reads_reserved_parameters() {
    let query = query(
        &KEY_SERVERS,
        &[
            ("max_records", "2"),
            ("return_records", "False"),
            ("return_timeout", "120"),
            ("ignore_unknown_fields", "TRUE"),
            ("start.offset", "4"),
            ("start", "whatever"),
            ("pretty", ""),
            ("uuid", "path-param"),
        ],
    );
    assert_eq!(query.max_records, Some(2));
    assert!(!query.return_records);
    assert_eq!(query.return_timeout, Some(120));
    assert!(query.ignore_unknown_fields);
    assert_eq!(query.offset, 4);
    assert!(query.pretty);
}

#[test]
fn booleans_accept_python_spelling() {
    for (text, expected) in [
        ("true", true),
        ("True", true),
        ("false", false),
        ("False", false),
    ] {
        assert_eq!(
            query(&KEY_SERVERS, &[("return_records", text)]).return_records,
            expected
        );
    }
}

#[test]
fn refuses_bad_reserved_values() {
    let cases = [
        ("max_records", "abc"),
        ("max_records", "-1"),
        ("max_records", "1.5"),
        ("return_records", "maybe"),
        ("return_timeout", "500"),
        ("return_timeout", "-1"),
        ("ignore_unknown_fields", "yes"),
        ("start.offset", "x"),
    ];
    for (field, value) in cases {
        assert_eq!(
            error(&KEY_SERVERS, &[(field, value)]),
            QueryError::InvalidValue {
                field: field.into(),
                value: value.into()
            },
            "{field}={value}"
        );
    }
}

#[test]
fn unknown_filter_is_an_unexpected_argument() {
    assert_eq!(
        error(&KEY_SERVERS, &[("bogus", "1")]),
        QueryError::UnknownField("bogus".into())
    );
    // A parent is not a filterable field.
    assert_eq!(
        error(&KEY_MANAGERS, &[("svm", "vs0")]),
        QueryError::UnknownField("svm".into())
    );
    assert_eq!(
        QueryError::UnknownField("bogus".into()).to_string(),
        "Unexpected argument \"bogus\"."
    );
}

#[test]
fn unknown_fields_name_is_invalid_unless_ignored() {
    assert_eq!(
        error(&KEY_SERVERS, &[("fields", "server,bogus")]),
        QueryError::InvalidFieldsValue("bogus".into())
    );
    assert_eq!(
        QueryError::InvalidFieldsValue("bogus".into()).to_string(),
        "The value \"bogus\" is invalid for field \"fields\""
    );
    // ignore_unknown_fields may come after fields.
    let query = query(
        &KEY_SERVERS,
        &[
            ("fields", "timeout,bogus"),
            ("ignore_unknown_fields", "true"),
        ],
    );
    let projected = query.project(key_servers()[0].clone(), Projection::Keys);
    assert_eq!(
        projected,
        json!({"server": "ks1.example.com:5696", "timeout": 10,
               "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
    );
}

#[test]
fn fields_accepts_parents_and_expensive_names() {
    for name in [
        "svm",
        "external",
        "external.servers",
        "status",
        "status.code",
        "onboard.enabled",
    ] {
        assert!(
            parse(&pairs(&[("fields", name)]), &KEY_MANAGERS).is_ok(),
            "{name}"
        );
    }
    for name in [
        "sv",
        "svm.nam",
        "svm.name.x",
        "external.servers.server.port",
    ] {
        assert_eq!(
            error(&KEY_MANAGERS, &[("fields", name)]),
            QueryError::InvalidFieldsValue(name.into())
        );
    }
}

#[test]
fn order_by_syntax() {
    assert!(
        parse(
            &pairs(&[("order_by", "server asc, timeout DESC")]),
            &KEY_SERVERS
        )
        .is_ok()
    );
    assert!(parse(&pairs(&[("$orderBy", "timeout")]), &KEY_SERVERS).is_ok());
    assert_eq!(
        error(&KEY_SERVERS, &[("order_by", "server sideways")]),
        QueryError::InvalidValue {
            field: "order_by".into(),
            value: "server sideways".into()
        }
    );
    assert_eq!(
        error(&KEY_SERVERS, &[("order_by", "server asc desc")]),
        QueryError::InvalidValue {
            field: "order_by".into(),
            value: "server asc desc".into()
        }
    );
    assert_eq!(
        error(&KEY_SERVERS, &[("order_by", "bogus desc")]),
        QueryError::UnknownField("bogus".into())
    );
}

#[test]
fn odd_inputs_are_accepted_or_refused_as_stated() {
    let odd = [
        "", "|", "||", "!", "!!", "*", "**", "..", "<", ">=", "<=..", "ü*ß", "*ǅ*", "\u{0}", "!*|",
    ];
    for value in odd {
        // Any text is a filter: it matches what it matches, and is never refused.
        for field in [
            "server",
            "timeout",
            "secondary_key_servers",
            "connectivity.node_states.state",
        ] {
            let parsed = parse(&pairs(&[(field, value)]), &KEY_SERVERS);
            let query = parsed.unwrap_or_else(|e| panic!("{field}={value:?} refused: {e:?}"));
            assert!(query.filter(key_servers()).len() <= key_servers().len());
        }
        let accepted = |name: &str| parse(&pairs(&[(name, value)]), &KEY_SERVERS).is_ok();
        // `fields` takes names, `*` and `**`; empty means the default.
        assert_eq!(
            accepted("fields"),
            matches!(value, "" | "*" | "**"),
            "fields={value:?}"
        );
        // `order_by` takes field names; empty means no order.
        assert_eq!(accepted("order_by"), value.is_empty(), "order_by={value:?}");
        // `max_records` takes a number only.
        assert!(!accepted("max_records"), "max_records={value:?}");
    }
    let page = query(
        &KEY_SERVERS,
        &[
            ("max_records", "18446744073709551615"),
            ("start.offset", "18446744073709551615"),
        ],
    )
    .apply_collection(key_servers());
    assert!(page.records.is_empty() && page.next_offset.is_none());
}

// --- filters -------------------------------------------------------------------------

#[test]
fn equality_ignores_case() {
    assert_eq!(
        filter_servers(&[("server", "ks2.EXAMPLE.com:5696")]),
        ["KS2.example.com:5696"]
    );
    assert!(filter_servers(&[("server", "ks2.example.com")]).is_empty());
}

#[test]
fn wildcards_match_anywhere() {
    assert_eq!(
        filter_servers(&[("server", "ks1*")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("server", "*EXAMPLE*")]),
        [
            "ks1.example.com:5696",
            "KS2.example.com:5696",
            "ks3.example.com:5696"
        ]
    );
    assert_eq!(
        filter_servers(&[("server", "*.net:5696")]),
        ["ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("server", "k*1*other*")]),
        ["ks10.other.net:5696"]
    );
    assert_eq!(filter_servers(&[("server", "*")]).len(), 4);
    assert_eq!(
        filter_servers(&[("timeout", "2*")]),
        ["KS2.example.com:5696"]
    );
}

#[test]
fn wildcard_pieces_do_not_overlap() {
    assert!(wildcard_matches("ab*ba", "abba"));
    assert!(!wildcard_matches("ab*ba", "aba"));
    assert!(wildcard_matches("a*a*a", "aaa"));
    assert!(!wildcard_matches("a*a*a", "aa"));
}

#[test]
fn numeric_comparisons() {
    assert_eq!(
        filter_servers(&[("timeout", "<10")]),
        ["ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", "<=10")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", ">10")]),
        ["KS2.example.com:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", ">=10")]),
        ["ks1.example.com:5696", "KS2.example.com:5696"]
    );
    // Numerically, 5 < 10 although "5" > "10" as text.
    assert_eq!(
        filter_servers(&[("timeout", "5..10")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", "10")]),
        ["ks1.example.com:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", "10.0")]),
        ["ks1.example.com:5696"]
    );
}

#[test]
fn open_ranges() {
    assert_eq!(
        filter_servers(&[("timeout", "20..")]),
        ["KS2.example.com:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", "..5")]),
        ["ks10.other.net:5696"]
    );
}

#[test]
fn string_comparisons_fall_back_to_text() {
    assert_eq!(
        filter_servers(&[("server", "<ks1.example.com:5696")]),
        Vec::<String>::new()
    );
    assert_eq!(
        filter_servers(&[("server", ">=ks2")]),
        ["KS2.example.com:5696", "ks3.example.com:5696"]
    );
    assert_eq!(
        filter_servers(&[("server", "ks1..ks2")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
    // Text and number: compared as text.
    assert!(filter_servers(&[("timeout", ">abc")]).is_empty());
    assert!(compare_text("9", "10").is_lt());
    assert!(compare_text("b", "A").is_gt());
    assert!(compare_text("18446744073709551615", "18446744073709551614").is_gt());
}

#[test]
fn string_equality_is_not_numeric() {
    let record = json!({"server": "010"});
    let query = query(&KEY_SERVERS, &[("server", "10")]);
    assert!(query.filter(vec![record.clone()]).is_empty());
    let query = parse(&pairs(&[("server", "010")]), &KEY_SERVERS).expect("valid");
    assert_eq!(query.filter(vec![record]).len(), 1);
}

#[test]
fn or_and_not() {
    assert_eq!(
        filter_servers(&[("server", "ks1*|ks3*")]),
        [
            "ks1.example.com:5696",
            "ks10.other.net:5696",
            "ks3.example.com:5696"
        ]
    );
    assert_eq!(
        filter_servers(&[("server", "!ks1*")]),
        ["KS2.example.com:5696", "ks3.example.com:5696"]
    );
    // `!a|b` is not-a OR b.
    assert_eq!(
        filter_servers(&[("server", "!ks1*|ks10*")]),
        [
            "KS2.example.com:5696",
            "ks10.other.net:5696",
            "ks3.example.com:5696"
        ]
    );
    assert_eq!(
        filter_servers(&[("timeout", "!10")]),
        ["KS2.example.com:5696", "ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", "!<10")]),
        ["ks1.example.com:5696", "KS2.example.com:5696"]
    );
}

#[test]
fn several_filters_are_anded() {
    assert_eq!(
        filter_servers(&[("server", "ks*"), ("timeout", ">=10")]),
        ["ks1.example.com:5696", "KS2.example.com:5696"]
    );
    assert_eq!(
        filter_servers(&[("timeout", ">1"), ("timeout", "<20")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
}

#[test]
fn null_matches_unset_fields() {
    assert_eq!(
        filter_servers(&[("timeout", "null")]),
        ["ks3.example.com:5696"]
    );
    assert_eq!(filter_servers(&[("timeout", "")]), ["ks3.example.com:5696"]);
    // username is an explicit null on ks3.
    assert_eq!(
        filter_servers(&[("username", "NULL")]),
        ["ks3.example.com:5696"]
    );
    assert_eq!(filter_servers(&[("timeout", "!null")]).len(), 3);
    // An empty array is unset too.
    assert_eq!(
        filter_servers(&[("secondary_key_servers", "null")]),
        ["KS2.example.com:5696", "ks3.example.com:5696"]
    );
    // Unset fields never match a value, even a negated one.
    assert!(!filter_servers(&[("timeout", "!10")]).contains(&"ks3.example.com:5696".to_string()));
    assert_eq!(
        filter_servers(&[("timeout", "null|25")]),
        ["KS2.example.com:5696", "ks3.example.com:5696"]
    );
}

#[test]
fn arrays_of_strings_match_any_element() {
    assert_eq!(
        filter_servers(&[("secondary_key_servers", "ks1b.example.com")]),
        ["ks1.example.com:5696", "ks10.other.net:5696"]
    );
    assert_eq!(
        filter_servers(&[("secondary_key_servers", "backup*")]),
        ["ks10.other.net:5696"]
    );
    // Negated: the element is not among them (and the array is not empty).
    assert_eq!(
        filter_servers(&[("secondary_key_servers", "!backup*")]),
        ["ks1.example.com:5696"]
    );
}

#[test]
fn paths_through_arrays_of_objects() {
    let records = vec![
        key_manager("km-1", None, &[("ks1:5696", 10), ("ks2:5696", 20)]),
        key_manager("km-2", Some("vs0"), &[("ks3:5696", 30)]),
        key_manager("km-3", Some("vs1"), &[]),
    ];
    let uuids = |list: &[(&str, &str)]| -> Vec<String> {
        query(&KEY_MANAGERS, list)
            .filter(records.clone())
            .iter()
            .map(|r| r["uuid"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(uuids(&[("external.servers.server", "ks2:5696")]), ["km-1"]);
    assert_eq!(
        uuids(&[("external.servers.server", "ks*")]),
        ["km-1", "km-2"]
    );
    assert_eq!(
        uuids(&[("external.servers.timeout", ">15")]),
        ["km-1", "km-2"]
    );
    assert_eq!(uuids(&[("external.servers.server", "null")]), ["km-3"]);
    assert_eq!(uuids(&[("svm.name", "VS0")]), ["km-2"]);
    assert_eq!(uuids(&[("svm.name", "null")]), ["km-1"]);
    assert_eq!(
        uuids(&[("scope", "cluster|svm"), ("svm.name", "!vs0")]),
        ["km-3"]
    );
    assert_eq!(
        uuids(&[("external.server_ca_certificates.name", "ca")]).len(),
        3
    );
    assert_eq!(uuids(&[("status.code", "65537300")]).len(), 3);
}

#[test]
fn booleans_match_true_and_false() {
    let records = vec![
        json!({"uuid": "a", "onboard": {"enabled": true}}),
        json!({"uuid": "b", "onboard": {"enabled": false}}),
    ];
    for (value, expected) in [("true", "a"), ("True", "a"), ("FALSE", "b"), ("false", "b")] {
        let found = query(&KEY_MANAGERS, &[("onboard.enabled", value)]).filter(records.clone());
        assert_eq!(found.len(), 1, "{value}");
        assert_eq!(found[0]["uuid"], expected);
    }
    assert!(
        query(&KEY_MANAGERS, &[("onboard.enabled", "yes")])
            .filter(records.clone())
            .is_empty()
    );
    assert_eq!(
        query(&KEY_MANAGERS, &[("onboard.enabled", "!true")])
            .filter(records)
            .len(),
        1
    );
}

// --- sorting -------------------------------------------------------------------------

#[test]
fn sorts_ascending_by_default_ignoring_case() {
    let mut records = key_servers();
    query(&KEY_SERVERS, &[("order_by", "server")]).sort(&mut records);
    assert_eq!(
        servers_of(&records),
        [
            "ks1.example.com:5696",
            "ks10.other.net:5696",
            "KS2.example.com:5696",
            "ks3.example.com:5696"
        ]
    );
}

#[test]
fn sorts_numbers_numerically_with_missing_first() {
    let mut records = key_servers();
    query(&KEY_SERVERS, &[("order_by", "timeout")]).sort(&mut records);
    assert_eq!(
        servers_of(&records),
        [
            "ks3.example.com:5696",
            "ks10.other.net:5696",
            "ks1.example.com:5696",
            "KS2.example.com:5696"
        ]
    );
    query(&KEY_SERVERS, &[("order_by", "timeout desc")]).sort(&mut records);
    assert_eq!(
        servers_of(&records),
        [
            "KS2.example.com:5696",
            "ks1.example.com:5696",
            "ks10.other.net:5696",
            "ks3.example.com:5696"
        ]
    );
}

#[test]
fn sorts_by_several_keys_stably() {
    let mut records = vec![
        json!({"server": "b", "timeout": 1, "username": "x"}),
        json!({"server": "a", "timeout": 2, "username": "y"}),
        json!({"server": "c", "timeout": 1, "username": "z"}),
        json!({"server": "d", "timeout": 2, "username": "w"}),
        json!({"server": "e", "timeout": 1, "username": "x"}),
    ];
    query(&KEY_SERVERS, &[("order_by", "timeout desc,username")]).sort(&mut records);
    assert_eq!(servers_of(&records), ["d", "a", "b", "e", "c"]);
    // order_by given twice: keys append.
    query(
        &KEY_SERVERS,
        &[("order_by", "username"), ("order_by", "server desc")],
    )
    .sort(&mut records);
    assert_eq!(servers_of(&records), ["d", "e", "b", "a", "c"]);
}

#[test]
fn sorts_mixed_types_without_panicking() {
    let mut records = vec![
        json!({"server": "s", "timeout": "text"}),
        json!({"server": "n", "timeout": 3}),
        json!({"server": "b", "timeout": true}),
        json!({"server": "m"}),
        json!({"server": "o", "timeout": {"x": 1}}),
        json!({"server": "f", "timeout": 1.5}),
    ];
    query(&KEY_SERVERS, &[("order_by", "timeout")]).sort(&mut records);
    assert_eq!(servers_of(&records), ["m", "b", "f", "n", "s", "o"]);
}

// --- projection ----------------------------------------------------------------------

#[test]
fn collection_default_is_keys_and_links() {
    let query = query(&KEY_SERVERS, &[]);
    assert_eq!(
        query.project(key_servers()[0].clone(), Projection::Keys),
        json!({"server": "ks1.example.com:5696",
               "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
    );
}

#[test]
fn instance_default_is_all_normal_fields() {
    let query = query(&KEY_SERVERS, &[]);
    let projected = query.project(key_servers()[0].clone(), Projection::AllNormal);
    let mut expected = key_servers()[0].clone();
    if let Some(members) = expected.as_object_mut() {
        members.remove("connectivity");
    }
    assert_eq!(projected, expected);
}

#[test]
fn star_is_normal_fields_and_double_star_adds_expensive() {
    let record = key_servers()[0].clone();
    let star = query(&KEY_SERVERS, &[("fields", "*")]).project(record.clone(), Projection::Keys);
    assert!(star.get("connectivity").is_none());
    assert_eq!(star["timeout"], 10);
    assert_eq!(star["secondary_key_servers"], json!(["ks1b.example.com"]));
    let all = query(&KEY_SERVERS, &[("fields", "**")]).project(record.clone(), Projection::Keys);
    assert_eq!(all, record);
}

#[test]
fn named_fields_keep_keys_and_links() {
    let query = query(&KEY_SERVERS, &[("fields", "timeout")]);
    assert_eq!(
        query.project(key_servers()[1].clone(), Projection::AllNormal),
        json!({"server": "KS2.example.com:5696", "timeout": 25,
               "_links": {"self": {"href": "/api/x/KS2.example.com:5696"}}})
    );
}

#[test]
fn several_fields_parameters_merge() {
    let query = query(
        &KEY_SERVERS,
        &[("fields", "timeout"), ("fields", "username")],
    );
    let projected = query.project(key_servers()[0].clone(), Projection::Keys);
    assert_eq!(projected["timeout"], 10);
    assert_eq!(projected["username"], "user-ks1.example.com:5696");
    assert!(projected.get("create_remove_timeout").is_none());
}

#[test]
fn expensive_sub_field_alone() {
    let query = query(
        &KEY_SERVERS,
        &[("fields", "connectivity.node_states.state")],
    );
    assert_eq!(
        query.project(key_servers()[0].clone(), Projection::Keys),
        json!({"server": "ks1.example.com:5696",
               "connectivity": {"node_states": [{"state": "available"}]},
               "_links": {"self": {"href": "/api/x/ks1.example.com:5696"}}})
    );
}

#[test]
fn parent_keeps_whole_sub_object_and_leaf_keeps_only_itself() {
    let record = key_manager("km-1", Some("vs0"), &[("ks1:5696", 10)]);
    let whole =
        query(&KEY_MANAGERS, &[("fields", "svm")]).project(record.clone(), Projection::Keys);
    assert_eq!(whole["svm"], record["svm"]);
    let leaf =
        query(&KEY_MANAGERS, &[("fields", "svm.name")]).project(record.clone(), Projection::Keys);
    assert_eq!(
        leaf["svm"],
        json!({"name": "vs0", "_links": {"self": {"href": "/svm"}}})
    );
    assert_eq!(leaf["uuid"], "km-1");
    assert!(leaf.get("scope").is_none());
}

#[test]
fn fields_through_arrays_project_each_element() {
    let record = key_manager("km-1", None, &[("ks1:5696", 10), ("ks2:5696", 20)]);
    let projected = query(&KEY_MANAGERS, &[("fields", "external.servers.server")])
        .project(record.clone(), Projection::Keys);
    assert_eq!(
        projected,
        json!({
            "uuid": "km-1",
            "external": {"servers": [
                {"server": "ks1:5696", "_links": {"self": {"href": "/s"}}},
                {"server": "ks2:5696", "_links": {"self": {"href": "/s"}}}
            ]},
            "_links": {"self": {"href": "/api/security/key-managers/km-1"}}
        })
    );
}

#[test]
fn missing_sub_object_leaves_nothing_behind() {
    let record = json!({"uuid": "km-1", "svm": {"uuid": "s"}});
    let projected =
        query(&KEY_MANAGERS, &[("fields", "svm.name")]).project(record.clone(), Projection::Keys);
    assert_eq!(projected, json!({"uuid": "km-1"}));
}

#[test]
fn expensive_fields_dropped_from_star_and_kept_when_named() {
    let record = key_manager("km-1", None, &[]);
    let star = query(&KEY_MANAGERS, &[("fields", "*")]).project(record.clone(), Projection::Keys);
    assert!(star.get("status").is_none());
    assert_eq!(star["onboard"], json!({"enabled": false}));
    let named =
        query(&KEY_MANAGERS, &[("fields", "*,status")]).project(record.clone(), Projection::Keys);
    assert_eq!(named["status"], record["status"]);
    let instance = query(&KEY_MANAGERS, &[]).project(record.clone(), Projection::AllNormal);
    assert!(instance.get("status").is_none());
    assert_eq!(instance["external"], record["external"]);
}

#[test]
fn filtered_fields_are_returned() {
    let query = query(&KEY_SERVERS, &[("timeout", ">1")]);
    let collection = query.apply_collection(key_servers());
    assert_eq!(collection.records[0]["timeout"], 10);
    assert!(collection.records[0].get("username").is_none());
}

#[test]
fn ignored_unknown_fields_still_select_keys_only() {
    let query = query(
        &KEY_SERVERS,
        &[("fields", "bogus"), ("ignore_unknown_fields", "true")],
    );
    let projected = query.project(key_servers()[0].clone(), Projection::AllNormal);
    assert_eq!(projected.as_object().map(Map::len), Some(2));
}

// --- needs ---------------------------------------------------------------------------

#[test]
fn needs_expensive_fields_only_when_requested() {
    assert!(!query(&KEY_SERVERS, &[]).needs("connectivity"));
    assert!(!query(&KEY_SERVERS, &[("fields", "*")]).needs("connectivity"));
    assert!(query(&KEY_SERVERS, &[("fields", "**")]).needs("connectivity"));
    assert!(query(&KEY_SERVERS, &[("fields", "connectivity")]).needs("connectivity"));
    assert!(
        query(&KEY_SERVERS, &[("fields", "connectivity")]).needs("connectivity.node_states.state")
    );
    assert!(
        query(
            &KEY_SERVERS,
            &[("fields", "connectivity.node_states.state")]
        )
        .needs("connectivity")
    );
    assert!(
        query(
            &KEY_SERVERS,
            &[("connectivity.cluster_availability", "true")]
        )
        .needs("connectivity")
    );
    assert!(
        query(
            &KEY_SERVERS,
            &[("order_by", "connectivity.node_states.state")]
        )
        .needs("connectivity")
    );
    assert!(!query(&KEY_SERVERS, &[("fields", "connectivity")]).needs("connectivityx"));
    assert!(query(&KEY_MANAGERS, &[("fields", "status.code")]).needs("status"));
    assert!(!query(&KEY_MANAGERS, &[("fields", "svm")]).needs("status"));
}

// --- paging --------------------------------------------------------------------------

#[test]
fn pages_from_an_offset() {
    let query = query(&KEY_SERVERS, &[("max_records", "2")]);
    let first = query.page(key_servers(), 0);
    assert_eq!(
        servers_of(&first.records),
        ["ks1.example.com:5696", "KS2.example.com:5696"]
    );
    assert_eq!(first.next_offset, Some(2));
    let last = query.page(key_servers(), 2);
    assert_eq!(last.records.len(), 2);
    assert_eq!(last.next_offset, None);
    let beyond = query.page(key_servers(), 10);
    assert!(beyond.records.is_empty());
    assert_eq!(beyond.next_offset, None);
}

#[test]
fn no_max_records_is_one_page_and_zero_has_no_next() {
    let everything = query(&KEY_SERVERS, &[]).page(key_servers(), 0);
    assert_eq!(
        (everything.records.len(), everything.next_offset),
        (4, None)
    );
    let nothing = query(&KEY_SERVERS, &[("max_records", "0")]).page(key_servers(), 0);
    assert_eq!((nothing.records.len(), nothing.next_offset), (0, None));
}

#[test]
fn collection_pages_and_rebuilds_the_next_link() {
    let list = [
        ("fields", "timeout,username"),
        ("server", "*example*|ks10*"),
        ("order_by", "timeout desc"),
        ("max_records", "2"),
    ];
    let first = query(&KEY_SERVERS, &list);
    let page = first.apply_collection(key_servers());
    assert_eq!(
        servers_of(&page.records),
        ["KS2.example.com:5696", "ks1.example.com:5696"]
    );
    assert_eq!(page.num_records, 2);
    assert_eq!(page.next_offset, Some(2));
    assert_eq!(page.records[0]["username"], "user-KS2.example.com:5696");
    let href = first.next_href("/api/security/key-managers/u/key-servers", 2);
    assert_eq!(
        href,
        "/api/security/key-managers/u/key-servers?fields=timeout%2Cusername\
         &server=%2Aexample%2A%7Cks10%2A&order_by=timeout%20desc&max_records=2&start.offset=2"
    );

    // The client follows the link: decode it as axum would and ask again.
    let next_pairs: Vec<(String, String)> = href
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (decode(name), decode(value)))
        .collect();
    let second = parse(&next_pairs, &KEY_SERVERS).expect("valid next link");
    assert_eq!(second.offset, 2);
    let page = second.apply_collection(key_servers());
    assert_eq!(
        servers_of(&page.records),
        ["ks10.other.net:5696", "ks3.example.com:5696"]
    );
    assert_eq!(page.next_offset, None);
    // The paging position is replaced, never repeated.
    assert_eq!(second.next_href("/p", 4).matches("start.offset").count(), 1);
}

#[test]
fn query_string_encodes_spaces_and_reserved_characters() {
    let query = query(
        &KEY_SERVERS,
        &[("username", "a b&c=d"), ("start.offset", "3")],
    );
    assert_eq!(query.to_query_string(&[]), "username=a%20b%26c%3Dd");
    assert_eq!(
        query.to_query_string(&[("start.offset", "9".into())]),
        "username=a%20b%26c%3Dd&start.offset=9"
    );
}

#[test]
fn return_records_false_keeps_the_count() {
    let query = query(
        &KEY_SERVERS,
        &[("return_records", "false"), ("server", "ks1*")],
    );
    let collection = query.apply_collection(key_servers());
    assert!(!query.return_records);
    assert_eq!(collection.num_records, 2);
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[test]
fn a_record_may_leave_out_what_the_answer_does_not_use() {
    let uses =
        |list: &[(&str, &str)], default| query(&KEY_MANAGERS, list).uses("external", default);
    // A collection answers its keys; an instance everything normal.
    assert!(!uses(&[], Projection::Keys));
    assert!(uses(&[], Projection::AllNormal));
    assert!(!uses(&[("fields", "status")], Projection::Keys));
    assert!(!uses(&[("fields", "status")], Projection::AllNormal));
    assert!(uses(&[("fields", "*")], Projection::Keys));
    assert!(uses(
        &[("fields", "external.servers.server")],
        Projection::Keys
    ));
    assert!(uses(&[("fields", "external")], Projection::Keys));
    // Filters and sorting read it even when the answer does not show it.
    assert!(uses(
        &[("external.servers.server", "ks1*")],
        Projection::Keys
    ));
    assert!(uses(
        &[("order_by", "external.client_certificate.name")],
        Projection::Keys
    ));
    assert!(!uses(&[("scope", "svm")], Projection::Keys));
}
