//! The `jobs` table: ONTAP's jobs, kept a while after they end.

use deadpool_postgres::Transaction;

use super::{corrupt, execute, get, rows};
use crate::domain::model::{Job, JobState};
use crate::store::StoreResult;

fn code_of(code: u64) -> i64 {
    i64::try_from(code).unwrap_or(i64::MAX)
}

pub(super) async fn save_job(t: &Transaction<'_>, job: &Job) -> StoreResult<()> {
    execute(
        t,
        "INSERT INTO jobs
             (uuid, description, state, message, code, start_time, end_time, heartbeat)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (uuid) DO UPDATE SET description = $2, state = $3, message = $4,
             code = $5, start_time = $6, end_time = $7, heartbeat = $8",
        &[
            &job.uuid,
            &job.description,
            &job.state.as_str(),
            &job.message,
            &code_of(job.code),
            &job.start_time,
            &job.end_time,
            &job.heartbeat,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_jobs(t: &Transaction<'_>) -> StoreResult<Vec<Job>> {
    let found = rows(
        t,
        "SELECT uuid, description, state, message, code, start_time, end_time, heartbeat
         FROM jobs ORDER BY start_time, uuid",
        &[],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(Job {
                uuid: get(r, 0)?,
                description: get(r, 1)?,
                state: JobState::parse(&get::<String>(r, 2)?)
                    .ok_or_else(|| corrupt("a job's state"))?,
                message: get(r, 3)?,
                code: u64::try_from(get::<i64>(r, 4)?).map_err(|_| corrupt("a job's code"))?,
                start_time: get(r, 5)?,
                end_time: get(r, 6)?,
                heartbeat: get(r, 7)?,
            })
        })
        .collect()
}

pub(super) async fn fail_unfinished_jobs(
    t: &Transaction<'_>,
    stale_before: i64,
    message: &str,
    code: u64,
    now: i64,
) -> StoreResult<usize> {
    let failed = execute(
        t,
        "UPDATE jobs SET state = 'failure', message = $2, code = $3, end_time = $4
         WHERE state IN ('queued', 'running') AND heartbeat < $1",
        &[&stale_before, &message, &code_of(code), &now],
    )
    .await?;
    Ok(usize::try_from(failed).unwrap_or(usize::MAX))
}

pub(super) async fn prune_jobs(
    t: &Transaction<'_>,
    ended_before: i64,
    keep: usize,
) -> StoreResult<()> {
    execute(
        t,
        "DELETE FROM jobs WHERE end_time IS NOT NULL AND (end_time < $1 OR uuid IN (
             SELECT uuid FROM jobs WHERE end_time IS NOT NULL
             ORDER BY end_time DESC, uuid DESC OFFSET $2))",
        &[&ended_before, &i64::try_from(keep).unwrap_or(i64::MAX)],
    )
    .await?;
    Ok(())
}
