//! The [`WeChatAuth`] middleware: the request path, top to bottom.

use std::{
    cell::Cell,
    future::{ready, Future, Ready},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
};

use actix_session::SessionExt as _;
use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform},
    HttpMessage as _, HttpResponse, ResponseError as _,
};
use futures_util::future::LocalBoxFuture;
use log::{debug, error, info, warn};

use crate::{
    authorize::{self, Challenge},
    callback,
    client::WeChatClient,
    config::WeChatConfig,
    error::{Error, ErrorKind},
    extractor::{AuthContext, ContextSlots, WeChatUser},
    negotiate::Browser,
    pending::PendingCookies,
    session::{unix_now, AuthSession, KnownSignIns, Lookup, Place, SignedIn},
    tokens::Scope,
    upkeep::{decide, AfterCheck, AfterRefresh, Calls, Upkeep, Upstream},
};

/// What to do when no `SessionMiddleware` runs outside `WeChatAuth`.
const NO_SESSION_FIX: &str =
    "actix-session's SessionMiddleware must wrap outside WeChatAuth: call \
    .wrap(WeChatAuth) first and .wrap(SessionMiddleware) after it (the last .wrap runs first)";

/// What a route wrapped by an instance needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requirement {
    /// A signed-in user whose grant satisfies this scope; others are sent to sign in.
    Scope(Scope),
    /// Nothing: the user is loaded (and kept fresh) when signed in; anonymous requests pass.
    Optional,
}

/// WeChat web sign-in for an actix-web `App`, scope or resource.
///
/// Wrap it *inside* actix-session's `SessionMiddleware` (that is, `.wrap(WeChatAuth)` first, then
/// `.wrap(SessionMiddleware)`), because it keeps the sign-in in the session. It answers the
/// callback route itself, sends anonymous page requests to WeChat's authorize page and API requests
/// a 401 JSON, keeps tokens fresh (`/sns/auth` checks, refreshes shared by concurrent requests),
/// and hands the user to handlers through the [`WeChatUser`] extractor.
///
/// Instances made from one configuration share their refreshes; use [`require`](Self::require)
/// and [`optional`](Self::optional) to give parts of an app different needs.
///
/// It leaves what it found in a request data container, which actix-web adds only while nothing
/// else holds the request: a middleware outside it that keeps a clone of the `HttpRequest`
/// across its call makes that panic, as it makes actix's own App and scope routers panic
/// (actix-web warns against such clones).
///
/// ```no_run
/// use actix_session::{storage::CookieSessionStore, SessionMiddleware};
/// use actix_web::{cookie::Key, web, App, HttpServer};
/// use actix_wechat_auth::{Scope, WeChatAuth, WeChatConfig, WeChatUser};
///
/// #[actix_web::main]
/// async fn main() -> std::io::Result<()> {
///     let config = WeChatConfig::builder("wx1234567890abcdef", std::env::var("WECHAT_SECRET").unwrap())
///         .public_url("https://h5.example.com")
///         .scope(Scope::UserInfo)
///         .build()
///         .expect("valid WeChat configuration");
///     let wechat = WeChatAuth::new(config);
///     let key = Key::generate(); // in production: a fixed key shared by every instance
///     HttpServer::new(move || {
///         App::new()
///             .route("/", web::get().to(|user: WeChatUser| async move {
///                 format!("hi {}", user.openid())
///             }))
///             .wrap(wechat.clone())
///             .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
///     })
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// }
/// ```
#[derive(Clone)]
pub struct WeChatAuth {
    shared: Arc<Shared>,
    requirement: Requirement,
}

/// What every instance and worker made from one configuration shares.
struct Shared {
    config: WeChatConfig,
    upstream: Upstream,
}

impl WeChatAuth {
    /// An instance requiring the configuration's scope.
    pub fn new(config: WeChatConfig) -> Self {
        let requirement = Requirement::Scope(config.scope());
        Self {
            shared: Arc::new(Shared {
                config,
                upstream: Upstream::default(),
            }),
            requirement,
        }
    }

