//! The test harness: a real app server on a free port, the emulator on another, and clients that
//! carry cookies like a browser.

pub mod redis_server;

use std::{
    net::TcpListener,
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::Duration,
};

use actix_session::{
    config::CookieContentSecurity, storage::CookieSessionStore, Session, SessionMiddleware,
};
use actix_web::{
    cookie::{Key, SameSite},
    dev::ServerHandle,
    web, App, HttpRequest, HttpResponse, HttpServer,
};
use actix_wechat_auth::{
    emulator::Emulator, Scope, WeChatAuth, WeChatConfig, WeChatConfigBuilder, WeChatUser,
};
use reqwest::{cookie::CookieStore as _, header, redirect, StatusCode};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Captured logs: every test binary records what the crate logs, to check context and secrets.

struct Capture;

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOGS.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_logger(&Capture).expect("no other logger in tests");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

pub fn logs() -> Vec<String> {
    LOGS.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// Servers.

/// A server running on its own thread and actix system; stopped when dropped.
pub struct Server {
    pub base: String,
    pub handle: ServerHandle,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Sends the stop command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

/// Runs the server that `make` builds (its setup may await, as a Redis store's does) on a thread
/// and actix system of its own, and returns once it listens on `base`.
pub fn spawn_server<F, Fut>(base: String, make: F) -> Server
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<actix_web::dev::Server>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = make().await.expect("the server starts");
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server started");
    Server { base, handle }
}

/// How the test app is put together.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// Like the sample site: an optional instance at the App level (callback, `Option<WeChatUser>`),
    /// resources requiring a scope each.
    Routes,
    /// `.wrap(wechat)` on the whole App, the README's quickstart.
    Strict,
    /// `.wrap(SessionMiddleware).wrap(wechat)`: the wrong order.
    WrongOrder,
    /// No SessionMiddleware at all.
    NoSession,
    /// A `WeChatUser` handler with no WeChatAuth anywhere.
    NoMiddleware,
}

fn session(key: &Key) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
        .cookie_secure(false)
        .cookie_same_site(SameSite::Lax)
        // Signed, not encrypted: the tests read what the middleware stores.
        .cookie_content_security(CookieContentSecurity::Signed)
        .build()
}

async fn show(user: WeChatUser) -> HttpResponse {
    let profile = user.profile();
    HttpResponse::Ok().json(json!({
        "openid": user.openid(),
        "unionid": user.unionid(),
        "scope": user.scope().as_str(),
        "nickname": profile.map(|p| p.nickname.as_str()),
        "headimgurl": profile.map(|p| p.headimgurl.as_str()),
        "access_token": user.access_token().secret(),
        "app": user.app().as_str(),
        "attached": user.attached(),
    }))
}

thread_local! {
    /// The requests `/held` keeps alive until the server stops: the data containers they hold
    /// stay busy, so later requests of that worker must get others.
    static HELD: std::cell::RefCell<Vec<HttpRequest>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `show` for a handler that keeps its request (as one that hands it to a spawned task does).
async fn held(req: HttpRequest, user: Option<WeChatUser>) -> HttpResponse {
    HELD.with(|held| held.borrow_mut().push(req));
    match user {
        Some(user) => show(user).await,
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn public(user: Option<WeChatUser>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "openid": user.as_ref().map(WeChatUser::openid) }))
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    HttpResponse::Ok().body("signed out")
}

/// Starts the test app on `listener` (bound first, so that its URL can go into the config).
pub fn start_app(listener: TcpListener, config: WeChatConfig, shape: Shape) -> Server {
    let base = format!("http://{}", listener.local_addr().unwrap());
    spawn_server(base, move || async move {
        let key = Key::generate();
        let wechat = WeChatAuth::new(config);
        macro_rules! serve {
            ($factory:expr) => {{
                Ok(HttpServer::new($factory)
                    .workers(2)
                    .disable_signals()
                    .listen(listener)?
                    .run())
            }};
        }
        match shape {
            Shape::Routes => serve!(move || App::new()
                .service(
                    web::resource("/base")
                        .wrap(wechat.require(Scope::Base))
                        .get(show)
                )
                .service(
                    web::resource("/info")
                        .wrap(wechat.require(Scope::UserInfo))
                        .get(show)
                )
                .service(
                    web::resource("/api/me")
                        .wrap(wechat.require(Scope::UserInfo))
                        .get(show)
                )
                .route("/public", web::get().to(public))
                // A handler that needs the user on a route that does not require one.
                .route("/whoami", web::get().to(show))
                .route("/held", web::get().to(held))
                .route("/healthz", web::get().to(|| async { "ok" }))
                .route("/logout", web::get().to(logout))
                .wrap(wechat.optional())
                .wrap(session(&key))),
            Shape::Strict => serve!(move || App::new()
                .route("/healthz", web::get().to(|| async { "ok" }))
                .default_service(web::to(show))
                .wrap(wechat.clone())
                .wrap(session(&key))),
            Shape::WrongOrder => serve!(move || App::new()
                .default_service(web::to(show))
                .wrap(session(&key))
                .wrap(wechat.clone())),
            Shape::NoSession => serve!(move || App::new()
                .default_service(web::to(show))
                .wrap(wechat.clone())),
            Shape::NoMiddleware => serve!(move || App::new()
                .default_service(web::to(show))
                .wrap(session(&key))),
        }
    })
}

/// The key of the test apps' pending sign-in cookies, so that tests can read them.
pub fn pending_key() -> Key {
    Key::from(&[7; 64])
}

