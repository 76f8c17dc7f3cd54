//! Token upkeep: what a stored sign-in needs on this request (pure decisions), and the bounded
//! upstream calls that carry it out.
//!
//! Bounds, all per process (checks and refreshes are also shared fleet-wide with `redis`):
//! - one `/sns/auth` check per access token at a time, its success remembered for the check
//!   interval, so that a replayed stale cookie costs one check per interval, not one per request;
//! - one refresh per (refresh token, access token replaced) at a time, remembered two minutes;
//! - tokens WeChat refused for good are remembered until they would have expired, so that a
//!   replayed dead cookie makes no call at all and is answered as signed out;
//! - at most `upstream_calls_per_minute` calls per openid a minute: past it a due check is put off
//!   and a required refresh is answered 503 with `Retry-After`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use log::{debug, error, info, warn};
use sha2::{Digest, Sha256};

use crate::{
    client::WeChatClient,
    config::{App, UpkeepSettings},
    error::ErrorKind,
    flights::SingleFlight,
    session::SignedIn,
    telemetry,
    tokens::{AccessToken, RefreshToken},
    wire::{ErrCode, TokenResponse},
};

/// How long a refresh's new tokens answer requests that still carry the replaced ones.
const REFRESH_GRACE: Duration = Duration::from_secs(120);
/// A refresh token's life (WeChat: 30 days from the sign-in, not extended by refreshing).
const REFRESH_TOKEN_LIFE: u64 = 30 * 24 * 3600;
/// Bounds the refused-token memory (32-byte digests and an expiry: about 5 MB at the most).
const MAX_REFUSED: usize = 100_000;

/// What a stored sign-in needs now, from its own timestamps and the settings alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upkeep {
    /// Past `max_sign_in_age`: signed out, whatever its tokens.
    Over,
    /// Nothing: serve it.
    Fresh,
    /// The last `/sns/auth` confirmation is older than the check interval.
    CheckDue,
    /// The access token expires within the refresh margin: refresh, but it still works.
    RefreshEarly,
    /// The access token has expired: nothing is served without a refresh.
    RefreshNow,
}

/// The pure decision: a function of the stored sign-in, the time and the settings.
pub(crate) fn decide(user: &SignedIn, now: u64, settings: &UpkeepSettings) -> Upkeep {
    if now
        >= user
            .signed_in_at
            .saturating_add(settings.max_sign_in_age.as_secs())
    {
        Upkeep::Over
    } else if now >= user.expires_at {
        Upkeep::RefreshNow
    } else if now.saturating_add(settings.refresh_margin.as_secs()) >= user.expires_at {
        Upkeep::RefreshEarly
    } else if now
        >= user
            .checked_at
            .saturating_add(settings.check_interval.as_secs())
    {
        Upkeep::CheckDue
    } else {
        Upkeep::Fresh
    }
}

/// What a `/sns/auth` check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterCheck {
    /// Valid: the sign-in is confirmed as of now.
    Valid,
    /// WeChat says the access token no longer works: refresh.
    Invalid,
    /// No answer worth acting on (busy, down, put off): serve, check again later.
    Unknown,
}

/// What a refresh's outcome means for the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterRefresh {
    /// New tokens for the same user.
    Refreshed(Arc<TokenResponse>),
    /// It failed, but the current token still works (an early refresh): use it.
    KeepCurrent,
    /// The sign-in is over (refresh token dead or refused, or the answer is for someone else).
    SignOut,
    /// It failed and nothing can be served (503/504…).
    Fail(ErrorKind),
}

/// The pure decision after a refresh: from its outcome, whose it was and whether the current
/// token still works.
fn after_refresh(
    outcome: Result<Arc<TokenResponse>, ErrorKind>,
    user: &SignedIn,
    still_usable: bool,
) -> AfterRefresh {
    match outcome {
        Ok(tokens) if tokens.openid == user.openid => AfterRefresh::Refreshed(tokens),
        Ok(_) => AfterRefresh::SignOut,
        Err(ErrorKind::WeChat { code, .. }) if !code.means_busy() => AfterRefresh::SignOut,
        Err(_) if still_usable => AfterRefresh::KeepCurrent,
        Err(kind) => AfterRefresh::Fail(kind),
    }
}

