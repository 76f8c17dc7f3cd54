//! An embedded WeChat emulator for tests and local development (cargo feature `emulator`).
//!
#![doc = include_str!("README.md")]

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

mod answer;
mod authorize;
mod control;
mod faults;
mod qrconnect;
pub(crate) mod server;
mod sns;
mod state;

use state::Shared;

/// The default appid of the emulator: `wx0123456789emu`.
const DEFAULT_APPID: &str = "wx0123456789emu";
/// The default (fake) appsecret of the emulator.
const DEFAULT_SECRET: &str = "emu0secret0not0a0real0one0000000";
/// The default appid of the emulated Website app: `wx0123456789web`.
const DEFAULT_WEB_APPID: &str = "wx0123456789web";
/// The default (fake) appsecret of the emulated Website app.
const DEFAULT_WEB_SECRET: &str = "emu0web0secret0not0a0real0one000";

/// A running WeChat emulator. Dropping it stops the server.
///
/// See the [module documentation](self) for what it serves.
///
/// # Example
///
/// ```
/// use actix_wechat_auth::emulator::Emulator;
///
/// let emu = Emulator::start().unwrap();
/// assert!(emu.port() > 0);
/// assert!(!format!("{emu:?}").contains(emu.secret()));
/// drop(emu); // stops the server
/// ```
pub struct Emulator {
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
    port: u16,
    api_base: String,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("appid", &self.shared.config.appid)
            .field("open_base", &self.shared.config.open_base)
            .field("api_base", &self.api_base)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// A builder with the default settings.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().appid("wxabc").auto_approve(true).start().unwrap();
    /// assert_eq!(emu.appid(), "wxabc");
    /// ```
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with the default settings (`Emulator::builder().start()`).
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the server thread cannot be started.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start()?;
    /// assert_eq!(emu.appid(), "wx0123456789emu");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start() -> std::io::Result<Emulator> {
        Emulator::builder().start()
    }

    /// The base URL of the authorize page (the `open.weixin.qq.com` role): `http://{host_name}:{port}`.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().host_name("localhost").start().unwrap();
    /// assert_eq!(emu.open_base(), format!("http://localhost:{}", emu.port()));
    /// ```
    pub fn open_base(&self) -> String {
        self.shared.config.open_base.clone()
    }

    /// The base URL of the sns API (the `api.weixin.qq.com` role): `http://127.0.0.1:{port}` (the bound
    /// address when it is a specific one).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert_eq!(emu.api_base(), format!("http://127.0.0.1:{}", emu.port()));
    /// ```
    pub fn api_base(&self) -> String {
        self.api_base.clone()
    }

    /// The TCP port the emulator listens on.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", emu.port())).is_ok());
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The appid the emulator accepts.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert_eq!(emu.appid(), "wx0123456789emu");
    /// ```
    pub fn appid(&self) -> &str {
        &self.shared.config.appid
    }

    /// The emulator's own fake appsecret (what `/sns/oauth2/access_token` expects).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().secret("s3cr3t").start().unwrap();
    /// assert_eq!(emu.secret(), "s3cr3t");
    /// ```
    pub fn secret(&self) -> &str {
        &self.shared.config.secret
    }

    /// Adds a WeChat user (or replaces the one with the same openid) and returns its openid.
    ///
    /// With `user.openid == None` an openid is generated. An openid that is not 1–64 characters of
    /// `[A-Za-z0-9_-]` is replaced by a generated one (and a warning is logged).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
    ///
    /// let emu = Emulator::start().unwrap();
    /// let openid = emu.add_user(EmulatedUser::new("小红"));
    /// assert_eq!(openid.len(), 28);
    /// assert!(openid.starts_with('o'));
    /// let fixed = emu.add_user(EmulatedUser::new("Bob").with_openid("oBob"));
    /// assert_eq!(fixed, "oBob");
    /// ```
    pub fn add_user(&self, user: EmulatedUser) -> String {
        self.shared.add_user(user)
    }

    /// The appid of the Website app (网站应用) the emulator also plays.
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    /// let emu = Emulator::start().unwrap();
    /// assert_eq!(emu.web_appid(), "wx0123456789web");
    /// ```
    pub fn web_appid(&self) -> &str {
        &self.shared.config.web_appid
    }

    /// The Website app's fake appsecret.
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    /// let emu = Emulator::builder().website_app("wxweb", "web-secret").start().unwrap();
    /// assert_eq!(emu.web_secret(), "web-secret");
    /// ```
    pub fn web_secret(&self) -> &str {
        &self.shared.config.web_secret
    }

    /// The Website app's openid of the person whose Official Account openid is `openid` (openids
    /// are per app; the unionid is the same).
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
    /// let emu = Emulator::start().unwrap();
    /// let openid = emu.add_user(EmulatedUser::new("小明"));
    /// let web = emu.website_openid(&openid).unwrap();
    /// assert_ne!(web, openid);
    /// ```
    pub fn website_openid(&self, openid: &str) -> Option<String> {
        self.shared.web_openid(openid)
    }

    /// Makes the person with this openid the one whose phone "scans" the next QR codes of the
    /// Website app's sign-in (`None`: the browser's emulated user, as on the authorize page).
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
    /// let emu = Emulator::start().unwrap();
    /// let openid = emu.add_user(EmulatedUser::new("小明"));
    /// emu.scan_as(Some(&openid));
    /// ```
    pub fn scan_as(&self, openid: Option<&str>) {
        self.shared.set_scanner(openid.map(str::to_owned));
    }

    /// The user with this openid (real openid, not a snapshot user's virtual one), if any.
    ///
    /// The returned user has its `openid` set, and its `unionid` once one was generated.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
    ///
    /// let emu = Emulator::start().unwrap();
    /// let openid = emu.add_user(EmulatedUser::new("小红"));
    /// let user = emu.user(&openid).unwrap();
    /// assert_eq!(user.nickname, "小红");
    /// assert_eq!(user.openid.as_deref(), Some(openid.as_str()));
    /// assert!(emu.user("nobody").is_none());
    /// ```
    pub fn user(&self, openid: &str) -> Option<EmulatedUser> {
        self.shared.user(openid)
    }

    /// Expires every access token issued so far: using one now gives errcode 42001. Tokens issued
    /// afterwards are not affected.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// emu.expire_access_tokens(); // `/sns/userinfo` and `/sns/auth` now answer 42001 for old tokens
    /// ```
    pub fn expire_access_tokens(&self) {
        self.shared.expire_access_tokens();
    }

    /// Expires every refresh token issued so far: refreshing with one now gives errcode 42002.
    /// Access tokens are not affected.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// emu.expire_refresh_tokens(); // `/sns/oauth2/refresh_token` now answers 42002 for old tokens
    /// ```
    pub fn expire_refresh_tokens(&self) {
        self.shared.expire_refresh_tokens();
    }

    /// Makes the next calls of `endpoint` fail with `fault`: `times` calls, or every call until
    /// [`clear_faults`](Self::clear_faults) with `None` (`Some(0)` does nothing).
    ///
    /// Faults are checked before anything else and are used first-injected first: a second fault for
    /// the same endpoint applies once the first one is used up. The failed calls are logged (see
    /// [`Call`]). `Busy`, `HttpStatus`, `Malformed` and `ErrCode` calls change nothing (a code stays
    /// unused); `Delay` and `StallBody` calls are processed normally (a `StallBody` code exchange does
    /// consume the code, as when the answer is lost on the way).
    ///
    /// On [`Endpoint::Authorize`] the faults apply to the authorize page: `Busy` is an error page
    /// with code `-1` and HTTP 503, `ErrCode(n)` an error page with code `n` and HTTP 400 (e.g. 10009
    /// "too frequent"), `Malformed` a truncated HTML page with HTTP 200.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{Emulator, Endpoint, Fault};
    ///
    /// let emu = Emulator::start().unwrap();
    /// emu.inject_fault(Endpoint::RefreshToken, Fault::Busy, Some(2)); // twice -1, then normal
    /// emu.inject_fault(Endpoint::UserInfo, Fault::HttpStatus(502), None); // until cleared
    /// ```
    pub fn inject_fault(&self, endpoint: Endpoint, fault: Fault, times: Option<u32>) {
        self.shared.inject_fault(endpoint, fault, times);
    }

    /// Removes every injected fault.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{Emulator, Endpoint, Fault};
    ///
    /// let emu = Emulator::start().unwrap();
    /// emu.inject_fault(Endpoint::Auth, Fault::Malformed, None);
    /// emu.clear_faults();
    /// ```
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// The log of calls to the five endpoints, oldest first (by arrival), faulted calls included.
    ///
    /// The consent form submission and the `/_emulator/…` endpoints are not logged. The log keeps the
    /// last 100,000 calls; [`call_count`](Self::call_count) stays exact.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert!(emu.calls().is_empty());
    /// ```
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls()
    }

    /// How many calls of `endpoint` were made since the start or the last
    /// [`reset_calls`](Self::reset_calls).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{Emulator, Endpoint};
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert_eq!(emu.call_count(Endpoint::AccessToken), 0);
    /// ```
    pub fn call_count(&self, endpoint: Endpoint) -> usize {
        usize::try_from(self.shared.call_count(endpoint)).unwrap_or(usize::MAX)
    }

    /// Empties the call log and the call counters.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::{Emulator, Endpoint};
    ///
    /// let emu = Emulator::start().unwrap();
    /// emu.reset_calls();
    /// assert_eq!(emu.call_count(Endpoint::Authorize), 0);
    /// ```
    pub fn reset_calls(&self) {
        self.shared.reset_calls();
    }

    /// How many TCP connections the server accepted so far (useful to check connection reuse).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// assert_eq!(emu.connections_accepted(), 0);
    /// ```
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        server::stop(&self.server, self.thread.take());
    }
}