    /// An instance of the same configuration requiring `scope`: wrap the parts of an app that
    /// need more (or less) than the rest. (`Scope::Login` counts as `Scope::UserInfo`: a Website
    /// app's sign-in satisfies both, and WeChat's browsers can only ask for the latter.) A `snsapi_base` session that reaches a
    /// `snsapi_userinfo` route is sent to authorize again. The callback path is answered by
    /// whichever instance sees it, so one must cover it (an App-level
    /// [`optional`](Self::optional) instance does).
    ///
    /// ```
    /// # #![recursion_limit = "32"] // apps wrapping scopes compile even with a low limit
    /// use actix_web::{web, App};
    /// use actix_wechat_auth::{Scope, WeChatAuth, WeChatConfig};
    /// let wechat = WeChatAuth::new(
    ///     WeChatConfig::builder("wx1234", "secret").public_url("https://h5.example.com").build()?,
    /// );
    /// let app = App::new()
    ///     .service(web::scope("/quick").wrap(wechat.require(Scope::Base)))
    ///     .service(web::scope("/profile").wrap(wechat.require(Scope::UserInfo)))
    ///     // Some instance must see the callback path: here the App-level one.
    ///     .wrap(wechat.optional());
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn require(&self, scope: Scope) -> Self {
        // Every sign-in satisfies `snsapi_login` but a Website app's would be the only one
        // accepted, and WeChat's browsers cannot do it: requiring it is requiring the profile.
        let scope = scope.min(Scope::UserInfo);
        Self {
            shared: Arc::clone(&self.shared),
            requirement: Requirement::Scope(scope),
        }
    }

    /// An instance of the same configuration that requires nothing: it answers the callback,
    /// loads and refreshes the user when signed in, and lets anonymous requests through, so that
    /// handlers can take `Option<WeChatUser>`.
    ///
    /// ```
    /// use actix_web::{web, App};
    /// use actix_wechat_auth::{Scope, WeChatAuth, WeChatConfig, WeChatUser};
    /// let wechat = WeChatAuth::new(
    ///     WeChatConfig::builder("wx1234", "secret").public_url("https://h5.example.com").build()?,
    /// );
    /// let app = App::new()
    ///     .route("/", web::get().to(|user: Option<WeChatUser>| async move {
    ///         user.map_or("welcome".to_owned(), |u| format!("welcome back {}", u.openid()))
    ///     }))
    ///     .wrap(wechat.optional());
    /// # Ok::<(), actix_wechat_auth::ConfigError>(())
    /// ```
    pub fn optional(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            requirement: Requirement::Optional,
        }
    }

    /// Shares token refreshes with every other instance of the app through Redis: when requests
    /// of one user with an expired token reach several instances at once, WeChat sees one
    /// refresh. Call it right after [`new`](Self::new); instances made from the result with
    /// [`require`](Self::require) and [`optional`](Self::optional) share it too. When Redis cannot
    /// be used, each instance refreshes on its own (logged as a warning).
    ///
    /// ```no_run
    /// use actix_wechat_auth::{deadpool_redis, WeChatAuth, WeChatConfig};
    /// let config = WeChatConfig::builder("wx1234", "secret").public_url("https://h5.example.com").build()?;
    /// let pool = deadpool_redis::Config::from_url("redis://127.0.0.1:6379")
    ///     .create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
    /// let wechat = WeChatAuth::new(config).share_refreshes(pool);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn share_refreshes(self, pool: deadpool_redis::Pool) -> Self {
        let config = self.shared.config.clone();
        let fleet = crate::fleet::Fleet::new(pool, &config);
        Self {
            shared: Arc::new(Shared {
                config,
                upstream: Upstream::shared_with(fleet),
            }),
            requirement: self.requirement,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WeChatConfig {
        &self.shared.config
    }
}

