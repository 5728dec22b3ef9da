//! Primary key servers of external key managers: adding (seed POST), modifying (seed PATCH),
//! listing and removing them, with ONTAP's rules in ONTAP's order — cheapest checks first, so a
//! request fails for its most basic fault, and the KMIP checks last.

use std::collections::HashSet;

use super::store::{MAX_PRIMARY_KEY_SERVERS, StoreError, StoreFailure};

use super::address::KeyServerAddress;
use super::catalogue::Catalogue;
use super::error::{Error, Result};
use super::model::{KeyManagerId, KeyServer, KeyServerTimeout, Secret};
use super::store::write_error;

/// "A clustered key server is comprised of one primary key server and up to three secondary
/// key servers" (NetApp KB).
pub const MAX_SECONDARY_KEY_SERVERS: usize = 3;

/// A key server as a client asks to add it.
#[derive(Debug, Clone, Default)]
pub struct NewKeyServer {
    pub server: String,
    pub timeout: Option<i64>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub secondary_key_servers: Option<Vec<String>>,
}

/// The changes a PATCH asks for; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyServerChanges {
    pub timeout: Option<i64>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub secondary_key_servers: Option<Vec<String>>,
}

impl KeyServerChanges {
    fn is_empty(&self) -> bool {
        self.timeout.is_none()
            && self.username.is_none()
            && self.password.is_none()
            && self.secondary_key_servers.is_none()
    }
}

impl Catalogue {
    /// The key servers of an external key manager, in the order they were added.
    pub async fn key_servers(&self, key_manager: &KeyManagerId) -> Result<Vec<KeyServer>> {
        Ok(self.external_key_manager(key_manager).await?.servers)
    }

    /// One key server; `server` is matched in its normalized form (`ks1` means `ks1:5696`).
    pub async fn key_server(&self, key_manager: &KeyManagerId, server: &str) -> Result<KeyServer> {
        let servers = self.key_servers(key_manager).await?;
        find_server(&servers, server).cloned()
    }

    /// Adds primary key servers, all or none (seed: POST .../key-servers).
    pub async fn add_key_servers(
        &self,
        key_manager: &KeyManagerId,
        requested: Vec<NewKeyServer>,
    ) -> Result<Vec<KeyServer>> {
        let external = self.external_key_manager(key_manager).await?;
        let new_servers = requested
            .into_iter()
            .map(|new| parse_new_server(new, &external.servers))
            .collect::<Result<Vec<_>>>()?;
        check_not_duplicated(&new_servers, &external.servers)?;
        check_limit(external.servers.len(), new_servers.len())?;
        self.check_servers(
            &external.client_certificate,
            &external.server_ca_certificates,
            &new_servers,
        )
        .await?;
        self.store
            .add_key_servers(key_manager, new_servers.clone())
            .await
            .map_err(|e| store_add_error(e, new_servers.len()))?;
        self.connectivity.forget(key_manager);
        Ok(new_servers)
    }

    /// Changes one key server (seed: PATCH .../key-servers/{server}).
    pub async fn modify_key_server(
        &self,
        key_manager: &KeyManagerId,
        server: &str,
        changes: KeyServerChanges,
    ) -> Result<KeyServer> {
        let external = self.external_key_manager(key_manager).await?;
        let current = find_server(&external.servers, server)?.clone();
        if changes.is_empty() {
            return Err(Error::NothingToModify);
        }
        let credentials_change = changes.username.is_some() || changes.password.is_some();
        let updated = apply_changes(&current, changes, &external.servers)?;
        if credentials_change {
            // New credentials are proven against the server before they are stored.
            self.check_servers(
                &external.client_certificate,
                &external.server_ca_certificates,
                std::slice::from_ref(&updated),
            )
            .await?;
        }
        self.store
            .update_key_server(key_manager, updated.clone())
            .await
            .map_err(write_error(Error::KeyServerNotConfigured(
                server.to_string(),
            )))?;
        self.connectivity.forget(key_manager);
        Ok(updated)
    }

    /// Removes one key server (DELETE .../key-servers/{server}).
    pub async fn remove_key_server(&self, key_manager: &KeyManagerId, server: &str) -> Result<()> {
        let external = self.external_key_manager(key_manager).await?;
        let current = find_server(&external.servers, server)?;
        self.store
            .delete_key_server(key_manager, current.server.as_str())
            .await
            .map_err(write_error(Error::KeyServerNotConfigured(
                server.to_string(),
            )))?;
        self.connectivity.forget(key_manager);
        Ok(())
    }
}

/// Finds a configured server by its address as given in a path, normalized first.
pub fn find_server<'a>(servers: &'a [KeyServer], server: &str) -> Result<&'a KeyServer> {
    let not_configured = || Error::KeyServerNotConfigured(server.to_string());
    let address = KeyServerAddress::parse(server).map_err(|_| not_configured())?;
    servers
        .iter()
        .find(|s| s.server == address)
        .ok_or_else(not_configured)
}