/// What the upkeep calls of one request need: the worker's client, the app the sign-in belongs to,
/// and the upkeep settings.
pub(crate) struct Calls<'a> {
    pub(crate) client: &'a WeChatClient,
    pub(crate) app: &'a App,
    pub(crate) settings: &'a UpkeepSettings,
}

/// Token digest → (refused until, the errcode WeChat refused it with).
type Refused = HashMap<[u8; 32], (u64, ErrCode)>;

/// The upstream side of token upkeep, shared by every worker and instance of one configuration.
#[derive(Clone, Default)]
pub(crate) struct Upstream {
    checks: SingleFlight<AccessToken, ()>,
    refreshes: SingleFlight<(RefreshToken, AccessToken), Arc<TokenResponse>>,
    refused: Arc<Mutex<Refused>>,
    budget: Arc<Mutex<Budget>>,
    /// Other instances of the app to share checks and refreshes with.
    #[cfg(feature = "redis")]
    fleet: Option<crate::fleet::Fleet>,
}

impl Upstream {
    #[cfg(feature = "redis")]
    pub(crate) fn shared_with(fleet: crate::fleet::Fleet) -> Self {
        Self {
            fleet: Some(fleet),
            ..Self::default()
        }
    }

    /// [`decide`], then what this process already knows: a token it saw refused, a check it
    /// just made.
    pub(crate) fn plan(&self, user: &SignedIn, now: u64, settings: &UpkeepSettings) -> Upkeep {
        let upkeep = decide(user, now, settings);
        if upkeep == Upkeep::Over || upkeep == Upkeep::Fresh {
            return upkeep;
        }
        if self.is_refused(user.refresh_token.secret(), now) {
            return Upkeep::Over;
        }
        if upkeep == Upkeep::CheckDue {
            if self.is_refused(user.access_token.secret(), now) {
                return Upkeep::RefreshNow;
            }
            if self.checks.remembered(&user.access_token).is_some() {
                return Upkeep::Fresh;
            }
        }
        upkeep
    }

    /// A `/sns/auth` check, shared with the concurrent requests of the same token.
    pub(crate) async fn check(&self, calls: &Calls<'_>, user: &SignedIn, now: u64) -> AfterCheck {
        let settings = calls.settings;
        // With a check on every request the app asked for exactly that: never put off.
        let every_request = settings.check_interval.is_zero();
        let ran = self
            .checks
            .run(
                user.access_token.clone(),
                settings.check_interval,
                || async {
                    // Decided again inside the flight: a request that planned before another's
                    // answer was known must not call again.
                    self.refused_with(user.access_token.secret(), now)?;
                    if !every_request && !self.spend(&user.openid, settings) {
                        return Err(ErrorKind::Throttled);
                    }
                    let outcome = self.check_upstream(calls, user).await;
                    if let Err(ErrorKind::WeChat { code, .. }) = &outcome {
                        if code.means_token_invalid() {
                            let until = user.expires_at.max(now + 60);
                            self.refuse(user.access_token.secret(), until, *code);
                        }
                    }
                    outcome
                },
            )
            .await;
        telemetry::upkeep(telemetry::CHECKS, ran.called);
        match ran.outcome {
            Ok(()) => AfterCheck::Valid,
            Err(ErrorKind::WeChat { code, .. }) if code.means_token_invalid() => {
                AfterCheck::Invalid
            }
            Err(kind) => {
                if kind != ErrorKind::Throttled {
                    // A flaky upstream must not sign everyone out: serve, check again later.
                    warn!("token check for a signed-in user failed, keeping the session: {kind}");
                }
                AfterCheck::Unknown
            }
        }
    }

