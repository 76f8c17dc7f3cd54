//! The emulator's shared state: configuration, users, consents, codes, tokens, faults and the call log.
//!
//! Everything here is synchronous and lives behind one `std::sync::Mutex` that is never held across an
//! `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

use super::{Call, EmulatedUser, Endpoint, Fault};

/// Characters of WeChat's openids, unionids and tokens (base64url).
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters of authorization codes.
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The call log keeps at most this many entries (counters stay exact).
const CALL_LOG_CAPACITY: usize = 100_000;
/// How long used or expired codes and expired tokens are remembered before being forgotten.
const GRACE: Duration = Duration::from_secs(600);
/// Prune every this many insertions.
const PRUNE_EVERY: u64 = 1024;

/// A random string of `len` characters taken from `alphabet`.
fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// An openid-like identifier: `o` followed by 27 base64url characters (28 characters in all).
fn random_openid() -> String {
    format!("o{}", random_string(B64URL, 27))
}

/// A request id like the `rid` WeChat appends to its error messages.
pub(crate) fn random_rid() -> String {
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:08x}-{:08x}",
        rng.random::<u32>(),
        rng.random::<u32>(),
        rng.random::<u32>()
    )
}

/// A token like WeChat's web access/refresh tokens: `NN_` and 88–104 base64url characters.
fn random_token() -> String {
    let (prefix, len) = {
        let mut rng = rand::rng();
        (
            rng.random_range(70..100u32),
            rng.random_range(88..=104usize),
        )
    };
    format!("{prefix}_{}", random_string(B64URL, len))
}

/// Whether `s` is acceptable as an openid given by a caller: 1–64 characters of `[A-Za-z0-9_-]`.
pub(crate) fn valid_openid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| B64URL.contains(&b))
}

/// The web-authorization scopes: the Official Account's two, and the Website app's one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Base,
    UserInfo,
    Login,
}

/// Which of the emulated apps a code, grant or call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum App {
    OfficialAccount,
    Website,
}

impl Scope {
    pub(crate) fn parse(s: &str) -> Option<Scope> {
        match s {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::UserInfo),
            "snsapi_login" => Some(Scope::Login),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
            Scope::Login => "snsapi_login",
        }
    }
}

/// Configuration fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub appid: String,
    pub secret: String,
    /// The Website app (网站应用) the emulator plays too.
    pub web_appid: String,
    pub web_secret: String,
    pub open_base: String,
    pub auto_approve: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    pub rotate_refresh_token: bool,
    pub redirect_domain: Option<String>,
    pub open_platform_bound: bool,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    /// Always has `openid: Some(..)`.
    pub user: EmulatedUser,
    /// The virtual openid handed out while the user is in snapshot mode.
    pub virtual_openid: String,
    /// The same person's openid for the Website app (openids are per app).
    pub web_openid: String,
    /// Insertion order.
    pub seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub openid: String,
    pub app: App,
    pub scope: Scope,
    pub expires_at: Instant,
    pub used: bool,
}

/// What a grant (one code exchange) gives, shared by its access and refresh tokens.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The openid the client sees (virtual for snapshot users).
    pub openid: String,
    /// The real user behind it.
    pub user_openid: String,
    pub app: App,
    pub scope: Scope,
    pub unionid: Option<String>,
    pub snapshot: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub grant: Grant,
    pub expires_at: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct FaultEntry {
    pub endpoint: Endpoint,
    pub fault: Fault,
    pub remaining: Option<u32>,
}

/// Mutable state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub users: HashMap<String, UserRecord>,
    pub user_seq: u64,
    /// (openid, scope) pairs the user already allowed for this appid.
    pub consents: HashSet<(String, Scope)>,
    pub codes: HashMap<String, CodeRecord>,
    pub access_tokens: HashMap<String, TokenRecord>,
    pub refresh_tokens: HashMap<String, TokenRecord>,
    pub faults: Vec<FaultEntry>,
    pub calls: VecDeque<Call>,
    pub counts: HashMap<Endpoint, u64>,
    /// Whose phone scans the next QR code (the Website app's sign-in), when set.
    pub scanner: Option<String>,
    inserts: u64,
}

