//! Encryption of secrets at rest: KMIP passwords, private keys and passphrases are sealed with
//! XChaCha20-Poly1305 under a key that lives in its own file, outside the database, so that a
//! copy of the database alone reveals none of them.
//!
//! A sealed value is `nonce (24 bytes) || ciphertext || tag (16 bytes)`. The nonce is random:
//! XChaCha's 192-bit nonces make collisions negligible without any counter to persist. Every
//! value is bound to its purpose by associated data (the column, and the row it belongs to), so a
//! sealed value moved into another column or row no longer opens.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;

use super::{StoreError, StoreResult};
use crate::domain::model::Secret;

/// Length of the key, in bytes (the key file holds exactly this).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The key that seals and opens the stored secrets.
pub struct SecretBox {
    key: [u8; KEY_LEN],
}

impl SecretBox {
    /// A box with a given key, for tests and tools.
    pub fn from_key(key: [u8; KEY_LEN]) -> SecretBox {
        SecretBox { key }
    }

    /// A box with a fresh random key that is kept nowhere: for in-memory stores.
    pub fn generate() -> StoreResult<SecretBox> {
        let mut key = [0u8; KEY_LEN];
        fill_random(&mut key)?;
        Ok(SecretBox { key })
    }

    /// Reads the key file, or creates it (mode 0600) with a random key when it does not exist.
    pub fn load_or_create(path: &Path) -> StoreResult<SecretBox> {
        match fs::read(path) {
            Ok(bytes) => key_from_file(path, &bytes),
            Err(error) if error.kind() == ErrorKind::NotFound => create_key_file(path),
            Err(error) => Err(key_file_error(path, &error)),
        }
    }

    /// Encrypts `plaintext` for the purpose named by `aad`; `open` needs the same `aad`.
    pub fn seal(&self, plaintext: &str, aad: &str) -> StoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: aad.as_bytes(),
        };
        // Encryption fails only for inputs of hundreds of gigabytes; no secret is that long.
        let ciphertext = self
            .cipher()
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| StoreError::Backend("a secret could not be encrypted".into()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a value sealed for the purpose named by `aad`. Fails when the value was sealed
    /// under another key or for another purpose, or was altered.
    pub fn open(&self, sealed: &[u8], aad: &str) -> StoreResult<String> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| undecryptable())?;
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        let plaintext = self
            .cipher()
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| undecryptable())?;
        String::from_utf8(plaintext)
            .map_err(|_| StoreError::Unreadable("a decrypted secret is not UTF-8 text".into()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.key))
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox").finish_non_exhaustive()
    }
}

/// The error for a value that does not open; it says nothing about the value itself.
/// The sealed columns, named as their associated data begins: one name per column, shared by
/// every store so that a secret means the same wherever it is kept.
pub mod column {
    pub const KEY_SERVER_PASSWORD: &str = "key_servers.password";
    pub const PASSPHRASE: &str = "key_managers.passphrase";
    pub const PRIVATE_KEY: &str = "certificates.private_key";
    /// A known value sealed by the first instance on a shared store: an instance with another
    /// key cannot open it and refuses to start.
    pub const KEY_CHECK: &str = "keymgr.key_check";
}

/// A sealed column's associated data: the column, then the identity of its row, so that a value
/// copied into another column or another row does not open. The parts are uuids and normalized
/// addresses, which never contain the NUL separator.
fn aad(column: &str, row: &[&str]) -> String {
    let mut aad = column.to_string();
    for part in row {
        aad.push('\0');
        aad.push_str(part);
    }
    aad
}

/// Seals a secret for `column` of the row identified by `row`.
pub fn seal(
    secrets: &SecretBox,
    secret: &Secret,
    column: &str,
    row: &[&str],
) -> StoreResult<Vec<u8>> {
    secrets.seal(secret.expose(), &aad(column, row))
}

/// Opens a sealed column, saying which one failed (never what it held).
pub fn open(secrets: &SecretBox, sealed: &[u8], column: &str, row: &[&str]) -> StoreResult<Secret> {
    secrets
        .open(sealed, &aad(column, row))
        .map(Secret::new)
        .map_err(|error| StoreError::Unreadable(format!("{column} of {}: {error}", row.join(" "))))
}

/// What [`SecretBox::key_check`] seals.
const KEY_CHECK_TEXT: &str = "ontap-keymgr";

impl SecretBox {
    /// A value only this key opens, kept by a shared store to refuse instances with another key.
    pub fn key_check(&self) -> StoreResult<Vec<u8>> {
        self.seal(KEY_CHECK_TEXT, column::KEY_CHECK)
    }

    /// Whether `sealed` is a [`SecretBox::key_check`] of this key.
    pub fn opens_key_check(&self, sealed: &[u8]) -> bool {
        self.open(sealed, column::KEY_CHECK)
            .is_ok_and(|text| text == KEY_CHECK_TEXT)
    }
}