/// Settings of an [`Emulator`]; every setter takes and returns the builder by value.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use actix_wechat_auth::emulator::Emulator;
///
/// let emu = Emulator::builder()
///     .appid("wxtest")
///     .secret("test-secret")
///     .host_name("localhost")
///     .auto_approve(true)
///     .access_token_ttl(Duration::from_secs(60))
///     .rotate_refresh_token(true)
///     .redirect_domain("app.example")
///     .start()
///     .unwrap();
/// assert_eq!(emu.appid(), "wxtest");
/// ```
#[derive(Clone)]
pub struct EmulatorBuilder {
    appid: String,
    secret: String,
    web_appid: String,
    web_secret: String,
    bind: SocketAddr,
    host_name: String,
    workers: usize,
    auto_approve: bool,
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    code_ttl: Duration,
    rotate_refresh_token: bool,
    redirect_domain: Option<String>,
    open_platform_bound: bool,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("appid", &self.appid)
            .field("secret", &"<redacted>")
            .field("web_appid", &self.web_appid)
            .field("bind", &self.bind)
            .field("host_name", &self.host_name)
            .field("workers", &self.workers)
            .field("auto_approve", &self.auto_approve)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("code_ttl", &self.code_ttl)
            .field("rotate_refresh_token", &self.rotate_refresh_token)
            .field("redirect_domain", &self.redirect_domain)
            .field("open_platform_bound", &self.open_platform_bound)
            .finish()
    }
}