/// Turns a requested server into a valid one: address, timeout, credential pairing, secondaries.
pub fn parse_new_server(new: NewKeyServer, configured: &[KeyServer]) -> Result<KeyServer> {
    let server = KeyServerAddress::parse(&new.server).map_err(|e| Error::InvalidValue {
        field: "server".into(),
        message: format!(
            "The value \"{}\" is invalid for field \"server\": {e}.",
            new.server
        ),
    })?;
    let timeout = match new.timeout {
        Some(timeout) => check_timeout(timeout)?,
        None => KeyServerTimeout::DEFAULT,
    };
    let (username, password) = pair_credentials(new.username, new.password, None)?;
    let secondary_key_servers = match new.secondary_key_servers {
        Some(list) => parse_secondaries(&server, &list, configured)?,
        None => Vec::new(),
    };
    Ok(KeyServer {
        server,
        timeout,
        username,
        password,
        secondary_key_servers,
    })
}

fn check_timeout(timeout: i64) -> Result<KeyServerTimeout> {
    KeyServerTimeout::from_ontap(timeout).ok_or_else(|| Error::InvalidValue {
        field: "timeout".into(),
        message: format!(
            "Field \"timeout\" cannot be set to {timeout}: the range is -1 (wait indefinitely), \
             0 (do not wait) to {} seconds.",
            KeyServerTimeout::MAX_SECONDS
        ),
    })
}

/// A username needs its password and a password needs a username — given now or, for a PATCH,
/// already stored (`stored_username`).
fn pair_credentials(
    username: Option<String>,
    password: Option<Secret>,
    stored_username: Option<&str>,
) -> Result<(Option<String>, Option<Secret>)> {
    match (username, password) {
        (Some(_), None) => Err(Error::MissingPassword),
        (None, Some(password)) => match stored_username {
            Some(stored) => Ok((Some(stored.to_string()), Some(password))),
            None => Err(Error::MissingUsername),
        },
        (username, password) => Ok((username, password)),
    }
}