impl<S, B> Transform<S, ServiceRequest> for WeChatAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = WeChatAuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    /// Runs once per worker, on its thread: the place for the (non-`Send`) HTTP client.
    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(WeChatAuthMiddleware {
            service: Rc::new(service),
            worker: Rc::new(Worker {
                client: WeChatClient::new(&self.shared.config.settings.client),
                shared: Arc::clone(&self.shared),
                requirement: self.requirement,
                session_layer: Cell::new(None),
                known: KnownSignIns::default(),
                contexts: ContextSlots::default(),
            }),
        }))
    }
}

/// The per-worker service made by [`WeChatAuth`]. Not used directly.
#[doc(hidden)]
pub struct WeChatAuthMiddleware<S> {
    service: Rc<S>,
    worker: Rc<Worker>,
}

/// What one instance keeps on each worker thread.
struct Worker {
    client: WeChatClient,
    shared: Arc<Shared>,
    requirement: Requirement,
    /// Whether actix-session's middleware runs before this one; found on the first request.
    session_layer: Cell<Option<bool>>,
    /// The sign-ins this worker already parsed.
    known: KnownSignIns,
    /// Where it leaves what it found about each request.
    contexts: ContextSlots,
}

/// What the middleware does with a request, before anything is loaded.
enum Route {
    /// A path the app keeps public: not looked at.
    Pass,
    /// No session middleware outside: nothing works, say so.
    NoSession,
    /// The OAuth callback: ours to answer.
    Callback,
    /// The sign-in route: start a sign-in for `?return_to=`.
    SignIn,
    /// Guarded, and already found by an outer instance of the same configuration: only this
    /// instance's requirement is left to see to.
    FoundOutside(Result<Option<WeChatUser>, ErrorKind>),
    /// Everything else: find the user, then see whether the route is satisfied.
    Guarded,
}

/// The signed-in user: known at once, or after the upstream work of [`Due`].
enum Found {
    Now(Result<Option<Rc<SignedIn>>, ErrorKind>),
    Later(Upkeeping),
}

/// The upstream work of [`Upkeeping`], under way.
type UpkeepWork<'a> = LocalBoxFuture<'a, Result<Option<Rc<SignedIn>>, ErrorKind>>;

/// A sign-in whose token needs upstream work on this request, and what that work needs.
struct Upkeeping {
    session: actix_session::Session,
    user: Rc<SignedIn>,
    /// Where the worker's table would take `user`; `None` when it holds it.
    unknown: Option<Place>,
    due: Due,
    now: u64,
}

/// The upstream work a sign-in needs on this request.
enum Due {
    /// A `/sns/auth` check (then a refresh if WeChat says the token is invalid).
    Check,
    /// A refresh; `still_usable` when the current token works until it is done (early).
    Refresh { still_usable: bool },
}

/// What the route needs, once the user is known.
enum Access {
    /// Serve it (the extractor finds the user, if any, in the request).
    Serve,
    /// Send the browser to sign in (or answer an API call 401) for this scope.
    SignIn(Scope),
    /// Token upkeep failed on a route that needs the user.
    Fail(ErrorKind),
}

