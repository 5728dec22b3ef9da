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
            "SELECT name, role, password_hash FROM users WHERE name = ?1",
            [name],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                ))
            },
        )
        .optional()
        .db()?;
    row.map(|(name, role, password_hash)| {
        let role = Role::parse(&role).ok_or_else(|| corrupt(&format!("role {role}")))?;
        Ok(User {
            name,
            role,
            password_hash,
        })
    })
    .transpose()
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