/// Secondary key servers: host names or addresses without a port (they use the primary's),
/// at most three, no duplicates, neither the primary itself nor another primary.
pub fn parse_secondaries(
    primary: &KeyServerAddress,
    list: &[String],
    primaries: &[KeyServer],
) -> Result<Vec<String>> {
    if list.len() > MAX_SECONDARY_KEY_SERVERS {
        return Err(Error::TooManySecondaries);
    }
    let mut seen = HashSet::new();
    let mut hosts = Vec::with_capacity(list.len());
    for text in list {
        let host = parse_secondary_host(text)?;
        let address = primary
            .with_host(&host)
            .map_err(|e| Error::BadSecondaryAddress {
                address: text.clone(),
                reason: e.to_string(),
            })?;
        if address == *primary {
            return Err(Error::SecondaryIsItsPrimary(text.clone()));
        }
        if primaries.iter().any(|p| p.server == address) {
            return Err(Error::SecondaryIsPrimary(text.clone()));
        }
        if !seen.insert(host.clone()) {
            return Err(Error::DuplicateSecondaries(text.clone()));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// A secondary is a host only: parsing it as an address must not find a port in it.
fn parse_secondary_host(text: &str) -> Result<String> {
    let bad = |reason: &str| Error::BadSecondaryAddress {
        address: text.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = text.trim();
    let looks_like_host_port = trimmed.matches(':').count() == 1 || trimmed.contains("]:");
    if looks_like_host_port {
        return Err(bad(
            "secondary key servers take no port, they use the primary's",
        ));
    }
    let address = KeyServerAddress::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    Ok(address.endpoint().host.clone())
}

/// 65536871 for a server named twice in the request, 65536870 for one already configured.
pub fn check_not_duplicated(new_servers: &[KeyServer], configured: &[KeyServer]) -> Result<()> {
    let mut seen = HashSet::new();
    for server in new_servers {
        if !seen.insert(&server.server) {
            return Err(Error::DuplicateKeyServers(server.server.to_string()));
        }
    }
    for server in new_servers {
        if configured.iter().any(|c| c.server == server.server) {
            return Err(Error::KeyServerAlreadyConfigured(server.server.to_string()));
        }
        let secondary_of = configured.iter().any(|c| {
            c.secondary_key_servers
                .iter()
                .any(|h| *h == server.server.endpoint().host)
        });
        if secondary_of {
            return Err(Error::AlreadySecondary(server.server.to_string()));
        }
    }
    Ok(())
}

pub fn check_limit(existing: usize, added: usize) -> Result<()> {
    if existing + added > MAX_PRIMARY_KEY_SERVERS {
        return Err(Error::TooManyKeyServers { existing, added });
    }
    Ok(())
}

/// The store re-checks the limit and duplicates atomically: a concurrent request may have won.
fn store_add_error(error: StoreError, added: usize) -> Error {
    StoreFailure {
        servers_added: added,
        ..StoreFailure::default()
    }
    .into_error(error)
}

/// The server as it will be after the PATCH.
fn apply_changes(
    current: &KeyServer,
    changes: KeyServerChanges,
    primaries: &[KeyServer],
) -> Result<KeyServer> {
    let mut updated = current.clone();
    if let Some(timeout) = changes.timeout {
        updated.timeout = check_timeout(timeout)?;
    }
    if changes.username.is_some() || changes.password.is_some() {
        let (username, password) = pair_credentials(
            changes.username,
            changes.password,
            current.username.as_deref(),
        )?;
        updated.username = username;
        updated.password = password;
    }
    if let Some(list) = changes.secondary_key_servers {
        updated.secondary_key_servers = parse_secondaries(&current.server, &list, primaries)?;
    }
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(address: &str, secondaries: &[&str]) -> KeyServer {
        KeyServer {
            server: KeyServerAddress::parse(address).expect("valid"),
            timeout: KeyServerTimeout::DEFAULT,
            username: None,
            password: None,
            secondary_key_servers: secondaries.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn new(server: &str) -> NewKeyServer {
        NewKeyServer {
            server: server.into(),
            ..NewKeyServer::default()
        }
    }

    #[test]
    fn a_new_server_gets_the_default_port_and_timeout() {
        let server = parse_new_server(new("ks1"), &[]).expect("valid");
        assert_eq!(server.server.as_str(), "ks1:5696");
        assert_eq!(server.timeout, KeyServerTimeout::DEFAULT);
    }

    #[test]
    fn credentials_must_come_in_pairs() {
        let username_only = NewKeyServer {
            username: Some("u".into()),
            ..new("ks1")
        };
        assert_eq!(
            parse_new_server(username_only, &[]).unwrap_err().code(),
            65536846
        );
        let password_only = NewKeyServer {
            password: Some(Secret::new("p")),
            ..new("ks1")
        };
        assert_eq!(
            parse_new_server(password_only, &[]).unwrap_err().code(),
            65536845
        );
        let (username, _) =
            pair_credentials(None, Some(Secret::new("p")), Some("stored")).expect("valid");
        assert_eq!(username.as_deref(), Some("stored"));
    }

    #[test]
    fn timeouts_outside_minus_one_to_sixty_are_refused() {
        for timeout in [-2, 61, i64::MAX] {
            let server = NewKeyServer {
                timeout: Some(timeout),
                ..new("ks1")
            };
            let error = parse_new_server(server, &[]).unwrap_err();
            assert_eq!(error.target().as_deref(), Some("timeout"));
        }
        for (given, meant) in [
            (-1, KeyServerTimeout::WaitIndefinitely),
            (0, KeyServerTimeout::DoNotWait),
            (1, KeyServerTimeout::Seconds(1)),
            (60, KeyServerTimeout::Seconds(60)),
        ] {
            assert_eq!(check_timeout(given), Ok(meant));
            assert_eq!(meant.as_ontap(), given);
        }
    }

    #[test]
    fn duplicates_and_configured_servers_are_refused() {
        let a = parse_new_server(new("ks1"), &[]).expect("valid");
        let a_again = parse_new_server(new("KS1:5696"), &[]).expect("valid");
        let error = check_not_duplicated(&[a.clone(), a_again], &[]).unwrap_err();
        assert_eq!(error.code(), 65536871);
        let error = check_not_duplicated(&[a], &[configured("ks1:5696", &[])]).unwrap_err();
        assert_eq!(error.code(), 65536870);
        let b = parse_new_server(new("ks2"), &[]).expect("valid");
        let error = check_not_duplicated(&[b], &[configured("ks1", &["ks2"])]).unwrap_err();
        assert_eq!(error.code(), 65536042);
    }

    #[test]
    fn the_limit_is_four_primaries() {
        assert!(check_limit(2, 2).is_ok());
        assert_eq!(check_limit(3, 2).unwrap_err().code(), 65536038);
    }

    #[test]
    fn secondaries_are_validated() {
        let primary = KeyServerAddress::parse("ks1:15696").expect("valid");
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = parse_secondaries(&primary, &list(&["ks2", "10.0.0.9", "fd00::9"]), &[])
            .expect("valid");
        assert_eq!(ok, ["ks2", "10.0.0.9", "fd00::9"]);
        let cases: [(&[&str], u64); 6] = [
            (&["a", "b", "c", "d"], 65537400),
            (&["ks2", "KS2"], 65538408),
            (&["ks1"], 65538407),
            (&["bad host"], 65538413),
            (&["ks2:5696"], 65538413),
            (&["ks3"], 65538502),
        ];
        let primaries = [configured("ks3:15696", &[])];
        for (items, code) in cases {
            let error = parse_secondaries(&primary, &list(items), &primaries).unwrap_err();
            assert_eq!(error.code(), code, "{items:?}: {error}");
        }
    }

    #[test]
    fn servers_are_found_by_their_normalized_address() {
        let servers = [
            configured("ks1:5696", &[]),
            configured("10.0.0.1:15696", &[]),
        ];
        assert!(find_server(&servers, "ks1").is_ok());
        assert!(find_server(&servers, "KS1:5696").is_ok());
        assert!(find_server(&servers, "10.0.0.1:15696").is_ok());
        assert_eq!(
            find_server(&servers, "10.0.0.1").unwrap_err().code(),
            65536843
        );
        assert_eq!(
            find_server(&servers, "not valid").unwrap_err().code(),
            65536843
        );
    }
}
