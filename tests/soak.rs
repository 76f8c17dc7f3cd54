//! Soak under faults: many browsers sign in and browse while WeChat has a bad day.
//!
//! One test, `soak_under_faults`, in three phases against the emulator and a real app shaped like
//! the sample site (`/info` and `/api/me` need `snsapi_userinfo`, `/base` needs `snsapi_base`,
//! `/public` is optional), served by the public test kit:
//!
//! 1. **Faults** (`SOAK_SECONDS`): `SOAK_BROWSERS` browsers, each a task with its own cookie jar and
//!    its own emulated WeChat user, sign in and then browse in a loop with a short think time.
//!    Meanwhile an injector adds faults at random to all five emulator endpoints (busy `-1`, HTTP
//!    500, a malformed body, a delay past the deadline, a body that stalls midway), as many as about
//!    `SOAK_FAULT_RATE` of each endpoint's recent traffic, and expires every access token every
//!    `SOAK_EXPIRE_EVERY` seconds (access tokens also live only 6 s). Refresh tokens live
//!    `SOAK_REFRESH_TTL` seconds, so sessions run out and browsers sign in again. The app's
//!    upstream deadline is 500 ms, 2 attempts, 50 ms backoff.
//! 2. **Faults stop**: pending faults are cleared and every access token is expired once more.
//! 3. **Recovery**: once a token check is due, every browser asks for `/api/me` and `/info`: each
//!    must answer 200 with its own identity, through a refresh, without signing in again, unless
//!    its refresh token expired (then it must sign in again, at the first try).
//!
//! What must hold, and is asserted: no answer with another user's identity, no panic, no 500, no
//! status outside the expected set, no transport error, no request over the deadline (two
//! upstream calls at most per request, each bounded by `max_attempts × request_timeout +
//! backoff`, plus a scheduling margin), no sign-out while the refresh token may still be valid, no
//! code exchange in the recovery beyond its sign-ins, no `Referrer-Policy` missing on errors and
//! on the callback's 303, no secret in the logs and no error logged by the middleware. The figures
//! go to stdout and to `target/soak-report.md` (RELIABILITY.md has a CI run and a long one).
//!
//! ```sh
//! cargo test --all-features --test soak -- --nocapture   # CI size: 200 × 15 s (scripts/soak.sh)
//! scripts/soak.sh --long                                  # 200 × 120 s, refresh tokens of 30 s
//! ```
//!
//! Settings (environment): `SOAK_BROWSERS` (200), `SOAK_SECONDS` (15), `SOAK_FAULT_RATE` (0.25),
//! `SOAK_EXPIRE_EVERY` (3), `SOAK_REFRESH_TTL` (10; 0 = 30 days), `SOAK_THINK_MS` (150..450, as
//! `MIN..MAX`), `SOAK_SEED` (random), `SOAK_MARGIN_MS` (1500, scheduling margin on the deadline).
//!
//! Its own binary: it owns the process's logger and panic hook, and counts every panic and every
//! error line of the process.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use actix_session::{storage::CookieSessionStore, SessionMiddleware};
use actix_web::{cookie::Key, web, App, HttpResponse};
use actix_wechat_auth::emulator::{Call, EmulatedUser, Emulator, Endpoint, Fault};
use actix_wechat_auth::testing::{TestApp, TestClient};
use actix_wechat_auth::{Scope, WeChatUser};
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::{header, redirect, StatusCode};

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    browsers: usize,
    seconds: u64,
    fault_rate: f64,
    expire_every: Duration,
    think: (u64, u64),
    seed: u64,
    request_timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
    check_interval: Duration,
    token_ttl: Duration,
    refresh_ttl: Duration,
    margin: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        let think = std::env::var("SOAK_THINK_MS").unwrap_or_else(|_| "150..450".into());
        let (lo, hi) = think
            .split_once("..")
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("SOAK_THINK_MS={think:?}: expected MIN..MAX"));
        Settings {
            browsers: env_or("SOAK_BROWSERS", 200),
            seconds: env_or("SOAK_SECONDS", 15),
            fault_rate: env_or("SOAK_FAULT_RATE", 0.25),
            expire_every: Duration::from_secs(env_or("SOAK_EXPIRE_EVERY", 3)),
            think: (lo, hi.max(lo + 1)),
            seed: env_or("SOAK_SEED", rand::rng().random()),
            request_timeout: Duration::from_millis(500),
            max_attempts: 2,
            backoff: Duration::from_millis(50),
            check_interval: Duration::from_secs(2),
            token_ttl: Duration::from_secs(6),
            refresh_ttl: match env_or("SOAK_REFRESH_TTL", 10) {
                0 => Duration::from_secs(30 * 24 * 3600),
                secs => Duration::from_secs(secs),
            },
            margin: Duration::from_millis(env_or("SOAK_MARGIN_MS", 1500)),
        }
    }

    /// The longest one upstream call may take: every attempt may fail, the last by timing out,
    /// with the doubling backoff between attempts.
    fn per_call(&self) -> Duration {
        let mut backoff = Duration::ZERO;
        let mut step = self.backoff;
        for _ in 1..self.max_attempts {
            backoff += step;
            step *= 2;
        }
        self.request_timeout * self.max_attempts + backoff
    }

    /// The longest one request to the app may take: at most two upstream calls (a token check then
    /// a refresh, or a code exchange then `/sns/userinfo`), plus the scheduling margin.
    fn deadline(&self) -> Duration {
        self.per_call() * 2 + self.margin
    }
}

