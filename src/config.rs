//! Configuration: a validated [`WeChatConfig`] made by [`WeChatConfigBuilder`].

use std::{fmt, sync::Arc, time::Duration};

use actix_web::{cookie::Key, dev::ServiceRequest};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::pki_types::CertificateDer;
use url::Url;

use crate::{
    negotiate::{visitor_lang, Browser, Flow, FlowPolicy, Reply, RequestFilter},
    pages::{Page, PageRenderer},
    tokens::{AppSecret, CsrfState, Scope},
};

/// Everything outside RFC 3986's unreserved characters is encoded, as WeChat requires for
/// `redirect_uri`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A language: of the profile fields returned by `/sns/userinfo`
/// ([`lang`](WeChatConfigBuilder::lang)), and of the crate's pages and JSON messages
/// ([`page_lang`](WeChatConfigBuilder::page_lang)).
///
/// ```
/// use actix_wechat_auth::Lang;
/// assert_eq!(Lang::En.as_str(), "en");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese (`zh_CN`), WeChat's default.
    #[default]
    ZhCn,
    /// Traditional Chinese (`zh_TW`).
    ZhTw,
    /// English (`en`).
    En,
}

impl Lang {
    /// The wire value of the `lang` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh_CN",
            Lang::ZhTw => "zh_TW",
            Lang::En => "en",
        }
    }
}

/// Why a configuration was refused by [`WeChatConfigBuilder::build`].
///
/// ```
/// use actix_wechat_auth::{ConfigError, WeChatConfig};
/// let err = WeChatConfig::builder("", "secret").public_url("https://h5.example.com").build();
/// assert!(matches!(err, Err(ConfigError::InvalidAppId)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The appid is empty or holds characters other than ASCII letters and digits.
    #[error("the appid must be non-empty ASCII letters and digits (e.g. wx1234567890abcdef)")]
    InvalidAppId,
    /// The appsecret is empty.
    #[error("the appsecret is empty")]
    EmptySecret,
    /// `public_url` was never set.
    #[error("public_url is required: the external origin of the app, e.g. https://h5.example.com")]
    MissingPublicUrl,
    /// A URL setting is not an absolute http(s) URL without query, fragment or credentials.
    #[error("{setting} must be an absolute http(s) URL without query, fragment or credentials: {reason}")]
    InvalidUrl {
        /// Which setting (`public_url`, `open_base`, `api_base`).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The callback path does not start with `/` or holds characters that are not allowed.
    #[error("callback_path must start with '/' and hold only visible ASCII, no query or fragment")]
    InvalidCallbackPath,
    /// The sign-in path does not start with `/`, holds characters that are not allowed, or is the
    /// callback path.
    #[error(
        "sign_in_path must start with '/', hold only visible ASCII, no query or fragment, and \
         differ from callback_path"
    )]
    InvalidSignInPath,
    /// A duration or count that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A URL setting is plain `http` on a host other than loopback: the appsecret, codes and tokens
    /// would cross the network in clear. Allowed with
    /// [`allow_insecure_http`](WeChatConfigBuilder::allow_insecure_http).
    #[error(
        "{0} is plain http on a non-loopback host: use https, or allow_insecure_http(true) for a \
         test network"
    )]
    InsecureHttp(&'static str),
    /// `snsapi_login` is a Website app's scope, not one an Official Account can ask for: set
    /// [`website_app`](WeChatConfigBuilder::website_app) instead.
    #[error("scope: snsapi_login is a Website app's scope; the Official Account asks for snsapi_base or snsapi_userinfo")]
    OfficialAccountScope,
    /// A certificate given to [`trust_root_certificate`](WeChatConfigBuilder::trust_root_certificate)
    /// is not a DER-encoded X.509 CA certificate.
    #[error("trust_root_certificate: not a DER-encoded X.509 certificate")]
    InvalidCertificate,
}

/// The validated configuration shared by every [`WeChatAuth`](crate::WeChatAuth) instance made
/// from it. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use actix_wechat_auth::{Scope, WeChatConfig};
///
/// let config = WeChatConfig::builder("wx1234567890abcdef", "app-secret")
///     .public_url("https://h5.example.com")
///     .scope(Scope::UserInfo)
///     .check_interval(Duration::from_secs(600))
///     .api_path_prefix("/api/")
///     .exclude_path("/healthz")
///     .build()?;
/// assert_eq!(config.redirect_uri(), "https://h5.example.com/wechat/callback");
/// # Ok::<(), actix_wechat_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct WeChatConfig {
    pub(crate) settings: Arc<Settings>,
}

/// Everything a configuration says, grouped by who uses it: each module takes its group.
pub(crate) struct Settings {
    /// The WeChat apps signing users in, and their credentials.
    pub(crate) apps: Apps,
    /// The sns API client (`client.rs`, `fleet.rs`).
    pub(crate) client: ClientSettings,
    /// Token upkeep (`upkeep.rs`).
    pub(crate) upkeep: UpkeepSettings,
    /// Starting a sign-in and its callback (`authorize.rs`, `callback.rs`, `pending.rs`).
    pub(crate) sign_in: SignInSettings,
    /// The site's URLs and cookies, derived from `public_url` by `build`.
    pub(crate) site: Site,
    /// Which requests are left alone or answered as API calls (`negotiate.rs`).
    pub(crate) filter: RequestFilter,
    /// How the crate's pages are shown (`pages.rs`).
    pub(crate) pages: PageSettings,
}

/// The app's sign-in hook: see [`WeChatConfigBuilder::on_sign_in`].
type SignInHook = Arc<
    dyn Fn(
            crate::WeChatUser,
        )
            -> futures_util::future::LocalBoxFuture<'static, Result<Option<String>, SignInRefused>>
        + Send
        + Sync,
