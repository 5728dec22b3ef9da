//! The `users` table: API accounts with their password hashes.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqlResultExt, corrupt};
use crate::domain::model::{Role, User};
use crate::store::{StoreError, StoreResult};

pub(super) fn count_users(connection: &Connection) -> StoreResult<usize> {
    let count: i64 = connection
        .query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
        .db()?;
    usize::try_from(count).map_err(|_| corrupt("a negative count"))
}

pub(super) fn insert_user(connection: &Connection, user: &User) -> StoreResult<()> {
    if find_user(connection, &user.name)?.is_some() {
        return Err(StoreError::Conflict(format!("user \"{}\"", user.name)));
    }
    connection
        .execute(
            "INSERT INTO users (name, role, password_hash) VALUES (?1, ?2, ?3)",
            params![user.name, user.role.as_str(), user.password_hash],
        )
        .db()?;
    Ok(())
}

pub(super) fn find_user(connection: &Connection, name: &str) -> StoreResult<Option<User>> {
    let row = connection
        .query_row(
            "SELECT name, role, password_hash, failed_logins, locked_until FROM users
             WHERE name = ?1",
            [name],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()
        .db()?;
    row.map(|(name, role, password_hash, failed_logins, locked_until)| {
        let role = Role::parse(&role).ok_or_else(|| corrupt(&format!("role {role}")))?;
        Ok(User {
            name,
            role,
            password_hash,
            failed_logins: u32::try_from(failed_logins)
                .map_err(|_| corrupt("a negative failed login count"))?,
            locked_until,
        })
    })
    .transpose()
}

pub(super) fn record_failed_login(
    connection: &Connection,
    name: &str,
    max_attempts: u32,
    lockout_seconds: i64,
    now: i64,
) -> StoreResult<Option<i64>> {
    let failures: Option<i64> = connection
        .query_row(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE name = ?1
             RETURNING failed_logins",
            [name],
            |row| row.get(0),
        )
        .optional()
        .db()?;
    let Some(failures) = failures else {
        return Ok(None); // deleted meanwhile
    };
    if max_attempts == 0 || failures < i64::from(max_attempts) {
        return Ok(None);
    }
    let until = now.saturating_add(lockout_seconds);
    connection
        .execute(
            "UPDATE users SET failed_logins = 0, locked_until = ?2 WHERE name = ?1",
            params![name, until],
        )
        .db()?;
    Ok(Some(until))
}

pub(super) fn set_password_hash(
    connection: &Connection,
    name: &str,
    hash: &str,
) -> StoreResult<()> {
    let changed = connection
        .execute(
            "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL
             WHERE name = ?1",
            params![name, hash],
        )
        .db()?;
    match changed {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

pub(super) fn clear_failed_logins(connection: &Connection, name: &str) -> StoreResult<()> {
    connection
        .execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?1",
            [name],
        )
        .db()?;
    Ok(())
}

pub(super) fn list_users(connection: &Connection) -> StoreResult<Vec<User>> {
    let mut statement = connection
        .prepare("SELECT name FROM users ORDER BY name")
        .db()?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(0))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    names
        .iter()
        .filter_map(|name| find_user(connection, name).transpose())
        .collect()
}

pub(super) fn delete_user(connection: &Connection, name: &str) -> StoreResult<()> {
    let user = find_user(connection, name)?.ok_or(StoreError::NotFound)?;
    if user.role == Role::Admin {
        let admins: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM users WHERE role = 'admin'",
                [],
                |row| row.get(0),
            )
            .db()?;
        if admins <= 1 {
            // The message reads with the error's "... already exists".
            return Err(StoreError::Conflict("no other admin user".into()));
        }
    }
    connection
        .execute("DELETE FROM users WHERE name = ?1", [name])
        .db()?;
    Ok(())
}
