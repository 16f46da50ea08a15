//! Long waits on the server in slices: one request per [`SLICE`] of waiting, so a long
//! wait never trips the call timeout and a dead server still ends it with
//! [`ManagerError::ManagerGone`](super::ManagerError::ManagerGone). Used by the lock,
//! the queue and the synchronization proxies.

use super::ManagerError;
use std::time::{Duration, Instant};

/// The longest single wait the server is asked for, well below the call timeout: a
/// longer acquire is several requests.
pub(super) const SLICE: Duration = Duration::from_secs(1);

/// `wait` in whole milliseconds for a request.
pub(super) fn wait_ms(wait: Duration) -> u64 {
    wait.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Run `attempt(slice, last)` until it returns `Some`, each attempt waiting at most
/// [`SLICE`] on the server; `timeout` `None` is forever. `last` is true for the
/// attempt that ends at the deadline; `None` if that one came back empty too.
pub(super) fn in_slices<R>(
    timeout: Option<Duration>,
    mut attempt: impl FnMut(Duration, bool) -> Result<Option<R>, ManagerError>,
) -> Result<Option<R>, ManagerError> {
    // A deadline past what `Instant` holds is forever.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let left = deadline.map_or(SLICE, |d| d.saturating_duration_since(Instant::now()));
        let last = deadline.is_some() && left <= SLICE;
        if let Some(r) = attempt(left.min(SLICE), last)? {
            return Ok(Some(r));
        }
        if last {
            return Ok(None);
        }
    }
}