// ---------------------------------------------------------------------------------------------
// Panics and logs, process-wide

static PANICS: AtomicU64 = AtomicU64::new(0);
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn count_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            FIRST_PANIC
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| info.to_string());
            previous(info);
        }));
    });
}

/// Counts the server side's log lines by level and keeps any that holds a secret.
struct Logs {
    secret: OnceLock<String>,
    by_level: Mutex<BTreeMap<log::Level, u64>>,
    /// ERROR lines by target, with the first message of each.
    errors: Mutex<BTreeMap<String, (u64, String)>>,
    /// The WeChat errcodes the app's client reported ("errcode N" in its warnings).
    errcodes: Mutex<BTreeMap<i64, u64>>,
    leaks: Mutex<Vec<String>>,
}

static LOGS: Logs = Logs {
    secret: OnceLock::new(),
    by_level: Mutex::new(BTreeMap::new()),
    errors: Mutex::new(BTreeMap::new()),
    errcodes: Mutex::new(BTreeMap::new()),
    leaks: Mutex::new(Vec::new()),
};

/// Whether a log target is the middleware itself (not the emulator, which plays WeChat).
fn is_middleware(target: &str) -> bool {
    target.starts_with("actix_wechat_auth") && !target.contains("::emulator")
}

/// The test's own HTTP clients log the (deliberately readable, signed) session cookies.
const CLIENT_SIDE: [&str; 4] = ["reqwest", "hyper", "cookie_store", "h2"];

impl log::Log for Logs {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !CLIENT_SIDE.iter().any(|c| metadata.target().starts_with(c))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        *self
            .by_level
            .lock()
            .unwrap()
            .entry(record.level())
            .or_default() += 1;
        let line = record.args().to_string();
        if record.level() == log::Level::Error {
            let mut errors = self.errors.lock().unwrap();
            let entry = errors
                .entry(record.target().to_owned())
                .or_insert_with(|| (0, line.chars().take(160).collect()));
            entry.0 += 1;
        }
        if record.target().starts_with("actix_wechat_auth::client") {
            let code = line
                .split("errcode ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<i64>().ok());
            if let Some(code) = code {
                *self.errcodes.lock().unwrap().entry(code).or_default() += 1;
            }
        }
        let secret = self.secret.get().map(String::as_str).unwrap_or("\u{0}");
        if line.contains(secret) || holds_token(&line) {
            self.leaks.lock().unwrap().push(format!(
                "{} {}: {line}",
                record.level(),
                record.target()
            ));
        }
    }

    fn flush(&self) {}
}

/// Whether `line` holds something shaped like the emulator's tokens: `NN_` then 88–104
/// base64url characters. (Openids are 28 characters, codes 32, states 32.)
fn holds_token(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .any(|word| word.len() >= 80)
}

fn capture_logs(secret: &str) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = LOGS.secret.set(secret.to_owned());
        log::set_logger(&LOGS).expect("no other logger in the soak binary");
        log::set_max_level(log::LevelFilter::Debug);
    });
}

// ---------------------------------------------------------------------------------------------
// What is measured

/// Which part of the app a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// `/info`, `/base`: pages needing a scope.
    Page,
    /// `/api/me`: JSON needing a scope.
    Api,
    /// `/public`: optional.
    Optional,
    /// `/wechat/callback`.
    Callback,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Page => "page (/info, /base)",
            Route::Api => "api (/api/me)",
            Route::Optional => "optional (/public)",
            Route::Callback => "callback",
        }
    }

    /// The answers this route may give under the injected faults.
    fn expected(self, status: u16) -> bool {
        match self {
            // 200, or off to sign in (302) only after a sign-out; the upstream statuses.
            Route::Page => matches!(status, 200 | 302 | 502 | 503 | 504),
            Route::Api => matches!(status, 200 | 401 | 502 | 503 | 504),
            Route::Optional => status == 200,
            // 303 back to the page; 302 to authorize again after a stale code; the upstream
            // statuses. (A browser follows one sign-in at a time: its state is always known.)
            Route::Callback => matches!(status, 302 | 303 | 502 | 503 | 504),
        }
    }
}

