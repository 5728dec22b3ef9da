//! The health monitor's work shared by the instances: whose turn it is to check a key manager's
//! servers, and what the last checks found, for the instances that did not make them.

use deadpool_postgres::Transaction;

use super::{corrupt, execute, get, objects, row, rows};
use crate::domain::model::{CertificateId, CheckProblem, KeyServer, SharedCheck};
use crate::store::StoreResult;
use crate::store::secrets::SecretBox;

/// One statement: the turn is taken when nobody holds it, when its holder's ran out, or when
/// this holder has it already. A deleted key manager has no turn to take (its foreign key).
pub(super) async fn take_monitor_turn(
    t: &Transaction<'_>,
    key_manager: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> StoreResult<bool> {
    let taken = row(
        t,
        "INSERT INTO monitor_turns (key_manager_uuid, holder, until)
         SELECT $1, $2, $4 WHERE EXISTS (SELECT 1 FROM key_managers WHERE uuid = $1)
         ON CONFLICT (key_manager_uuid) DO UPDATE SET holder = $2, until = $4
         WHERE monitor_turns.until <= $3 OR monitor_turns.holder = $2
         RETURNING 1",
        &[&key_manager, &holder, &now, &until],
    )
    .await?;
    Ok(taken.is_some())
}

/// Keeps the checks whose server, and whose key manager's certificates, are still those
/// checked: the key manager's row and its servers' are locked while they are compared, so that
/// a change cannot slip between the comparison and the write (a change deletes the checks).
pub(super) async fn share_checks(
    t: &Transaction<'_>,
    secrets: &SecretBox,
    key_manager: &str,
    certificates: &[CertificateId],
    checks: Vec<(KeyServer, SharedCheck)>,
) -> StoreResult<()> {
    row(
        t,
        "SELECT 1 FROM key_managers WHERE uuid = $1 FOR SHARE",
        &[&key_manager],
    )
    .await?;
    rows(
        t,
        "SELECT 1 FROM key_servers WHERE key_manager_uuid = $1 FOR SHARE",
        &[&key_manager],
    )
    .await?;
    let Some(current) = objects::load_key_managers(t, secrets, Some(key_manager))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(()); // deleted meanwhile
    };
    let crate::domain::model::KeyManagerKind::External {
        client_certificate,
        server_ca_certificates,
        servers,
    } = current.kind
    else {
        return Ok(());
    };
    let configured: Vec<&CertificateId> = std::iter::once(&client_certificate)
        .chain(&server_ca_certificates)
        .collect();
    if configured.len() != certificates.len()
        || configured.iter().zip(certificates).any(|(a, b)| *a != b)
    {
        return Ok(());
    }
    for (checked, check) in checks {
        if !servers.contains(&checked) {
            continue;
        }
        let (code, message) = match check.problem {
            Some(CheckProblem { code, message }) => (
                Some(i64::try_from(code).map_err(|_| corrupt("an error code"))?),
                Some(message),
            ),
            None => (None, None),
        };
        let (version, suite) = check.tls.unzip();
        execute(
            t,
            "INSERT INTO key_server_checks (key_manager_uuid, server, state, problem_code,
                 problem_message, tls_version, tls_suite, check_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (key_manager_uuid, server) DO UPDATE SET state = $3,
                 problem_code = $4, problem_message = $5, tls_version = $6, tls_suite = $7,
                 check_time = $8",
            &[
                &key_manager,
                &check.server,
                &check.state,
                &code,
                &message,
                &version,
                &suite,
                &check.check_time,
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn shared_checks(
    t: &Transaction<'_>,
    key_manager: Option<&str>,
) -> StoreResult<Vec<(String, SharedCheck)>> {
    let found = rows(
        t,
        "SELECT key_manager_uuid, server, state, problem_code, problem_message, tls_version,
                tls_suite, check_time
         FROM key_server_checks WHERE $1::TEXT IS NULL OR key_manager_uuid = $1",
        &[&key_manager],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            let problem = match (get::<Option<i64>>(r, 3)?, get::<Option<String>>(r, 4)?) {
                (Some(code), Some(message)) => Some(CheckProblem {
                    code: u64::try_from(code).map_err(|_| corrupt("an error code"))?,
                    message,
                }),
                _ => None,
            };
            let tls = match (get::<Option<String>>(r, 5)?, get::<Option<String>>(r, 6)?) {
                (Some(version), Some(suite)) => Some((version, suite)),
                _ => None,
            };
            Ok((
                get(r, 0)?,
                SharedCheck {
                    server: get(r, 1)?,
                    state: get(r, 2)?,
                    problem,
                    tls,
                    check_time: get(r, 7)?,
                },
            ))
        })
        .collect()
}

/// What was checked of a key manager's servers no longer holds after they changed.
pub(super) async fn forget(
    t: &Transaction<'_>,
    key_manager: &str,
    server: Option<&str>,
) -> StoreResult<()> {
    execute(
        t,
        "DELETE FROM key_server_checks
         WHERE key_manager_uuid = $1 AND ($2::TEXT IS NULL OR server = $2)",
        &[&key_manager, &server],
    )
    .await?;
    Ok(())
}

/// After the TLS offer changed, nothing checked holds.
pub(super) async fn forget_all(t: &Transaction<'_>) -> StoreResult<()> {
    execute(t, "DELETE FROM key_server_checks", &[]).await?;
    Ok(())
}
