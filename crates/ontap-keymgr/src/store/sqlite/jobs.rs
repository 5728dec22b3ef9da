//! The `jobs` table: ONTAP's jobs, kept a while after they end.

use rusqlite::{Connection, params};

use super::{SqlResultExt, corrupt};
use crate::domain::model::{Job, JobState};
use crate::store::StoreResult;

pub(super) fn save_job(connection: &Connection, job: &Job) -> StoreResult<()> {
    connection
        .execute(
            "INSERT INTO jobs (uuid, description, state, message, code, start_time, end_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (uuid) DO UPDATE SET description = ?2, state = ?3, message = ?4,
                 code = ?5, start_time = ?6, end_time = ?7",
            params![
                job.uuid,
                job.description,
                job.state.as_str(),
                job.message,
                i64::try_from(job.code).unwrap_or(i64::MAX),
                job.start_time,
                job.end_time
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn list_jobs(connection: &Connection) -> StoreResult<Vec<Job>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT uuid, description, state, message, code, start_time, end_time FROM jobs
             ORDER BY start_time, uuid",
        )
        .db()?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, Option<i64>>(6)?,
            ))
        })
        .db()?;
    rows.map(|row| {
        let (uuid, description, state, message, code, start_time, end_time) = row.db()?;
        Ok(Job {
            uuid,
            description,
            state: JobState::parse(&state).ok_or_else(|| corrupt("a job's state"))?,
            message,
            code: u64::try_from(code).map_err(|_| corrupt("a job's code"))?,
            start_time,
            end_time,
        })
    })
    .collect()
}

pub(super) fn fail_unfinished_jobs(
    connection: &Connection,
    started_before: i64,
    message: &str,
    code: u64,
    now: i64,
) -> StoreResult<usize> {
    connection
        .execute(
            "UPDATE jobs SET state = 'failure', message = ?2, code = ?3, end_time = ?4
             WHERE state IN ('queued', 'running') AND start_time < ?1",
            params![
                started_before,
                message,
                i64::try_from(code).unwrap_or(i64::MAX),
                now
            ],
        )
        .db()
}

pub(super) fn prune_jobs(
    connection: &Connection,
    ended_before: i64,
    keep: usize,
) -> StoreResult<()> {
    connection
        .execute(
            "DELETE FROM jobs WHERE end_time IS NOT NULL AND (end_time < ?1 OR uuid IN (
                 SELECT uuid FROM jobs WHERE end_time IS NOT NULL
                 ORDER BY end_time DESC, uuid DESC LIMIT -1 OFFSET ?2))",
            params![ended_before, super::to_i64(keep)?],
        )
        .db()?;
    Ok(())
}
