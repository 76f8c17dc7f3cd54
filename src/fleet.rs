//! One refresh per token across every instance of the app, coordinated through Redis.
//!
//! Behind a load balancer, the requests of one user whose token just expired land on several
//! instances at once. Within an instance [`RefreshFlights`](crate::refresh) already makes them
//! share one refresh; across instances the instance that takes a short Redis lock refreshes, and
//! publishes the new tokens under a result key that the others poll. The lock expires by itself
//! (its holder may die), waits are bounded, and when Redis cannot be used the instance refreshes
//! on its own: a duplicate refresh is harmless, a stuck sign-in is not.
//!
//! Keys hold a SHA-256 of the tokens, never the tokens; the result value holds the new tokens,
//! like the sessions stored in the same Redis.

use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
use deadpool_redis::{redis, Pool};
use log::{debug, warn};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use crate::{
    client::WeChatClient,
    config::WeChatConfig,
    error::ErrorKind,
    tokens::{AccessToken, RefreshToken},
    wire::TokenResponse,
};

/// How long the new tokens stay readable by the other instances.
const RESULT_TTL: Duration = Duration::from_secs(120);
/// How often a waiting instance looks for the result.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// Deadline of one Redis command: a hung Redis must not hold requests.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

const RELEASE_IF_OURS: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/// The Redis side of shared refreshes.
#[derive(Clone)]
pub(crate) struct FleetRefresh {
    pool: Pool,
    /// Longer than the slowest refresh (every attempt timing out, plus backoff).
    lock_ttl: Duration,
}

impl FleetRefresh {
    pub(crate) fn new(pool: Pool, config: &WeChatConfig) -> Self {
        let inner = &config.inner;
        let backoff: Duration = (0..inner.max_attempts)
            .map(|n| inner.retry_backoff.saturating_mul(1 << n.min(16)))
            .sum();
        let lock_ttl = inner.request_timeout.saturating_mul(inner.max_attempts) + backoff;
        Self {
            pool,
            lock_ttl: lock_ttl + Duration::from_secs(1),
        }
    }

    pub(crate) async fn refresh(
        &self,
        client: &WeChatClient,
        token: &RefreshToken,
        replacing: &AccessToken,
    ) -> Result<TokenResponse, ErrorKind> {
        let digest = fingerprint(token, replacing);
        let result_key = format!("wechat-auth:refreshed:{digest}");
        let lock_key = format!("wechat-auth:refreshing:{digest}");
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let give_up_at = Instant::now() + self.lock_ttl;
        loop {
            match self.published(&result_key).await {
                Ok(Some(tokens)) => {
                    debug!("refresh shared by another instance");
                    return Ok(tokens);
                }
                Ok(None) => {}
                Err(e) => return on_our_own(client, token, &e).await,
            }
            match self.lock(&lock_key, &nonce).await {
                Ok(true) => {
                    let result = client.refresh(token).await;
                    if let Ok(tokens) = &result {
                        if let Err(e) = self.publish(&result_key, tokens).await {
                            warn!("cannot share a refresh through Redis: {e}");
                        }
                    }
                    if let Err(e) = self.unlock(&lock_key, &nonce).await {
                        // It expires by itself within lock_ttl.
                        warn!("cannot release a refresh lock in Redis: {e}");
                    }
                    return result;
                }
                Ok(false) if Instant::now() < give_up_at => sleep(POLL_EVERY).await,
                Ok(false) => {
                    return on_our_own(client, token, "waited past the lock's lifetime").await
                }
                Err(e) => return on_our_own(client, token, &e).await,
            }
        }
    }

    async fn published(&self, key: &str) -> Result<Option<TokenResponse>, String> {
        let value: Option<String> = self.run(redis::cmd("GET").arg(key)).await?;
        match value {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| format!("unreadable shared refresh: {:?}", e.classify())),
            None => Ok(None),
        }
    }

    async fn lock(&self, key: &str, nonce: &str) -> Result<bool, String> {
        let ttl = u64::try_from(self.lock_ttl.as_millis()).unwrap_or(u64::MAX);
        let set: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(key)
                    .arg(nonce)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn publish(&self, key: &str, tokens: &TokenResponse) -> Result<(), String> {
        let json = serde_json::to_string(tokens).map_err(|e| e.to_string())?;
        self.run::<()>(
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("EX")
                .arg(RESULT_TTL.as_secs()),
        )
        .await
    }

    async fn unlock(&self, key: &str, nonce: &str) -> Result<(), String> {
        let mut conn = self.connection().await?;
        let script = redis::Script::new(RELEASE_IF_OURS);
        timeout(
            REDIS_TIMEOUT,
            script.key(key).arg(nonce).invoke_async::<i64>(&mut conn),
        )
        .await
        .map_err(|_| "Redis timed out".to_owned())?
        .map(drop)
        .map_err(|e| e.to_string())
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.connection().await?;
        timeout(REDIS_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .await
            .map_err(|_| "Redis timed out".to_owned())?
            .map_err(|e| e.to_string())
    }

    async fn connection(&self) -> Result<deadpool_redis::Connection, String> {
        timeout(REDIS_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| "Redis timed out".to_owned())?
            .map_err(|e| e.to_string())
    }
}

async fn on_our_own(
    client: &WeChatClient,
    token: &RefreshToken,
    why: &str,
) -> Result<TokenResponse, ErrorKind> {
    warn!("refreshing without the fleet lock: {why}");
    client.refresh(token).await
}

fn fingerprint(token: &RefreshToken, replacing: &AccessToken) -> String {
    let mut hash = Sha256::new();
    hash.update(token.secret().as_bytes());
    hash.update([0]);
    hash.update(replacing.secret().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
