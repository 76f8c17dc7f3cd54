//! The [`WeChatAuth`] middleware: the request path, top to bottom.

use std::{
    cell::Cell,
    future::{ready, Ready},
    rc::Rc,
    sync::Arc,
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
    authorize, callback,
    client::WeChatClient,
    config::WeChatConfig,
    error::{Error, ErrorKind, Format},
    extractor::{AuthContext, WeChatUser},
    pending::PendingCookies,
    session::{unix_now, AuthSession, Lookup, ParsedSignIns, SignedIn},
    tokens::Scope,
    upkeep::{decide, AfterCheck, AfterRefresh, Upkeep, Upstream},
};

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
    /// need more (or less) than the rest. A `snsapi_base` session that reaches a
    /// `snsapi_userinfo` route is sent to authorize again. The callback path is answered by
    /// whichever instance sees it, so one must cover it (an App-level
    /// [`optional`](Self::optional) instance does).
    ///
    /// ```
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
            guard: Rc::new(Guard {
                client: WeChatClient::new(&self.shared.config),
                shared: Arc::clone(&self.shared),
                requirement: self.requirement,
                session_layer: Cell::new(None),
                parsed: ParsedSignIns::default(),
            }),
        }))
    }
}

/// The per-worker service made by [`WeChatAuth`].
pub struct WeChatAuthMiddleware<S> {
    service: Rc<S>,
    guard: Rc<Guard>,
}

/// The per-worker state of one instance.
struct Guard {
    client: WeChatClient,
    shared: Arc<Shared>,
    requirement: Requirement,
    /// Whether actix-session's middleware runs before this one; found on the first request.
    session_layer: Cell<Option<bool>>,
    parsed: ParsedSignIns,
}

impl<S, B> Service<ServiceRequest> for WeChatAuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let guard = Rc::clone(&self.guard);
        Box::pin(async move {
            let config = &guard.shared.config;

            // 1. Paths the app keeps public. Every method is gated alike, `OPTIONS` too: nothing in
            // a request tells a real CORS preflight from a forged one, so preflights are answered
            // by a CORS middleware wrapped outside this one (see the crate docs).
            if config.is_excluded(&req) {
                return forward(&service, req).await;
            }
            // How to answer, decided only when the middleware answers itself: on a signed-in
            // request it is never needed.
            let format = |req: &ServiceRequest| {
                if config.is_api_request(req) {
                    Format::Json
                } else {
                    Format::Html
                }
            };

            // 2. Without the session there is nothing to do but say so.
            if !guard.session_layer_present(&req) {
                let err = Error::new(
                    ErrorKind::Misconfigured("SessionMiddleware must wrap outside WeChatAuth"),
                    format(&req),
                );
                return Ok(respond(req, err.error_response()));
            }

            // 3. The OAuth callback is ours to answer.
            if req.path() == config.callback_path() {
                let res = callback::handle(config, &guard.client, &req).await;
                return Ok(respond(req, res));
            }

            // 4. Who is asking, with a token fresh enough to use.
            let outcome = match guard.resolved_by_outer_instance(&req) {
                Some(outcome) => outcome,
                None => {
                    let outcome = guard
                        .current_user(&req)
                        .await
                        .map(|u| u.map(WeChatUser::new));
                    let format = (!matches!(outcome, Ok(Some(_)))).then(|| format(&req));
                    req.extensions_mut().insert(AuthContext {
                        owner: guard.owner(),
                        outcome: outcome.clone(),
                        format,
                    });
                    outcome
                }
            };
            let user = match outcome {
                Ok(user) => user,
                Err(kind) if guard.requirement == Requirement::Optional => {
                    warn!("WeChat token upkeep failed on an optional route: {kind}");
                    None
                }
                Err(kind) => {
                    let err = Error::new(kind, format(&req));
                    return Ok(respond(req, err.error_response()));
                }
            };

            // 5. Enough for this route, or off to sign in.
            match guard.requirement {
                Requirement::Scope(needed)
                    if !user.is_some_and(|u| u.scope().satisfies(needed)) =>
                {
                    let format = format(&req);
                    let return_to = authorize::return_to_of(config, &req, format);
                    let mut pending = PendingCookies::of(config, &req);
                    let mut res =
                        authorize::start(config, &mut pending, needed, return_to, 0, format);
                    pending.apply(&mut res);
                    Ok(respond(req, res))
                }
                _ => forward(&service, req).await,
            }
        })
    }
}