#[derive(Default)]
struct Stats {
    /// (route, status, error name) → count.
    answers: BTreeMap<(Route, u16, String), u64>,
    latencies_us: Vec<u64>,
    over_deadline: Vec<(String, Duration)>,
    /// Transport errors and client timeouts on requests to the app.
    app_errors: Vec<String>,
    identity_checks: u64,
    identity_mismatches: Vec<String>,
    /// Answers without `Referrer-Policy: no-referrer` where one is due (errors, callback).
    missing_referrer_policy: Vec<String>,
    sign_in_attempts: u64,
    sign_ins: u64,
    /// Sign-ins again after the refresh token expired (expected).
    re_sign_ins_expired: u64,
    /// Sign-ins again after the session was lost otherwise (must not happen).
    re_sign_ins_lost: u64,
    /// Sign-in attempts that broke at the emulator's authorize page (its own faults).
    authorize_page_failures: u64,
    /// Signed-in browsers sent to sign in again (401 on the API, 302 on a page) once their refresh
    /// token had surely expired.
    sign_outs_expired: u64,
    /// ... or while it may still have been valid (must not happen).
    sign_outs_lost: u64,
    /// `/public` answered anonymously for a signed-in browser (upkeep failed on an optional route).
    optional_served_anonymously: u64,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (k, v) in other.answers {
            *self.answers.entry(k).or_default() += v;
        }
        self.latencies_us.extend(other.latencies_us);
        self.over_deadline.extend(other.over_deadline);
        self.app_errors.extend(other.app_errors);
        self.identity_checks += other.identity_checks;
        self.identity_mismatches.extend(other.identity_mismatches);
        self.missing_referrer_policy
            .extend(other.missing_referrer_policy);
        self.sign_in_attempts += other.sign_in_attempts;
        self.sign_ins += other.sign_ins;
        self.re_sign_ins_expired += other.re_sign_ins_expired;
        self.re_sign_ins_lost += other.re_sign_ins_lost;
        self.authorize_page_failures += other.authorize_page_failures;
        self.sign_outs_expired += other.sign_outs_expired;
        self.sign_outs_lost += other.sign_outs_lost;
        self.optional_served_anonymously += other.optional_served_anonymously;
    }

    fn requests(&self) -> u64 {
        self.answers.values().sum()
    }

    fn count(&self, pred: impl Fn(Route, u16) -> bool) -> u64 {
        self.answers
            .iter()
            .filter(|((r, s, _), _)| pred(*r, *s))
            .map(|(_, n)| n)
            .sum()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        Duration::from_micros(v[idx])
    }
}

/// One answer of the app.
struct Answer {
    /// When the answer was read in full.
    at: Instant,
    status: u16,
    location: Option<String>,
    body: String,
}

impl Answer {
    /// The openid a 200 answer shows (`Some(None)`: answered anonymously).
    fn openid(&self) -> Option<Option<String>> {
        let json: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        Some(json.get("openid")?.as_str().map(str::to_owned))
    }

    /// The error's machine name: `error` of a JSON answer, the `code` line of an HTML page.
    fn error_name(&self) -> String {
        if self.status < 400 {
            return String::new();
        }
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&self.body) {
            if let Some(e) = json.get("error").and_then(|e| e.as_str()) {
                return e.to_owned();
            }
        }
        self.body
            .split("<p class=\"code\">")
            .nth(1)
            .and_then(|rest| rest.split(['<', ' ']).next())
            .unwrap_or("?")
            .to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// A browser

struct SoakBrowser {
    index: usize,
    openid: String,
    client: reqwest::Client,
    signed_in_once: bool,
    signed_in: bool,
    /// When the callback of the last completed sign-in was sent: WeChat issued the refresh token
    /// after this, so it cannot expire before `refresh_ttl` from it.
    callback_sent: Option<Instant>,
    /// The last sign-out came after the refresh token's expiry.
    lost_to_expiry: bool,
    stats: Stats,
}

struct World {
    base: String,
    deadline: Duration,
    refresh_ttl: Duration,
}

impl SoakBrowser {
    fn new(index: usize, openid: String) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(TestClient::wechat().user_agent())
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            // Far past any deadline: a request still running then has hung.
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(2)
            // Idle connections are dropped before the server's keep-alive (actix: 5 s) ends them,
            // as the crate's own client does: a request written to a connection the server is
            // closing fails without an answer. (The recovery comes after 3 s or more of quiet.)
            .pool_idle_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        SoakBrowser {
            index,
            openid,
            client,
            signed_in_once: false,
            signed_in: false,
            callback_sent: None,
            lost_to_expiry: false,
            stats: Stats::default(),
        }
    }

    /// A request to the app, measured and classified. `None` when the transport failed.
    async fn app(&mut self, world: &World, route: Route, url: &str, json: bool) -> Option<Answer> {
        let mut req = self.client.get(url);
        if json {
            req = req.header(header::ACCEPT, "application/json");
        }
        let started = Instant::now();
        let res = req.send().await;
        let res = match res {
            Ok(res) => res,
            Err(e) => {
                self.stats.app_errors.push(format!(
                    "{route:?} {url}: {e:?} after {:?}",
                    started.elapsed()
                ));
                return None;
            }
        };
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = match res.text().await {
            Ok(body) => body,
            Err(e) => {
                self.stats
                    .app_errors
                    .push(format!("{route:?} {url}: {e:?}"));
                return None;
            }
        };
        let elapsed = started.elapsed();
        self.stats.latencies_us.push(elapsed.as_micros() as u64);
        if elapsed > world.deadline {
            self.stats
                .over_deadline
                .push((format!("{route:?} {status} {url}"), elapsed));
        }
        let answer = Answer {
            at: Instant::now(),
            status,
            location: headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        };
        let referrer_policy_due = status >= 400 || (route == Route::Callback && status == 303);
        if referrer_policy_due
            && headers
                .get(header::REFERRER_POLICY)
                .is_none_or(|v| v != "no-referrer")
        {
            self.stats
                .missing_referrer_policy
                .push(format!("{route:?} {status}"));
        }
        *self
            .stats
            .answers
            .entry((route, status, answer.error_name()))
            .or_default() += 1;
        Some(answer)
    }

