//! The search logs this process read before, by sweep. A decision needs the whole log, and
//! reading and parsing every row at every event made a proposal's transaction grow with the
//! log (47 ms at 1,000 trials on SQLite, `sweep bench proposal`). The logs are append-only
//! and numbered per sweep, and a sweep's rows are added under its lock in commit order, so
//! what was read once is a prefix of what any later read sees: a transaction reads only the
//! rows from the last one it holds on, and checks that that row is still the one it read.
//! Only rows read from the database are kept, never this process's own writes before they
//! commit (a rolled-back decision is so never remembered).

use crate::store::search::SearchLog;
use std::collections::HashMap;
use std::sync::Mutex;

/// A sweep's log as read, with the last event's and decision's stored text to recognise them.
#[derive(Clone, Default)]
pub(super) struct CachedLog {
    pub log: SearchLog,
    pub last_event: Option<(i64, String)>,
    pub last_decision: Option<(i64, String)>,
}

#[derive(Default)]
pub(super) struct LogCache(Mutex<HashMap<i64, CachedLog>>);

impl std::fmt::Debug for LogCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogCache")
    }
}

impl LogCache {
    /// What was read of sweep `sweep_id` (empty if nothing was).
    pub fn get(&self, sweep_id: i64) -> CachedLog {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&sweep_id).cloned().unwrap_or_default()
    }

    pub fn put(&self, sweep_id: i64, log: CachedLog) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(sweep_id, log);
    }
}
