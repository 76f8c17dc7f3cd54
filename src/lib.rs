//! WeChat sign-in for actix-web 4, as one middleware: 微信网页授权 (OAuth 2.0 for Official
//! Accounts) inside WeChat, and a Website app's QR sign-in (网站应用微信登录) outside it.
//!
//! - [`WeChatAuth`] picks the sign-in [`Flow`] for each [`Browser`]: WeChat's browsers go to the
//!   Official Account's authorize page (parameters in WeChat's order, `#wechat_redirect`, a random
//!   single-use CSRF `state`); desktop browsers get a page embedding WeChat's QR code when a
//!   [Website app](WeChatConfigBuilder::website_app) is configured; other browsers a page saying
//!   to open the link in WeChat, with a QR code of it. API requests get a 401 JSON instead. It
//!   handles the callback, keeps the tokens in the actix-session session, checks them with
//!   `/sns/auth` and refreshes them as requests come in, with each app's credentials.
//! - Store users by [`WeChatUser::unionid`]: one value for a person across the apps bound to one
//!   Open Platform account (the openid differs per app). The
//!   [sign-in hook](WeChatConfigBuilder::on_sign_in) refuses a sign-in or attaches the app's own
//!   value to it.
//! - [`WeChatUser`] is the extractor handlers take (or `Option<WeChatUser>`).
//! - The `emulator` feature brings an embedded WeChat (authorize page + sns API) on a real port,
//!   so that an app and its tests run without a WeChat account.
//!
//! ```no_run
//! use actix_session::{storage::CookieSessionStore, SessionMiddleware};
//! use actix_web::{cookie::Key, web, App, HttpServer};
//! use actix_wechat_auth::{WeChatAuth, WeChatConfig, WeChatUser};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let secret = std::env::var("WECHAT_SECRET").expect("WECHAT_SECRET");
//!     let wechat = WeChatAuth::new(
//!         WeChatConfig::builder("wx1234567890abcdef", secret)
//!             .public_url("https://h5.example.com")
//!             .build()
//!             .expect("valid configuration"),
//!     );
//!     let key = Key::generate();
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(wechat.clone()) // inside: it needs the session
//!             .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
//!             .route("/", web::get().to(|user: WeChatUser| async move {
//!                 format!("hi {}", user.openid())
//!             }))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! # Features
//! - `emulator`: an embedded WeChat (authorize page, Website app QR page, the sns API) on a real
//!   port, for tests and local development, and the [`testing`] kit (the app on a free port, a
//!   browser that signs in with one call, a fake user for unit tests); use it under
//!   `[dev-dependencies]`.
//! - `redis`: actix-session's pooled Redis store and [`WeChatAuth::share_refreshes`], so that
//!   checks and refreshes are shared by every instance of the app.
//!
//! # Metrics
//! Through the [`metrics`](https://docs.rs/metrics) facade: nothing is recorded (at no cost)
//! until the app installs a recorder, e.g. `metrics-exporter-prometheus`.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `wechat_auth_sign_ins_total` | counter | `flow` (`official_account`, `website`, `unknown`), `outcome` (`signed_in`, `already_signed_in`, `restarted`, or the error's code: `access_denied`, `invalid_state`, `wechat_error`…) |
//! | `wechat_auth_upstream_calls_total` | counter | `endpoint` (`access_token`, `refresh_token`, `userinfo`, `auth`), `errcode` (`0`, WeChat's errcode, `timeout`, `unreachable`, `http_status`, `too_large`, `malformed`); one per attempt |
//! | `wechat_auth_upstream_seconds` | histogram | `endpoint`: seconds per attempt |
//! | `wechat_auth_refreshes_total` | counter | `by`: `made` (this request called WeChat) or `shared` (a concurrent request's answer) |
//! | `wechat_auth_checks_total` | counter | `by`: `made` or `shared`, for `/sns/auth` checks |
//!
//! # Session size
//! The session holds the openid, unionid, granted scope, both tokens, the expiry, the times of the
//! sign-in and of the last check and, for `snsapi_userinfo`, the profile.
//! Profiles are capped (nickname 128 bytes, avatar URL 512 bytes or dropped, 4 privileges of 32
//! bytes) so that the cookie store's 4 KB limit holds: the worst case is 1,281 bytes of JSON, a
//! 1,803-byte encrypted cookie
//! (`tests/it/wiring.rs::worst_case_session_cookie_fits_the_browser_limit`).
//!
//! Nothing is written to the session before a sign-in succeeds: a pending sign-in (its `state`,
//! return-to at most 256 bytes, scope) is an encrypted `HttpOnly` cookie of its own, at most three
//! per browser, so anonymous visitors cost a server-side store nothing.
//!
//! # CORS
//! Every method is gated, `OPTIONS` included: a request cannot show that it is a real preflight.
//! Answer preflights with `actix-cors` wrapped outside `WeChatAuth` and the session middleware.
//!
//! With actix-session's cookie store the tokens travel in the cookie: keep its content security
//! `Private` (the default, encrypted). `Signed` would let the browser read the 30-day refresh token.
//!
//! # Behind a reverse proxy
//! `redirect_uri` is [`WeChatConfigBuilder::public_url`] plus the callback path and is never built
//! from the request's `Host` header, so a proxy or TLS terminator in front changes nothing: set
//! `public_url` to the origin the browser sees (with a path if the app is mounted under one).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authorize;
mod callback;
mod client;
mod config;
mod error;
mod extractor;
#[cfg(feature = "redis")]
mod fleet;
mod flights;
mod keys;
mod middleware;
mod negotiate;
mod pages;
mod pending;
mod return_to;
mod session;
mod store_guard;
mod telemetry;
mod tokens;
mod upkeep;
mod wire;

#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod testing;

pub use config::{AppKind, ConfigError, Lang, SignInRefused, WeChatConfig, WeChatConfigBuilder};
pub use error::{Error, ErrorKind};
pub use extractor::WeChatUser;
pub use middleware::{WeChatAuth, WeChatAuthFuture, WeChatAuthMiddleware};
pub use negotiate::{Browser, Flow};
pub use pages::{Page, PageKind, PageText};
pub use return_to::same_origin_path;
pub use session::sign_out;
pub use store_guard::session_store_guard;

/// The Redis pool crate used by [`WeChatAuth::share_refreshes`] and actix-session's pooled Redis
/// store, re-exported so that the versions match.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use deadpool_redis;
pub use tokens::{AccessToken, AppSecret, CsrfState, RefreshToken, Scope};
pub use wire::{ErrCode, Profile};

/// Entry points for the fuzz targets and property tests. Not part of the API: no stability
/// promise.
#[doc(hidden)]
pub mod __private {
    use crate::wire::{parse, Acknowledgement, Profile, TokenResponse};

    /// Parses `body` as each kind of WeChat answer; `true` for each that parsed.
    pub fn parse_answers(body: &[u8]) -> [bool; 3] {
        [
            parse::<TokenResponse>(body).is_ok(),
            parse::<Profile>(body).is_ok(),
            parse::<Acknowledgement>(body).is_ok(),
        ]
    }
}