    /// Checks a 200 answer's identity.
    fn check_identity(&mut self, route: Route, answer: &Answer) {
        self.stats.identity_checks += 1;
        match answer.openid() {
            Some(Some(openid)) if openid == self.openid => {}
            Some(None) if route == Route::Optional => {
                self.stats.optional_served_anonymously += 1;
            }
            other => self.stats.identity_mismatches.push(format!(
                "browser {} ({}) got {other:?} on {route:?}",
                self.index, self.openid
            )),
        }
    }

    /// After the faults, signed in: `/api/me` and `/info` answer as this browser, or (only when
    /// the refresh token expired) it is signed out and signs in again at the first try.
    async fn go_on(&mut self, world: &World) -> bool {
        let url = format!("{}/api/me", world.base);
        match self.app(world, Route::Api, &url, true).await {
            Some(api) if api.status == 200 => {
                self.check_identity(Route::Api, &api);
                let url = format!("{}/info", world.base);
                match self.app(world, Route::Page, &url, false).await {
                    Some(page) if page.status == 200 => {
                        self.check_identity(Route::Page, &page);
                        true
                    }
                    _ => false,
                }
            }
            Some(api) if api.status == 401 => {
                self.signed_out(world, api.at);
                self.lost_to_expiry && self.sign_in(world, "/info").await
            }
            _ => false,
        }
    }

    /// The whole sign-in, as a browser follows it. `true` when it ends on the page, signed in.
    async fn sign_in(&mut self, world: &World, path: &str) -> bool {
        self.stats.sign_in_attempts += 1;
        let start = format!("{}{path}", world.base);
        let Some(first) = self.app(world, Route::Page, &start, false).await else {
            return false;
        };
        let mut answer = first;
        let mut callback_sent = None;
        // app 302 → authorize page 302 → callback 303 → page; a stale code adds a round.
        for _ in 0..4 {
            match answer.status {
                200 => {
                    self.check_identity(Route::Page, &answer);
                    let ok = answer.openid() == Some(Some(self.openid.clone()));
                    if ok {
                        self.signed_in = true;
                        self.stats.sign_ins += 1;
                        if self.signed_in_once && self.lost_to_expiry {
                            self.stats.re_sign_ins_expired += 1;
                        } else if self.signed_in_once {
                            self.stats.re_sign_ins_lost += 1;
                        }
                        self.callback_sent = callback_sent;
                        self.signed_in_once = true;
                    }
                    return ok;
                }
                302 => {}
                // An upstream failure on the page itself (refresh of an old session) or anything
                // else: try again later.
                _ => return false,
            }
            let Some(authorize) = answer.location.clone() else {
                return false;
            };
            // The emulator's authorize page, which has its own faults. Its body is never read: a
            // stalled page still sent its `Location`.
            let url = authorize.split('#').next().unwrap_or_default().to_owned();
            let page = self
                .client
                .get(&url)
                .header("x-emulator-user", &self.openid)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let callback = match page {
                Ok(res) if res.status() == StatusCode::FOUND => res
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                _ => None,
            };
            let Some(callback) = callback else {
                self.stats.authorize_page_failures += 1;
                return false;
            };
            callback_sent = Some(Instant::now());
            let Some(back) = self.app(world, Route::Callback, &callback, false).await else {
                return false;
            };
            match back.status {
                303 => {
                    let to = back.location.unwrap_or_default();
                    let to = to.trim_end_matches('#');
                    let page = format!("{}{to}", world.base);
                    let Some(next) = self.app(world, Route::Page, &page, false).await else {
                        return false;
                    };
                    answer = next;
                }
                // A stale code: the callback sends the browser to authorize once more.
                302 => answer = back,
                _ => return false,
            }
        }
        false
    }

    /// Sent to sign in again: expected once the refresh token has surely expired.
    fn signed_out(&mut self, world: &World, at: Instant) {
        self.signed_in = false;
        self.lost_to_expiry = self
            .callback_sent
            .is_some_and(|sent| at >= sent + world.refresh_ttl);
        if self.lost_to_expiry {
            self.stats.sign_outs_expired += 1;
        } else {
            self.stats.sign_outs_lost += 1;
        }
    }

    /// One request of a signed-in browser.
    async fn browse(&mut self, world: &World, rng: &mut StdRng) {
        let (route, path, json) = match rng.random_range(0..10) {
            0..=3 => (Route::Api, "/api/me", true),
            4..=5 => (Route::Page, "/info", false),
            6..=7 => (Route::Page, "/base", false),
            _ => (Route::Optional, "/public", false),
        };
        let url = format!("{}{path}", world.base);
        let Some(answer) = self.app(world, route, &url, json).await else {
            return;
        };
        match answer.status {
            200 => self.check_identity(route, &answer),
            401 | 302 => self.signed_out(world, answer.at),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

const FAULT_KINDS: [&str; 5] = ["busy -1", "HTTP 500", "malformed", "delay", "stall body"];

fn fault_kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::Busy => FAULT_KINDS[0],
        Fault::HttpStatus(_) => FAULT_KINDS[1],
        Fault::Malformed => FAULT_KINDS[2],
        Fault::Delay(_) => FAULT_KINDS[3],
        Fault::StallBody => FAULT_KINDS[4],
        Fault::ErrCode(_) => "errcode",
        Fault::LooseNumbers => "loose numbers",
        Fault::Body(_) => "body",
    }
}

const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::Authorize,
    Endpoint::AccessToken,
    Endpoint::RefreshToken,
    Endpoint::UserInfo,
    Endpoint::Auth,
];