>;

/// A sign-in the app's [hook](WeChatConfigBuilder::on_sign_in) refuses: the visitor sees the
/// crate's 403 page (`PageKind::SignInRefused`) and is not signed in.
///
/// ```
/// use actix_wechat_auth::SignInRefused;
/// let refused = SignInRefused::because("banned account");
/// assert_eq!(refused.reason(), "banned account");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRefused(String);

impl SignInRefused {
    /// A refusal; `reason` is logged (at info level), never shown.
    pub fn because(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

/// The crate's pages: their language (default: negotiated per request) and the app's renderer
/// (default: the crate's own pages).
#[derive(Default)]
pub(crate) struct PageSettings {
    pub(crate) lang: Option<Lang>,
    pub(crate) renderer: Option<PageRenderer>,
    /// Derived by `build`: the configuration says this is a developer's machine (WeChat's side
    /// on loopback, i.e. an emulator, or a loopback `public_url`), so a misconfiguration page
    /// says what to fix.
    pub(crate) developer: bool,
}

impl Settings {
    /// How the browser of `req` signs in: the app's policy or the crate's choice, never a Website
    /// app flow without a Website app.
    pub(crate) fn flow(&self, req: &ServiceRequest) -> Flow {
        let browser = Browser::of(req.headers());
        let website = self.apps.get(AppKind::Website).is_some();
        let flow = match &self.sign_in.flow_policy {
            Some(policy) => policy(browser, req),
            None if self.sign_in.qr_full_page && browser == Browser::Desktop && website => {
                Flow::QrRedirect
            }
            None => Flow::default_for(browser, website),
        };
        if flow.website() && !website {
            Flow::OpenInWeChat
        } else {
            flow
        }
    }

    /// How to answer `req` when the middleware answers it itself.
    pub(crate) fn reply(&self, req: &ServiceRequest) -> Reply {
        Reply {
            format: self.filter.format(req),
            lang: self
                .pages
                .lang
                .unwrap_or_else(|| visitor_lang(req.headers())),
            pages: self.pages.renderer.clone(),
            developer: self.pages.developer,
        }
    }
}

/// Which kind of WeChat app a sign-in came from.
///
/// ```
/// use actix_wechat_auth::AppKind;
/// assert_eq!(AppKind::Website.as_str(), "website");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum AppKind {
    /// An Official Account (公众号): web sign-in inside WeChat (`snsapi_base`, `snsapi_userinfo`).
    #[default]
    #[serde(rename = "oa")]
    OfficialAccount,
    /// A Website app (网站应用) of the Open Platform: QR sign-in outside WeChat (`snsapi_login`).
    #[serde(rename = "web")]
    Website,
}

impl AppKind {
    /// A stable name: `official_account` or `website` (the keys of the 401 JSON's `flows`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::OfficialAccount => "official_account",
            AppKind::Website => "website",
        }
    }
}

/// A WeChat app: its kind, the appid and its appsecret.
pub(crate) struct App {
    pub(crate) kind: AppKind,
    pub(crate) appid: String,
    pub(crate) secret: AppSecret,
}

impl App {
    fn validate(&self) -> Result<(), ConfigError> {
        let appid = &self.appid;
        if appid.is_empty() || !appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::InvalidAppId);
        }
        if self.secret.secret().is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(())
    }
}

#[cfg(test)]
impl App {
    /// An Official Account for unit tests.
    pub(crate) fn official_for_tests(appid: &str) -> Self {
        Self {
            kind: AppKind::OfficialAccount,
            appid: appid.to_owned(),
            secret: AppSecret::new("s"),
        }
    }
}

/// The configured apps: the Official Account, and the others by kind. A further kind of app is
/// one more entry, not another code path.
pub(crate) struct Apps(Vec<App>);

impl Apps {
    #[cfg(test)]
    pub(crate) fn of(apps: Vec<App>) -> Self {
        Self(apps)
    }

    /// The Official Account, always configured.
    pub(crate) fn official(&self) -> &App {
        &self.0[0]
    }

    /// The app of `kind`, if configured.
    pub(crate) fn get(&self, kind: AppKind) -> Option<&App> {
        self.0.iter().find(|a| a.kind == kind)
    }

    /// The configured app a sign-in of `appid` belongs to.
    pub(crate) fn by_appid(&self, appid: &str) -> Option<&App> {
        self.0.iter().find(|a| a.appid == appid)
    }
}

/// How the sns API is called. Defaults: WeChat's host, 5 s per call, 3 attempts, 100 ms first
/// backoff, 64 KiB answers, `zh_CN` profiles, the Web PKI roots.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    pub(crate) api_base: String,
    pub(crate) request_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) lang: Lang,
    /// Further trust anchors for `api_base` over https.
    pub(crate) trusted_roots: Vec<CertificateDer<'static>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            api_base: "https://api.weixin.qq.com".to_owned(),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(100),
            max_response_bytes: 64 * 1024,
            lang: Lang::ZhCn,
            trusted_roots: Vec::new(),
        }
    }
}

impl ClientSettings {
    /// Connecting (TCP and TLS) gets no longer than a whole call, and at most 5 s.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.request_timeout.min(Duration::from_secs(5))
    }
}

/// How a signed-in session's tokens are kept fresh. Defaults: a check every 300 s, a refresh
/// 300 s before expiry, sign-ins end after 30 days, 60 upstream calls per openid a minute.
pub(crate) struct UpkeepSettings {
    pub(crate) check_interval: Duration,
    pub(crate) refresh_margin: Duration,
    pub(crate) max_sign_in_age: Duration,
    pub(crate) upstream_calls_per_minute: u32,
}