impl Default for EmulatorBuilder {
    /// The defaults listed on each setter.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatorBuilder;
    ///
    /// let emu = EmulatorBuilder::default().start().unwrap();
    /// assert_eq!(emu.appid(), "wx0123456789emu");
    /// ```
    fn default() -> Self {
        EmulatorBuilder {
            appid: DEFAULT_APPID.to_owned(),
            secret: DEFAULT_SECRET.to_owned(),
            web_appid: DEFAULT_WEB_APPID.to_owned(),
            web_secret: DEFAULT_WEB_SECRET.to_owned(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            host_name: "127.0.0.1".to_owned(),
            workers: 1,
            auto_approve: false,
            access_token_ttl: Duration::from_secs(7200),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            code_ttl: Duration::from_secs(300),
            rotate_refresh_token: false,
            redirect_domain: None,
            open_platform_bound: true,
        }
    }
}

impl EmulatorBuilder {
    /// The appid the emulator accepts. Default `wx0123456789emu`.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().appid("wx1111").start().unwrap();
    /// assert_eq!(emu.appid(), "wx1111");
    /// ```
    pub fn appid(mut self, appid: impl Into<String>) -> Self {
        self.appid = appid.into();
        self
    }

    /// The appsecret the emulator expects. Default: a fixed fake string.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().secret("my-fake-secret").start().unwrap();
    /// assert_eq!(emu.secret(), "my-fake-secret");
    /// ```
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = secret.into();
        self
    }