fn endpoint_name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Authorize => "authorize",
        Endpoint::AccessToken => "access_token",
        Endpoint::RefreshToken => "refresh_token",
        Endpoint::UserInfo => "userinfo",
        Endpoint::Auth => "auth",
        _ => "other",
    }
}

#[derive(Default)]
struct Injected {
    /// Faults queued, by kind (each use counted).
    queued: BTreeMap<&'static str, u64>,
    expiries: u64,
}

/// Injects faults in proportion to each endpoint's recent traffic (so that queues of unused faults
/// stay short) and expires the access tokens now and then, until `until`.
async fn inject_faults(
    emu: &Emulator,
    settings: &Settings,
    until: Instant,
    rng: &mut StdRng,
) -> Injected {
    let mut injected = Injected::default();
    let mut last = ENDPOINTS.map(|e| emu.call_count(e));
    let mut next_expiry = Instant::now() + settings.expire_every;
    let past_deadline = settings.request_timeout + Duration::from_millis(250);
    while Instant::now() < until {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        for (i, endpoint) in ENDPOINTS.into_iter().enumerate() {
            let now = emu.call_count(endpoint);
            let recent = now.saturating_sub(last[i]);
            last[i] = now;
            // At least a chance of one fault on a quiet endpoint (sign-ins come and go).
            let expected = (recent as f64 * settings.fault_rate).max(0.3);
            let mut budget = expected.floor() as u32 + u32::from(rng.random_bool(expected.fract()));
            while budget > 0 {
                let fault = match rng.random_range(0..5) {
                    0 => Fault::Busy,
                    1 => Fault::HttpStatus(500),
                    2 => Fault::Malformed,
                    3 => Fault::Delay(past_deadline),
                    _ => Fault::StallBody,
                };
                let times = rng.random_range(1..=budget.min(3));
                *injected.queued.entry(fault_kind(&fault)).or_default() += u64::from(times);
                emu.inject_fault(endpoint, fault, Some(times));
                budget -= times;
            }
        }
        if Instant::now() >= next_expiry {
            emu.expire_access_tokens();
            injected.expiries += 1;
            next_expiry += settings.expire_every;
        }
    }
    emu.clear_faults();
    injected
}

// ---------------------------------------------------------------------------------------------
// The soak

