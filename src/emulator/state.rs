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
pub(crate) const B64URL: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Characters of authorization codes.
pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The call log keeps at most this many entries (counters stay exact).
pub(crate) const CALL_LOG_CAPACITY: usize = 100_000;
/// How long used or expired codes and expired tokens are remembered before being forgotten.
const GRACE: Duration = Duration::from_secs(600);
/// Prune every this many insertions.
const PRUNE_EVERY: u64 = 1024;

/// A random string of `len` characters taken from `alphabet`.
pub(crate) fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// An openid-like identifier: `o` followed by 27 base64url characters (28 characters in all).
pub(crate) fn random_openid() -> String {
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

/// The outcome of an API call: the JSON body and what goes to the call log.
#[derive(Debug, Clone)]
pub(crate) struct ApiOutcome {
    pub body: String,
    pub errcode: i64,
    pub openid: Option<String>,
}

impl ApiOutcome {
    pub(crate) fn ok(body: String, openid: Option<String>) -> Self {
        ApiOutcome {
            body,
            errcode: 0,
            openid,
        }
    }

    pub(crate) fn err(errcode: i64, openid: Option<String>) -> Self {
        ApiOutcome {
            body: error_body(errcode),
            errcode,
            openid,
        }
    }
}

/// WeChat's message for an errcode (without the `rid` suffix).
pub(crate) fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40030 => "invalid refresh_token",
        40097 => "invalid args",
        40125 => "invalid appsecret",
        40163 => "code been used",
        41001 => "access_token missing",
        41002 => "appid missing",
        41003 => "refresh_token missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        41009 => "missing openid",
        42001 => "access_token expired",
        42002 => "refresh_token expired",
        42003 => "code expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        48001 => "api unauthorized",
        50001 => "user unauthorized",
        _ => "emulated error",
    }
}

/// `{"errcode":N,"errmsg":"…, rid: …"}` (`-1` gets exactly `"system error"`).
pub(crate) fn error_body(errcode: i64) -> String {
    let msg = if errcode == -1 {
        errmsg(errcode).to_owned()
    } else {
        format!("{}, rid: {}", errmsg(errcode), random_rid())
    };
    serde_json::json!({ "errcode": errcode, "errmsg": msg }).to_string()
}

fn non_empty<'a>(params: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

