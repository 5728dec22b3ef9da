//! Whether an answer computed earlier would still be computed the same: the versions of what
//! answers read, taken before an answer is computed. Each changes only after a change it
//! covers has become visible, so an answer kept with the versions read before it was computed
//! is served again only while nothing it read has changed since.

use super::check_cache::CheckVersions;

/// What an answer read besides its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Configuration objects only: SVMs, certificates, key managers and their key servers.
    Objects,
    /// Also the state of key servers (a key manager's `status`), not when they were checked.
    ServerStates,
    /// Also the key servers' latest checks, with their times (`connectivity`).
    Checks,
}

/// The versions of everything an answer can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    objects: u64,
    states: u64,
    checks: u64,
}

impl Versions {
    /// The store's version of its objects, with how far the checks have changed.
    pub(super) fn new(objects: u64, checks: CheckVersions) -> Versions {
        Versions {
            objects,
            states: checks.states,
            checks: checks.checks,
        }
    }

    /// Whether an answer that read `reads` when the versions were `self` is the same at `now`.
    pub fn unchanged_at(&self, now: &Versions, reads: Reads) -> bool {
        self.objects == now.objects
            && match reads {
                Reads::Objects => true,
                Reads::ServerStates => self.states == now.states,
                Reads::Checks => self.states == now.states && self.checks == now.checks,
            }
    }
}

#[cfg(test)]
impl Versions {
    /// As after a check that changed a server's state, or found the same again.
    pub fn after_check(self, state_changed: bool) -> Versions {
        Versions {
            states: self.states + u64::from(state_changed),
            checks: self.checks + 1,
            ..self
        }
    }

    pub fn after_objects_change(self) -> Versions {
        Versions {
            objects: self.objects + 1,
            ..self
        }
    }
}