/// The app under soak, shaped like the sample site; its pages and API answer the user as JSON.
fn start_app(emu: &Emulator, settings: &Settings) -> TestApp {
    async fn me(user: WeChatUser) -> HttpResponse {
        HttpResponse::Ok().json(serde_json::json!({ "openid": user.openid() }))
    }
    async fn public(user: Option<WeChatUser>) -> HttpResponse {
        HttpResponse::Ok()
            .json(serde_json::json!({ "openid": user.as_ref().map(WeChatUser::openid) }))
    }
    let config = emu
        .config()
        .api_path_prefix("/api/")
        .request_timeout(settings.request_timeout)
        .max_attempts(settings.max_attempts)
        .retry_backoff(settings.backoff)
        .check_interval(settings.check_interval)
        .refresh_margin(Duration::from_secs(1));
    let key = Key::generate();
    TestApp::start(config, move |wechat| {
        App::new()
            .service(
                web::resource("/base")
                    .wrap(wechat.require(Scope::Base))
                    .get(me),
            )
            .service(
                web::resource("/info")
                    .wrap(wechat.require(Scope::UserInfo))
                    .get(me),
            )
            .service(
                web::resource("/api/me")
                    .wrap(wechat.require(Scope::UserInfo))
                    .get(me),
            )
            .route("/public", web::get().to(public))
            .wrap(wechat.optional())
            .wrap(
                // Plain http on loopback: the test's cookie store sends no `Secure` cookie there.
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
    })
}

#[actix_web::test]
async fn soak_under_faults() {
    count_panics();
    let settings = Settings::from_env();
    let emu = Emulator::builder()
        .auto_approve(true)
        .access_token_ttl(settings.token_ttl)
        .refresh_token_ttl(settings.refresh_ttl)
        .workers(2)
        .start()
        .unwrap();
    capture_logs(emu.secret());
    let app = start_app(&emu, &settings);
    let world = Arc::new(World {
        base: app.url(""),
        deadline: settings.deadline(),
        refresh_ttl: settings.refresh_ttl,
    });
    println!(
        "soak: {} browsers, {} s of faults, fault rate {}, seed {}, deadline {:?}",
        settings.browsers, settings.seconds, settings.fault_rate, settings.seed, world.deadline
    );
    let faults = under_faults(&emu, &settings, &world).await;
    let (browsers, during, not_signed_in_at_end) = stop_faults(&emu, faults.browsers);
    let recovery = recover(&emu, &settings, &world, browsers).await;
    write_report(&ReportInput {
        settings: &settings,
        fault_phase: faults.took,
        recovery: recovery.took,
        during: &during,
        after: &recovery.after,
        injected: &faults.injected,
        fault_calls: &faults.calls,
        calls_during_faults: faults.calls_per_endpoint,
        calls_in_recovery: recovery.calls_per_endpoint,
        not_signed_in_at_end,
    });
    assert_what_must_hold(&settings, during, recovery);
}

/// What the fault phase leaves: the browsers, and what WeChat saw and suffered.
struct FaultPhase {
    browsers: Vec<SoakBrowser>,
    took: Duration,
    injected: Injected,
    calls: Vec<Call>,
    calls_per_endpoint: [usize; 5],
}

/// Phase 1: every browser signs in and browses while faults are injected, for `SOAK_SECONDS`.
async fn under_faults(emu: &Emulator, settings: &Settings, world: &Arc<World>) -> FaultPhase {
    let started = Instant::now();
    let until = started + Duration::from_secs(settings.seconds);
    let tasks: Vec<_> = (0..settings.browsers)
        .map(|i| {
            let openid = emu.add_user(EmulatedUser::new(format!("浏览器 {i} <b>&amp;")));
            let world = Arc::clone(world);
            let mut browser = SoakBrowser::new(i, openid);
            let mut rng = StdRng::seed_from_u64(settings.seed ^ (i as u64).wrapping_mul(0x9E37));
            let think = settings.think;
            actix_web::rt::spawn(async move {
                // Arrivals spread over the first second.
                actix_web::rt::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
                while Instant::now() < until {
                    if browser.signed_in {
                        browser.browse(&world, &mut rng).await;
                    } else {
                        // Through a page: an API request gets a 401, not a redirect.
                        browser.sign_in(&world, "/info").await;
                    }
                    let pause = rng.random_range(think.0..think.1);
                    actix_web::rt::time::sleep(Duration::from_millis(pause)).await;
                }
                browser
            })
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let injected = inject_faults(emu, settings, until, &mut rng).await;
    let mut browsers = Vec::new();
    for task in tasks {
        browsers.push(task.await.expect("browser task"));
    }
    FaultPhase {
        browsers,
        took: started.elapsed(),
        injected,
        calls: emu.calls(),
        calls_per_endpoint: ENDPOINTS.map(|e| emu.call_count(e)),
    }
}

/// Phase 2: the faults stop and every access token expires once more. Returns the browsers, what
/// they saw during the faults, and how many were not signed in when the faults stopped.
fn stop_faults(emu: &Emulator, mut browsers: Vec<SoakBrowser>) -> (Vec<SoakBrowser>, Stats, usize) {
    emu.clear_faults();
    emu.expire_access_tokens();
    let mut during = Stats::default();
    for b in &mut browsers {
        during.merge(std::mem::take(&mut b.stats));
    }
    let not_signed_in = browsers.iter().filter(|b| !b.signed_in).count();
    (browsers, during, not_signed_in)
}

/// What the recovery phase saw.
struct Recovery {
    took: Duration,
    after: Stats,
    /// Browsers that did not go on: not answered as themselves, or not signed in again.
    stuck: Vec<String>,
    calls_per_endpoint: [usize; 5],
}

/// Phase 3, once every session's token check is due: each browser signed in asks for `/api/me`
/// and `/info` (both must answer as itself, unless its refresh token expired: then it signs in
/// again at the first try), and each one not signed in signs in.
async fn recover(
    emu: &Emulator,
    settings: &Settings,
    world: &Arc<World>,
    browsers: Vec<SoakBrowser>,
) -> Recovery {
    // (Delayed calls of the fault phase are logged when they end: count from after them.)
    actix_web::rt::time::sleep(settings.check_interval + Duration::from_millis(1100)).await;
    emu.reset_calls();
    let started = Instant::now();
    let recovered = futures_util::future::join_all(browsers.into_iter().map(|mut b| {
        let world = Arc::clone(world);
        async move {
            let was_signed_in = b.signed_in;
            let went_on = if was_signed_in {
                b.go_on(&world).await
            } else {
                b.sign_in(&world, "/info").await
            };
            (b, was_signed_in, went_on)
        }
    }))
    .await;
    let took = started.elapsed();
    let mut after = Stats::default();
    let mut stuck = Vec::new();
    for (mut b, was_signed_in, went_on) in recovered {
        if !went_on {
            stuck.push(format!("browser {} (signed in: {was_signed_in})", b.index));
        }
        after.merge(std::mem::take(&mut b.stats));
    }
    Recovery {
        took,
        after,
        stuck,
        calls_per_endpoint: ENDPOINTS.map(|e| emu.call_count(e)),
    }
}

/// The figures, to stdout and to `target/soak-report.md`.
fn write_report(input: &ReportInput<'_>) {
    let report = report(input);
    println!("{report}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("soak-report.md");
    std::fs::write(&path, &report).unwrap();
    println!("(written to {})", path.display());
}

/// What must hold over both phases (the module's docs list it).
fn assert_what_must_hold(settings: &Settings, during: Stats, recovery: Recovery) {
    let recovery_sign_ins = recovery.after.sign_ins;
    let mut all = Stats::default();
    all.merge(during);
    all.merge(recovery.after);
    let leaks = LOGS.leaks.lock().unwrap().clone();
    let middleware_errors: Vec<_> = LOGS
        .errors
        .lock()
        .unwrap()
        .iter()
        .filter(|(target, _)| is_middleware(target))
        .map(|(t, e)| format!("{t}: {e:?}"))
        .collect();
    // The middleware logs an error only for what must not happen: a refresh answering another
    // openid, a session it cannot write, a wiring mistake.
    assert!(
        middleware_errors.is_empty(),
        "the middleware logged errors: {middleware_errors:?}"
    );
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "panics: {:?}",
        FIRST_PANIC.lock().unwrap()
    );
    assert!(
        all.identity_mismatches.is_empty(),
        "{:?}",
        all.identity_mismatches
    );
    assert_eq!(
        all.count(|_, s| s == 500),
        0,
        "500 answers: {:?}",
        all.answers
    );
    let unexpected: Vec<_> = all
        .answers
        .iter()
        .filter(|((r, s, _), _)| !r.expected(*s))
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert!(
        all.app_errors.is_empty(),
        "transport errors: {:?}",
        all.app_errors
    );
    assert!(
        all.over_deadline.is_empty(),
        "over the deadline: {:?}",
        all.over_deadline
    );
    assert!(
        all.missing_referrer_policy.is_empty(),
        "no Referrer-Policy: {:?}",
        all.missing_referrer_policy
    );
    assert!(leaks.is_empty(), "secrets in the logs: {leaks:?}");
    assert_eq!(
        (all.sign_outs_lost, all.re_sign_ins_lost),
        (0, 0),
        "sessions lost while the refresh token was valid"
    );
    assert!(
        recovery.stuck.is_empty(),
        "browsers that did not go on after the faults: {:?}",
        recovery.stuck
    );
    assert_eq!(
        recovery.calls_per_endpoint[1] as u64, recovery_sign_ins,
        "code exchanges in the recovery beyond its sign-ins"
    );
    assert!(
        all.sign_ins as usize >= settings.browsers,
        "every browser signed in"
    );
}

// ---------------------------------------------------------------------------------------------
// The report

struct ReportInput<'a> {
    settings: &'a Settings,
    fault_phase: Duration,
    recovery: Duration,
    during: &'a Stats,
    after: &'a Stats,
    injected: &'a Injected,
    fault_calls: &'a [Call],
    calls_during_faults: [usize; 5],
    calls_in_recovery: [usize; 5],
    not_signed_in_at_end: usize,
}

/// The soak's report, in markdown: the settings, the phases side by side, the answers, the faults
/// and the log lines.
fn report(r: &ReportInput<'_>) -> String {
    let mut out = String::new();
    settings_section(&mut out, r.settings);
    phases_section(&mut out, r);
    answers_section(&mut out, r.during, r.after);
    faults_section(&mut out, r);
    logs_section(&mut out);
    out
}

/// How to reproduce the run, and what the app and the emulator were set to.
fn settings_section(w: &mut String, s: &Settings) {
    let _ = writeln!(
        w,
        "### Soak: {} browsers, {} s of faults (seed {})\n",
        s.browsers, s.seconds, s.seed
    );
    let _ = writeln!(
        w,
        "Reproduce: `SOAK_BROWSERS={} SOAK_SECONDS={} SOAK_FAULT_RATE={} SOAK_REFRESH_TTL={} \
         SOAK_SEED={} cargo test --all-features --test soak -- --nocapture` (timing makes runs \
         differ in detail).\n",
        s.browsers,
        s.seconds,
        s.fault_rate,
        s.refresh_ttl.as_secs(),
        s.seed
    );
    let _ = writeln!(
        w,
        "App: `request_timeout` {:?}, `max_attempts` {}, `retry_backoff` {:?}, `check_interval` \
         {:?}, `refresh_margin` 1 s; emulator access tokens live {:?} and are all expired every \
         {:?}, refresh tokens live {:?}; think time {}..{} ms. Deadline per request: 2 upstream \
         calls × {:?} + {:?} margin = {:?}.\n",
        s.request_timeout,
        s.max_attempts,
        s.backoff,
        s.check_interval,
        s.token_ttl,
        s.expire_every,
        s.refresh_ttl,
        s.think.0,
        s.think.1,
        s.per_call(),
        s.margin,
        s.deadline()
    );
}

/// The two phases side by side.
fn phases_section(w: &mut String, r: &ReportInput<'_>) {
    let d = r.during;
    let a = r.after;
    let _ = writeln!(w, "| | under faults | recovery |");
    let _ = writeln!(w, "|---|---:|---:|");
    let rows: [(&str, String, String); 14] = [
        (
            "wall time",
            format!("{:.1} s", r.fault_phase.as_secs_f64()),
            format!("{:.1} s", r.recovery.as_secs_f64()),
        ),
        (
            "requests to the app",
            d.requests().to_string(),
            a.requests().to_string(),
        ),
        (
            "requests per second",
            format!("{:.0}", d.requests() as f64 / r.fault_phase.as_secs_f64()),
            String::new(),
        ),
        (
            "sign-in attempts / completed",
            format!("{} / {}", d.sign_in_attempts, d.sign_ins),
            format!("{} / {}", a.sign_in_attempts, a.sign_ins),
        ),
        (
            "sign-outs (401/302 once signed in): refresh token expired / otherwise",
            format!("{} / {}", d.sign_outs_expired, d.sign_outs_lost),
            format!("{} / {}", a.sign_outs_expired, a.sign_outs_lost),
        ),
        (
            "re-sign-ins: refresh token expired / otherwise",
            format!("{} / {}", d.re_sign_ins_expired, d.re_sign_ins_lost),
            format!("{} / {}", a.re_sign_ins_expired, a.re_sign_ins_lost),
        ),
        (
            "attempts broken at the authorize page",
            d.authorize_page_failures.to_string(),
            a.authorize_page_failures.to_string(),
        ),
        (
            "identity checks / mismatches",
            format!("{} / {}", d.identity_checks, d.identity_mismatches.len()),
            format!("{} / {}", a.identity_checks, a.identity_mismatches.len()),
        ),
        (
            "`/public` served anonymously to a signed-in browser",
            d.optional_served_anonymously.to_string(),
            a.optional_served_anonymously.to_string(),
        ),
        (
            "500 answers",
            d.count(|_, s| s == 500).to_string(),
            a.count(|_, s| s == 500).to_string(),
        ),
        (
            "transport errors / over the deadline",
            format!("{} / {}", d.app_errors.len(), d.over_deadline.len()),
            format!("{} / {}", a.app_errors.len(), a.over_deadline.len()),
        ),
        (
            "latency p50 / p99",
            format!("{:?} / {:?}", ms(d.percentile(0.5)), ms(d.percentile(0.99))),
            format!("{:?} / {:?}", ms(a.percentile(0.5)), ms(a.percentile(0.99))),
        ),
        (
            "latency p99.9 / max",
            format!(
                "{:?} / {:?}",
                ms(d.percentile(0.999)),
                ms(d.percentile(1.0))
            ),
            format!(
                "{:?} / {:?}",
                ms(a.percentile(0.999)),
                ms(a.percentile(1.0))
            ),
        ),
        (
            "browsers not signed in when the faults stopped",
            r.not_signed_in_at_end.to_string(),
            String::new(),
        ),
    ];
    for (name, x, y) in rows {
        let _ = writeln!(w, "| {name} | {x} | {y} |");
    }
    let _ = writeln!(w, "| panics | {} | |", PANICS.load(Ordering::SeqCst));
}

/// The app's answers by route, status and error.
fn answers_section(w: &mut String, d: &Stats, a: &Stats) {
    // Answers by route and status.
    let _ = writeln!(w, "\nAnswers of the app by route, status and error:\n");
    let _ = writeln!(w, "| route | status | error | under faults | recovery |");
    let _ = writeln!(w, "|---|---:|---|---:|---:|");
    let mut keys: Vec<_> = d.answers.keys().chain(a.answers.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (route, status, error) = key;
        let _ = writeln!(
            w,
            "| {} | {status} | {} | {} | {} |",
            route.name(),
            if error.is_empty() { "" } else { error },
            d.answers.get(key).copied().unwrap_or(0),
            a.answers.get(key).copied().unwrap_or(0)
        );
    }
}

/// The faults that hit a call, by endpoint and kind (from the emulator's call log), and the
/// upstream calls of the recovery.
fn faults_section(w: &mut String, r: &ReportInput<'_>) {
    // Faults applied, by endpoint and kind (from the emulator's call log).
    let mut applied: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for call in r.fault_calls {
        if let Some(fault) = &call.fault {
            *applied
                .entry((endpoint_name(call.endpoint), fault_kind(fault)))
                .or_default() += 1;
        }
    }
    let _ = writeln!(
        w,
        "\nFaults that hit a call, by endpoint (from the emulator's call log; {} queued, the rest \
         cleared unused; access tokens expired {} times):\n",
        r.injected.queued.values().sum::<u64>(),
        r.injected.expiries
    );
    let _ = write!(w, "| endpoint | calls |");
    for kind in FAULT_KINDS {
        let _ = write!(w, " {kind} |");
    }
    let _ = writeln!(w, " faulted |");
    let _ = writeln!(w, "|---|---:|{}---:|", "---:|".repeat(FAULT_KINDS.len()));
    let mut total = 0;
    for (i, endpoint) in ENDPOINTS.into_iter().enumerate() {
        let name = endpoint_name(endpoint);
        let _ = write!(w, "| {name} | {} |", r.calls_during_faults[i]);
        let mut sum = 0;
        for kind in FAULT_KINDS {
            let n = applied.get(&(name, kind)).copied().unwrap_or(0);
            sum += n;
            let _ = write!(w, " {n} |");
        }
        total += sum;
        let share = 100.0 * sum as f64 / r.calls_during_faults[i].max(1) as f64;
        let _ = writeln!(w, " {sum} ({share:.0} %) |");
    }
    let _ = writeln!(w, "\nFaults that hit a call: {total}.");
    let _ = writeln!(
        w,
        "\nUpstream calls in the recovery: {}.",
        ENDPOINTS
            .iter()
            .zip(r.calls_in_recovery)
            .map(|(e, n)| format!("{} {n}", endpoint_name(*e)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The server side's log lines: by level, the leaks, WeChat's errcodes, ERROR lines.
fn logs_section(w: &mut String) {
    let levels = LOGS.by_level.lock().unwrap().clone();
    let _ = writeln!(
        w,
        "Server-side log lines: {}; lines holding the appsecret or a token: {}.",
        levels
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        LOGS.leaks.lock().unwrap().len()
    );
    let errcodes = LOGS.errcodes.lock().unwrap().clone();
    let _ = writeln!(
        w,
        "WeChat errcodes in the client's warnings (attempts): {}.",
        errcodes
            .iter()
            .map(|(code, n)| format!("{code} × {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let errors = LOGS.errors.lock().unwrap().clone();
    if !errors.is_empty() {
        let _ = writeln!(w, "ERROR lines by target (first message):");
        for (target, (n, first)) in errors {
            let _ = writeln!(w, "- `{target}` × {n}: {first}");
        }
    }
}

fn ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