impl<S, B> Service<ServiceRequest> for WeChatAuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = WeChatAuthFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let worker = &self.worker;
        let settings = &worker.shared.config.settings;
        // The user, found once however many instances of this configuration wrap the route.
        let outcome = match worker.route(&req) {
            Route::Pass => return WeChatAuthFuture::forward(self.service.call(req)),
            Route::NoSession => {
                let kind = ErrorKind::Misconfigured(NO_SESSION_FIX);
                return WeChatAuthFuture::answer(worker.answer_error(req, kind));
            }
            Route::Callback => {
                let worker = Rc::clone(worker);
                return WeChatAuthFuture::waiting(async move {
                    let res = worker.callback(&req).await;
                    Ok(respond(req, res).map_into_right_body())
                });
            }
            Route::SignIn => {
                let return_to = authorize::requested_return_to(&req);
                let scope = settings.sign_in.scope;
                return WeChatAuthFuture::answer(worker.challenge(req, scope, return_to));
            }
            Route::FoundOutside(outcome) => outcome,
            Route::Guarded => match worker.current_user(&req) {
                Found::Now(found) => worker.found(&mut req, found),
                Found::Later(upkeeping) => {
                    let (service, worker) = (Rc::clone(&self.service), Rc::clone(worker));
                    return WeChatAuthFuture::waiting(async move {
                        let found = worker.keep_fresh(upkeeping).await;
                        let mut req = req;
                        let outcome = worker.found(&mut req, found);
                        worker.act(&*service, req, outcome).await
                    });
                }
            },
        };
        worker.act(&*self.service, req, outcome)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`WeChatAuthMiddleware`]: the app's own future (a signed-in request whose
    /// token needs nothing, and every path the middleware passes by), an answer of the
    /// middleware's own, or the boxed work of a request that waits on WeChat. Not used directly.
    ///
    /// (A concrete type, not a boxed future: that would be an allocation on every request. The
    /// futures that wait on WeChat are boxed in functions that are not generic, so that their
    /// deep layouts are computed in this crate, not in the app's: an app wrapping instances in
    /// scopes compiles within a recursion limit of 32, where a boxed future of the whole
    /// request path needed more than 32, and this type with those futures boxed inside it more
    /// than the default 128.)
    #[doc(hidden)]
    pub struct WeChatAuthFuture<F, B> {
        #[pin]
        state: CallState<F, B>,
    }
}

/// What the middleware's answer waits on.
type Waiting<B> = LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>;

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum CallState<F, B> {
        /// The app's future.
        Forward { #[pin] app: F },
        /// The middleware's own answer, taken when polled.
        Answer { res: Option<ServiceResponse> },
        /// The callback, or token upkeep (then the app's future).
        Waiting { work: Waiting<B> },
    }
}

impl<F, B: 'static> WeChatAuthFuture<F, B> {
    /// Calls the app. (Handler errors reach us as responses: actix's routing converts them.
    /// Only an inner middleware's `Err` passes through, and with it actix-session drops this
    /// request's writes; the request after it then refreshes again.)
    fn forward(app: F) -> Self {
        Self {
            state: CallState::Forward { app },
        }
    }

    /// An early answer. Given as `Ok`: actix-session drops the session writes (the pending
    /// `state`) of a request whose service returned `Err`.
    fn answer(res: ServiceResponse) -> Self {
        Self {
            state: CallState::Answer { res: Some(res) },
        }
    }

    /// Work that waits on WeChat.
    fn waiting(
        work: impl Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>> + 'static,
    ) -> Self {
        Self {
            state: CallState::Waiting {
                work: Box::pin(work),
            },
        }
    }
}

impl<F, B> Future for WeChatAuthFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Forward { app } => app.poll(cx).map_ok(ServiceResponse::map_into_left_body),
            StateProj::Answer { res } => {
                let res = res
                    .take()
                    .expect("WeChatAuthFuture polled after it completed");
                Poll::Ready(Ok(res.map_into_right_body()))
            }
            StateProj::Waiting { work } => work.as_mut().poll(cx),
        }
    }
}

impl Worker {
    /// Where a request goes: decided from the path, the wrap order found once per worker, and
    /// what an outer instance left.
    fn route(&self, req: &ServiceRequest) -> Route {
        let settings = &self.shared.config.settings;
        if settings.filter.is_excluded(req) {
            // Every method is gated alike, `OPTIONS` too: nothing in a request tells a real CORS
            // preflight from a forged one, so preflights belong to a CORS middleware wrapped
            // outside this one (see the crate docs).
            Route::Pass
        } else if !self.session_layer_present(req) {
            Route::NoSession
        } else if req.path() == settings.sign_in.callback_path {
            Route::Callback
        } else if req.path() == settings.sign_in.sign_in_path {
            Route::SignIn
        } else if let Some(outcome) = self.found_outside(req) {
            // Checked last: what lies between the instances (a path rewrite, the scope's own
            // state an `exclude_if` reads) may route this one differently.
            Route::FoundOutside(outcome)
        } else {
            Route::Guarded
        }
    }