    /// The appid and appsecret of the Website app the emulator plays too (`/connect/qrconnect`,
    /// and the sns endpoints under that appid). Default `wx0123456789web` and a fixed fake secret.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().website_app("wxweb1111", "web-secret").start().unwrap();
    /// assert_eq!(emu.web_appid(), "wxweb1111");
    /// ```
    pub fn website_app(mut self, appid: impl Into<String>, secret: impl Into<String>) -> Self {
        self.web_appid = appid.into();
        self.web_secret = secret.into();
        self
    }

    /// The address to listen on. Default `127.0.0.1:0` (a free port).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().bind(([127, 0, 0, 1], 0).into()).start().unwrap();
    /// assert_ne!(emu.port(), 0);
    /// ```
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The host name used in [`Emulator::open_base`] (and in avatar URLs). Default `127.0.0.1`.
    ///
    /// Use another name than your app's (e.g. `localhost` when the app is on `127.0.0.1`) so that a
    /// browser sees the authorize page on another site, as with the real WeChat.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().host_name("localhost").start().unwrap();
    /// assert!(emu.open_base().starts_with("http://localhost:"));
    /// ```
    pub fn host_name(mut self, host_name: impl Into<String>) -> Self {
        self.host_name = host_name.into();
        self
    }

    /// How many server worker threads. Default 1 (0 counts as 1).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().workers(2).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Whether `snsapi_userinfo` is approved at once, without the consent page. Default `false`.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().auto_approve(true).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn auto_approve(mut self, auto_approve: bool) -> Self {
        self.auto_approve = auto_approve;
        self
    }

    /// Lifetime of access tokens (`expires_in`, in whole seconds). Default 7200 s.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().access_token_ttl(Duration::from_secs(2)).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Lifetime of refresh tokens, counted from the code exchange (refreshing does not extend it).
    /// Default 30 days.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().refresh_token_ttl(Duration::from_secs(60)).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Lifetime of authorization codes (then errcode 42003). Default 300 s.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().code_ttl(Duration::from_millis(100)).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Whether a refresh returns a new refresh token (the old one then answers 40030). Default
    /// `false`: the same refresh token string comes back. Either way its expiry is not extended.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().rotate_refresh_token(true).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn rotate_refresh_token(mut self, rotate: bool) -> Self {
        self.rotate_refresh_token = rotate;
        self
    }

    /// The registered "web authorization domain": the `redirect_uri` host must equal it
    /// (case-insensitive, port ignored), else the authorize page shows error 10003. Default: any host.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().redirect_domain("127.0.0.1").start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn redirect_domain(mut self, domain: impl Into<String>) -> Self {
        self.redirect_domain = Some(domain.into());
        self
    }

    /// Whether the account is bound to an Open Platform account, so that `snsapi_userinfo` grants
    /// carry a `unionid`. Default `true`.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::builder().open_platform_bound(false).start().unwrap();
    /// # drop(emu);
    /// ```
    pub fn open_platform_bound(mut self, bound: bool) -> Self {
        self.open_platform_bound = bound;
        self
    }

    /// Binds the port and starts the server on its own thread.
    ///
    /// Works from synchronous code and from inside an async runtime.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the server thread cannot be started.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let a = Emulator::builder().start()?;
    /// let b = Emulator::builder().start()?;
    /// assert_ne!(a.port(), b.port());
    /// // Binding a port in use fails.
    /// assert!(Emulator::builder().bind(([127, 0, 0, 1], a.port()).into()).start().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start(self) -> std::io::Result<Emulator> {
        server::start(self)
    }
}

