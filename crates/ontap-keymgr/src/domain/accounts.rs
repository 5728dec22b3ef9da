//! The accounts part: the API's accounts (passwords kept as Argon2 hashes, `users.rs`), logging
//! in with them (`login.rs`: verifications bounded, lockout, the address throttle) and the cache
//! of credentials already verified.

use std::net::IpAddr;
use std::sync::Arc;

use super::error::{Error, Result};
use super::limits::{MAX_ACCOUNTS, check_room};
use super::login::{
    DUMMY_HASH, LockoutPolicy, LoginFailure, LoginGuard, LoginRefusal, now_seconds,
};
use super::model::{Role, User};
use super::store::{AccountStore, StoreFailure, internal, write_error};
use super::users::{
    ADMIN, AdminBootstrap, CredentialCache, check_password, check_user_name, generate_password,
    hash_password,
};

pub struct Accounts {
    store: Arc<dyn AccountStore>,
    /// Credentials verified before, so that a request does not pay for Argon2 every time.
    credentials: CredentialCache,
    login: LoginGuard,
}

impl Accounts {
    pub fn new(store: Arc<dyn AccountStore>, lockout: LockoutPolicy) -> Accounts {
        Accounts {
            store,
            credentials: CredentialCache::default(),
            login: LoginGuard::new(lockout),
        }
    }

    /// Forgets every verified credential: another instance changed some account.
    pub fn forget_verified(&self) {
        self.credentials.clear();
    }

    /// Creates the `admin` user when there is no user yet, with `password` or a generated one;
    /// with `reset`, sets the password of an existing `admin` the same way (a lost password).
    pub async fn bootstrap_admin(
        &self,
        password: Option<&str>,
        reset: bool,
    ) -> Result<AdminBootstrap> {
        let exists = self.store.count_users().await.map_err(internal)? > 0;
        if exists && !reset {
            return Ok(AdminBootstrap::Existing);
        }
        let (password, generated) = match password {
            Some(p) if !p.is_empty() => (p.to_string(), None),
            _ => {
                let generated = generate_password();
                (generated.clone(), Some(generated))
            }
        };
        if exists {
            self.set_password(ADMIN, &password).await?;
            return Ok(AdminBootstrap::Reset(generated));
        }
        self.insert_user(ADMIN, &password, Role::Admin).await?;
        Ok(match generated {
            Some(generated) => AdminBootstrap::Generated(generated),
            None => AdminBootstrap::Configured,
        })
    }

    /// Sets a user's password (`PATCH /api/security/accounts/{owner}/{name}`); the old one stops
    /// working at once, and a lockout ends.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let hash = hash_password(password)?;
        self.store
            .set_password_hash(name, &hash)
            .await
            .map_err(write_error(Error::NotFound { target: "name" }))?;
        self.credentials.forget(name);
        Ok(())
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        self.store.list_users().await.map_err(internal)
    }

    /// Creates an API user (`/api/security/accounts`).
    pub async fn create_user(&self, name: &str, password: &str, role: Role) -> Result<()> {
        check_user_name(name)?;
        check_password(password)?;
        let existing = self.store.count_users().await.map_err(internal)?;
        check_room("accounts", existing, MAX_ACCOUNTS)?;
        self.insert_user(name, password, role).await
    }

    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.store.delete_user(name).await.map_err(|e| {
            StoreFailure {
                missing: Error::NotFound { target: "name" },
                conflict: Error::InUse(format!(
                    "User \"{name}\" is the last admin and cannot be deleted."
                )),
                ..StoreFailure::default()
            }
            .into_error(e)
        })?;
        self.credentials.forget(name);
        Ok(())
    }

    /// Stores a user; callers check the name and password first (`create_user`), or choose them
    /// (the first admin).
    async fn insert_user(&self, name: &str, password: &str, role: Role) -> Result<()> {
        let password_hash = hash_password(password)?;
        self.store
            .insert_user(User {
                name: name.to_string(),
                role,
                password_hash,
                failed_logins: 0,
                locked_until: None,
            })
            .await
            .map_err(|e| {
                StoreFailure {
                    conflict: Error::AlreadyExists {
                        what: "User",
                        name: name.to_string(),
                        target: "name",
                    },
                    ..StoreFailure::default()
                }
                .into_error(e)
            })
    }

    /// The role of a user whose password is right. Every refusal reads the same to the client
    /// (401, code 6), but for a throttled address (429) and a busy service (503).
    ///
    /// Credentials verified before are served whatever the address's failures: the throttle
    /// holds back only unverified attempts, so a script with a stale password behind the same
    /// NAT or CI runner never shuts out the working jobs. The look-up is a constant-time
    /// comparison of a keyed hash, never an Argon2 run.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> std::result::Result<Role, LoginFailure> {
        let refuse = |refusal, error| LoginFailure { error, refusal };
        if let Some(role) = self.credentials.lookup(name, password) {
            return Ok(role);
        }
        if let Some(retry_after) = address.and_then(|a| self.login.throttled(a)) {
            return Err(refuse(
                LoginRefusal::AddressThrottled,
                Error::LoginThrottled(retry_after),
            ));
        }
        let result = self.verify(name, password).await;
        match (&result, address) {
            (Ok(_), Some(address)) => self.login.address_succeeded(address),
            (Err(failure), Some(address)) if failure.refusal != LoginRefusal::Busy => {
                self.login.address_failed(address)
            }
            _ => {}
        }
        result
    }

    async fn verify(&self, name: &str, password: &str) -> std::result::Result<Role, LoginFailure> {
        let refuse = |refusal| LoginFailure {
            error: Error::Unauthenticated,
            refusal,
        };
        let store_failure = |e| LoginFailure {
            error: internal(e),
            refusal: LoginRefusal::Busy,
        };
        let user = self.store.find_user(name).await.map_err(store_failure)?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let matches = self
            .login
            .verify_bounded(hash, password.to_string())
            .await?;
        let Some(user) = user else {
            return Err(refuse(LoginRefusal::UnknownUser));
        };
        let now = now_seconds();
        if user.locked_until.is_some_and(|until| until > now) {
            return Err(refuse(LoginRefusal::Locked));
        }
        if !matches {
            let policy = self.login.policy;
            let locked = self
                .store
                .record_failed_login(
                    name,
                    policy.max_failed_login_attempts,
                    i64::try_from(policy.lockout_duration.as_secs()).unwrap_or(i64::MAX),
                    now,
                )
                .await
                .map_err(store_failure)?;
            if locked.is_some() {
                tracing::warn!(user = name, "account locked after repeated failed logins");
                self.credentials.forget(name);
            }
            return Err(refuse(LoginRefusal::WrongPassword));
        }
        if user.failed_logins > 0 || user.locked_until.is_some() {
            self.store
                .clear_failed_logins(name)
                .await
                .map_err(store_failure)?;
        }
        self.credentials.remember(name, password, user.role);
        Ok(user.role)
    }
}