    /// What an outer instance of the same configuration already found for this request.
    fn found_outside(&self, req: &ServiceRequest) -> Option<Result<Option<WeChatUser>, ErrorKind>> {
        let context = AuthContext::of(req.request())?;
        (context.config_id == self.shared.config.config_id()).then(|| context.outcome.clone())
    }

    /// Leaves what was found about this request's user for the extractor (and for inner
    /// instances of the same configuration, which then do not look again).
    fn leave_for_extractor(
        &self,
        req: &mut ServiceRequest,
        outcome: &Result<Option<WeChatUser>, ErrorKind>,
    ) {
        let settings = &self.shared.config.settings;
        // How to answer the extractor's errors, worked out only when there is no user to hand over.
        let anonymous = !matches!(outcome, Ok(Some(_)));
        let context = AuthContext {
            config_id: self.shared.config.config_id(),
            outcome: outcome.clone(),
            reply: anonymous.then(|| settings.reply(req)),
            sign_in: anonymous.then(|| authorize::sign_in_link(settings, req)),
        };
        self.contexts.leave(req, context);
    }

    /// The answer to the OAuth callback: boxed in a function that is not generic, as
    /// [`keep_fresh`](Self::keep_fresh).
    fn callback<'a>(&'a self, req: &'a ServiceRequest) -> LocalBoxFuture<'a, HttpResponse> {
        Box::pin(callback::handle(&self.shared.config, &self.client, req))
    }

    /// The user this instance found, left for the extractor (and inner instances).
    fn found(
        &self,
        req: &mut ServiceRequest,
        found: Result<Option<Rc<SignedIn>>, ErrorKind>,
    ) -> Result<Option<WeChatUser>, ErrorKind> {
        let outcome = found.map(|user| user.map(WeChatUser::new));
        self.leave_for_extractor(req, &outcome);
        outcome
    }