/// Everything the handlers and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub state: Mutex<State>,
    pub connections: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            config,
            state: Mutex::new(State::default()),
            connections: AtomicU64::new(0),
        }
    }

    /// Locks the state; a poisoned lock is recovered (the state stays usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The avatar URL for avatar number `n` at `size` pixels (0 = 640).
    pub(crate) fn avatar_url(&self, n: u64, size: u32) -> String {
        format!("{}/_emulator/avatar/{n}/{size}", self.config.open_base)
    }

    /// Adds (or replaces) a user; returns its openid.
    pub(crate) fn add_user(&self, user: EmulatedUser) -> String {
        let mut state = self.lock();
        state.insert_user(user)
    }

    pub(crate) fn user(&self, openid: &str) -> Option<EmulatedUser> {
        self.lock().users.get(openid).map(|r| r.user.clone())
    }

    pub(crate) fn users(&self) -> Vec<EmulatedUser> {
        let state = self.lock();
        let mut users: Vec<_> = state.users.values().collect();
        users.sort_by_key(|r| r.seq);
        users.into_iter().map(|r| r.user.clone()).collect()
    }

    /// The user named by `wanted` (created with that openid if unknown), or a new generated user.
    pub(crate) fn resolve_user(&self, wanted: Option<&str>) -> String {
        let mut state = self.lock();
        let wanted = wanted.filter(|id| valid_openid(id));
        if let Some(id) = wanted {
            if state.users.contains_key(id) {
                return id.to_owned();
            }
        }
        let n = state.user_seq + 1;
        let user = EmulatedUser {
            openid: wanted.map(str::to_owned),
            nickname: format!("测试用户 {n} ✨"),
            headimgurl: self.avatar_url(n, 132),
            ..EmulatedUser::default()
        };
        state.insert_user(user)
    }

    pub(crate) fn expire_access_tokens(&self) {
        let now = Instant::now();
        for t in self.lock().access_tokens.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }

    pub(crate) fn expire_refresh_tokens(&self) {
        let now = Instant::now();
        for t in self.lock().refresh_tokens.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }

    pub(crate) fn inject_fault(&self, endpoint: Endpoint, fault: Fault, times: Option<u32>) {
        if times == Some(0) {
            return;
        }
        self.lock().faults.push(FaultEntry {
            endpoint,
            fault,
            remaining: times,
        });
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// The first active fault for `endpoint`, consuming one use of it.
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut state = self.lock();
        let idx = state.faults.iter().position(|f| f.endpoint == endpoint)?;
        let entry = &mut state.faults[idx];
        let fault = entry.fault.clone();
        if let Some(n) = entry.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.faults.remove(idx);
            }
        }
        Some(fault)
    }

    pub(crate) fn record_call(&self, call: Call) {
        log::debug!(
            "wechat emulator: {:?} openid={:?} answered={:?}",
            call.endpoint,
            call.openid,
            call.answered
        );
        let mut state = self.lock();
        *state.counts.entry(call.endpoint).or_insert(0) += 1;
        if state.calls.len() >= CALL_LOG_CAPACITY {
            state.calls.pop_front();
        }
        // Keep the log ordered by arrival time even when answers finish out of order.
        let pos = state.calls.partition_point(|c| c.at <= call.at);
        state.calls.insert(pos, call);
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.lock().calls.iter().cloned().collect()
    }

    pub(crate) fn call_count(&self, endpoint: Endpoint) -> u64 {
        self.lock().counts.get(&endpoint).copied().unwrap_or(0)
    }

    pub(crate) fn reset_calls(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.counts.clear();
    }

    /// The person whose phone scans the next QR code.
    pub(crate) fn set_scanner(&self, openid: Option<String>) {
        self.lock().scanner = openid;
    }

    pub(crate) fn scanner(&self) -> Option<String> {
        self.lock().scanner.clone()
    }

    /// The Website app's openid of the person with this (Official Account) openid.
    pub(crate) fn web_openid(&self, openid: &str) -> Option<String> {
        self.lock().users.get(openid).map(|r| r.web_openid.clone())
    }

    /// Whether the user must see the consent page for `scope`.
    pub(crate) fn needs_consent(&self, openid: &str, scope: Scope) -> bool {
        if scope == Scope::Base || self.config.auto_approve {
            return false;
        }
        let state = self.lock();
        if state
            .users
            .get(openid)
            .is_some_and(|record| record.user.snapshot)
        {
            // Snapshot-mode users never see a real consent page.
            return false;
        }
        !state.consents.contains(&(openid.to_owned(), scope))
    }

    pub(crate) fn remember_consent(&self, openid: &str, scope: Scope) {
        self.lock().consents.insert((openid.to_owned(), scope));
    }

    /// A new single-use code for the user and scope (of the Website app for `snsapi_login`).
    pub(crate) fn issue_code(&self, openid: &str, scope: Scope) -> String {
        let app = if scope == Scope::Login {
            App::Website
        } else {
            App::OfficialAccount
        };
        let now = Instant::now();
        let mut state = self.lock();
        state.maybe_prune(now);
        let code = loop {
            let c = random_string(ALNUM, 32);
            if !state.codes.contains_key(&c) {
                break c;
            }
        };
        state.codes.insert(
            code.clone(),
            CodeRecord {
                openid: openid.to_owned(),
                app,
                scope,
                expires_at: deadline(now, self.config.code_ttl),
                used: false,
            },
        );
        code
    }
}