/// The five emulated endpoints (for faults and the call log).
///
/// In JSON: `"authorize"`, `"access_token"`, `"refresh_token"`, `"userinfo"`, `"auth"`.
///
/// # Example
///
/// ```
/// use actix_wechat_auth::emulator::Endpoint;
///
/// let e: Endpoint = serde_json::from_str(r#""refresh_token""#).unwrap();
/// assert_eq!(e, Endpoint::RefreshToken);
/// assert_eq!(serde_json::to_string(&Endpoint::UserInfo).unwrap(), r#""userinfo""#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /connect/oauth2/authorize` (the authorize page).
    Authorize,
    /// `GET /sns/oauth2/access_token` (code exchange).
    AccessToken,
    /// `GET /sns/oauth2/refresh_token`.
    RefreshToken,
    /// `GET /sns/userinfo`.
    #[serde(rename = "userinfo", alias = "user_info")]
    UserInfo,
    /// `GET /sns/auth` (token check).
    Auth,
    /// `GET /connect/qrconnect` (the Website app's QR sign-in page, full-page or embedded).
    QrConnect,
}

impl Endpoint {
    const ALL: [Endpoint; 6] = [
        Endpoint::Authorize,
        Endpoint::AccessToken,
        Endpoint::RefreshToken,
        Endpoint::UserInfo,
        Endpoint::Auth,
        Endpoint::QrConnect,
    ];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Authorize => "authorize",
            Endpoint::AccessToken => "access_token",
            Endpoint::RefreshToken => "refresh_token",
            Endpoint::UserInfo => "userinfo",
            Endpoint::Auth => "auth",
            Endpoint::QrConnect => "qrconnect",
        }
    }
}

/// A failure to inject with [`Emulator::inject_fault`].
///
/// In JSON: `"busy"`, `{"http_status":502}`, `"malformed"`, `{"err_code":45009}`,
/// `{"delay":1500}` (milliseconds), `"stall_body"`, `"loose_numbers"`, `{"body":"…"}`.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use actix_wechat_auth::emulator::Fault;
///
/// let f: Fault = serde_json::from_str(r#"{"delay":1500}"#).unwrap();
/// assert!(matches!(f, Fault::Delay(d) if d == Duration::from_millis(1500)));
/// let f: Fault = serde_json::from_str(r#""busy""#).unwrap();
/// assert!(matches!(f, Fault::Busy));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 200 `{"errcode":-1,"errmsg":"system error"}`.
    Busy,
    /// This HTTP status with a small HTML body (like a gateway's error page; empty for 204 and 304).
    /// A number outside 200–999 counts as 500.
    HttpStatus(u16),
    /// HTTP 200 with a body that is not JSON (a truncated HTML page).
    Malformed,
    /// HTTP 200 `{"errcode":N,"errmsg":"…"}`.
    #[serde(alias = "errcode")]
    ErrCode(i64),
    /// Wait this long, then answer normally.
    Delay(#[serde(with = "duration_ms")] Duration),
    /// Send the headers (with the full `Content-Length`) and the first half of the normal body, then
    /// stall for 120 s without closing, then drop the connection.
    StallBody,
    /// Answer normally, but with every number of the JSON body sent as a string
    /// (`"expires_in":"7200"`, `"errcode":"40029"`) and the body prefixed by a UTF-8 byte-order
    /// mark: quirks seen from gateways in front of WeChat.
    LooseNumbers,
    /// HTTP 200, `text/plain`, exactly this body instead of the answer (nothing is processed: a
    /// code stays unused). For hostile answers: an empty or oversized openid, odd flags.
    Body(String),
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod unix_ms {
    use std::time::{Duration, SystemTime};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::state::unix_millis(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| serde::de::Error::custom("time out of range"))
    }
}

