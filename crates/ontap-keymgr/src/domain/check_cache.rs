//! The latest check of each key server, in memory: what `connectivity` and key managers'
//! `status` answer from, kept only while the server keeps the settings it was checked with and
//! no change of its key manager happened since the check started.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::kmip_check::{Check, State};
use super::model::{KeyManagerId, KeyServer};

/// A key server, as the latest_checks name it.
type ServerKey = (KeyManagerId, String);

pub(super) fn server_key(key_manager: &KeyManagerId, server: &KeyServer) -> ServerKey {
    (key_manager.clone(), server.server.to_string())
}

/// When a check started, to tell whether what it checked still applies when it ends: a change
/// of the key manager's servers, or of the TLS offer, meanwhile makes it stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Epoch {
    all: u64,
    key_manager: u64,
}

/// A check, with the settings of the server it checked: a result applies only while the server
/// keeps them, whoever changed them (this instance, or another sharing the store).
struct CheckedWith {
    settings: KeyServer,
    check: Arc<Check>,
}

#[derive(Default)]
struct LatestChecks {
    /// By key manager, then by server address: a key manager's servers are read under one lock
    /// and without building a key per server.
    latest: HashMap<KeyManagerId, HashMap<String, CheckedWith>>,
    /// Bumped when everything is forgotten (the TLS offer changed).
    all_epoch: u64,
    /// Set from `epoch_counter` when a key manager's servers change; pruned to the live key
    /// managers. A key manager without an entry is at `epoch_floor`.
    key_manager_epochs: HashMap<KeyManagerId, u64>,
    /// Only grows, so that an epoch is never seen twice.
    epoch_counter: u64,
    /// The counter when the epochs were last pruned: a check that started before a prune is
    /// never taken for current, even for a key manager whose entry the prune removed.
    epoch_floor: u64,
    /// Held while requests check a key manager's unchecked servers, so that many requests
    /// arriving together make one check, not one each; pruned to the live key managers.
    checking: HashMap<KeyManagerId, Arc<tokio::sync::Mutex<()>>>,
}

impl LatestChecks {
    fn epoch(&self, key_manager: &KeyManagerId) -> Epoch {
        Epoch {
            all: self.all_epoch,
            key_manager: self
                .key_manager_epochs
                .get(key_manager)
                .copied()
                .unwrap_or(self.epoch_floor),
        }
    }
}

/// The latest check of each key server.
#[derive(Default)]
pub struct CheckCache {
    latest_checks: Mutex<LatestChecks>,
    /// Bumped after every change of what is checked, once the change is visible: an answer
    /// that showed checks (their times) and was computed before is no longer current.
    checks: AtomicU64,
    /// Bumped after a change of some server's state or problem, the only parts of a check a
    /// key manager's `status` shows: checks that found the same again leave it as it was.
    states: AtomicU64,
}

/// How far what is checked has changed (see [`CheckCache::versions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CheckVersions {
    pub(super) checks: u64,
    pub(super) states: u64,
}

impl CheckCache {
    /// Held only to read or swap entries, never across an await: a poisoned lock's data is
    /// whole.
    fn lock(&self) -> MutexGuard<'_, LatestChecks> {
        self.latest_checks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn epoch(&self, key_manager: &KeyManagerId) -> Epoch {
        self.lock().epoch(key_manager)
    }

    /// Read before an answer is computed: a change that becomes visible later bumps them.
    pub(super) fn versions(&self) -> CheckVersions {
        CheckVersions {
            checks: self.checks.load(Ordering::Acquire),
            states: self.states.load(Ordering::Acquire),
        }
    }

    /// Called after a change, never before it is visible: an answer computed from what was
    /// there before the change must not carry the versions that follow it.
    fn changed(&self, states: bool) {
        if states {
            self.states.fetch_add(1, Ordering::Release);
        }
        self.checks.fetch_add(1, Ordering::Release);
    }

