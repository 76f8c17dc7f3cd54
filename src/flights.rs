//! Single flight: one upstream call per key, however many requests need it at once.
//!
//! A page load fans out into many requests carrying the same session cookie; when its token needs
//! a check or a refresh they would all make one. Here the first request starts the call and every
//! other request of the process, on any worker, waits for that result. A success is kept for a
//! while (`remember`), because requests still carrying the old cookie keep arriving until the
//! browser stores the new one, and because a replayed cookie must not buy another call. A failure
//! is not kept: the next request tries again (the refused-token memory of `upkeep.rs` keeps the
//! failures that are final). If the request that started a call is dropped (client gone), a
//! waiting request takes over.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

use crate::error::ErrorKind;

/// Old entries are swept at most this often, so a call does not scan every user's entry.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// A flight never completed (every request waiting on it was dropped) is forgotten after this
/// long: longer than any call can take, with its deadlines and retries.
const ABANDONED_AFTER: Duration = Duration::from_secs(300);

struct Flight<V> {
    started: Instant,
    remember: Duration,
    outcome: Arc<OnceCell<Result<V, ErrorKind>>>,
}

impl<V> Flight<V> {
    fn new(remember: Duration) -> Self {
        Self {
            started: Instant::now(),
            remember,
            outcome: Arc::default(),
        }
    }

    fn over(&self) -> bool {
        // Done: over once remembered long enough. In flight: over only when abandoned (every
        // caller dropped), so that its entry does not stay for good.
        if self.outcome.initialized() {
            self.started.elapsed() >= self.remember
        } else {
            self.started.elapsed() >= ABANDONED_AFTER
        }
    }
}

/// Calls in flight or just done, by key. Shared by every worker: clone it.
pub(crate) struct SingleFlight<K, V> {
    inner: Arc<Mutex<Flights<K, V>>>,
}

impl<K, V> Clone for SingleFlight<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Flights {
                by_key: HashMap::new(),
                swept: None,
            })),
        }
    }
}

struct Flights<K, V> {
    by_key: HashMap<K, Flight<V>>,
    swept: Option<Instant>,
}

/// What [`SingleFlight::run`] did.
pub(crate) struct Ran<V> {
    pub(crate) outcome: Result<V, ErrorKind>,
    /// Whether this request made the call (rather than sharing another's, or a remembered one).
    pub(crate) called: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    /// A success for `key` that is still remembered, without calling.
    pub(crate) fn remembered(&self, key: &K) -> Option<V> {
        let flights = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let flight = flights.by_key.get(key)?;
        if flight.over() {
            return None;
        }
        flight.outcome.get().and_then(|o| o.as_ref().ok().cloned())
    }

    /// The outcome of `call` for `key`, made once for everyone asking at the same time, a success
    /// kept for `remember`.
    pub(crate) async fn run<F, Fut>(&self, key: K, remember: Duration, call: F) -> Ran<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, ErrorKind>>,
    {
        let cell = {
            let mut flights = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if flights.swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                flights.by_key.retain(|_, f| !f.over());
                flights.swept = Some(Instant::now());
            }
            let flight = flights
                .by_key
                .entry(key.clone())
                .and_modify(|f| {
                    if f.over() {
                        *f = Flight::new(remember);
                    }
                })
                .or_insert_with(|| Flight::new(remember));
            Arc::clone(&flight.outcome)
        };
        let mut called = false;
        let outcome = cell
            .get_or_init(|| {
                called = true;
                call()
            })
            .await
            .clone();
        if outcome.is_err() {
            let mut flights = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if flights
                .by_key
                .get(&key)
                .is_some_and(|f| Arc::ptr_eq(&f.outcome, &cell))
            {
                flights.by_key.remove(&key);
            }
        }
        Ran { outcome, called }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[actix_web::test]
    async fn concurrent_callers_share_one_call_and_a_success_is_remembered() {
        let flights = SingleFlight::<&str, u32>::default();
        let calls = AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            Ok(7)
        };
        let remember = Duration::from_secs(60);
        let (a, b) = futures_util::future::join(
            flights.run("k", remember, call),
            flights.run("k", remember, call),
        )
        .await;
        assert_eq!((a.outcome, b.outcome), (Ok(7), Ok(7)));
        assert!(a.called != b.called, "exactly one made the call");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(flights.remembered(&"k"), Some(7));
        assert!(!flights.run("k", remember, call).await.called);
        // Nothing remembered: every call after the first completes anew.
        let ran = flights.run("z", Duration::ZERO, call).await;
        assert!(ran.called);
        assert_eq!(flights.remembered(&"z"), None);
        assert!(flights.run("z", Duration::ZERO, call).await.called);
    }

    #[actix_web::test]
    async fn a_failure_is_not_remembered() {
        let flights = SingleFlight::<u8, u8>::default();
        let ran = flights
            .run(1, Duration::from_secs(60), || async {
                Err(ErrorKind::UpstreamTimeout)
            })
            .await;
        assert_eq!(ran.outcome, Err(ErrorKind::UpstreamTimeout));
        assert_eq!(flights.remembered(&1), None);
        let ran = flights
            .run(1, Duration::from_secs(60), || async { Ok(2) })
            .await;
        assert!(ran.called);
    }
}
