//! One check and one refresh per token across every instance of the app, through Redis.
//!
//! Behind a load balancer, the requests of one user whose token is due land on several instances
//! at once. Within an instance `flights.rs` already makes them share one call; across instances
//! the instance that takes a short Redis lock calls WeChat and publishes the outcome under a result
//! key that the others look for. The lock expires by itself (its holder may die). Waiting is
//! bounded: a waiter looks again after 25 ms, then twice as long each time (with jitter, so that
//! waiters do not poll in step) up to 400 ms, for at most `request_timeout`. Past that (the holder
//! is slow, or was dropped and its lock not yet expired), and when Redis cannot be used, the
//! instance calls on its own: a duplicate call is harmless, a stuck sign-in is not.
//!
//! Keys are `wechat-auth:{appid}:{kind}:{SHA-256 of the tokens}`, never the tokens. Published new
//! tokens are encrypted (AES-256-GCM, a key derived from the appsecret, the key name bound in), so
//! that what sits in Redis for two minutes is worth nothing without the appsecret.

use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use deadpool_redis::{redis, Pool};
use log::{debug, warn};
use rand::{distr::Alphanumeric, Rng as _};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    client::WeChatClient,
    config::{App, WeChatConfig},
    error::ErrorKind,
    keys,
    session::SignedIn,
    wire::TokenResponse,
};

/// How long new tokens stay readable by the other instances.
const REFRESH_RESULT_TTL: Duration = Duration::from_secs(120);
/// The first wait of a waiting instance, doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(25);
const MAX_POLL: Duration = Duration::from_millis(400);
/// Deadline of one Redis command: a hung Redis must not hold requests.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
const NONCE_LEN: usize = 12;

const RELEASE_IF_OURS: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/// The Redis side of shared checks and refreshes.
#[derive(Clone)]
pub(crate) struct Fleet {
    pool: Pool,
    /// `wechat-auth:{appid}:`
    prefix: String,
    /// Longer than the slowest call (every attempt timing out, plus backoff).
    lock_ttl: Duration,
    /// How long a waiter waits for another instance's outcome.
    wait_cap: Duration,
    /// The AES-256-GCM key of published outcomes. The cipher is made when used (rarely): its
    /// typenum-heavy type inside the middleware would make every wrapping service's future too
    /// deep for the compiler's layout limit.
    key: [u8; 32],
}

/// What one kind of shared call is called in Redis, and how long its outcome is kept.
struct Kind {
    result: &'static str,
    lock: &'static str,
    keep: Duration,
}

impl Fleet {
    pub(crate) fn new(pool: Pool, config: &WeChatConfig) -> Self {
        let (client, app) = (&config.settings.client, config.settings.apps.official());
        let backoff: Duration = (0..client.max_attempts)
            .map(|n| client.retry_backoff.saturating_mul(1 << n.min(16)))
            .sum();
        let lock_ttl = client.request_timeout.saturating_mul(client.max_attempts) + backoff;
        let key = keys::bytes::<32>(&app.secret, keys::FLEET_TOKENS);
        Self {
            pool,
            prefix: format!("wechat-auth:{}:", app.appid),
            lock_ttl: lock_ttl + Duration::from_secs(1),
            wait_cap: client.request_timeout,
            key,
        }
    }

    /// A refresh made once for the whole fleet.
    pub(crate) async fn refresh(
        &self,
        client: &WeChatClient,
        app: &App,
        user: &SignedIn,
    ) -> Result<TokenResponse, ErrorKind> {
        let kind = Kind {
            result: "refreshed",
            lock: "refreshing",
            keep: REFRESH_RESULT_TTL,
        };
        let digest = fingerprint(&[user.refresh_token.secret(), user.access_token.secret()]);
        self.once(kind, &digest, || client.refresh(app, &user.refresh_token))
            .await
    }

    /// A `/sns/auth` check made once for the whole fleet, its success kept for `interval`.
    pub(crate) async fn check(
        &self,
        client: &WeChatClient,
        user: &SignedIn,
        interval: Duration,
    ) -> Result<(), ErrorKind> {
        let kind = Kind {
            result: "checked",
            lock: "checking",
            keep: interval.max(Duration::from_secs(1)),
        };
        let digest = fingerprint(&[user.access_token.secret()]);
        self.once(kind, &digest, || {
            client.check(&user.access_token, &user.openid)
        })
        .await
    }

    async fn once<T, F, Fut>(&self, kind: Kind, digest: &str, call: F) -> Result<T, ErrorKind>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, ErrorKind>>,
    {
        let result_key = format!("{}{}:{digest}", self.prefix, kind.result);
        let lock_key = format!("{}{}:{digest}", self.prefix, kind.lock);
        let nonce: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(16)
            .map(char::from)
            .collect();
        let give_up_at = Instant::now() + self.wait_cap;
        let mut wait = FIRST_POLL;
        loop {
            match self.published(&result_key).await {
                Ok(Some(value)) => {
                    debug!("{} shared by another instance", kind.result);
                    return Ok(value);
                }
                Ok(None) => {}
                Err(e) => return on_our_own(call, &e).await,
            }
            match self.lock(&lock_key, &nonce).await {
                Ok(true) => {
                    let result = call().await;
                    if let Ok(value) = &result {
                        if let Err(e) = self.publish(&result_key, value, kind.keep).await {
                            warn!("cannot share a {} through Redis: {e}", kind.result);
                        }
                    }
                    if let Err(e) = self.unlock(&lock_key, &nonce).await {
                        // It expires by itself within lock_ttl.
                        warn!("cannot release a fleet lock in Redis: {e}");
                    }
                    return result;
                }
                Ok(false) => {
                    let now = Instant::now();
                    if now >= give_up_at {
                        let why = format!(
                            "another instance's {} took longer than the request deadline",
                            kind.lock
                        );
                        return on_our_own(call, &why).await;
                    }
                    sleep(jittered(wait).min(give_up_at - now)).await;
                    wait = (wait * 2).min(MAX_POLL);
                }
                Err(e) => return on_our_own(call, &e).await,
            }
        }
    }

    async fn published<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, String> {
        let value: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(key)).await?;
        let Some(sealed) = value else {
            return Ok(None);
        };
        let plain = self
            .open(key, &sealed)
            .ok_or("a shared outcome in Redis does not decrypt (another appsecret?)")?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| format!("unreadable shared outcome: {:?}", e.classify()))
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

    async fn publish<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        keep: Duration,
    ) -> Result<(), String> {
        let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        let sealed = self.seal(key, &json)?;
        let keep = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
        self.run::<()>(redis::cmd("SET").arg(key).arg(sealed).arg("PX").arg(keep))
            .await
    }

    /// `nonce ‖ AES-256-GCM(json)`, the Redis key as associated data: a value moved under another
    /// key does not open.
    fn seal(&self, key: &str, json: &[u8]) -> Result<Vec<u8>, String> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = Aes256Gcm::new(&self.key.into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: json,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| "cannot encrypt a shared outcome".to_owned())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
        Aes256Gcm::new(&self.key.into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: key.as_bytes(),
                },
            )
            .ok()
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

async fn on_our_own<T, F, Fut>(call: F, why: &str) -> Result<T, ErrorKind>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ErrorKind>>,
{
    warn!("calling WeChat without the fleet lock: {why}");
    call().await
}

/// `wait` ± 50 %.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::rng().random_range(0.5..1.5))
}

fn fingerprint(tokens: &[&str]) -> String {
    let mut hash = Sha256::new();
    for token in tokens {
        hash.update(token.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
