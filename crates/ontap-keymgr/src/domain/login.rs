//! Logging in with Basic credentials, defended against those who have none:
//! - Argon2 verifications run a few at a time, on as many threads of their own (each holds about
//!   19 MiB while it runs, and the allocator keeps that much per thread afterwards: on tokio's
//!   pool of up to 512 blocking threads, 500 concurrent logins took 1.6 GB); a request that
//!   cannot get a turn within [`VERIFY_QUEUE_WAIT`] is told the service is busy;
//! - an unknown user is verified against a dummy hash, so that both refusals cost the same and
//!   timing tells no user name;
//! - failed logins are counted per account, and an account is locked after
//!   `max_failed_login_attempts` for `lockout_duration`, as ONTAP's `security login role config`
//!   does (off by default, as in ONTAP); the counters live in the store;
//! - an address with too many recent failures is refused without a verification for a while
//!   (in memory, for a bounded number of addresses).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use super::error::Error;

/// How long a login may wait for a verification turn before it is refused as busy.
pub const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// The default number of failures from one address within [`ADDRESS_WINDOW`] after which it is
/// refused for the rest of the window.
pub const ADDRESS_FAILURE_LIMIT: u32 = 10;
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
/// How many addresses the throttle remembers; the oldest is forgotten first.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// ONTAP's `security login role config` settings for failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// 0: never lock (ONTAP's default).
    pub max_failed_login_attempts: u32,
    pub lockout_duration: Duration,
    /// Failures from one address within a minute after which it is refused for the rest of
    /// it; 0: no throttling (not ONTAP's: it has no such setting).
    pub max_failed_logins_per_address: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failed_login_attempts: 0,
            // ONTAP's lockout duration is counted in days; one is its shortest.
            lockout_duration: Duration::from_secs(86_400),
            max_failed_logins_per_address: ADDRESS_FAILURE_LIMIT,
        }
    }
}

/// Why a login failed, for the audit trail (the client is only ever told it failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    UnknownUser,
    WrongPassword,
    Locked,
    AddressThrottled,
    Busy,
}

impl LoginRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::UnknownUser => "unknown user",
            LoginRefusal::WrongPassword => "wrong password",
            LoginRefusal::Locked => "account locked",
            LoginRefusal::AddressThrottled => "too many failures from this address",
            LoginRefusal::Busy => "busy",
        }
    }
}

/// A failed login: what the client is told, and why, for the audit trail.
#[derive(Debug, Clone)]
pub struct LoginFailure {
    pub error: Error,
    pub refusal: LoginRefusal,
}

/// What an unknown user's password is verified against, so that it costs what a known user's
/// does: a hash of a random password nobody kept, with the parameters of
/// [`super::users::hash_password`] (a test holds them equal). A constant rather than one made
/// at start: hashing costs 19 MiB and tens of milliseconds of every start, and the allocator
/// kept those megabytes.
pub(super) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$tHXqOYCN26EjuLv92/st5w$xBVR5J5MHyBFdN5yP4Ff/Rh3J00+iXWFbFi3WoN0f3c";

pub struct LoginGuard {
    /// One permit per verifier thread: a holder's job starts at once.
    verifications: Semaphore,
    verifiers: SyncSender<Verification>,
    throttle: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    pub(super) policy: LockoutPolicy,
}

impl LoginGuard {
    pub fn new(policy: LockoutPolicy) -> LoginGuard {
        // About the core count: verifications are CPU-bound, more at once only add memory.
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        LoginGuard {
            verifications: Semaphore::new(permits),
            verifiers: start_verifiers(permits),
            throttle: Mutex::new(HashMap::new()),
            policy,
        }
    }

    /// `Some(seconds to wait)` when the address is refused for now.
    pub(super) fn throttled(&self, address: IpAddr) -> Option<u64> {
        let throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        let (failures, since) = throttle.get(&address)?;
        let elapsed = since.elapsed();
        let limit = self.policy.max_failed_logins_per_address;
        (limit > 0 && *failures >= limit && elapsed < ADDRESS_WINDOW)
            .then(|| (ADDRESS_WINDOW - elapsed).as_secs().max(1))
    }

    pub(super) fn address_failed(&self, address: IpAddr) {
        let mut throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        if !throttle.contains_key(&address) && throttle.len() >= MAX_TRACKED_ADDRESSES {
            throttle.retain(|_, (_, since)| since.elapsed() < ADDRESS_WINDOW);
            if throttle.len() >= MAX_TRACKED_ADDRESSES
                && let Some(oldest) = throttle
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(a, _)| *a)
            {
                throttle.remove(&oldest);
            }
        }
        let entry = throttle.entry(address).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= ADDRESS_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub(super) fn address_succeeded(&self, address: IpAddr) {
        let mut throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        throttle.remove(&address);
    }

