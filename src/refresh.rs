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

type Outcome = Result<Arc<TokenResponse>, ErrorKind>;

struct Flight {
    started: Instant,
    outcome: Arc<OnceCell<Outcome>>,
}

/// Refreshes in flight or just done, keyed by the refresh token and the access token it replaces.
/// Shared by every worker.
#[derive(Default, Clone)]
pub(crate) struct RefreshFlights {
    flights: Arc<Mutex<HashMap<(RefreshToken, AccessToken), Flight>>>,
}

impl RefreshFlights {
    pub(crate) async fn refresh(
        &self,
        client: &WeChatClient,
        token: &RefreshToken,
        replacing: &AccessToken,
    ) -> Outcome {
        let key = (token.clone(), replacing.clone());
        let outcome = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            flights.retain(|_, f| f.started.elapsed() < GRACE);
            Arc::clone(
                &flights
                    .entry(key.clone())
                    .or_insert_with(|| Flight {
                        started: Instant::now(),
                        outcome: Arc::default(),
                    })
                    .outcome,
            )
        };
        let result = outcome
            .get_or_init(|| async { client.refresh(token).await.map(Arc::new) })
            .await
            .clone();
        if result.is_err() {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            if flights
                .get(&key)
                .is_some_and(|f| Arc::ptr_eq(&f.outcome, &outcome))
            {
                flights.remove(&key);
            }
        }
        result
    }
}