impl Default for UpkeepSettings {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(300),
            refresh_margin: Duration::from_secs(300),
            max_sign_in_age: Duration::from_secs(30 * 24 * 3600),
            upstream_calls_per_minute: 60,
        }
    }
}

/// How a sign-in starts and ends. Defaults: `snsapi_base`, `/wechat/callback`, a `state` valid
/// 10 minutes, `connect_redirect=1`.
pub(crate) struct SignInSettings {
    pub(crate) scope: Scope,
    pub(crate) callback_path: String,
    /// Starts a sign-in on request (`?return_to=`): "Sign in" buttons, and the pages' links.
    pub(crate) sign_in_path: String,
    pub(crate) state_ttl: Duration,
    pub(crate) connect_redirect: bool,
    /// Pages whose `#hash` route survives the sign-in (an SPA's entry pages).
    pub(crate) hash_route_paths: Vec<String>,
    /// Called after a successful callback: refuses the sign-in or attaches the app's value.
    pub(crate) hook: Option<SignInHook>,
    /// The app's choice of flow per browser.
    pub(crate) flow_policy: Option<FlowPolicy>,
    /// Desktop browsers go to the full-page QR sign-in instead of our QR page.
    pub(crate) qr_full_page: bool,
    /// Whether WeChat for Windows/Mac gets `connect_redirect=1` too.
    pub(crate) connect_redirect_on_desktop: bool,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            scope: Scope::Base,
            callback_path: "/wechat/callback".to_owned(),
            sign_in_path: "/wechat/sign-in".to_owned(),
            state_ttl: Duration::from_secs(600),
            connect_redirect: true,
            hash_route_paths: Vec::new(),
            hook: None,
            flow_policy: None,
            qr_full_page: false,
            connect_redirect_on_desktop: false,
        }
    }
}

/// The site as the browser sees it, worked out once by `build`.
pub(crate) struct Site {
    /// `scheme://host[:port]` of `public_url`.
    pub(crate) public_origin: String,
    /// The public URL's path without a trailing slash ("" at the root): where the app is mounted
    /// behind a proxy; prefixed to the paths we redirect to.
    pub(crate) mount_path: String,
    /// `public_url` + the callback path: WeChat's `redirect_uri`.
    pub(crate) redirect_uri: String,
    /// `{open_base}/connect/oauth2/authorize?appid=..&redirect_uri=`: what comes before the
    /// redirect_uri, for the variants that add to it.
    pub(crate) authorize_base: String,
    /// `{authorize_base}{redirect_uri, encoded}&response_type=code&scope=`, built once: the
    /// authorize URL is on the path of every anonymous request.
    authorize_prefix: String,
    /// The path the used-sign-in markers are scoped to: the callback's, as the browser sees it.
    pub(crate) callback_cookie_path: String,
    /// Encrypts the pending sign-in cookies.
    pub(crate) cookie_key: Key,
    /// Whether our cookies are `Secure` (`public_url` is https).
    pub(crate) secure_cookies: bool,
    /// `open_base` without a trailing slash.
    pub(crate) open_base: String,
    /// With a Website app: `{open_base}/connect/qrconnect?appid=..&redirect_uri=..
    /// &response_type=code&scope=snsapi_login&state=`.
    pub(crate) qrconnect_prefix: Option<String>,
}

impl WeChatConfig {
    /// Starts a configuration for the Official Account `appid` with its appsecret.
    pub fn builder(appid: impl Into<String>, secret: impl Into<AppSecret>) -> WeChatConfigBuilder {
        WeChatConfigBuilder {
            apps: vec![App {
                kind: AppKind::OfficialAccount,
                appid: appid.into(),
                secret: secret.into(),
            }],
            public_url: None,
            open_base: "https://open.weixin.qq.com".to_owned(),
            allow_insecure_http: false,
            cookie_key: None,
            client: ClientSettings::default(),
            upkeep: UpkeepSettings::default(),
            sign_in: SignInSettings::default(),
            filter: RequestFilter::default(),
            pages: PageSettings::default(),
        }
    }

    /// The Official Account's appid.
    pub fn appid(&self) -> &str {
        &self.settings.apps.official().appid
    }

    /// The scope required by a [`WeChatAuth`](crate::WeChatAuth) made with
    /// [`WeChatAuth::new`](crate::WeChatAuth::new).
    pub fn scope(&self) -> Scope {
        self.settings.sign_in.scope
    }

    /// The path the middleware answers as the OAuth callback.
    pub fn callback_path(&self) -> &str {
        &self.settings.sign_in.callback_path
    }

    /// The `redirect_uri` sent to WeChat: the public URL plus the callback path. Never built from
    /// the request's `Host` header.
    pub fn redirect_uri(&self) -> &str {
        &self.settings.site.redirect_uri
    }

    /// The authorize URL for `scope` and `state`, parameters in the order WeChat requires.
    ///
    /// ```
    /// use actix_wechat_auth::{CsrfState, Scope, WeChatConfig};
    /// let config = WeChatConfig::builder("wx1234", "s").public_url("https://h5.example.com").build()?;
    /// let state = CsrfState::random();
    /// let url = config.authorize_url(Scope::Base, &state);
    /// assert_eq!(
    ///     url,
    ///     format!(
    ///         "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234\
    ///          &redirect_uri=https%3A%2F%2Fh5.example.com%2Fwechat%2Fcallback\
    ///          &response_type=code&scope=snsapi_base&state={}&connect_redirect=1#wechat_redirect",
    ///         state.as_str()
    ///     )
    /// );
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn authorize_url(&self, scope: Scope, state: &CsrfState) -> String {
        self.authorize_url_in(scope, state, Browser::WeChat)
    }