impl State {
    /// Adds (or replaces) a user; returns its openid.
    fn insert_user(&mut self, mut user: EmulatedUser) -> String {
        let openid = match user.openid.take() {
            Some(id) if valid_openid(&id) => id,
            Some(id) => {
                log::warn!(
                    "wechat emulator: openid {id:?} is not 1-64 characters of [A-Za-z0-9_-]; generating one"
                );
                self.unused_openid()
            }
            None => self.unused_openid(),
        };
        user.openid = Some(openid.clone());
        self.user_seq += 1;
        let seq = self.user_seq;
        let existing = self.users.get(&openid);
        let virtual_openid = existing
            .map(|r| r.virtual_openid.clone())
            .unwrap_or_else(random_openid);
        let web_openid = existing
            .map(|r| r.web_openid.clone())
            .unwrap_or_else(random_openid);
        self.users.insert(
            openid.clone(),
            UserRecord {
                user,
                virtual_openid,
                web_openid,
                seq,
            },
        );
        log::debug!("wechat emulator: user {openid} added");
        openid
    }

    fn unused_openid(&self) -> String {
        loop {
            let id = random_openid();
            if !self.users.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn unused_token(&self) -> String {
        loop {
            let t = random_token();
            if !self.access_tokens.contains_key(&t) && !self.refresh_tokens.contains_key(&t) {
                return t;
            }
        }
    }

    /// The user's unionid, generated and remembered on first use.
    pub(crate) fn unionid_of(&mut self, openid: &str) -> String {
        match self.users.get_mut(openid) {
            Some(record) => record
                .user
                .unionid
                .get_or_insert_with(random_openid)
                .clone(),
            None => random_openid(),
        }
    }

    pub(crate) fn new_access_token(
        &mut self,
        grant: &Grant,
        now: Instant,
        ttl: Duration,
    ) -> String {
        self.maybe_prune(now);
        let token = self.unused_token();
        self.access_tokens.insert(
            token.clone(),
            TokenRecord {
                grant: grant.clone(),
                expires_at: deadline(now, ttl),
            },
        );
        token
    }

    /// Forgets codes and access tokens that expired long ago (bounded memory under load).
    fn maybe_prune(&mut self, now: Instant) {
        self.inserts += 1;
        if self.inserts % PRUNE_EVERY != 0 {
            return;
        }
        self.codes.retain(|_, c| !long_gone(c.expires_at, now));
        self.access_tokens
            .retain(|_, t| !long_gone(t.expires_at, now));
    }
}

/// `now + ttl`, saturating far in the future instead of overflowing.
pub(crate) fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Whether something that expired at `expires_at` is long gone (forgotten by pruning).
fn long_gone(expires_at: Instant, now: Instant) -> bool {
    expires_at.checked_add(GRACE).is_some_and(|t| t <= now)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