impl Guard {
    fn owner(&self) -> usize {
        Arc::as_ptr(&self.shared.config.inner) as usize
    }

    /// What an outer instance of the same configuration already found for this request.
    fn resolved_by_outer_instance(
        &self,
        req: &ServiceRequest,
    ) -> Option<Result<Option<WeChatUser>, ErrorKind>> {
        let extensions = req.extensions();
        let context = extensions.get::<AuthContext>()?;
        (context.owner == self.owner()).then(|| context.outcome.clone())
    }

    /// The signed-in user, after whatever upkeep the token needs: nothing, a `/sns/auth` check,
    /// or a refresh. `Ok(None)` when anonymous or when the sign-in ran out.
    async fn current_user(&self, req: &ServiceRequest) -> Result<Option<Rc<SignedIn>>, ErrorKind> {
        let session = req.get_session();
        let store = AuthSession(&session);
        let settings = &self.shared.config.inner;
        let now = unix_now();
        let (mut user, stored) = match self.parsed.lookup(&session) {
            Lookup::Absent => return Ok(None),
            Lookup::Known(user) if decide(&user, now, settings) == Upkeep::Fresh => {
                return Ok(Some(user))
            }
            Lookup::Known(user) => ((*user).clone(), None),
            Lookup::Unknown(stored) => match store.signed_in(&settings.appid) {
                Some(user) => (user, Some(stored)),
                None => return Ok(None),
            },
        };
        let upstream = &self.shared.upstream;
        let upkeep = upstream.plan(&user, now, settings);
        // Openids are personal data: named at debug level only.
        debug!("token upkeep for {}: {upkeep:?}", user.openid);
        let still_usable = match upkeep {
            Upkeep::Over => {
                info!("a sign-in is over (its age, or its refresh token was refused); signing out");
                store.sign_out();
                return Ok(None);
            }
            Upkeep::Fresh => {
                let user = Rc::new(user);
                if let Some(stored) = stored {
                    self.parsed.remember(stored, Rc::clone(&user));
                }
                return Ok(Some(user));
            }
            Upkeep::CheckDue => match upstream.check(&self.client, &user, now, settings).await {
                AfterCheck::Valid | AfterCheck::Unknown => {
                    user.checked_at = now;
                    None
                }
                AfterCheck::Invalid => Some(false),
            },
            Upkeep::RefreshEarly => Some(true),
            Upkeep::RefreshNow => Some(false),
        };
        if let Some(still_usable) = still_usable {
            match upstream
                .refresh(&self.client, &user, still_usable, now, settings)
                .await
            {
                AfterRefresh::Refreshed(tokens) => user.apply_refresh(&tokens, now),
                AfterRefresh::KeepCurrent => return Ok(Some(Rc::new(user))),
                AfterRefresh::SignOut => {
                    info!("WeChat refused to refresh a sign-in; signing out");
                    store.sign_out();
                    return Ok(None);
                }
                AfterRefresh::Fail(kind) => return Err(kind),
            }
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
                "WeChatAuth found no session: actix-session's SessionMiddleware must wrap outside \
                 WeChatAuth. Call .wrap(WeChatAuth) first and .wrap(SessionMiddleware) after it \
                 (the last .wrap runs first). Every request is answered 500 until this is fixed."
            );
        }
        present
    }
}

/// Calls the app. (Handler errors reach us as responses: actix's routing converts them. Only an
/// inner middleware's `Err` passes through, and with it actix-session drops this request's writes;
/// the request after it then refreshes again.)
async fn forward<S, B>(
    service: &Rc<S>,
    req: ServiceRequest,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    service
        .call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// An early answer. Returned as `Ok`: actix-session drops the session writes (the pending `state`)
/// of a request whose service returned `Err`.
fn respond<B>(req: ServiceRequest, res: HttpResponse) -> ServiceResponse<EitherBody<B>> {
    req.into_response(res).map_into_right_body()
}