    /// The authorize URL as `browser` gets it: WeChat for Windows/Mac without `connect_redirect=1`
    /// unless configured.
    pub(crate) fn authorize_url_in(
        &self,
        scope: Scope,
        state: &CsrfState,
        browser: Browser,
    ) -> String {
        let prefix = &self.settings.site.authorize_prefix;
        let mut url = String::with_capacity(prefix.len() + 96);
        url.push_str(prefix);
        url.push_str(scope.as_str());
        url.push_str(&self.authorize_tail(state, browser));
        url
    }

    /// The authorize URL with `redirect_query` added to the `redirect_uri` (a restart's marker).
    pub(crate) fn authorize_url_with(
        &self,
        scope: Scope,
        state: &CsrfState,
        redirect_query: &str,
        browser: Browser,
    ) -> String {
        let site = &self.settings.site;
        let redirect_uri = format!("{}?{redirect_query}", site.redirect_uri);
        format!(
            "{}{}&response_type=code&scope={scope}{}",
            site.authorize_base,
            utf8_percent_encode(&redirect_uri, URI_COMPONENT),
            self.authorize_tail(state, browser)
        )
    }

    /// What follows the scope: `&state=…`, `&connect_redirect=1` when on for `browser`,
    /// `#wechat_redirect`.
    pub(crate) fn authorize_tail(&self, state: &CsrfState, browser: Browser) -> String {
        let sign_in = &self.settings.sign_in;
        let on = sign_in.connect_redirect
            && (browser != Browser::WeChatDesktop || sign_in.connect_redirect_on_desktop);
        let connect_redirect = if on { "&connect_redirect=1" } else { "" };
        format!(
            "&state={}{connect_redirect}#wechat_redirect",
            state.as_str()
        )
    }

    /// The Website app's full-page QR sign-in URL for `state`, parameters in WeChat's order
    /// (`None` without a Website app).
    ///
    /// ```
    /// use actix_wechat_auth::{CsrfState, WeChatConfig};
    /// let config = WeChatConfig::builder("wx1234", "s")
    ///     .website_app("wxweb5678", "web-secret")
    ///     .public_url("https://h5.example.com")
    ///     .build()?;
    /// let state = CsrfState::random();
    /// assert_eq!(
    ///     config.qrconnect_url(&state).unwrap(),
    ///     format!(
    ///         "https://open.weixin.qq.com/connect/qrconnect?appid=wxweb5678\
    ///          &redirect_uri=https%3A%2F%2Fh5.example.com%2Fwechat%2Fcallback\
    ///          &response_type=code&scope=snsapi_login&state={}#wechat_redirect",
    ///         state.as_str()
    ///     )
    /// );
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn qrconnect_url(&self, state: &CsrfState) -> Option<String> {
        let prefix = self.settings.site.qrconnect_prefix.as_deref()?;
        Some(format!("{prefix}{}#wechat_redirect", state.as_str()))
    }

    /// The `src` of WeChat's embedded QR frame (what wxLogin.js builds) for `state`: the top
    /// window moves to the callback.
    pub(crate) fn qr_frame_url(&self, state: &CsrfState) -> Option<String> {
        let web = self.settings.apps.get(AppKind::Website)?;
        let site = &self.settings.site;
        Some(format!(
            "{}/connect/qrconnect?appid={}&scope=snsapi_login&redirect_uri={}&state={}\
             &login_type=jssdk&self_redirect=default&styletype=&sizetype=&bgcolor=&rst=",
            site.open_base,
            web.appid,
            utf8_percent_encode(&site.redirect_uri, URI_COMPONENT),
            state.as_str()
        ))
    }

    /// The Website app's appid, when one is configured.
    pub fn website_appid(&self) -> Option<&str> {
        self.settings
            .apps
            .get(AppKind::Website)
            .map(|a| a.appid.as_str())
    }

    /// Identifies this configuration (every instance and clone made from it shares it).
    pub(crate) fn config_id(&self) -> usize {
        Arc::as_ptr(&self.settings) as usize
    }
}