/// A WeChat user known to the emulator.
///
/// Fields are what `/sns/userinfo` returns. In JSON (`POST /_emulator/users`) every field is
/// optional.
///
/// # Example
///
/// ```
/// use actix_wechat_auth::emulator::EmulatedUser;
///
/// let user = EmulatedUser {
///     country: "中国".into(),
///     province: "广东".into(),
///     city: "深圳".into(),
///     sex: 1,
///     ..EmulatedUser::new("阿强")
/// };
/// assert_eq!(user.nickname, "阿强");
/// let from_json: EmulatedUser = serde_json::from_str(r#"{"nickname":"小明","snapshot":true}"#).unwrap();
/// assert!(from_json.snapshot);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmulatedUser {
    /// The openid; `None` lets [`Emulator::add_user`] generate one.
    pub openid: Option<String>,
    /// Any Unicode, emoji included.
    pub nickname: String,
    /// 0 unknown (what WeChat answers since late 2021), 1 male, 2 female.
    pub sex: u8,
    /// Province (WeChat answers "" since late 2021).
    pub province: String,
    /// City (WeChat answers "" since late 2021).
    pub city: String,
    /// Country (WeChat answers "" since late 2021).
    pub country: String,
    /// Avatar URL, "" when none.
    pub headimgurl: String,
    /// Privileges, e.g. `["chinaunicom"]`.
    pub privilege: Vec<String>,
    /// The unionid; `None` = one is generated on the first `snsapi_userinfo` grant when the account
    /// is [bound to an Open Platform account](EmulatorBuilder::open_platform_bound).
    pub unionid: Option<String>,
    /// A user in WeChat's snapshot-page mode (快照页): grants are flagged `"is_snapshotuser":1` and
    /// carry a virtual openid (stable per user, different from the real one) and no unionid; no
    /// consent page is shown; `/sns/userinfo` answers the anonymous profile "微信用户".
    pub snapshot: bool,
}

impl EmulatedUser {
    /// A user with this nickname and everything else empty (openid generated when added).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatedUser;
    ///
    /// let user = EmulatedUser::new("测试 ✨");
    /// assert_eq!(user.nickname, "测试 ✨");
    /// assert!(user.openid.is_none() && !user.snapshot);
    /// ```
    pub fn new(nickname: impl Into<String>) -> Self {
        EmulatedUser {
            nickname: nickname.into(),
            ..EmulatedUser::default()
        }
    }

    /// Sets the openid.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatedUser;
    ///
    /// let user = EmulatedUser::new("A").with_openid("oAAAA");
    /// assert_eq!(user.openid.as_deref(), Some("oAAAA"));
    /// ```
    pub fn with_openid(mut self, openid: impl Into<String>) -> Self {
        self.openid = Some(openid.into());
        self
    }

    /// Sets the unionid.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatedUser;
    ///
    /// let user = EmulatedUser::new("A").with_unionid("oUNION");
    /// assert_eq!(user.unionid.as_deref(), Some("oUNION"));
    /// ```
    pub fn with_unionid(mut self, unionid: impl Into<String>) -> Self {
        self.unionid = Some(unionid.into());
        self
    }

    /// Sets the avatar URL.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatedUser;
    ///
    /// let user = EmulatedUser::new("A").with_headimgurl("https://example.com/a/132");
    /// assert_eq!(user.headimgurl, "https://example.com/a/132");
    /// ```
    pub fn with_headimgurl(mut self, url: impl Into<String>) -> Self {
        self.headimgurl = url.into();
        self
    }