fn undecryptable() -> StoreError {
    StoreError::Unreadable(
        "a stored secret does not decrypt (wrong key file, or corrupted data)".into(),
    )
}

fn fill_random(bytes: &mut [u8]) -> StoreResult<()> {
    OsRng.try_fill_bytes(bytes).map_err(|error| {
        StoreError::Backend(format!("the system random generator failed: {error}"))
    })
}

fn key_file_error(path: &Path, error: &io::Error) -> StoreError {
    StoreError::Backend(format!("secret key file {}: {error}", path.display()))
}

fn key_from_file(path: &Path, bytes: &[u8]) -> StoreResult<SecretBox> {
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
        StoreError::Backend(format!(
            "secret key file {} must hold exactly {KEY_LEN} bytes, it holds {}",
            path.display(),
            bytes.len()
        ))
    })?;
    warn_if_readable_by_others(path);
    Ok(SecretBox { key })
}

/// The key file should be private to the service's user; say so rather than refuse, since the
/// operator may have reasons (and refusing would stop the service).
fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the secret key file is accessible to other users; it should be mode 0600"
            );
        }
    }
}

fn create_key_file(path: &Path) -> StoreResult<SecretBox> {
    let mut key = [0u8; KEY_LEN];
    fill_random(&mut key)?;
    // `create_new` so that two processes starting together never overwrite each other's key:
    // the loser reads the winner's file.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            let bytes = fs::read(path).map_err(|error| key_file_error(path, &error))?;
            return key_from_file(path, &bytes);
        }
        Err(error) => return Err(key_file_error(path, &error)),
    };
    if let Err(error) = write_durably(&mut file, &key) {
        // A truncated key file would fail every later start; leave no file instead.
        let _ = fs::remove_file(path);
        return Err(key_file_error(path, &error));
    }
    sync_parent_directory(path);
    tracing::info!(path = %path.display(), "created a new secret key file");
    Ok(SecretBox { key })
}

fn write_durably(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the new file's directory entry durable too; best effort, as some file systems do not
/// allow opening a directory.
fn sync_parent_directory(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(directory) = File::open(parent) {
        let _ = directory.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_box() -> SecretBox {
        SecretBox::from_key([7u8; KEY_LEN])
    }

    #[test]
    fn a_sealed_value_opens_back() {
        let secrets = test_box();
        let sealed = secrets.seal("s3cret password", "purpose").expect("seal");
        assert_eq!(sealed.len(), NONCE_LEN + "s3cret password".len() + TAG_LEN);
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(
            secrets.open(&sealed, "purpose").expect("open"),
            "s3cret password"
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let secrets = test_box();
        let first = secrets.seal("same", "purpose").expect("seal");
        let second = secrets.seal("same", "purpose").expect("seal");
        assert_ne!(first, second);
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let secrets = test_box();
        let sealed = secrets.seal("password", "purpose").expect("seal");
        for index in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[index] ^= 1;
            assert!(matches!(
                secrets.open(&tampered, "purpose"),
                Err(StoreError::Unreadable(_))
            ));
        }
        assert!(
            secrets
                .open(&sealed[..NONCE_LEN + TAG_LEN - 1], "purpose")
                .is_err()
        );
        assert!(secrets.open(&[], "purpose").is_err());
    }

    #[test]
    fn a_value_does_not_open_for_another_purpose_or_key() {
        let sealed = test_box()
            .seal("password", "key_server.password")
            .expect("seal");
        let error = test_box()
            .open(&sealed, "certificate.private_key")
            .expect_err("wrong aad");
        assert!(!error.to_string().contains("password"));
        assert!(
            SecretBox::from_key([8u8; KEY_LEN])
                .open(&sealed, "key_server.password")
                .is_err()
        );
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let text = format!("{:?}", SecretBox::from_key([0xab; KEY_LEN]));
        assert_eq!(text, "SecretBox { .. }");
    }

    #[test]
    fn the_key_file_is_created_private_and_reloads_the_same_key() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("secret.key");
        let created = SecretBox::load_or_create(&path).expect("create");
        let metadata = fs::metadata(&path).expect("metadata");
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(metadata.len(), KEY_LEN as u64);

        let sealed = created.seal("password", "purpose").expect("seal");
        let reloaded = SecretBox::load_or_create(&path).expect("reload");
        assert_eq!(reloaded.key, created.key);
        assert_eq!(reloaded.open(&sealed, "purpose").expect("open"), "password");
    }

    #[test]
    fn a_key_file_of_the_wrong_length_is_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("secret.key");
        fs::write(&path, [1u8; 31]).expect("write");
        let error = SecretBox::load_or_create(&path).expect_err("short key");
        assert!(matches!(error, StoreError::Backend(message) if message.contains("32 bytes")));
        // The bad file is left for the operator to look at, not replaced.
        assert_eq!(fs::read(&path).expect("read").len(), 31);
    }
}
