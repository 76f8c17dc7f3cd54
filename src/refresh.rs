//! One upstream refresh per refresh token, however many requests need it at once.
//!
//! A page load fans out into many requests carrying the same session cookie; when its access token
//! expires they would all refresh it. Here the first request starts the refresh and every other
//! request of the process, on any worker, waits for that result. A success is kept for a short
//! grace period, because requests still carrying the old cookie keep arriving until the browser
//! stores the new one; the key includes the access token being replaced, so a later refresh of
//! the new token (WeChat keeps the refresh token string) is never answered from that memory. A
//! failure is not kept: the next request tries again. If the request that
//! started a refresh is dropped (client gone), a waiting request takes over.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

use crate::{
    client::WeChatClient,
    error::ErrorKind,
    tokens::{AccessToken, RefreshToken},
    wire::TokenResponse,
};

const GRACE: Duration = Duration::from_secs(120);
/// Old entries are swept at most this often, so a refresh does not scan every user's entry.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Outcome = Result<Arc<TokenResponse>, ErrorKind>;

struct Flight {
    started: Instant,
    outcome: Arc<OnceCell<Outcome>>,
}

impl Flight {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            outcome: Arc::default(),
        }
    }
}

/// Refreshes in flight or just done, keyed by the refresh token and the access token it replaces.
/// Shared by every worker.
#[derive(Default, Clone)]
pub(crate) struct RefreshFlights {
    flights: Arc<Mutex<Flights>>,
    /// Other instances of the app to share refreshes with.
    #[cfg(feature = "redis")]
    fleet: Option<crate::fleet::FleetRefresh>,
}

#[derive(Default)]
struct Flights {
    by_tokens: HashMap<(RefreshToken, AccessToken), Flight>,
    swept: Option<Instant>,
}

impl RefreshFlights {
    #[cfg(feature = "redis")]
    pub(crate) fn shared_with(fleet: crate::fleet::FleetRefresh) -> Self {
        Self {
            fleet: Some(fleet),
            ..Self::default()
        }
    }

    pub(crate) async fn refresh(
        &self,
        client: &WeChatClient,
        token: &RefreshToken,
        replacing: &AccessToken,
    ) -> Outcome {
        let key = (token.clone(), replacing.clone());
        let outcome = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            if flights.swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                flights.by_tokens.retain(|_, f| f.started.elapsed() < GRACE);
                flights.swept = Some(Instant::now());
            }
            Arc::clone(
                &flights
                    .by_tokens
                    .entry(key.clone())
                    .and_modify(|f| {
                        if f.started.elapsed() >= GRACE {
                            *f = Flight::new();
                        }
                    })
                    .or_insert_with(Flight::new)
                    .outcome,
            )
        };
        let result = outcome
            .get_or_init(|| async { self.upstream(client, token, replacing).await.map(Arc::new) })
            .await
            .clone();
        if result.is_err() {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            if flights
                .by_tokens
                .get(&key)
                .is_some_and(|f| Arc::ptr_eq(&f.outcome, &outcome))
            {
                flights.by_tokens.remove(&key);
            }
        }
        result
    }

    async fn upstream(
        &self,
        client: &WeChatClient,
        token: &RefreshToken,
        replacing: &AccessToken,
    ) -> Result<TokenResponse, ErrorKind> {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.fleet {
            return fleet.refresh(client, token, replacing).await;
        }
        let _ = replacing;
        client.refresh(token).await
    }
}
