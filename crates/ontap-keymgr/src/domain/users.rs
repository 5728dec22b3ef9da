//! The rules of the API's accounts: names, passwords (kept as Argon2 hashes), the cache of
//! credentials already verified, the first admin. The accounts part (`accounts.rs`) applies them;
//! logging in is `login.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{Error, Result};
use super::model::Role;

/// The first user's name, as on ONTAP.
pub const ADMIN: &str = "admin";
/// Length of a generated admin password.
const GENERATED_PASSWORD_LEN: usize = 24;
/// ONTAP's default minimum password length.
const MIN_PASSWORD_LEN: usize = 8;

/// Argon2 is slow on purpose; a request must not pay for it every time. Once a user's password
/// has been verified, a salted SHA-256 of it is remembered, so later requests with the same
/// credentials are checked in microseconds, and the cache never holds a password.
pub struct CredentialCache {
    salt: [u8; 16],
    verified: Mutex<HashMap<String, (Role, [u8; 32])>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache {
            salt: rand::thread_rng().r#gen(),
            verified: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    fn digest(&self, name: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    pub(super) fn lookup(&self, name: &str, password: &str) -> Option<Role> {
        let digest = self.digest(name, password);
        let verified = self.verified.lock().ok()?;
        let (role, known) = verified.get(name)?;
        // Constant time: how much of a guess matches must not show in how long it takes.
        bool::from(known.ct_eq(&digest)).then_some(*role)
    }

    pub(super) fn forget(&self, name: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.remove(name);
        }
    }

    /// Forgets every verified password: another instance changed some account.
    pub(super) fn clear(&self) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.clear();
        }
    }

    pub(super) fn remember(&self, name: &str, password: &str, role: Role) {
        let digest = self.digest(name, password);
        if let Ok(mut verified) = self.verified.lock() {
            verified.insert(name.to_string(), (role, digest));
        }
    }
}

/// The outcome of preparing the first admin.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users exist already: nothing was done.
    Existing,
    /// The admin was created with the configured password.
    Configured,
    /// The admin was created with this generated password, to be shown once.
    Generated(String),
    /// The admin's password was set anew, to the configured one (`None`) or to this generated
    /// one, to be shown once.
    Reset(Option<String>),
}

pub(super) fn check_password(password: &str) -> Result<()> {
    match password.chars().count() < MIN_PASSWORD_LEN {
        true => Err(Error::InvalidValue {
            field: "password".into(),
            message: format!("The password must have at least {MIN_PASSWORD_LEN} characters."),
        }),
        false => Ok(()),
    }
}

/// ONTAP user names: 3 to 64 characters, letters, digits, '_', '-' and '.'.
pub(super) fn check_user_name(name: &str) -> Result<()> {
    let valid = (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            field: "name".into(),
            message: format!(
                "The value \"{name}\" is invalid for field \"name\": use 3 to 64 letters, \
                 digits, '_', '-' and '.'."
            ),
        })
    }
}

pub(super) fn generate_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect()
}

pub(super) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("cannot hash a password: {e}")))
}

/// The library's own verification: the reference `login::verify_in` is tested against.
#[cfg(test)]
pub(super) fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(!hash.contains("s3cret"));
        assert!(verify_password(&hash, "s3cret"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("not a hash", "s3cret"));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, generate_password());
    }

    #[test]
    fn the_cache_answers_only_for_the_same_password() {
        let cache = CredentialCache::default();
        cache.remember("admin", "right", Role::Admin);
        assert_eq!(cache.lookup("admin", "right"), Some(Role::Admin));
        assert_eq!(cache.lookup("admin", "wrong"), None);
        assert_eq!(cache.lookup("other", "right"), None);
    }
}
