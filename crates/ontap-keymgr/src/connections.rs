//! The open connections of the server, bounded: each holds a file descriptor and some memory, and
//! idle ones cost nothing to their owner. At the limit, a new connection makes room by closing
//! the connection idle the longest (no request in flight); when every one is busy, the new one is
//! closed instead. Either way it is logged once per episode, not per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// Connections kept below the limit by this share end an episode of shedding.
const CALM_SHARE: f64 = 0.9;

pub struct Connections {
    limit: usize,
    next_id: AtomicU64,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    open: HashMap<u64, Entry>,
    shedding: bool,
}

struct Entry {
    last_active: Instant,
    in_flight: usize,
    close: Arc<Notify>,
}

impl Connections {
    pub fn new(limit: usize) -> Arc<Connections> {
        Arc::new(Connections {
            limit: limit.max(1),
            next_id: AtomicU64::new(0),
            registry: Mutex::new(Registry::default()),
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, closing the longest-idle one when at the limit. `None`: every
    /// connection is busy, and the new one must be closed.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut registry = self.registry();
        if registry.open.len() >= self.limit {
            let idle_longest = registry
                .open
                .iter()
                .filter(|(_, entry)| entry.in_flight == 0)
                .min_by_key(|(_, entry)| entry.last_active)
                .map(|(id, _)| *id);
            if !registry.shedding {
                registry.shedding = true;
                tracing::warn!(
                    limit = self.limit,
                    "too many open connections: closing the longest idle ones"
                );
            }
            let victim = idle_longest.and_then(|id| registry.open.remove(&id))?;
            victim.close.notify_one();
        } else if registry.shedding && (registry.open.len() as f64) < self.limit as f64 * CALM_SHARE
        {
            registry.shedding = false;
            tracing::info!(
                open = registry.open.len(),
                "open connections back under the limit"
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        registry.open.insert(
            id,
            Entry {
                last_active: Instant::now(),
                in_flight: 0,
                close: close.clone(),
            },
        );
        Some(Admitted {
            id,
            connections: self.clone(),
            close,
        })
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.registry().open.len()
    }
}

/// A registered connection; dropping it deregisters it.
pub struct Admitted {
    id: u64,
    connections: Arc<Connections>,
    close: Arc<Notify>,
}

impl Admitted {
    /// Resolves when the connection must close to make room for another.
    pub async fn closing(&self) {
        self.close.notified().await
    }

    /// A handle for the connection's service, to mark its requests.
    pub fn activity(&self) -> Activity {
        Activity {
            id: self.id,
            connections: self.connections.clone(),
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.registry().open.remove(&self.id);
    }
}

/// Marks the requests of one connection, so that busy connections are never closed for room.
#[derive(Clone)]
pub struct Activity {
    id: u64,
    connections: Arc<Connections>,
}

impl Activity {
    /// A request started; it ends when the returned guard is dropped.
    pub fn request(&self) -> RequestInFlight {
        if let Some(entry) = self.connections.registry().open.get_mut(&self.id) {
            entry.in_flight += 1;
            entry.last_active = Instant::now();
        }
        RequestInFlight(self.clone())
    }
}

pub struct RequestInFlight(Activity);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if let Some(entry) = activity.connections.registry().open.get_mut(&activity.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_active = Instant::now();
        }
    }
}

/// Raises the soft limit of open files to the hard one, so that the connection limit, not the
/// process's descriptors, is what bounds connections. Returns the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_connection_makes_room() {
        let connections = Connections::new(2);
        let first = connections.admit().expect("room");
        let second = connections.admit().expect("room");
        // The second is busy; the first, idle the longest, is closed for the third.
        let busy = second.activity().request();
        let third = connections.admit().expect("room made");
        tokio::time::timeout(std::time::Duration::from_secs(1), first.closing())
            .await
            .expect("the idle one is told to close");
        assert_eq!(connections.open(), 2);
        // Both open ones busy: no room.
        let _also_busy = third.activity().request();
        assert!(connections.admit().is_none());
        drop(busy);
        assert!(connections.admit().is_some(), "the second is idle again");
        drop(first);
        drop(second);
        drop(third);
        assert_eq!(connections.open(), 0);
    }
}
