//! The `jobs` table: ONTAP's jobs, kept a while after they end.

use rusqlite::{Connection, params};

use super::{SqlResultExt, corrupt};
use crate::domain::model::{Job, JobState};
use crate::store::StoreResult;

pub(super) fn save_job(connection: &Connection, job: &Job) -> StoreResult<()> {
    connection
        .execute(
            "INSERT INTO jobs
                 (uuid, description, state, message, code, start_time, end_time, heartbeat)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (uuid) DO UPDATE SET description = ?2, state = ?3, message = ?4,
                 code = ?5, start_time = ?6, end_time = ?7, heartbeat = ?8",
            params![
                job.uuid,
                job.description,
                job.state.as_str(),
                job.message,
                i64::try_from(job.code).unwrap_or(i64::MAX),
                job.start_time,
                job.end_time,
                job.heartbeat
            ],
        )
        .db()?;
    Ok(())
}

pub(super) fn list_jobs(connection: &Connection) -> StoreResult<Vec<Job>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT uuid, description, state, message, code, start_time, end_time, heartbeat
             FROM jobs ORDER BY start_time, uuid",
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
                row.get::<_, i64>(7)?,
            ))
        })
        .db()?;
    rows.map(|row| {
        let (uuid, description, state, message, code, start_time, end_time, heartbeat) =
            row.db()?;
        Ok(Job {
            uuid,
            description,
            state: JobState::parse(&state).ok_or_else(|| corrupt("a job's state"))?,
            message,
            code: u64::try_from(code).map_err(|_| corrupt("a job's code"))?,
            start_time,
            end_time,
            heartbeat,
        })
    })
    .collect()
}

pub(super) fn fail_unfinished_jobs(
    connection: &Connection,
    stale_before: i64,
    message: &str,
    code: u64,
    now: i64,
) -> StoreResult<usize> {
    connection
        .execute(
            "UPDATE jobs SET state = 'failure', message = ?2, code = ?3, end_time = ?4
             WHERE state IN ('queued', 'running') AND heartbeat < ?1",
            params![
                stale_before,
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
