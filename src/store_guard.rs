//! A clear 503 when the session store (Redis) is down, instead of actix-session's bare 500.

use actix_session::storage::{LoadError, SaveError, UpdateError};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::InternalError,
    middleware::Next,
};
use log::error;

use crate::{
    error::{Error, ErrorKind},
    negotiate::Reply,
};

/// Answers requests whose session could not be loaded or saved (the store is unreachable) with a
/// 503 — an HTML page, or JSON for scripts — and logs the cause, instead of actix-session's empty
/// 500. Wrap it outside `SessionMiddleware` with [`from_fn`](actix_web::middleware::from_fn).
///
/// It runs before any configuration is at hand, so it tells scripts by their headers alone:
/// `Accept` preferring JSON, `X-Requested-With: XMLHttpRequest`, or a `Sec-Fetch-Mode` other
/// than `navigate` (which every browser's `fetch` sends).
///
/// Nothing hangs past the store's own timeouts (configure the pool's `wait`, `create` and
/// `recycle` timeouts), and service resumes by itself when the store comes back.
///
/// ```
/// use actix_session::{storage::CookieSessionStore, SessionMiddleware};
/// use actix_web::{cookie::Key, middleware::from_fn, App};
/// use actix_wechat_auth::session_store_guard;
///
/// let app = App::new()
///     .wrap(SessionMiddleware::new(CookieSessionStore::default(), Key::generate()))
///     .wrap(from_fn(session_store_guard));
/// ```
pub async fn session_store_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Decided before the request moves on: an `Err` comes back without it.
    let reply = Reply::guess(&req);
    let path = req.path().to_owned();
    next.call(req).await.map_err(|err| {
        if is_store_failure(&err) {
            error!("session store unavailable on {path}: {err:?}");
            Error::new(ErrorKind::SessionStoreUnavailable, reply).into()
        } else {
            err
        }
    })
}

/// actix-session wraps every store error in an opaque `InternalError` (500).
fn is_store_failure(err: &actix_web::Error) -> bool {
    err.as_error::<InternalError<LoadError>>().is_some()
        || err.as_error::<InternalError<SaveError>>().is_some()
        || err.as_error::<InternalError<UpdateError>>().is_some()
        || err.as_error::<InternalError<anyhow::Error>>().is_some()
}
