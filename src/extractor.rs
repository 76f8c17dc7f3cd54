//! The [`WeChatUser`] extractor, and what the middleware leaves in the request for it.

use std::{cell::RefCell, fmt, future::Ready, rc::Rc};

use actix_web::{
    dev::{Extensions, Payload, ServiceRequest},
    FromRequest, HttpMessage as _, HttpRequest,
};
use log::error;

use crate::{
    config::AppKind,
    error::{Error, ErrorKind},
    negotiate::Reply,
    session::SignedIn,
    tokens::{AccessToken, Scope},
    wire::Profile,
};

/// The signed-in WeChat user of a request, put there by [`WeChatAuth`](crate::WeChatAuth).
///
/// Take it as a handler argument. On a route that does not require sign-in (an
/// [`optional`](crate::WeChatAuth::optional) instance), take `Option<WeChatUser>`. Cloning is cheap.
///
/// ```
/// use actix_web::{web, App, HttpResponse};
/// use actix_wechat_auth::WeChatUser;
///
/// async fn me(user: WeChatUser) -> HttpResponse {
///     let nickname = user.profile().map_or("", |p| p.nickname.as_str());
///     HttpResponse::Ok().json(serde_json::json!({ "openid": user.openid(), "nickname": nickname }))
/// }
///
/// async fn home(user: Option<WeChatUser>) -> String {
///     match user {
///         Some(user) => format!("hello {}", user.openid()),
///         None => "hello stranger".to_owned(),
///     }
/// }
///
/// let app = App::new().route("/me", web::get().to(me)).route("/", web::get().to(home));
/// ```
#[derive(Clone)]
pub struct WeChatUser(Rc<SignedIn>);

impl WeChatUser {
    pub(crate) fn new(user: Rc<SignedIn>) -> Self {
        Self(user)
    }

    /// The user's openid for the app the sign-in came from ([`app`](Self::app)): openids are
    /// per app, so the same person has another one in the other app.
    pub fn openid(&self) -> &str {
        &self.0.openid
    }

    /// The kind of app the sign-in came from: the Official Account (inside WeChat) or the Website
    /// app (QR sign-in outside WeChat).
    pub fn app(&self) -> AppKind {
        self.0.app
    }

    /// The appid of the app the sign-in came from.
    pub fn appid(&self) -> &str {
        &self.0.appid
    }

    /// What the app's [sign-in hook](crate::WeChatConfigBuilder::on_sign_in) attached to this
    /// sign-in (its own user id, say).
    pub fn attached(&self) -> Option<&str> {
        self.0.attached.as_deref()
    }

    /// The unionid: one value for the same person across every app bound to one Open Platform
    /// account, so **the key to store users by**. `None` for an Official Account sign-in with
    /// `snsapi_base`, or when the account is not bound to an Open Platform account.
    pub fn unionid(&self) -> Option<&str> {
        self.0.unionid.as_deref()
    }

    /// The scope the user granted.
    pub fn scope(&self) -> Scope {
        self.0.scope
    }

    /// The profile (`None` for snsapi_base sign-ins).
    pub fn profile(&self) -> Option<&Profile> {
        self.0.profile.as_ref()
    }

    /// The current web access token, fresh as of this request, for calling other sns APIs.
    pub fn access_token(&self) -> &AccessToken {
        &self.0.access_token
    }
}

impl fmt::Debug for WeChatUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeChatUser")
            .field("openid", &self.openid())
            .field("unionid", &self.unionid())
            .field("app", &self.app())
            .field("scope", &self.scope())
            .field("profile", &self.profile())
            .field("access_token", self.access_token())
            .finish()
    }
}

/// What a [`WeChatAuth`](crate::WeChatAuth) instance learned about a request; its presence also
/// tells the extractor that the middleware ran.
#[derive(Clone)]
pub(crate) struct AuthContext {
    /// The configuration that resolved it, so that nested instances of the same configuration do
    /// not resolve the same request twice.
    pub(crate) config_id: usize,
    /// The user (`None`: anonymous), or why the token upkeep failed.
    pub(crate) outcome: Result<Option<WeChatUser>, ErrorKind>,
    /// How to answer when there is no user to hand over (decided only then).
    pub(crate) reply: Option<Reply>,
    /// Where the "sign-in required" page sends the visitor (decided only then).
    pub(crate) sign_in: Option<String>,
}