impl fmt::Debug for WeChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("WeChatConfig")
            .field("appid", &s.apps.official().appid)
            .field("secret", &s.apps.official().secret)
            .field(
                "website_app",
                &s.apps.get(AppKind::Website).map(|a| &a.appid),
            )
            .field("scope", &s.sign_in.scope)
            .field("redirect_uri", &s.site.redirect_uri)
            .field("api_base", &s.client.api_base)
            .field("check_interval", &s.upkeep.check_interval)
            .field("request_timeout", &s.client.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WeChatConfig`]; [`build`](Self::build) validates it. Each setter states its default.
///
/// ```
/// use actix_wechat_auth::WeChatConfig;
/// let config = WeChatConfig::builder("wx1234", "secret")
///     .public_url("https://h5.example.com/shop")   // mounted under /shop behind a proxy
///     .callback_path("/auth/wechat")
///     .build()
///     .unwrap();
/// assert_eq!(config.redirect_uri(), "https://h5.example.com/shop/auth/wechat");
/// ```
#[must_use]
pub struct WeChatConfigBuilder {
    apps: Vec<App>,
    public_url: Option<String>,
    open_base: String,
    allow_insecure_http: bool,
    cookie_key: Option<Key>,
    client: ClientSettings,
    upkeep: UpkeepSettings,
    sign_in: SignInSettings,
    filter: RequestFilter,
    pages: PageSettings,
}

impl WeChatConfigBuilder {
    /// The scope [`WeChatAuth::new`](crate::WeChatAuth::new) requires (default `snsapi_base`).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.sign_in.scope = scope;
        self
    }

    /// Adds a Website app (网站应用, registered on the Open Platform, open.weixin.qq.com) with its
    /// own appid and appsecret (default: none). Browsers outside WeChat then sign in by scanning a
    /// QR code with WeChat (`snsapi_login`) instead of being told to open the page in WeChat. Its
    /// authorized callback domain must be `public_url`'s host. When both apps are bound to one
    /// Open Platform account, a person has one unionid across them.
    pub fn website_app(mut self, appid: impl Into<String>, secret: impl Into<AppSecret>) -> Self {
        self.apps.retain(|a| a.kind != AppKind::Website);
        self.apps.push(App {
            kind: AppKind::Website,
            appid: appid.into(),
            secret: secret.into(),
        });
        self
    }

    /// The external origin of the app as the browser sees it, e.g. `https://h5.example.com`
    /// (required). A path is allowed when the app is mounted under it behind a proxy. The
    /// `redirect_uri` is this plus the callback path, never the request's `Host`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// The callback route, handled by the middleware itself (default `/wechat/callback`).
    pub fn callback_path(mut self, path: impl Into<String>) -> Self {
        self.sign_in.callback_path = path.into();
        self
    }

    /// The route that starts a sign-in on request, answered by the middleware itself (default
    /// `/wechat/sign-in`): link a "Sign in" button on an optional page to
    /// `/wechat/sign-in?return_to=/the/page` (a same-origin path; anything else returns to `/`).
    /// The crate's "sign-in required" page links to it too.
    pub fn sign_in_path(mut self, path: impl Into<String>) -> Self {
        self.sign_in.sign_in_path = path.into();
        self
    }

    /// Base URL of the authorize page host (default `https://open.weixin.qq.com`).
    pub fn open_base(mut self, url: impl Into<String>) -> Self {
        self.open_base = url.into();
        self
    }

    /// Base URL of the sns API host (default `https://api.weixin.qq.com`).
    pub fn api_base(mut self, url: impl Into<String>) -> Self {
        self.client.api_base = url.into();
        self
    }

    /// How often a signed-in session's token is checked with `/sns/auth` (default 300 s);
    /// zero checks on every request.
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.upkeep.check_interval = interval;
        self
    }

    /// How long before `expires_in` runs out the token is refreshed (default 300 s).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.upkeep.refresh_margin = margin;
        self
    }

    /// How long a `state` stays valid between the redirect and the callback (default 10 min).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.sign_in.state_ttl = ttl;
        self
    }

    /// Deadline of one upstream call, covering connect, headers and body (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.client.request_timeout = timeout;
        self
    }

    /// Attempts per upstream call on failures that are safe to retry (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.client.max_attempts = attempts;
        self
    }

    /// First backoff between attempts, doubled each time (default 100 ms).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.client.retry_backoff = backoff;
        self
    }

    /// Largest upstream response body accepted (default 64 KiB).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.client.max_response_bytes = limit;
        self
    }

    /// Language of the profile fields (default `zh_CN`).
    pub fn lang(mut self, lang: Lang) -> Self {
        self.client.lang = lang;
        self
    }

    /// Fixes the language of the crate's pages and of the `message` of its JSON answers (default:
    /// negotiated per request: `Accept-Language` first, then the `Language/…` token of WeChat's
    /// User-Agent, else Simplified Chinese).
    pub fn page_lang(mut self, lang: Lang) -> Self {
        self.pages.lang = Some(lang);
        self
    }

    /// Renders every page the crate shows people itself (default: the crate's own pages, WeUI
    /// style, in the visitor's language). `render` gets the [`Page`]: what happened, its status,
    /// the language, the button's link and the errcode where it helps; it returns the response,
    /// and may call [`Page::default_response`] for the kinds it leaves as they are. Whatever it
    /// returns is sent with `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
    ///
    /// ```
    /// use actix_web::HttpResponse;
    /// use actix_wechat_auth::{PageKind, WeChatConfig};
    ///
    /// let config = WeChatConfig::builder("wx1234", "secret")
    ///     .public_url("https://h5.example.com")
    ///     .pages(|page| match page.kind {
    ///         PageKind::Snapshot => HttpResponse::build(page.status).body("请点击“使用完整服务”"),
    ///         _ => page.default_response(),
    ///     })
    ///     .build()?;
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    ///
    /// With a template engine (here minijinja), every kind in the app's own look (compiled and
    /// run as the repository's `xtests/tests/template_pages.rs`, which keeps minijinja off this
    /// crate's dev-dependencies):
    ///
    /// ```ignore
    /// use actix_web::HttpResponse;
    /// use actix_wechat_auth::{Lang, Page, PageKind, WeChatConfig};
    ///
    /// let mut templates = minijinja::Environment::new();
    /// templates.add_template(
    ///     "page",
    ///     r#"<!doctype html><html lang="{{ lang }}"><title>{{ title }}</title>
    /// <body class="shop"><h1>{{ title }}</h1><p>{{ message }}</p>
    /// {% if link and action %}<a class="shop-btn" href="{{ link }}">{{ action }}</a>{% endif %}"#,
    /// )?;
    /// let render = move |page: &Page| {
    ///     let text = page.text();
    ///     let lang = match page.lang { Lang::En => "en", Lang::ZhTw => "zh-TW", _ => "zh-CN" };
    ///     let html = templates.get_template("page").and_then(|t| {
    ///         t.render(minijinja::context! {
    ///             lang, title => text.title, message => text.message,
    ///             action => text.action, link => page.link,
    ///         })
    ///     });
    ///     match html {
    ///         Ok(html) => HttpResponse::build(page.status).content_type("text/html; charset=utf-8").body(html),
    ///         Err(_) => page.default_response(),
    ///     }
    /// };
    /// let page = Page::new(PageKind::StateInvalid, Lang::ZhCn).with_link("/");
    /// let res = render(&page);
    /// assert_eq!(res.status(), 400);
    /// let config = WeChatConfig::builder("wx1234", "secret")
    ///     .public_url("https://h5.example.com")
    ///     .pages(render)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pages(
        mut self,
        render: impl Fn(&Page) -> actix_web::HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.pages.renderer = Some(PageRenderer(Arc::new(render)));
        self
    }

    /// Accepts plain `http` for `public_url`, `open_base` and `api_base` on hosts other than
    /// loopback (default false: refused by [`build`](Self::build)). Only for a test network, e.g.
    /// a WeChat test account reaching a laptop's LAN address: codes and tokens then travel in clear.
    /// Loopback addresses (`127.0.0.0/8`, `[::1]`, `localhost`) never need it.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Trusts a further CA certificate (DER) for `api_base`, besides the Web PKI roots (default:
    /// none): for an egress proxy that terminates TLS, or an emulator served over https.
    pub fn trust_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.client
            .trusted_roots
            .push(CertificateDer::from(der.into()));
        self
    }

    /// The key that encrypts the pending sign-in cookies, which carry a sign-in's `state` and
    /// return-to between the redirect to WeChat and the callback (default: derived from the
    /// appsecret with HKDF-SHA256 and a label of this crate's, so every instance of the app agrees
    /// without configuration). Set it to rotate it apart from the appsecret.
    pub fn cookie_key(mut self, key: Key) -> Self {
        self.cookie_key = Some(key);
        self
    }

    /// How long a sign-in lasts at most, counted from the callback, however often its tokens are
    /// refreshed (default 30 days, the refresh token's life): a copied cookie ends then too.
    pub fn max_sign_in_age(mut self, age: Duration) -> Self {
        self.upkeep.max_sign_in_age = age;
        self
    }

    /// The most upstream calls (checks and refreshes) this process makes for one openid in a
    /// minute (default 60). Past it a due check is put off (the request is served) and a
    /// required refresh is answered 503 with `Retry-After`; one warning a minute says so. With
    /// [`check_interval`](Self::check_interval) zero, checks are never put off.
    pub fn upstream_calls_per_minute(mut self, calls: u32) -> Self {
        self.upkeep.upstream_calls_per_minute = calls;
        self
    }

    /// Calls `hook` after every successful callback, with the new [`WeChatUser`](crate::WeChatUser)
    /// (default: none). It may refuse the sign-in (`Err`: a 403 page, nothing stored), or attach a
    /// small value of the app's, such as its own user id found by unionid (`Ok(Some(value))`, at
    /// most 256 bytes, kept in the session), which [`WeChatUser::attached`](crate::WeChatUser::attached)
    /// hands out on every later request.
    ///
    /// ```
    /// use actix_wechat_auth::{SignInRefused, WeChatConfig};
    /// let config = WeChatConfig::builder("wx1234", "secret")
    ///     .public_url("https://h5.example.com")
    ///     .on_sign_in(|user| async move {
    ///         match user.unionid() {
    ///             Some("banned-unionid") => Err(SignInRefused::because("banned")),
    ///             Some(unionid) => Ok(Some(format!("member:{unionid}"))),
    ///             None => Ok(None),
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn on_sign_in<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::WeChatUser) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Option<String>, SignInRefused>> + 'static,
    {
        self.sign_in.hook = Some(Arc::new(move |user| Box::pin(hook(user))));
        self
    }

    /// Chooses the sign-in flow per browser (default: [`Flow::default_for`]: WeChat's browsers
    /// the Official Account, desktop browsers the QR page with a Website app, every other browser
    /// the open-in-WeChat page). A Website app flow chosen without a Website app becomes the
    /// open-in-WeChat page.
    ///
    /// ```
    /// use actix_wechat_auth::{Browser, Flow, WeChatConfig};
    /// let config = WeChatConfig::builder("wx1234", "secret")
    ///     .website_app("wxweb5678", "web-secret")
    ///     .public_url("https://h5.example.com")
    ///     // Phones outside WeChat scan too, on a second screen, instead of being told to open WeChat.
    ///     .flow_policy(|browser, _req| match browser {
    ///         Browser::Phone => Flow::QrRedirect,
    ///         other => Flow::default_for(other, true),
    ///     })
    ///     .build()?;
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn flow_policy(
        mut self,
        policy: impl Fn(Browser, &ServiceRequest) -> Flow + Send + Sync + 'static,
    ) -> Self {
        self.sign_in.flow_policy = Some(Arc::new(policy));
        self
    }

    /// Sends desktop browsers to WeChat's full-page QR sign-in instead of the crate's page that
    /// embeds it (default false). A [`flow_policy`](Self::flow_policy) decides instead, when set.
    pub fn website_qr_full_page(mut self, full_page: bool) -> Self {
        self.sign_in.qr_full_page = full_page;
        self
    }

    /// Whether WeChat for Windows/Mac also gets `connect_redirect=1` (default false: a report,
    /// WxJava#2376, says it breaks the flow there, and the double callback it prevents is an
    /// Android problem).
    pub fn connect_redirect_on_desktop_wechat(mut self, enabled: bool) -> Self {
        self.sign_in.connect_redirect_on_desktop = enabled;
        self
    }

    /// Whether to add the undocumented `connect_redirect=1` that stops some Android clients from
    /// calling the callback twice (default true; see also
    /// [`connect_redirect_on_desktop_wechat`](Self::connect_redirect_on_desktop_wechat)).
    pub fn connect_redirect(mut self, enabled: bool) -> Self {
        self.sign_in.connect_redirect = enabled;
        self
    }

    /// Keeps the `#hash` route of this page (exact path, e.g. an SPA's `/`) through the sign-in
    /// (default: none). A browser never sends the fragment, so an anonymous visit to this page
    /// gets a tiny page (a nonce-CSP script, no external request) that reads `location.hash` and
    /// goes on to WeChat with it; the callback then lands on `/#/orders/12`, not `/`. Without
    /// script, a link goes on without the hash.
    pub fn keep_hash_route_on(mut self, path: impl Into<String>) -> Self {
        self.sign_in.hash_route_paths.push(path.into());
        self
    }

    /// Paths starting with `prefix` are API routes (default: none; API calls are also told by
    /// `Accept` preferring JSON, `X-Requested-With: XMLHttpRequest` and `Sec-Fetch-Mode`).
    pub fn api_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.filter.add_api_prefix(prefix.into());
        self
    }

    /// Replaces the default API-request detection with a predicate of your own (default: the
    /// headers and prefixes of [`api_path_prefix`](Self::api_path_prefix)).
    pub fn api_request_if(
        mut self,
        predicate: impl Fn(&ServiceRequest) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter.set_api_predicate(Arc::new(predicate));
        self
    }

    /// A path the middleware leaves untouched (exact match), e.g. `/healthz` (default: none).
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        self.filter.exclude_path(path.into());
        self
    }

    /// Paths starting with `prefix` are left untouched, e.g. `/static/` (default: none).
    pub fn exclude_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.filter.exclude_prefix(prefix.into());
        self
    }

    /// Requests for which `predicate` is true are left untouched (default: none).
    pub fn exclude_if(
        mut self,
        predicate: impl Fn(&ServiceRequest) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter.exclude_if(Arc::new(predicate));
        self
    }

    /// Validates the settings and works out what follows from them.
    pub fn build(mut self) -> Result<WeChatConfig, ConfigError> {
        for app in &self.apps {
            app.validate()?;
        }
        if self
            .apps
            .iter()
            .skip(1)
            .any(|a| a.appid == self.apps[0].appid)
        {
            // Sign-ins are told apart by appid: one appid for two apps would lose them.
            return Err(ConfigError::InvalidAppId);
        }
        if self.sign_in.scope == Scope::Login {
            return Err(ConfigError::OfficialAccountScope);
        }
        if !is_route_path(&self.sign_in.callback_path) {
            return Err(ConfigError::InvalidCallbackPath);
        }
        if !is_route_path(&self.sign_in.sign_in_path)
            || self.sign_in.sign_in_path == self.sign_in.callback_path
        {
            return Err(ConfigError::InvalidSignInPath);
        }
        for (setting, zero) in [
            ("request_timeout", self.client.request_timeout.is_zero()),
            ("state_ttl", self.sign_in.state_ttl.is_zero()),
            ("max_attempts", self.client.max_attempts == 0),
            ("max_response_bytes", self.client.max_response_bytes == 0),
            ("max_sign_in_age", self.upkeep.max_sign_in_age.is_zero()),
            (
                "upstream_calls_per_minute",
                self.upkeep.upstream_calls_per_minute == 0,
            ),
        ] {
            if zero {
                return Err(ConfigError::Zero(setting));
            }
        }
        let public = parse_base_url("public_url", self.public_url.as_deref())?;
        let open_base = parse_base_url("open_base", Some(&self.open_base))?;
        let api_base = parse_base_url("api_base", Some(&self.client.api_base))?;
        if public.path().starts_with("//") {
            return Err(ConfigError::InvalidUrl {
                setting: "public_url",
                reason: "the path must not start with //".to_owned(),
            });
        }
        for (setting, url) in [
            ("public_url", &public),
            ("open_base", &open_base),
            ("api_base", &api_base),
        ] {
            if url.scheme() == "http" && !is_loopback(url) {
                if !self.allow_insecure_http {
                    return Err(ConfigError::InsecureHttp(setting));
                }
                log::warn!(
                    "{setting} {} is plain http (allow_insecure_http): codes and tokens travel \
                     unencrypted",
                    url.origin().ascii_serialization()
                );
            }
        }
        for cert in &self.client.trusted_roots {
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|_| ConfigError::InvalidCertificate)?;
        }
        self.client.api_base = api_base.as_str().trim_end_matches('/').to_owned();
        // Never decided from a request's address: behind any local proxy it is loopback.
        self.pages.developer = [&public, &open_base, &api_base]
            .into_iter()
            .any(is_loopback);
        if self.pages.developer {
            crate::negotiate::developer_machine_seen();
        }
        let site = Site::of(
            &public,
            &open_base,
            &self.apps,
            &self.sign_in,
            self.cookie_key.take(),
        );
        Ok(WeChatConfig {
            settings: Arc::new(Settings {
                apps: Apps(self.apps),
                client: self.client,
                upkeep: self.upkeep,
                sign_in: self.sign_in,
                site,
                filter: self.filter,
                pages: self.pages,
            }),
        })
    }
}