#[derive(serde::Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    expires_in: u64,
    refresh_token: &'a str,
    openid: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_snapshotuser: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct UserInfoBody<'a> {
    openid: &'a str,
    nickname: &'a str,
    sex: u8,
    province: &'a str,
    city: &'a str,
    country: &'a str,
    headimgurl: &'a str,
    privilege: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
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
    /// Returns the openid and whether a user was created.
    pub(crate) fn resolve_user(&self, wanted: Option<&str>) -> (String, bool) {
        let mut state = self.lock();
        let wanted = wanted.filter(|id| valid_openid(id));
        if let Some(id) = wanted {
            if state.users.contains_key(id) {
                return (id.to_owned(), false);
            }
        }
        let n = state.user_seq + 1;
        let user = EmulatedUser {
            openid: wanted.map(str::to_owned),
            nickname: format!("测试用户 {n} ✨"),
            headimgurl: self.avatar_url(n, 132),
            ..EmulatedUser::default()
        };
        (state.insert_user(user), true)
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
            "wechat emulator: {:?} openid={:?} errcode={}",
            call.endpoint,
            call.openid,
            call.errcode
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

    /// The app named by a call's `appid`.
    fn app_of(&self, params: &HashMap<String, String>) -> Result<App, ApiOutcome> {
        match non_empty(params, "appid") {
            None => Err(ApiOutcome::err(41002, None)),
            Some(a) if a == self.config.appid => Ok(App::OfficialAccount),
            Some(a) if a == self.config.web_appid => Ok(App::Website),
            Some(_) => Err(ApiOutcome::err(40013, None)),
        }
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

    /// `GET /sns/oauth2/access_token`.
    pub(crate) fn exchange_code(&self, params: &HashMap<String, String>) -> ApiOutcome {
        let cfg = &self.config;
        let app = match self.app_of(params) {
            Ok(app) => app,
            Err(e) => return e,
        };
        let secret = match app {
            App::OfficialAccount => &cfg.secret,
            App::Website => &cfg.web_secret,
        };
        match non_empty(params, "secret") {
            None => return ApiOutcome::err(41004, None),
            Some(s) if s != secret => return ApiOutcome::err(40125, None),
            Some(_) => {}
        }
        if params.get("grant_type").map(String::as_str) != Some("authorization_code") {
            return ApiOutcome::err(40002, None);
        }
        let Some(code) = non_empty(params, "code") else {
            return ApiOutcome::err(41008, None);
        };
        let now = Instant::now();
        let mut state = self.lock();
        let record = match state.codes.get_mut(code) {
            // A code is valid only for the app whose page issued it.
            Some(r) if r.app != app => return ApiOutcome::err(40029, None),
            None => return ApiOutcome::err(40029, None),
            Some(r) if r.used => return ApiOutcome::err(40163, Some(r.openid.clone())),
            Some(r) if now >= r.expires_at => {
                return ApiOutcome::err(42003, Some(r.openid.clone()))
            }
            Some(r) => {
                r.used = true;
                r.clone()
            }
        };
        let Some(user) = state.users.get(&record.openid).cloned() else {
            return ApiOutcome::err(40029, None);
        };
        let snapshot = user.user.snapshot && app == App::OfficialAccount;
        let openid = match app {
            _ if snapshot => user.virtual_openid.clone(),
            App::OfficialAccount => record.openid.clone(),
            App::Website => user.web_openid.clone(),
        };
        // An Official Account has unionids only once bound, and only for snsapi_userinfo; a
        // Website app's snsapi_login grant always carries it when bound.
        let unionid = if record.scope != Scope::Base && cfg.open_platform_bound && !snapshot {
            Some(state.unionid_of(&record.openid))
        } else {
            None
        };
        let grant = Grant {
            openid: openid.clone(),
            user_openid: record.openid.clone(),
            app,
            scope: record.scope,
            unionid,
            snapshot,
        };
        let access_token = state.new_access_token(&grant, now, cfg.access_token_ttl);
        let refresh_token = state.unused_token();
        state.refresh_tokens.insert(
            refresh_token.clone(),
            TokenRecord {
                grant: grant.clone(),
                expires_at: deadline(now, cfg.refresh_token_ttl),
            },
        );
        let body = TokenBody {
            access_token: &access_token,
            expires_in: cfg.access_token_ttl.as_secs(),
            refresh_token: &refresh_token,
            openid: &grant.openid,
            scope: grant.scope.as_str(),
            is_snapshotuser: snapshot.then_some(1),
            unionid: grant.unionid.as_deref(),
        };
        ApiOutcome::ok(json(&body), Some(openid))
    }

    /// `GET /sns/oauth2/refresh_token`.
    pub(crate) fn refresh(&self, params: &HashMap<String, String>) -> ApiOutcome {
        let cfg = &self.config;
        let app = match self.app_of(params) {
            Ok(app) => app,
            Err(e) => return e,
        };
        if params.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return ApiOutcome::err(40002, None);
        }
        let Some(refresh_token) = non_empty(params, "refresh_token") else {
            return ApiOutcome::err(41003, None);
        };
        let now = Instant::now();
        let mut state = self.lock();
        let record = match state.refresh_tokens.get(refresh_token) {
            Some(r) if r.grant.app != app => return ApiOutcome::err(40030, None),
            None => return ApiOutcome::err(40030, None),
            Some(r) if now >= r.expires_at => {
                return ApiOutcome::err(42002, Some(r.grant.openid.clone()))
            }
            Some(r) => r.clone(),
        };
        let grant = record.grant.clone();
        let access_token = state.new_access_token(&grant, now, cfg.access_token_ttl);
        let refresh_token = if cfg.rotate_refresh_token {
            state.refresh_tokens.remove(refresh_token);
            let new = state.unused_token();
            // Rotation does not extend the refresh token's life.
            state.refresh_tokens.insert(new.clone(), record);
            new
        } else {
            refresh_token.to_owned()
        };
        let body = TokenBody {
            access_token: &access_token,
            expires_in: cfg.access_token_ttl.as_secs(),
            refresh_token: &refresh_token,
            openid: &grant.openid,
            scope: grant.scope.as_str(),
            is_snapshotuser: grant.snapshot.then_some(1),
            // WeChat's documented refresh answer has no unionid.
            unionid: None,
        };
        ApiOutcome::ok(json(&body), Some(grant.openid))
    }

    /// Looks up a valid access token for `openid` (shared by userinfo and auth).
    fn check_access_token(&self, params: &HashMap<String, String>) -> Result<Grant, ApiOutcome> {
        let Some(token) = non_empty(params, "access_token") else {
            return Err(ApiOutcome::err(41001, None));
        };
        let Some(openid) = non_empty(params, "openid") else {
            return Err(ApiOutcome::err(41009, None));
        };
        let asked = Some(openid.to_owned());
        let state = self.lock();
        match state.access_tokens.get(token) {
            None => Err(ApiOutcome::err(40014, asked)),
            Some(t) if Instant::now() >= t.expires_at => Err(ApiOutcome::err(42001, asked)),
            Some(t) if t.grant.openid != openid => Err(ApiOutcome::err(40003, asked)),
            Some(t) => Ok(t.grant.clone()),
        }
    }

    /// `GET /sns/userinfo`.
    pub(crate) fn userinfo(&self, params: &HashMap<String, String>) -> ApiOutcome {
        let grant = match self.check_access_token(params) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let openid = Some(grant.openid.clone());
        if grant.scope == Scope::Base {
            return ApiOutcome::err(48001, openid);
        }
        match params.get("lang").map(String::as_str) {
            None | Some("" | "zh_CN" | "zh_TW" | "en") => {}
            Some(_) => return ApiOutcome::err(40097, openid),
        }
        if grant.snapshot {
            // Snapshot-mode users are anonymous: WeChat shows them as "微信用户" with the default avatar.
            let headimgurl = self.avatar_url(0, 132);
            let body = UserInfoBody {
                openid: &grant.openid,
                nickname: "微信用户",
                sex: 0,
                province: "",
                city: "",
                country: "",
                headimgurl: &headimgurl,
                privilege: &[],
                unionid: None,
            };
            return ApiOutcome::ok(json(&body), openid);
        }
        let Some(user) = self.user(&grant.user_openid) else {
            return ApiOutcome::err(40003, openid);
        };
        let body = UserInfoBody {
            openid: &grant.openid,
            nickname: &user.nickname,
            sex: user.sex,
            province: &user.province,
            city: &user.city,
            country: &user.country,
            headimgurl: &user.headimgurl,
            privilege: &user.privilege,
            unionid: grant.unionid.as_deref(),
        };
        ApiOutcome::ok(json(&body), openid)
    }

    /// `GET /sns/auth`.
    pub(crate) fn auth(&self, params: &HashMap<String, String>) -> ApiOutcome {
        match self.check_access_token(params) {
            Ok(grant) => ApiOutcome::ok(
                r#"{"errcode":0,"errmsg":"ok"}"#.to_owned(),
                Some(grant.openid),
            ),
            Err(e) => e,
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail; fall back to a busy answer just in case.
    serde_json::to_string(value).unwrap_or_else(|_| error_body(-1))
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

    fn unused_token(&self) -> String {
        loop {
            let t = random_token();
            if !self.access_tokens.contains_key(&t) && !self.refresh_tokens.contains_key(&t) {
                return t;
            }
        }
    }

    /// The user's unionid, generated and remembered on first use.
    fn unionid_of(&mut self, openid: &str) -> String {
        match self.users.get_mut(openid) {
            Some(record) => record
                .user
                .unionid
                .get_or_insert_with(random_openid)
                .clone(),
            None => random_openid(),
        }
    }

    fn new_access_token(&mut self, grant: &Grant, now: Instant, ttl: Duration) -> String {
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
