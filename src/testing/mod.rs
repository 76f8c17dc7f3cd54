//! A test kit for apps that use this crate (cargo feature `emulator`; put it under
//! `[dev-dependencies]`): the app on a real port pointed at the emulator, a browser that signs in
//! with one call, and a fake user for handler unit tests.
//!
//! The whole test of a protected page and a 401 API:
//!
//! ```
//! use actix_session::{storage::CookieSessionStore, SessionMiddleware};
//! use actix_web::{cookie::Key, web, App};
//! use actix_wechat_auth::emulator::{EmulatedUser, Emulator};
//! use actix_wechat_auth::testing::{TestApp, TestClient};
//! use actix_wechat_auth::{Scope, WeChatUser};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let emu = Emulator::builder().auto_approve(true).start().unwrap();
//! let openid = emu.add_user(EmulatedUser::new("小明"));
//! let key = Key::generate();
//! let app = TestApp::start(emu.config(), move |wechat| {
//!     App::new()
//!         .route("/me", web::get().to(|u: WeChatUser| async move { u.openid().to_owned() }))
//!         .wrap(wechat.require(Scope::UserInfo))
//!         .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
//! });
//!
//! let wechat = TestClient::wechat();
//! assert_eq!(wechat.get_json(&app.url("/me")).await.status, 401);
//! wechat.sign_in(&app.url("/me"), &openid).await;
//! assert_eq!(wechat.get(&app.url("/me")).await.body, openid);
//! # });
//! ```

mod app;
mod client;
mod fake;

pub use app::TestApp;
pub use client::{TestClient, TestResponse};
pub use fake::FakeUser;

use crate::emulator::Emulator;
use crate::WeChatConfigBuilder;

impl Emulator {
    /// A configuration builder pointed at this emulator: its appid and secret, its authorize page
    /// and its sns API. Set the app's `public_url` (or let [`TestApp::start`] set it), and add
    /// the emulated Website app with `.website_app(emu.web_appid(), emu.web_secret())` for
    /// desktop QR sign-in.
    ///
    /// # Example
    ///
    /// ```
    /// use actix_wechat_auth::emulator::Emulator;
    ///
    /// let emu = Emulator::start().unwrap();
    /// let config = emu.config().public_url("http://127.0.0.1:8080").build().unwrap();
    /// assert_eq!(config.appid(), emu.appid());
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
    pub fn config(&self) -> WeChatConfigBuilder {
        crate::WeChatConfig::builder(self.appid(), self.secret())
            .open_base(self.open_base())
            .api_base(self.api_base())
    }
}