    /// A refresh, shared with the concurrent requests of the same tokens, then what it means.
    pub(crate) async fn refresh(
        &self,
        calls: &Calls<'_>,
        user: &SignedIn,
        still_usable: bool,
        now: u64,
    ) -> AfterRefresh {
        let settings = calls.settings;
        let key = (user.refresh_token.clone(), user.access_token.clone());
        let ran = self
            .refreshes
            .run(key, REFRESH_GRACE, || async {
                self.refused_with(user.refresh_token.secret(), now)?;
                if !self.spend(&user.openid, settings) {
                    return Err(ErrorKind::Throttled);
                }
                let outcome = self.refresh_upstream(calls, user).await;
                if let Err(ErrorKind::WeChat { code, errmsg }) = &outcome {
                    if !code.means_busy() {
                        // Refused for good (42002, 40030, 40001…): a replay of this cookie
                        // makes no call.
                        info!(
                            "WeChat refused the refresh token of a signed-in user ({code}: \
                             {errmsg})"
                        );
                        let dies_at = user.signed_in_at.saturating_add(REFRESH_TOKEN_LIFE);
                        self.refuse(user.refresh_token.secret(), dies_at.max(now + 60), *code);
                    }
                }
                outcome.map(Arc::new)
            })
            .await;
        debug!("refresh {}", if ran.called { "made" } else { "shared" });
        telemetry::upkeep(telemetry::REFRESHES, ran.called);
        match &ran.outcome {
            Ok(tokens) if tokens.openid != user.openid => {
                error!("a refresh answered for another openid; signing the user out");
            }
            Err(kind) if still_usable => {
                warn!("early refresh failed, using the current token: {kind}");
            }
            _ => {}
        }
        after_refresh(ran.outcome, user, still_usable)
    }

