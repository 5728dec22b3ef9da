//! The `users` table: API accounts with their password hashes, failed-login counters and locks,
//! shared by every instance.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::{corrupt, execute, get, row, rows};
use crate::domain::model::{Role, User};
use crate::store::{StoreError, StoreResult};

const USER_COLUMNS: &str =
    "SELECT name, role, password_hash, failed_logins, locked_until FROM users";

fn user(row: &Row) -> StoreResult<User> {
    let role: String = get(row, 1)?;
    let failed_logins: i32 = get(row, 3)?;
    Ok(User {
        name: get(row, 0)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(&format!("role {role}")))?,
        password_hash: get(row, 2)?,
        failed_logins: u32::try_from(failed_logins)
            .map_err(|_| corrupt("a negative failed login count"))?,
        locked_until: get(row, 4)?,
    })
}

pub(super) async fn count_users(t: &Transaction<'_>) -> StoreResult<usize> {
    let found = row(t, "SELECT COUNT(*) FROM users", &[]).await?;
    let count: i64 = found.map(|r| get(&r, 0)).transpose()?.unwrap_or(0);
    usize::try_from(count).map_err(|_| corrupt("a negative count"))
}

pub(super) async fn insert_user(t: &Transaction<'_>, user: &User) -> StoreResult<()> {
    let inserted = execute(
        t,
        "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &[&user.name, &user.role.as_str(), &user.password_hash],
    )
    .await?;
    match inserted {
        0 => Err(StoreError::Conflict(format!("user \"{}\"", user.name))),
        _ => Ok(()),
    }
}

pub(super) async fn find_user(t: &Transaction<'_>, name: &str) -> StoreResult<Option<User>> {
    let found = row(t, &format!("{USER_COLUMNS} WHERE name = $1"), &[&name]).await?;
    found.as_ref().map(user).transpose()
}

pub(super) async fn list_users(t: &Transaction<'_>) -> StoreResult<Vec<User>> {
    let found = rows(t, &format!("{USER_COLUMNS} ORDER BY name"), &[]).await?;
    found.iter().map(user).collect()
}

/// Locks the admins first: two instances removing the last two admins at once cannot both see
/// another one left.
pub(super) async fn delete_user(t: &Transaction<'_>, name: &str) -> StoreResult<()> {
    let admins = rows(
        t,
        "SELECT name FROM users WHERE role = 'admin' ORDER BY name FOR UPDATE",
        &[],
    )
    .await?;
    let user = find_user(t, name).await?.ok_or(StoreError::NotFound)?;
    if user.role == Role::Admin && admins.len() <= 1 {
        // The message reads with the error's "... already exists".
        return Err(StoreError::Conflict("no other admin user".into()));
    }
    execute(t, "DELETE FROM users WHERE name = $1", &[&name]).await?;
    Ok(())
}

/// One statement counts the failure and, at the limit, locks: concurrent failures on several
/// instances are all counted, and exactly one of them locks.
pub(super) async fn record_failed_login(
    t: &Transaction<'_>,
    name: &str,
    max_attempts: u32,
    lockout_seconds: i64,
    now: i64,
) -> StoreResult<Option<i64>> {
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let until = now.saturating_add(lockout_seconds);
    let found = row(
        t,
        "UPDATE users SET
             failed_logins = CASE WHEN $2 > 0 AND failed_logins + 1 >= $2 THEN 0
                                  ELSE failed_logins + 1 END,
             locked_until = CASE WHEN $2 > 0 AND failed_logins + 1 >= $2 THEN $3
                                 ELSE locked_until END
         WHERE name = $1
         RETURNING failed_logins = 0 AND $2 > 0",
        &[&name, &max_attempts, &until],
    )
    .await?;
    let locked: bool = found.map(|r| get(&r, 0)).transpose()?.unwrap_or(false);
    Ok(locked.then_some(until))
}

pub(super) async fn set_password_hash(
    t: &Transaction<'_>,
    name: &str,
    hash: &str,
) -> StoreResult<()> {
    let changed = execute(
        t,
        "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL
         WHERE name = $1",
        &[&name, &hash],
    )
    .await?;
    match changed {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(super) async fn clear_failed_logins(t: &Transaction<'_>, name: &str) -> StoreResult<()> {
    execute(
        t,
        "UPDATE users SET failed_logins = 0, locked_until = NULL
         WHERE name = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
        &[&name],
    )
    .await?;
    Ok(())
}
