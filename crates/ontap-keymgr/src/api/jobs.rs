//! `/api/cluster/jobs`: ONTAP's asynchronous operations, and the operations that run as jobs
//! (`POST /api/security/key-managers/{uuid}/restore` and `.../migrate`). An operation answers 202 with its job's
//! link, or — when `return_timeout` gives it time and it ends within it — the job's outcome:
//! 200 with the job on success, ONTAP's error envelope on failure.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::domain::Error;
use crate::domain::jobs::{Outcome, wait_for};
use crate::domain::keys::RestoreFilter;
use crate::domain::model::{Job, JobState};

use super::AppState;
use super::body::Body;
use super::envelope::{hal_json, self_link};
use super::error::{ApiError, ApiResult};
use super::listing::{Pairs, parse, respond_collection, respond_instance};
use super::query::{Field, Schema, Type};

pub const JOB_SCHEMA: Schema = Schema {
    fields: &[
        ("uuid", Type::String),
        ("description", Type::String),
        ("state", Type::String),
        ("message", Type::String),
        ("code", Type::Integer),
        ("start_time", Type::String),
        ("end_time", Type::String),
        ("error.code", Type::String),
        ("error.message", Type::String),
    ],
    expensive: &[],
    keys: &["uuid"],
    path_params: &[],
    collection_default: &[],
    arrays: &[],
};

/// What a migration's body names: the destination key manager.
pub const MIGRATE_BODY: &[Field] = &[("uuid", Type::String)];

/// What the restore's body may name: the keys to restore, all of them when none.
pub const RESTORE_BODY: &[Field] = &[
    ("key_id", Type::String),
    ("key_server", Type::String),
    ("key_tag", Type::String),
];

const JOBS_PATH: &str = "/api/cluster/jobs";

fn job_href(uuid: &str) -> String {
    format!("{JOBS_PATH}/{uuid}")
}

fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn job_json(job: &Job) -> Value {
    let mut record = json!({
        "uuid": job.uuid,
        "description": job.description,
        "state": job.state.as_str(),
        "message": job.message,
        "code": job.code,
        "start_time": rfc3339(job.start_time),
        "_links": self_link(&job_href(&job.uuid)),
    });
    if let Some(end) = job.end_time {
        record["end_time"] = rfc3339(end).into();
    }
    // A failed job carries ONTAP's error object too, its code a string as in error envelopes.
    if job.state == JobState::Failure {
        record["error"] = json!({ "code": job.code.to_string(), "message": job.message });
    }
    record
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &JOB_SCHEMA)?;
    let records = state
        .service
        .jobs
        .jobs()
        .await?
        .iter()
        .map(job_json)
        .collect();
    Ok(respond_collection(&query, records, JOBS_PATH))
}

pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
) -> ApiResult<Response> {
    let query = parse(&pairs, &JOB_SCHEMA)?;
    let job = state.service.jobs.job(&uuid).await?;
    Ok(respond_instance(&query, job_json(&job)))
}

/// ONTAP's answer to an operation that became a job: 202 with the job's link while it runs,
/// `done` with the job when it succeeded within `return_timeout`, its error when it failed;
/// `location` names what it makes.
pub async fn answer(
    job: Job,
    outcome: Outcome,
    return_timeout: u64,
    done: StatusCode,
    location: Option<&str>,
) -> ApiResult<Response> {
    let ended = match return_timeout {
        0 => None,
        seconds => wait_for(outcome, seconds).await,
    };
    let mut response = match ended {
        None => hal_json(
            StatusCode::ACCEPTED,
            &json!({ "job": { "uuid": job.uuid, "_links": self_link(&job_href(&job.uuid)) } }),
        ),
        Some(job) if job.state == JobState::Success => {
            hal_json(done, &json!({ "job": job_json(&job) }))
        }
        Some(job) => {
            return Err(ApiError(Error::JobFailed {
                code: job.code,
                message: job.message,
            }));
        }
    };
    if let Some(value) = location.and_then(|l| axum::http::HeaderValue::from_str(l).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    Ok(response)
}

pub async fn restore(
    State(state): State<AppState>,
    Path(key_manager): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let return_timeout = super::return_timeout(&pairs)?;
    let mut body = match bytes.is_empty() {
        true => Body::parse(b"{}")?,
        false => Body::parse(&bytes)?,
    };
    body.allow_in(RESTORE_BODY)?;
    let filter = RestoreFilter {
        key_id: body.string("key_id")?,
        key_server: body.string("key_server")?,
        key_tag: body.string("key_tag")?,
    };
    let (job, outcome) = state
        .service
        .restore_keys(&super::path_id(&key_manager)?, filter)
        .await?;
    answer(job, outcome, return_timeout, StatusCode::OK, None).await
}

pub async fn migrate(
    State(state): State<AppState>,
    Path(source): Path<String>,
    QueryParams(pairs): QueryParams<Pairs>,
    bytes: Bytes,
) -> ApiResult<Response> {
    super::return_records(&pairs)?;
    let return_timeout = super::return_timeout(&pairs)?;
    let mut body = Body::parse(&bytes)?;
    body.allow_in(MIGRATE_BODY)?;
    let destination = body
        .string("uuid")?
        .ok_or_else(|| Error::MissingValue("uuid".into()))?;
    let destination =
        crate::domain::ids::Id::parse(&destination).ok_or_else(|| Error::InvalidValue {
            field: "uuid".into(),
            message: format!("There is no key manager {destination}."),
        })?;
    let (job, outcome) = state
        .service
        .migrate_keys(&super::path_id(&source)?, &destination)
        .await?;
    answer(job, outcome, return_timeout, StatusCode::OK, None).await
}