    async fn check_upstream(&self, calls: &Calls<'_>, user: &SignedIn) -> Result<(), ErrorKind> {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.fleet {
            let interval = calls.settings.check_interval;
            if !interval.is_zero() {
                return fleet.check(calls.client, user, interval).await;
            }
        }
        calls.client.check(&user.access_token, &user.openid).await
    }

    async fn refresh_upstream(
        &self,
        calls: &Calls<'_>,
        user: &SignedIn,
    ) -> Result<TokenResponse, ErrorKind> {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.fleet {
            return fleet.refresh(calls.client, calls.app, user).await;
        }
        calls.client.refresh(calls.app, &user.refresh_token).await
    }

    fn is_refused(&self, token: &str, now: u64) -> bool {
        self.refused_with(token, now).is_err()
    }

    /// `Err` with WeChat's remembered answer when `token` was refused for good.
    fn refused_with(&self, token: &str, now: u64) -> Result<(), ErrorKind> {
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match refused.get(&digest(token)) {
            Some(&(until, code)) if now < until => Err(ErrorKind::WeChat {
                code,
                errmsg: "refused before (remembered)".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn refuse(&self, token: &str, until: u64, code: ErrCode) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() >= MAX_REFUSED {
            let now = crate::session::unix_now();
            refused.retain(|_, &mut (until, _)| now < until);
            if refused.len() >= MAX_REFUSED {
                // Still full of live entries: forgetting some costs at most one call each.
                refused.clear();
            }
        }
        refused.insert(digest(token), (until, code));
    }

    /// Takes one call from `openid`'s budget for this minute; `false` when it is spent.
    fn spend(&self, openid: &str, settings: &UpkeepSettings) -> bool {
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        budget.spend(openid, settings.upstream_calls_per_minute)
    }
}

/// Upstream calls per openid in the current minute.
#[derive(Default)]
struct Budget {
    minute: u64,
    spent: HashMap<String, u32>,
    /// Whether this minute's over-budget warning was logged.
    warned: bool,
}

impl Budget {
    fn spend(&mut self, openid: &str, per_minute: u32) -> bool {
        let minute = crate::session::unix_now() / 60;
        if minute != self.minute {
            // A new window: the map holds only the openids of one minute, so it stays small.
            self.minute = minute;
            self.spent.clear();
            self.warned = false;
        }
        let spent = self.spent.entry(openid.to_owned()).or_insert(0);
        if *spent >= per_minute {
            if !self.warned {
                self.warned = true;
                warn!(
                    "a signed-in user reached {per_minute} upstream calls this minute (a replayed \
                     cookie?): checks are put off and required refreshes answered 503 until the \
                     next minute; said once a minute"
                );
            }
            return false;
        }
        *spent += 1;
        true
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WeChatConfig;

    fn user(now: u64) -> SignedIn {
        let tokens: TokenResponse = serde_json::from_value(serde_json::json!({
            "access_token": "AT", "expires_in": 7200, "refresh_token": "RT",
            "openid": "o1", "scope": "snsapi_base"
        }))
        .unwrap();
        SignedIn::new(
            &crate::config::App::official_for_tests("wx1"),
            tokens,
            None,
            now,
        )
    }

    #[test]
    fn the_table_of_decisions() {
        let config = WeChatConfig::builder("wx1", "s")
            .public_url("https://h5.example.com")
            .check_interval(Duration::from_secs(60))
            .refresh_margin(Duration::from_secs(300))
            .max_sign_in_age(Duration::from_secs(86_400))
            .build()
            .unwrap();
        let s = &config.settings.upkeep;
        let u = user(1_000);
        for (now, expected) in [
            (1_000, Upkeep::Fresh),
            (1_059, Upkeep::Fresh),
            (1_060, Upkeep::CheckDue),
            (1_000 + 7_200 - 301, Upkeep::CheckDue),
            (1_000 + 7_200 - 300, Upkeep::RefreshEarly),
            (1_000 + 7_199, Upkeep::RefreshEarly),
            (1_000 + 7_200, Upkeep::RefreshNow),
            (1_000 + 86_400, Upkeep::Over),
        ] {
            assert_eq!(decide(&u, now, s), expected, "at {now}");
        }
        let mut checked = user(1_000);
        checked.checked_at = 5_000;
        assert_eq!(decide(&checked, 5_000, s), Upkeep::Fresh);
    }

    #[test]
    fn after_a_refresh() {
        let u = user(0);
        let ok = |openid: &str| {
            let mut t: TokenResponse = serde_json::from_value(serde_json::json!({
                "access_token": "AT2", "expires_in": 7200, "refresh_token": "RT",
                "openid": openid
            }))
            .unwrap();
            t.scope = "snsapi_base".into();
            Ok(Arc::new(t))
        };
        let wechat = |code: i64| {
            Err(ErrorKind::WeChat {
                code: code.into(),
                errmsg: String::new(),
            })
        };
        assert!(matches!(
            after_refresh(ok("o1"), &u, false),
            AfterRefresh::Refreshed(_)
        ));
        assert_eq!(after_refresh(ok("o2"), &u, true), AfterRefresh::SignOut);
        for dead in [42002, 40030, 40001] {
            assert_eq!(after_refresh(wechat(dead), &u, true), AfterRefresh::SignOut);
        }
        assert_eq!(
            after_refresh(wechat(-1), &u, true),
            AfterRefresh::KeepCurrent
        );
        assert_eq!(
            after_refresh(wechat(-1), &u, false),
            AfterRefresh::Fail(ErrorKind::WeChat {
                code: (-1).into(),
                errmsg: String::new()
            })
        );
        assert_eq!(
            after_refresh(Err(ErrorKind::UpstreamTimeout), &u, false),
            AfterRefresh::Fail(ErrorKind::UpstreamTimeout)
        );
        assert_eq!(
            after_refresh(Err(ErrorKind::Throttled), &u, true),
            AfterRefresh::KeepCurrent
        );
    }

    #[test]
    fn the_budget_is_per_openid_and_warns_once() {
        let mut budget = Budget::default();
        assert!((0..3).all(|_| budget.spend("o1", 3)));
        assert!(!budget.spend("o1", 3));
        assert!(!budget.spend("o1", 3));
        assert!(budget.warned);
        assert!(budget.spend("o2", 3));
    }
}