/// A config pointing at the emulator, for the app at `app_base`, with test-friendly timeouts.
pub fn config(emulator: &Emulator, app_base: &str) -> WeChatConfigBuilder {
    WeChatConfig::builder(emulator.appid(), emulator.secret())
        .cookie_key(pending_key())
        .public_url(app_base)
        .open_base(emulator.open_base())
        .api_base(emulator.api_base())
        .api_path_prefix("/api/")
        .exclude_path("/healthz")
        .request_timeout(Duration::from_secs(2))
        .retry_backoff(Duration::from_millis(10))
}

/// A free loopback port, for apps whose public URL must be known before they start.
pub fn free_base() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// The emulator and the app, wired together.
pub struct Setup {
    pub emulator: Emulator,
    pub app: Server,
}

impl Setup {
    /// Emulator approving consent at once, app of `shape` with `tweak` applied to its config.
    pub fn new(
        shape: Shape,
        tweak: impl FnOnce(WeChatConfigBuilder) -> WeChatConfigBuilder,
    ) -> Self {
        Self::with_emulator(
            Emulator::builder().auto_approve(true).start().unwrap(),
            shape,
            tweak,
        )
    }

    pub fn with_emulator(
        emulator: Emulator,
        shape: Shape,
        tweak: impl FnOnce(WeChatConfigBuilder) -> WeChatConfigBuilder,
    ) -> Self {
        capture_logs();
        let (listener, base) = free_base();
        let config = tweak(config(&emulator, &base)).build().unwrap();
        let app = start_app(listener, config, shape);
        Setup { emulator, app }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    pub fn browser(&self) -> Browser {
        Browser::new()
    }
}

// ---------------------------------------------------------------------------------------------
// A browser: cookies across the app and the emulator, redirects followed by hand.

pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

/// A desktop Chrome: outside WeChat, where a lost `state` is a 400 at once.
pub const DESKTOP_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// The User-Agent of WeChat's in-app browser on an iPhone: what a harness browser sends unless a
/// test says otherwise (the Official Account flow works only there).
pub const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) \
    NetType/WIFI Language/zh_CN";

pub struct Hop {
    pub status: StatusCode,
    pub url: String,
    pub location: Option<String>,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Hop {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .user_agent(WECHAT_UA)
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser { client, jar }
    }

    pub async fn get(&self, url: &str) -> Hop {
        self.get_with(url, &[]).await
    }

    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Hop {
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::hop(url, req).await
    }

    /// Submits a form the way a browser does (urlencoded POST).
    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Hop {
        let req = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        Self::hop(url, req).await
    }

    async fn hop(url: &str, req: reqwest::RequestBuilder) -> Hop {
        let res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Hop {
            status,
            url: url.to_owned(),
            location,
            headers,
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// Follows redirects like a browser (the fragment is not sent), returning every hop.
    pub async fn navigate(&self, url: &str) -> Vec<Hop> {
        let mut hops = Vec::new();
        let mut url = url.to_owned();
        for _ in 0..10 {
            let hop = self.get(&url).await;
            let next = hop.location.clone().filter(|_| hop.status.is_redirection());
            hops.push(hop);
            match next {
                Some(next) => {
                    let base = reqwest::Url::parse(&url).unwrap();
                    let mut next = base.join(&next).unwrap();
                    next.set_fragment(None);
                    url = next.to_string();
                }
                None => return hops,
            }
        }
        panic!(
            "redirect loop: {:?}",
            hops.iter().map(|h| &h.url).collect::<Vec<_>>()
        );
    }

    /// The session cookie's content as the middleware stored it (the test app signs, not
    /// encrypts, its session cookie).
    pub fn session(&self, app_base: &str) -> Value {
        let cookies = self
            .jar
            .cookies(&reqwest::Url::parse(app_base).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let Some(value) = cookies.split("; ").find_map(|c| c.strip_prefix("id=")) else {
            return Value::Null;
        };
        let decoded = percent_decode(value);
        let json_start = decoded.find('{').expect("signed cookie holds JSON");
        let map: serde_json::Map<String, Value> =
            serde_json::from_str(&decoded[json_start..]).unwrap();
        // actix-session stores each value as a JSON string.
        Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let inner = v
                        .as_str()
                        .map_or(v.clone(), |s| serde_json::from_str(s).unwrap());
                    (k, inner)
                })
                .collect(),
        )
    }

    /// The names of the cookies the browser would send to `url`.
    pub fn cookie_names(&self, url: &str) -> Vec<String> {
        self.jar
            .cookies(&reqwest::Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
            .split("; ")
            .filter_map(|c| c.split_once('=').map(|(name, _)| name.to_owned()))
            .collect()
    }

    /// The pending sign-in cookies (`wxs_…`) the browser holds for the app.
    pub fn pending_cookies(&self, app_base: &str) -> Vec<String> {
        let mut names = self.cookie_names(app_base);
        names.retain(|n| n.starts_with("wxs_"));
        names
    }

    pub fn session_cookie_len(&self, app_base: &str) -> usize {
        self.jar
            .cookies(&reqwest::Url::parse(app_base).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
            .split("; ")
            .find(|c| c.starts_with("id="))
            .map_or(0, str::len)
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Signs in through the whole flow and returns the final hop (the page asked for).
pub async fn sign_in(browser: &Browser, url: &str) -> Hop {
    let mut hops = browser.navigate(url).await;
    let last = hops.pop().unwrap();
    assert_eq!(
        last.status,
        StatusCode::OK,
        "sign-in via {url} ended with {}: {}",
        last.status,
        last.body
    );
    last
}

/// The query parameters of a URL, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The `Cookie` header a browser sends to `url`.
pub fn cookie_header(browser: &Browser, url: &str) -> String {
    browser
        .jar
        .cookies(&reqwest::Url::parse(url).unwrap())
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