impl Site {
    fn of(
        public: &Url,
        open_base: &Url,
        apps: &[App],
        sign_in: &SignInSettings,
        cookie_key: Option<Key>,
    ) -> Self {
        let app = &apps[0];
        let public_origin = public.origin().ascii_serialization();
        let mount_path = public.path().trim_end_matches('/').to_owned();
        let redirect_uri = format!("{public_origin}{mount_path}{}", sign_in.callback_path);
        let authorize_base = format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri=",
            open_base.as_str().trim_end_matches('/'),
            app.appid,
        );
        let authorize_prefix = format!(
            "{authorize_base}{}&response_type=code&scope=",
            utf8_percent_encode(&redirect_uri, URI_COMPONENT),
        );
        let open = open_base.as_str().trim_end_matches('/').to_owned();
        let qrconnect_prefix = apps.iter().find(|a| a.kind == AppKind::Website).map(|web| {
            format!(
                "{open}/connect/qrconnect?appid={}&redirect_uri={}&response_type=code\
                 &scope=snsapi_login&state=",
                web.appid,
                utf8_percent_encode(&redirect_uri, URI_COMPONENT),
            )
        });
        Self {
            open_base: open,
            qrconnect_prefix,
            secure_cookies: public.scheme() == "https",
            callback_cookie_path: format!("{mount_path}{}", sign_in.callback_path),
            cookie_key: cookie_key
                .unwrap_or_else(|| crate::keys::derive(&app.secret, crate::keys::PENDING_COOKIES)),
            public_origin,
            mount_path,
            redirect_uri,
            authorize_base,
            authorize_prefix,
        }
    }
}