/// Where a worker leaves each request's [`AuthContext`]: request-scoped data containers
/// (`ServiceRequest::add_data_container`) that it reuses.
///
/// Why not the request's extensions: a fourth entry there (after actix-session's two and the
/// method guard's) makes actix grow that map on every request, since each request starts with
/// an empty one, and the entry is a box of its own. A container the worker made before costs
/// none of that: it is free again once actix drops the request that held it (when its strong
/// count is back to one), and its context is then overwritten in place; till then a free one
/// still holds its last request's user (`KnownSignIns` holds the worker's recent sign-ins too).
///
/// The push needs the only reference to the request, as actix's own routing does (App and scope
/// routers panic without it); only a middleware wrapped on the same resource, outside
/// `WeChatAuth`, that keeps a clone of the `HttpRequest` across its call can break that (see
/// `WeChatAuth`'s docs).
pub(crate) struct ContextSlots {
    slots: RefCell<Vec<Rc<Extensions>>>,
}

impl ContextSlots {
    /// Containers kept per instance and worker: more than the requests a worker has in flight
    /// at once in most apps; past them, each request gets a container of its own.
    const KEPT: usize = 64;

    /// Leaves `context` for the extractor and for inner instances, in the first free container:
    /// usually the first, whose request ended before this one began, so the allocator gets back
    /// the memory of the context this replaces while it is still in cache, and no more
    /// containers (each keeping its last user till reused) are kept than requests were ever in
    /// flight at once, at most `KEPT`.
    pub(crate) fn leave(&self, req: &mut ServiceRequest, context: AuthContext) {
        let mut slots = self.slots.borrow_mut();
        for slot in slots.iter_mut() {
            if let Some(kept) = Rc::get_mut(slot).and_then(|free| free.get_mut::<AuthContext>()) {
                *kept = context;
                req.add_data_container(Rc::clone(slot));
                return;
            }
        }
        let mut container = Extensions::new();
        container.insert(context);
        let container = Rc::new(container);
        if slots.len() < Self::KEPT {
            slots.push(Rc::clone(&container));
        }
        req.add_data_container(container);
    }
}

impl Default for ContextSlots {
    fn default() -> Self {
        Self {
            slots: RefCell::new(Vec::with_capacity(Self::KEPT)),
        }
    }
}

impl AuthContext {
    /// What an instance left for this request: the innermost one's.
    pub(crate) fn of(req: &HttpRequest) -> Option<&Self> {
        req.app_data::<Self>()
    }

    /// Runs `with` on what an instance left for this request or, with no instance in front,
    /// on what the test kit's `FakeUser` put in the request's extensions (its API takes a
    /// shared request, which cannot be given a data container).
    fn with<R>(req: &HttpRequest, with: impl FnOnce(Option<&Self>) -> R) -> R {
        match Self::of(req) {
            Some(context) => with(Some(context)),
            None => with(req.extensions().get::<Self>()),
        }
    }
}

impl FromRequest for WeChatUser {
    type Error = Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(AuthContext::with(req, |context| match context {
            Some(AuthContext {
                outcome,
                reply,
                sign_in,
                ..
            }) => {
                let reply = || reply.clone().unwrap_or_else(|| Reply::guess(req));
                match outcome {
                    Ok(Some(user)) => Ok(user.clone()),
                    Ok(None) => {
                        let err = Error::new(ErrorKind::SignInRequired, reply());
                        Err(match sign_in {
                            Some(link) => err.with_link(link.clone()),
                            None => err,
                        })
                    }
                    Err(kind) => Err(Error::new(kind.clone(), reply())),
                }
            }
            None => {
                warn_unwrapped_once(req);
                Err(Error::new(
                    ErrorKind::Misconfigured(UNWRAPPED_FIX),
                    Reply::guess(req),
                ))
            }
        }))
    }
}

/// What to do when `WeChatUser` is extracted where no `WeChatAuth` runs.
const UNWRAPPED_FIX: &str = "WeChatUser (or Option<WeChatUser>) is taken on a route no WeChatAuth \
    wraps: add .wrap(WeChatAuth::new(config)) to the App, scope or resource that serves it, inside \
    SessionMiddleware";

/// Logs the missing `WeChatAuth` once per worker: `Option<WeChatUser>` turns the error into `None`
/// on every request, and one line per request would bury the log.
fn warn_unwrapped_once(req: &HttpRequest) {
    thread_local!(static LOGGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if !LOGGED.replace(true) {
        error!(
            "{UNWRAPPED_FIX} (first seen on {}; logged once per worker)",
            req.path()
        );
    }
}