    /// Serves the request, or answers it, as this instance's requirement makes of the outcome.
    fn act<S, B: 'static>(
        &self,
        service: &S,
        req: ServiceRequest,
        outcome: Result<Option<WeChatUser>, ErrorKind>,
    ) -> WeChatAuthFuture<S::Future, B>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    {
        match self.access(outcome) {
            Access::Serve => WeChatAuthFuture::forward(service.call(req)),
            Access::Fail(kind) => WeChatAuthFuture::answer(self.answer_error(req, kind)),
            Access::SignIn(scope) => {
                let settings = &self.shared.config.settings;
                let format = settings.filter.format(&req);
                let return_to = authorize::return_to_of(&settings.site, &req, format);
                WeChatAuthFuture::answer(self.challenge(req, scope, return_to))
            }
        }
    }

    /// What this instance's requirement makes of the outcome: a pure decision.
    fn access(&self, outcome: Result<Option<WeChatUser>, ErrorKind>) -> Access {
        match (self.requirement, outcome) {
            (Requirement::Optional, Ok(_)) => Access::Serve,
            (Requirement::Optional, Err(kind)) => {
                warn!("WeChat token upkeep failed on an optional route: {kind}");
                Access::Serve
            }
            (Requirement::Scope(_), Err(kind)) => Access::Fail(kind),
            (Requirement::Scope(needed), Ok(Some(user))) if user.scope().satisfies(needed) => {
                Access::Serve
            }
            (Requirement::Scope(needed), Ok(_)) => Access::SignIn(needed),
        }
    }

    /// Starts a sign-in for `scope` that comes back to `return_to`, in the flow this browser
    /// can use: a redirect or a sign-in page for pages, a 401 JSON with the authorize URLs for API
    /// calls.
    fn challenge(&self, req: ServiceRequest, scope: Scope, return_to: String) -> ServiceResponse {
        let settings = &self.shared.config.settings;
        let reply = settings.reply(&req);
        let mut pending = PendingCookies::of(&settings.site, &settings.sign_in, &req);
        let keep_hash = settings
            .sign_in
            .hash_route_paths
            .iter()
            .any(|p| p == req.path());
        let challenge = Challenge {
            scope,
            return_to,
            restarts: 0,
            keep_hash,
            flow: settings.flow(&req),
            browser: Browser::of(req.headers()),
        };
        // The open-in-WeChat page's URL: the page asked for, on the public origin.
        let page_url = || {
            // As asked, never shortened: it is shown as text (escaped) and as a QR code.
            let target = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());
            format!(
                "{}{}{target}",
                settings.site.public_origin, settings.site.mount_path
            )
        };
        let mut res = authorize::start(
            &self.shared.config,
            &mut pending,
            challenge,
            &reply,
            page_url,
        );
        pending.apply(&mut res);
        respond(req, res)
    }

    /// An error answered by the middleware itself, in the request's format and language; a page
    /// offers to load the same URL again.
    fn answer_error(&self, req: ServiceRequest, kind: ErrorKind) -> ServiceResponse {
        let settings = &self.shared.config.settings;
        let mut err = Error::new(kind, settings.reply(&req));
        if req.method() == actix_web::http::Method::GET {
            let again = crate::return_to::for_request(req.path(), req.query_string());
            err = err.with_link(format!("{}{again}", settings.site.mount_path));
        }
        respond(req, err.error_response())
    }

    /// The signed-in user, after whatever upkeep the token needs: nothing (found now), or a
    /// `/sns/auth` check or a refresh (found later). `Ok(None)` when anonymous or when the
    /// sign-in ran out.
    fn current_user(&self, req: &ServiceRequest) -> Found {
        let session = req.get_session();
        let store = AuthSession(&session);
        let settings = &self.shared.config.settings;
        let now = unix_now();
        // `unknown`: where the worker's table would take the sign-in (`None`: it holds it).
        let (user, unknown) = match self.known.lookup(&session, &settings.apps) {
            Lookup::Absent => return Found::Now(Ok(None)),
            Lookup::Known(user) if decide(&user, now, &settings.upkeep) == Upkeep::Fresh => {
                return Found::Now(Ok(Some(user)))
            }
            Lookup::Known(user) => (user, None),
            Lookup::Parsed(user, place) => (user, Some(place)),
        };
        let upkeep = self.shared.upstream.plan(&user, now, &settings.upkeep);
        // Openids are personal data: named at debug level only.
        debug!("token upkeep for {}: {upkeep:?}", user.openid);
        let due = match upkeep {
            Upkeep::Over => {
                info!("a sign-in is over (its age, or its refresh token was refused); signing out");
                store.sign_out();
                return Found::Now(Ok(None));
            }
            Upkeep::Fresh => {
                if let Some(place) = unknown {
                    self.known.remember(&session, place, Rc::clone(&user));
                }
                return Found::Now(Ok(Some(user)));
            }
            Upkeep::CheckDue => Due::Check,
            Upkeep::RefreshEarly => Due::Refresh { still_usable: true },
            Upkeep::RefreshNow => Due::Refresh {
                still_usable: false,
            },
        };
        Found::Later(Upkeeping {
            session,
            user,
            unknown,
            due,
            now,
        })
    }

    /// Carries out a due check or refresh, then stores what it changed.
    ///
    /// Boxed here, in a function that is not generic: the upstream calls make a future whose
    /// layout is about 80 queries deep, and computed inside the generic middleware's (in the
    /// app's crate) it would overflow the compiler's limit of 128 for an app wrapping scopes.
    fn keep_fresh(&self, upkeeping: Upkeeping) -> UpkeepWork<'_> {
        Box::pin(self.keep_fresh_now(upkeeping))
    }

    /// The work [`keep_fresh`](Self::keep_fresh) boxes.
    async fn keep_fresh_now(
        &self,
        upkeeping: Upkeeping,
    ) -> Result<Option<Rc<SignedIn>>, ErrorKind> {
        let Upkeeping {
            session,
            user,
            unknown,
            due,
            now,
        } = upkeeping;
        let store = AuthSession(&session);
        let settings = &self.shared.config.settings;
        let upstream = &self.shared.upstream;
        let Some(app) = settings.apps.by_appid(&user.appid) else {
            // `signed_in` only yields sign-ins of configured apps.
            return Ok(None);
        };
        let calls = Calls {
            client: &self.client,
            app,
            settings: &settings.upkeep,
        };
        let still_usable = match due {
            Due::Check => match upstream.check(&calls, &user, now).await {
                AfterCheck::Valid | AfterCheck::Unknown
                    if settings.upkeep.check_interval.is_zero() =>
                {
                    // Every request checks again whatever the time of this check: storing it
                    // would change no decision, and would rewrite the session (a new cookie) on
                    // every request. The stored form is unchanged, so its parse can be kept.
                    if let Some(place) = unknown {
                        self.known.remember(&session, place, Rc::clone(&user));
                    }
                    return Ok(Some(user));
                }
                AfterCheck::Valid | AfterCheck::Unknown => None,
                AfterCheck::Invalid => Some(false),
            },
            Due::Refresh { still_usable } => Some(still_usable),
        };
        let mut user = Rc::unwrap_or_clone(user);
        match still_usable {
            None => user.checked_at = now,
            Some(still_usable) => match upstream.refresh(&calls, &user, still_usable, now).await {
                AfterRefresh::Refreshed(tokens) => user.apply_refresh(&tokens, now),
                AfterRefresh::KeepCurrent => return Ok(Some(Rc::new(user))),
                AfterRefresh::SignOut => {
                    info!("WeChat refused to refresh a sign-in; signing out");
                    store.sign_out();
                    return Ok(None);
                }
                AfterRefresh::Fail(kind) => return Err(kind),
            },
        }
        store.set_signed_in(&user)?;
        Ok(Some(Rc::new(user)))
    }

    /// Whether actix-session's `SessionMiddleware` ran before this middleware.
    ///
    /// actix-session keeps its state in the request extensions under a private type, and offers no
    /// way to ask whether it is there. So: set the extensions aside, let `get_session` create a
    /// fresh session holding a marker, then lay the original entries over it. If
    /// `SessionMiddleware` ran, its session replaces ours and the marker is gone. The wrap order
    /// cannot change at run time, so this runs once per worker.
    fn session_layer_present(&self, req: &ServiceRequest) -> bool {
        if let Some(present) = self.session_layer.get() {
            return present;
        }
        const MARKER: &str = "__wechat_auth_probe";
        let original = std::mem::take(&mut *req.extensions_mut());
        let _ = req.get_session().insert(MARKER, true);
        let mut probe = std::mem::take(&mut *req.extensions_mut());
        probe.extend(original);
        *req.extensions_mut() = probe;
        let session = req.get_session();
        let present = !session.contains_key(MARKER);
        if present {
            self.session_layer.set(Some(true));
        } else {
            session.remove(MARKER);
            error!(
                "WeChatAuth found no session: {NO_SESSION_FIX}. Every request is answered 500 \
                 until this is fixed."
            );
        }
        present
    }
}

/// The middleware's own answer to a request.
fn respond(req: ServiceRequest, res: HttpResponse) -> ServiceResponse {
    req.into_response(res)
}