    /// One Argon2 verification, when a turn comes within [`VERIFY_QUEUE_WAIT`].
    pub(super) async fn verify_bounded(
        &self,
        hash: String,
        password: String,
    ) -> std::result::Result<bool, LoginFailure> {
        let busy = || LoginFailure {
            error: Error::Busy,
            refusal: LoginRefusal::Busy,
        };
        let permit = tokio::time::timeout(VERIFY_QUEUE_WAIT, self.verifications.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let (answer, answered) = oneshot::channel();
        self.verifiers
            .send(Verification {
                hash,
                password,
                answer,
            })
            .map_err(|_| busy())?;
        let matches = answered.await.map_err(|_| busy())?;
        drop(permit);
        Ok(matches)
    }

    #[cfg(test)]
    fn tracked_addresses(&self) -> usize {
        self.throttle.lock().map(|t| t.len()).unwrap_or(0)
    }
}

/// A password to check against a hash, and where to say whether it matches.
struct Verification {
    hash: String,
    password: String,
    answer: oneshot::Sender<bool>,
}

/// `count` threads that verify passwords, fed by the returned channel.
fn start_verifiers(count: usize) -> SyncSender<Verification> {
    let (sender, receiver) = sync_channel::<Verification>(count);
    let receiver = Arc::new(Mutex::new(receiver));
    for index in 0..count {
        let receiver = receiver.clone();
        let started = std::thread::Builder::new()
            .name(format!("password-verifier-{index}"))
            .spawn(move || verify_forever(&receiver));
        if let Err(error) = started {
            tracing::error!(%error, "cannot start a password verifier thread");
        }
    }
    sender
}

/// Until the service (the sender) is gone. Each thread allocates Argon2's memory once and reuses
/// it: allocating and freeing 19 MiB per verification left the allocator holding several such
/// blocks per thread.
fn verify_forever(receiver: &Mutex<Receiver<Verification>>) {
    let mut memory: Vec<argon2::Block> = Vec::new();
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let matches = verify_in(&mut memory, &job.hash, &job.password);
        let _ = job.answer.send(matches);
    }
}

/// Whether `password` matches the PHC string `hash`, computing Argon2 in `memory` (resized to
/// the hash's parameters, kept for the next call); the result is compared in constant time.
fn verify_in(memory: &mut Vec<argon2::Block>, hash: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordHash;
    use argon2::{Algorithm, Argon2, Params, Version};
    use subtle::ConstantTimeEq;

    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() != params.block_count() {
        *memory = vec![argon2::Block::default(); params.block_count()];
    }
    let mut computed = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut computed,
        memory.as_mut_slice(),
    );
    hashed.is_ok() && bool::from(computed.ct_eq(expected.as_bytes()))
}

pub(super) fn now_seconds() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_in_reused_memory_agrees_with_the_library() {
        let hash = super::super::users::hash_password("s3cret-password").expect("hash");
        let mut memory = Vec::new();
        assert!(verify_in(&mut memory, &hash, "s3cret-password"));
        assert!(!verify_in(&mut memory, &hash, "s3cret-passwore"));
        assert!(!verify_in(&mut memory, "not a hash", "s3cret-password"));
        assert!(super::super::users::verify_password(
            &hash,
            "s3cret-password"
        ));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        use argon2::password_hash::PasswordHash;
        let real = super::super::users::hash_password("any").expect("hash");
        let (real, dummy) = (
            PasswordHash::new(&real).expect("real"),
            PasswordHash::new(DUMMY_HASH).expect("dummy"),
        );
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        let mut memory = Vec::new();
        assert!(!verify_in(
            &mut memory,
            DUMMY_HASH,
            "no user has this password"
        ));
        assert_eq!(
            memory.len(),
            19 * 1024,
            "verified with the real memory cost"
        );
    }

    #[test]
    fn an_address_is_throttled_after_the_limit_and_a_success_clears_it() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        let address: IpAddr = "192.0.2.1".parse().expect("address");
        for _ in 0..ADDRESS_FAILURE_LIMIT - 1 {
            guard.address_failed(address);
        }
        assert_eq!(guard.throttled(address), None);
        guard.address_failed(address);
        let wait = guard.throttled(address).expect("throttled");
        assert!((1..=ADDRESS_WINDOW.as_secs()).contains(&wait));
        guard.address_succeeded(address);
        assert_eq!(guard.throttled(address), None);
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_addresses() {
        let guard = LoginGuard::new(LockoutPolicy::default());
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 100) {
            guard.address_failed(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(guard.tracked_addresses(), MAX_TRACKED_ADDRESSES);
    }
}