    pub(super) fn checking(&self, key_manager: &KeyManagerId) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.lock().checking.entry(key_manager.clone()).or_default())
    }

    /// The latest check of each of a key manager's servers, in order: none for a server whose
    /// settings changed since.
    pub(super) fn latest(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Vec<Option<Arc<Check>>> {
        let latest_checks = self.lock();
        let known = latest_checks.latest.get(key_manager);
        servers
            .iter()
            .map(|s| {
                known
                    .and_then(|known| known.get(s.server.as_str()))
                    .filter(|checked| checked.settings == *s)
                    .map(|checked| Arc::clone(&checked.check))
            })
            .collect()
    }

    /// Keeps `check` of `server` unless the key manager changed since `epoch`. Answers the
    /// state it replaced, if any.
    pub(super) fn put(
        &self,
        key_manager: &KeyManagerId,
        server: &KeyServer,
        check: Check,
        epoch: Epoch,
    ) -> Option<State> {
        let mut latest_checks = self.lock();
        if latest_checks.epoch(key_manager) != epoch {
            return None;
        }
        let (state, problem) = (check.state, check.problem.clone());
        let checked = CheckedWith {
            settings: server.clone(),
            check: Arc::new(check),
        };
        let previous = latest_checks
            .latest
            .entry(key_manager.clone())
            .or_default()
            .insert(server.server.to_string(), checked);
        drop(latest_checks);
        let same_state = previous.as_ref().is_some_and(|previous| {
            previous.settings == *server
                && previous.check.state == state
                && previous.check.problem == problem
        });
        self.changed(!same_state);
        previous.map(|previous| previous.check.state)
    }

    /// Drops everything checked, after the TLS offer changed.
    pub fn forget_all(&self) {
        let mut latest_checks = self.lock();
        latest_checks.latest.clear();
        latest_checks.all_epoch = latest_checks.all_epoch.wrapping_add(1);
        drop(latest_checks);
        self.changed(true);
    }

    /// Drops what is known of a key manager's servers after they changed.
    pub fn forget(&self, key_manager: &KeyManagerId) {
        let mut latest_checks = self.lock();
        latest_checks.latest.remove(key_manager);
        latest_checks.epoch_counter += 1;
        let epoch = latest_checks.epoch_counter;
        latest_checks
            .key_manager_epochs
            .insert(key_manager.clone(), epoch);
        drop(latest_checks);
        self.changed(true);
    }

    /// Keeps only what concerns the servers configured now, so that deleted key managers and
    /// servers leave nothing behind.
    pub(super) fn retain(&self, configured: &HashSet<ServerKey>) {
        let key_managers: HashSet<&KeyManagerId> = configured.iter().map(|(km, _)| km).collect();
        let mut latest_checks = self.lock();
        let before: usize = latest_checks.latest.values().map(HashMap::len).sum();
        latest_checks.latest.retain(|km, servers| {
            servers.retain(|server, _| configured.contains(&(km.clone(), server.clone())));
            !servers.is_empty()
        });
        let removed = latest_checks
            .latest
            .values()
            .map(HashMap::len)
            .sum::<usize>()
            != before;
        latest_checks
            .key_manager_epochs
            .retain(|km, _| key_managers.contains(km));
        latest_checks.epoch_floor = latest_checks.epoch_counter;
        latest_checks
            .checking
            .retain(|km, _| key_managers.contains(km));
        drop(latest_checks);
        if removed {
            // A check made between the round's listing and now can be among them.
            self.changed(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::address::KeyServerAddress;
    use crate::domain::error::Error;
    use crate::domain::model::KeyServerTimeout;

    /// A key manager's id and a server of it, for the cache's bookkeeping.
    fn key_manager_and_server() -> (KeyManagerId, KeyServer) {
        let server = KeyServer {
            server: KeyServerAddress::parse("ks1:5696").expect("address"),
            timeout: KeyServerTimeout::Seconds(5),
            username: None,
            password: None,
            secondary_key_servers: vec![],
        };
        (crate::domain::ids::Id::from_stored("km".to_owned()), server)
    }

    /// A check that started before its key manager changed is dropped, even when a monitor
    /// round pruned the key manager's epoch meanwhile.
    #[test]
    fn a_check_older_than_a_change_is_dropped_even_across_a_prune() {
        let cache = CheckCache::default();
        let (km, server) = key_manager_and_server();
        let stale = cache.epoch(&km);
        cache.forget(&km);
        cache.retain(&HashSet::new());
        cache.put(&km, &server, Check::unknown(None), stale);
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_none());

        let current = cache.epoch(&km);
        cache.put(&km, &server, Check::unknown(None), current);
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_some());
    }

    /// Answers kept by the response cache rest on these: every check moves `checks`, only a
    /// change of state or problem moves `states`, and forgetting moves both.
    #[test]
    fn the_versions_move_with_what_answers_show() {
        let cache = CheckCache::default();
        let (km, server) = key_manager_and_server();
        let moved = |before: CheckVersions| {
            let now = cache.versions();
            (now.checks != before.checks, now.states != before.states)
        };
        let before = cache.versions();
        cache.put(&km, &server, Check::unknown(None), cache.epoch(&km));
        assert_eq!(moved(before), (true, true), "a first check");
        let before = cache.versions();
        cache.put(&km, &server, Check::unknown(None), cache.epoch(&km));
        assert_eq!(moved(before), (true, false), "the same state again");
        let before = cache.versions();
        let problem = Error::NotFound { target: "uuid" };
        cache.put(
            &km,
            &server,
            Check::unknown(Some(&problem)),
            cache.epoch(&km),
        );
        assert_eq!(moved(before), (true, true), "another problem");
        let before = cache.versions();
        let stale = cache.epoch(&km);
        cache.forget(&km);
        assert_eq!(moved(before), (true, true), "forgotten");
        let before = cache.versions();
        cache.put(&km, &server, Check::unknown(None), stale);
        assert_eq!(moved(before), (false, false), "a stale check is not kept");
        cache.put(&km, &server, Check::unknown(None), cache.epoch(&km));
        let before = cache.versions();
        cache.retain(&HashSet::new());
        assert_eq!(moved(before), (true, true), "pruned");
        let before = cache.versions();
        cache.forget_all();
        assert_eq!(moved(before), (true, true), "everything forgotten");
    }

    /// Another instance sharing the store changed the server: what was checked with the old
    /// settings no longer answers for it, though nothing here was told.
    #[test]
    fn a_check_applies_only_to_the_settings_it_checked() {
        let cache = CheckCache::default();
        let (km, server) = key_manager_and_server();
        let server = KeyServer {
            username: Some("user".into()),
            password: Some(crate::domain::model::Secret::new("old")),
            ..server
        };
        cache.put(&km, &server, Check::unknown(None), cache.epoch(&km));
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_some());
        let changed = KeyServer {
            password: Some(crate::domain::model::Secret::new("new")),
            ..server
        };
        assert!(cache.latest(&km, &[changed])[0].is_none());
    }
}