/// A path the middleware answers itself: `/…`, visible ASCII, no query, fragment or backslash.
fn is_route_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains(['?', '#', '\\'])
        && path.bytes().all(|b| b.is_ascii_graphic())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_base_url(setting: &'static str, value: Option<&str>) -> Result<Url, ConfigError> {
    let value = value.ok_or(ConfigError::MissingPublicUrl)?;
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        setting,
        reason: reason.to_owned(),
    };
    let url = Url::parse(value).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("a host is required"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("no query or fragment allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("no credentials allowed"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> WeChatConfigBuilder {
        WeChatConfig::builder("wx1234", "secret").public_url("https://h5.example.com/")
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            WeChatConfig::builder("wx 1", "s")
                .public_url("https://a.b")
                .build()
                .err(),
            Some(ConfigError::InvalidAppId)
        );
        assert_eq!(
            WeChatConfig::builder("wx1", "")
                .public_url("https://a.b")
                .build()
                .err(),
            Some(ConfigError::EmptySecret)
        );
        assert_eq!(
            WeChatConfig::builder("wx1", "s").build().err(),
            Some(ConfigError::MissingPublicUrl)
        );
        for bad in [
            "h5.example.com",
            "ftp://h5.example.com",
            "https://h5.example.com/?a=1",
            "https://u:p@h5.example.com",
            "/relative",
        ] {
            assert!(
                matches!(
                    builder().public_url(bad).build(),
                    Err(ConfigError::InvalidUrl {
                        setting: "public_url",
                        ..
                    })
                ),
                "{bad} accepted"
            );
        }
        assert!(matches!(
            builder().api_base("not a url").build(),
            Err(ConfigError::InvalidUrl {
                setting: "api_base",
                ..
            })
        ));
        for bad in [
            "callback",
            "//evil.com/cb",
            "/cb?x=1",
            "/c b",
            "/cb#x",
            "/回调",
        ] {
            assert_eq!(
                builder().callback_path(bad).build().err(),
                Some(ConfigError::InvalidCallbackPath),
                "{bad} accepted"
            );
        }
        assert_eq!(
            builder().request_timeout(Duration::ZERO).build().err(),
            Some(ConfigError::Zero("request_timeout"))
        );
    }

    #[test]
    fn redirect_uri_comes_from_the_public_url_only() {
        let config = builder().build().unwrap();
        assert_eq!(
            config.redirect_uri(),
            "https://h5.example.com/wechat/callback"
        );
        assert_eq!(config.settings.site.mount_path, "");
        let config = builder()
            .public_url("http://127.0.0.1:8080")
            .build()
            .unwrap();
        assert_eq!(
            config.redirect_uri(),
            "http://127.0.0.1:8080/wechat/callback"
        );
    }

    #[test]
    fn plain_http_off_loopback_is_refused_unless_allowed() {
        type Make = fn() -> WeChatConfigBuilder;
        let cases: [(&str, Make); 3] = [
            ("public_url", || {
                builder().public_url("http://192.0.2.7:8080")
            }),
            ("open_base", || {
                builder().open_base("http://open.example.com")
            }),
            ("api_base", || builder().api_base("http://api.example.com")),
        ];
        for (setting, b) in cases {
            assert_eq!(b().build().err(), Some(ConfigError::InsecureHttp(setting)));
            assert!(b().allow_insecure_http(true).build().is_ok(), "{setting}");
        }
        for fine in [
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:1",
        ] {
            assert!(
                builder().public_url(fine).api_base(fine).build().is_ok(),
                "{fine}"
            );
        }
        assert!(matches!(
            builder()
                .public_url("https://h5.example.com//evil.com")
                .build(),
            Err(ConfigError::InvalidUrl {
                setting: "public_url",
                ..
            })
        ));
        assert_eq!(
            builder()
                .trust_root_certificate(vec![1, 2, 3])
                .build()
                .err(),
            Some(ConfigError::InvalidCertificate)
        );
    }

    #[test]
    fn app_mix_ups_are_refused() {
        assert_eq!(
            builder().website_app("wx1234", "other").build().err(),
            Some(ConfigError::InvalidAppId),
            "one appid for both apps"
        );
        assert_eq!(
            builder().scope(Scope::Login).build().err(),
            Some(ConfigError::OfficialAccountScope)
        );
        assert!(builder().website_app("wxweb", "s").build().is_ok());
    }

    #[test]
    fn loopback_is_told_apart() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(is_loopback(&url("http://127.0.0.1:9000")));
        assert!(is_loopback(&url("http://localhost:9000")));
        assert!(is_loopback(&url("http://[::1]:9000")));
        assert!(!is_loopback(&url("http://api.weixin.qq.com")));
        assert!(!is_loopback(&url("http://10.0.0.5")));
    }

    #[test]
    fn secret_is_redacted_in_debug() {
        let config = WeChatConfig::builder("wx1234", "TOPSECRET")
            .public_url("https://h5.example.com")
            .build()
            .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("TOPSECRET"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
