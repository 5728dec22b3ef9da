//! How many objects of each kind the catalogue holds at most. Every one of them is kept in the
//! read model's memory and read whole by listings, so a client that creates them without end
//! would make the service spend memory without end. The bounds sit above what ONTAP clusters
//! hold (the benchmark's 1,000 key managers use 999 SVMs and 2,000 certificates) and below what
//! would matter to the process: certificates are the largest objects (64 KiB of PEM at most).
//!
//! Checked before the insert, against the read model: instances sharing one PostgreSQL may
//! overshoot a bound by the writes they make at the same moment, never by more.

use super::error::{Error, Result};

/// SVMs, the admin SVM (the cluster) not counted.
pub const MAX_SVMS: usize = 1_024;
/// Installed certificates, every type and SVM together.
pub const MAX_CERTIFICATES: usize = 4_096;
/// API accounts.
pub const MAX_ACCOUNTS: usize = 1_024;

/// Refuses another object when `existing` already reached `limit`.
pub fn check_room(what: &'static str, existing: usize, limit: usize) -> Result<()> {
    match existing < limit {
        true => Ok(()),
        false => Err(Error::LimitReached { what, limit }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_place_is_given_and_the_next_refused() {
        assert!(check_room("SVMs", MAX_SVMS - 1, MAX_SVMS).is_ok());
        let refused = check_room("SVMs", MAX_SVMS, MAX_SVMS).unwrap_err();
        assert_eq!(refused.code(), 262145);
        assert_eq!(refused.status().as_u16(), 409);
        assert!(refused.to_string().contains("1024 SVMs"), "{refused}");
    }
}
