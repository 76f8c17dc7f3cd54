//! The app under test on a real loopback port, its configuration's `public_url` set to it.

use std::fmt;
use std::net::TcpListener;
use std::thread::JoinHandle;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer};

use crate::emulator::server::{spawn, stop};
use crate::{WeChatAuth, WeChatConfigBuilder};

/// The app under test, served on `127.0.0.1` on a free port by a thread of its own (two
/// workers). Dropping it stops the server.
///
/// # Example
///
/// ```
/// use actix_web::{web, App};
/// use actix_wechat_auth::emulator::Emulator;
/// use actix_wechat_auth::testing::TestApp;
///
/// let emu = Emulator::start().unwrap();
/// let app = TestApp::start(emu.config(), |_wechat| App::new().route("/", web::get().to(|| async { "hi" })));
/// assert!(app.url("/x").starts_with("http://127.0.0.1:"));
/// ```
pub struct TestApp {
    base: String,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TestApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestApp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl TestApp {
    /// Binds a free port, builds `config` with `public_url` set to it, makes one [`WeChatAuth`]
    /// of it and serves the app that `app` makes with it (called once per worker, like
    /// `HttpServer::new`'s factory, with a clone of the one instance: as in production, the
    /// workers share its checks, refreshes and budgets).
    ///
    /// # Panics
    ///
    /// When the configuration does not build or the server cannot start: a test cannot go on.
    pub fn start<F, T, B>(config: WeChatConfigBuilder, app: F) -> TestApp
    where
        F: Fn(WeChatAuth) -> App<T> + Send + Clone + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("TestApp: bind a loopback port");
        let addr = listener.local_addr().expect("TestApp: the bound address");
        let base = format!("http://{addr}");
        let config = config
            .public_url(&base)
            .build()
            .unwrap_or_else(|e| panic!("TestApp: the configuration does not build: {e}"));
        let wechat = WeChatAuth::new(config);
        let (server, thread) = spawn(format!("test-app-{}", addr.port()), move || {
            let server = HttpServer::new(move || app(wechat.clone()))
                .workers(2)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)?;
            Ok(server.run())
        })
        .unwrap_or_else(|e| panic!("TestApp: the server does not start: {e}"));
        TestApp {
            base,
            server,
            thread: Some(thread),
        }
    }

    /// The absolute URL of `path` on the app (`http://127.0.0.1:{port}{path}`).
    ///
    /// # Example
    ///
    /// ```
    /// # use actix_web::App;
    /// # use actix_wechat_auth::{emulator::Emulator, testing::TestApp};
    /// # let emu = Emulator::start().unwrap();
    /// let app = TestApp::start(emu.config(), |_| App::new());
    /// assert!(app.url("/shop?x=1").ends_with("/shop?x=1"));
    /// ```
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        stop(&self.server, self.thread.take());
    }
}