    /// Makes this a snapshot-mode user (see [`EmulatedUser::snapshot`](#structfield.snapshot)).
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::EmulatedUser;
    ///
    /// assert!(EmulatedUser::new("A").snapshot().snapshot);
    /// ```
    pub fn snapshot(mut self) -> Self {
        self.snapshot = true;
        self
    }
}

/// One logged call of an [`Endpoint`].
///
/// In JSON (`GET /_emulator/calls`): `{"endpoint":"access_token","at":1700000000000,"openid":"o…",
/// "answered":"ok","fault":null}` with `at` in milliseconds since the Unix epoch and `answered` an
/// [`Answered`] (`"ok"`, `{"err_code":40029}`, `{"http_status":502}`, `"malformed"`, `"stalled"`,
/// `"body"`).
///
/// # Example
///
/// ```
/// use actix_wechat_auth::emulator::{Answered, Emulator, Endpoint, Fault};
///
/// let emu = Emulator::start().unwrap();
/// emu.inject_fault(Endpoint::Auth, Fault::HttpStatus(502), Some(1));
/// let url = format!("{}/sns/auth?access_token=x&openid=y", emu.api_base());
/// actix_web::rt::System::new().block_on(async {
///     let client = awc::Client::default();
///     client.get(&url).send().await.unwrap(); // the faulted call: HTTP 502
///     client.get(&url).send().await.unwrap(); // a normal call: errcode 40014 (unknown token)
/// });
/// let calls = emu.calls();
/// assert_eq!(calls[0].answered, Answered::HttpStatus(502));
/// assert_eq!(calls[0].fault, Some(Fault::HttpStatus(502)));
/// assert_eq!(calls[1].answered, Answered::ErrCode(40014));
/// assert_eq!(calls[1].openid.as_deref(), Some("y"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Which endpoint was called.
    pub endpoint: Endpoint,
    /// When the request arrived.
    #[serde(with = "unix_ms")]
    pub at: SystemTime,
    /// The openid concerned, when known: the user on the authorize page, the openid answered by a
    /// code exchange or refresh, the `openid` parameter of `userinfo` and `auth`.
    pub openid: Option<String>,
    /// What the endpoint answered. A [`Fault::Delay`] or [`Fault::LooseNumbers`] call logs its
    /// normal outcome.
    pub answered: Answered,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
}

/// What an emulated endpoint answered, in the [`Call`] log.
///
/// # Example
///
/// ```
/// use actix_wechat_auth::emulator::Answered;
///
/// assert_eq!(Answered::ErrCode(40029).errcode(), Some(40029));
/// assert_eq!(Answered::Ok.errcode(), Some(0));
/// assert_eq!(Answered::HttpStatus(502).errcode(), None);
/// assert_eq!(serde_json::to_string(&Answered::ErrCode(40029)).unwrap(), r#"{"err_code":40029}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answered {
    /// A normal answer: an sns API success, or the authorize page's consent page or redirect.
    Ok,
    /// An sns API `{"errcode":N}` (with [`Fault::Busy`], `-1`), or the authorize page's error page
    /// with that code.
    ErrCode(i64),
    /// A plain HTTP error page with this status ([`Fault::HttpStatus`]).
    HttpStatus(u16),
    /// A truncated, non-JSON body ([`Fault::Malformed`]).
    Malformed,
    /// Half a body, then a stall and a dropped connection ([`Fault::StallBody`]).
    Stalled,
    /// The body of a [`Fault::Body`].
    Body,
}

impl Answered {
    /// The errcode a client saw: `Some(0)` for [`Answered::Ok`], `Some(n)` for
    /// [`Answered::ErrCode`], `None` when the answer carried none.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Answered;
    ///
    /// assert_eq!(Answered::Malformed.errcode(), None);
    /// assert_eq!(Answered::ErrCode(-1).errcode(), Some(-1));
    /// ```
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Answered::Ok => Some(0),
            Answered::ErrCode(n) => Some(*n),
            _ => None,
        }
    }
}
