//! `GET /api/cluster` and `GET /api/cluster/nodes`: the cluster the service presents.

use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::cluster::{Cluster, Node};

use super::AppState;
use super::envelope::self_link;
use super::error::ApiResult;
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Schema, Type};

pub const CLUSTER_SCHEMA: Schema = Schema {
    fields: &[
        ("name", Type::String),
        ("uuid", Type::String),
        ("version.full", Type::String),
        ("version.generation", Type::Integer),
        ("version.major", Type::Integer),
        ("version.minor", Type::Integer),
        ("metrocluster.configured", Type::Boolean),
    ],
    expensive: &[],
    keys: &[],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

pub const NODE_SCHEMA: Schema = Schema {
    fields: &[("uuid", Type::String), ("name", Type::String)],
    expensive: &[],
    keys: &["uuid", "name"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

pub fn cluster_json(cluster: &Cluster) -> Value {
    json!({
        "name": cluster.name,
        "uuid": cluster.uuid,
        "version": {
            "full": cluster.full_version(),
            "generation": cluster.version.generation,
            "major": cluster.version.major,
            "minor": cluster.version.minor,
        },
        "metrocluster": { "configured": cluster.metrocluster },
        "_links": self_link("/api/cluster"),
    })
}

pub fn node_ref(node: &Node) -> Value {
    json!({
        "name": node.name,
        "uuid": node.uuid,
        "_links": self_link(&format!("/api/cluster/nodes/{}", node.uuid)),
    })
}

pub async fn get_cluster(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &CLUSTER_SCHEMA)?;
    Ok(respond_instance(
        &query,
        cluster_json(&state.service.cluster),
    ))
}

pub async fn list_nodes(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &NODE_SCHEMA)?;
    let records = state.service.cluster.nodes.iter().map(node_ref).collect();
    Ok(respond_collection(&query, records, "/api/cluster/nodes"))
}
