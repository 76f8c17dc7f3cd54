//! The OAuth callback: check `state`, exchange `code`, load the profile, sign in, go back.

use actix_session::SessionExt as _;
use actix_web::{
    dev::ServiceRequest,
    http::header::{self, CacheDirective},
    HttpResponse, ResponseError as _,
};
use log::{debug, info, warn};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Deserialize;

use crate::{
    authorize::{self, Challenge},
    client::WeChatClient,
    config::AppKind,
    config::WeChatConfig,
    error::{Error, ErrorKind},
    negotiate::{is_wechat, Browser, Flow},
    pending::{PendingCookies, PendingSignIn, StateMatch},
    session::{unix_now, AuthSession, SignedIn},
    telemetry,
    tokens::Scope,
    wire::ErrCode,
};

/// The callback's query. A repeated parameter is a deserialization error, hence a 400.
#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// Set on the `redirect_uri` of a restart after a lost `state`: for browsers that keep no
    /// cookie, the marker that this is the second try.
    #[serde(rename = "wxr")]
    restarted: Option<String>,
    /// The page's `#hash` route, carried by the hash interstitial.
    #[serde(rename = "wxh")]
    hash: Option<String>,
}

/// Answers the callback. Always an HTML answer: the callback is a browser navigation.
pub(crate) async fn handle(
    config: &WeChatConfig,
    client: &WeChatClient,
    req: &ServiceRequest,
) -> HttpResponse {
    let settings = &config.settings;
    let mut pending = PendingCookies::of(&settings.site, &settings.sign_in, req);
    let mut flow = None;
    let mut res = match sign_in(config, client, req, &mut pending, &mut flow).await {
        Ok((outcome, res)) => {
            telemetry::sign_in(flow, outcome);
            res
        }
        Err(err) => {
            telemetry::sign_in(flow, err.kind().code());
            if err.kind().status().is_server_error() {
                warn!("WeChat callback failed: {err}");
            } else {
                info!("WeChat callback refused: {err}");
            }
            err.error_response()
        }
    };
    pending.apply(&mut res);
    // Whatever the answer (a restart to WeChat too), the callback URL and its code stay out of
    // the `Referer` of what loads next.
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn sign_in(
    config: &WeChatConfig,
    client: &WeChatClient,
    req: &ServiceRequest,
    pending_cookies: &mut PendingCookies<'_>,
    flow: &mut Option<AppKind>,
) -> Result<(&'static str, HttpResponse), Error> {
    // Always pages: the callback is a browser navigation.
    let reply = config.settings.reply(req).as_page();
    let page = |kind| Error::new(kind, reply.clone());
    let home = format!("{}/", config.settings.site.mount_path);
    let query: CallbackQuery = serde_urlencoded::from_str(req.query_string()).map_err(|_| {
        page(ErrorKind::BadCallback("unreadable or repeated parameters")).with_link(home.clone())
    })?;
    let session = req.get_session();
    let store = AuthSession(&session);
    let now = unix_now();
    let taken = match query.state.as_deref().filter(|s| is_state(s)) {
        Some(state) => pending_cookies.take(state, req),
        None => StateMatch::Unknown,
    };
    let pending = match taken {
        StateMatch::Fresh(pending) => pending,
        // A double callback or a reload after this browser already signed in: no second
        // exchange, just go on.
        StateMatch::AlreadyUsed(pending) if signed_in_for(config, &store, pending.scope) => {
            *flow = Some(pending.app);
            return Ok((
                "already_signed_in",
                back_to(config, &pending.return_to, None),
            ));
        }
        // Never an exchange: the code is not this browser's to use.
        StateMatch::AlreadyUsed(_) | StateMatch::Unknown => {
            return match lost_state(config, req, pending_cookies, query.restarted.is_some()) {
                Some(restart) => Ok(("restarted", restart)),
                None => Err(page(ErrorKind::InvalidState).with_link(home)),
            };
        }
    };
    *flow = Some(pending.app);
    let start_again = format!("{}{}", config.settings.site.mount_path, pending.return_to);

    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(page(ErrorKind::AccessDenied).with_link(start_again));
    };
    if !is_code(&code) {
        return Err(page(ErrorKind::BadCallback("malformed code")).with_link(start_again));
    }

    // The app the sign-in was started for: its credentials exchange the code.
    let Some(app) = config.settings.apps.get(pending.app) else {
        return Err(page(ErrorKind::InvalidState).with_link(home));
    };
    let tokens = match client.exchange_code(app, &code).await {
        Ok(tokens) => tokens,
        Err(ErrorKind::WeChat { code, .. }) if code.means_stale_code() => {
            return stale_code(
                config,
                &store,
                pending_cookies,
                pending,
                code,
                start_again,
                req,
            )
            .map(|restart| ("restarted", restart));
        }
        Err(kind) => return Err(page(kind).with_link(start_again)),
    };
    if tokens.is_snapshotuser {
        // The openid is virtual: signing it in would create a phantom user.
        return Err(page(ErrorKind::SnapshotUser));
    }
    let granted = Scope::from_granted(&tokens.scope);
    let profile = if granted.has_profile() {
        let profile = client
            .user_info(&tokens.access_token, &tokens.openid)
            .await
            .map_err(|kind| page(kind).with_link(start_again.clone()))?;
        if profile.openid != tokens.openid {
            return Err(page(ErrorKind::UpstreamInvalid(
                "userinfo answered for another openid".into(),
            ))
            .with_link(start_again));
        }
        Some(profile)
    } else {
        None
    };

    let user = stronger_grant(
        store.signed_in(&config.settings.apps),
        SignedIn::new(app, tokens, profile, now),
        &config.settings.upkeep,
    );
    let granted = user.scope;
    let user = attach(config, user).await.map_err(page)?;
    // A new session id after sign-in: a session id planted before it (fixation) is worthless.
    session.renew();
    store.set_signed_in(&user).map_err(page)?;
    info!("WeChat sign-in completed ({})", user.scope);
    debug!("WeChat sign-in of openid {}", user.openid);
    if !granted.satisfies(pending.scope) {
        // Redirecting would ask again and loop; say what happened instead.
        return Err(page(ErrorKind::WeChat {
            code: ErrCode::UserUnauthorized,
            errmsg: format!("granted {granted}, the page needs {}", pending.scope),
        })
        .with_link(start_again));
    }
    Ok((
        "signed_in",
        back_to(config, &pending.return_to, query.hash.as_deref()),
    ))
}

/// A callback whose `state` this browser does not hold (its cookie lost in the webview, an old
/// tab, a shared link). In WeChat, once per browser (a short-lived cookie, and a marker in the
/// `redirect_uri` for browsers that keep none): a fresh sign-in of the configured scope, back to
/// the site's root. Elsewhere, or the second time: `None`, the page with a button.
fn lost_state(
    config: &WeChatConfig,
    req: &ServiceRequest,
    pending_cookies: &mut PendingCookies<'_>,
    marked: bool,
) -> Option<HttpResponse> {
    if !is_wechat(req.headers()) || marked || pending_cookies.restarted(req) {
        return None;
    }
    info!("a callback with a state this browser does not hold; signing in afresh, once");
    let scope = config.scope();
    let state = pending_cookies.challenge(AppKind::OfficialAccount, scope, "/".to_owned(), 0);
    pending_cookies.mark_restarted();
    Some(
        HttpResponse::Found()
            .insert_header((
                header::LOCATION,
                config.authorize_url_with(scope, &state, "wxr=1", Browser::of(req.headers())),
            ))
            .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
            .finish(),
    )
}

/// Runs the app's sign-in hook: it refuses the sign-in, or attaches its value.
async fn attach(config: &WeChatConfig, mut user: SignedIn) -> Result<SignedIn, ErrorKind> {
    let Some(hook) = &config.settings.sign_in.hook else {
        return Ok(user);
    };
    match hook(crate::WeChatUser::new(std::rc::Rc::new(user.clone()))).await {
        Ok(Some(value)) if value.len() > MAX_ATTACHED => {
            log::error!(
                "the sign-in hook attached {} bytes; at most {MAX_ATTACHED} fit the session",
                value.len()
            );
            Err(ErrorKind::Misconfigured(
                "the sign-in hook (on_sign_in) attached over 256 bytes: attach a short id and keep \
                 the rest in your own store",
            ))
        }
        Ok(value) => {
            user.attached = value;
            Ok(user)
        }
        Err(refused) => {
            info!("the app refused a WeChat sign-in: {}", refused.reason());
            Err(ErrorKind::SignInRefused)
        }
    }
}

/// The most the sign-in hook may attach: the session cookie's room.
const MAX_ATTACHED: usize = 256;

/// The sign-in to keep when this browser is already signed in: a weaker grant finishing after a
/// stronger one of the same person (a `snsapi_base` tab completing after a `snsapi_userinfo` one)
/// must not take the profile away and bring the consent page back. Another openid replaces it.
fn stronger_grant(
    current: Option<SignedIn>,
    new: SignedIn,
    upkeep: &crate::config::UpkeepSettings,
) -> SignedIn {
    let usable = |user: &SignedIn| {
        crate::upkeep::decide(user, new.checked_at, upkeep) != crate::upkeep::Upkeep::Over
    };
    match current {
        Some(current)
            if current.appid == new.appid
                && current.openid == new.openid
                && current.scope > new.scope
                && usable(&current) =>
        {
            debug!(
                "keeping the {} grant over a new {} one",
                current.scope, new.scope
            );
            current
        }
        _ => new,
    }
}

/// A used, expired or unknown `code` (back button, reload, a prefetch, a double callback).
fn stale_code(
    config: &WeChatConfig,
    store: &AuthSession<'_>,
    pending_cookies: &mut PendingCookies<'_>,
    pending: PendingSignIn,
    code: ErrCode,
    start_again: String,
    req: &ServiceRequest,
) -> Result<HttpResponse, Error> {
    let reply = &config.settings.reply(req).as_page();
    if signed_in_for(config, store, pending.scope) {
        return Ok(back_to(config, &pending.return_to, None));
    }
    if pending.restarts == 0 {
        info!("WeChat rejected a stale code ({code}); authorizing once more");
        // The same app's flow again: its authorize page, or its full-page QR sign-in.
        let flow = match pending.app {
            AppKind::Website => Flow::QrRedirect,
            _ => Flow::OfficialAccount,
        };
        let challenge = Challenge {
            scope: pending.scope,
            return_to: pending.return_to,
            restarts: pending.restarts + 1,
            keep_hash: false,
            flow,
            browser: Browser::of(req.headers()),
        };
        return Ok(authorize::start(
            config,
            pending_cookies,
            challenge,
            reply,
            String::new,
        ));
    }
    Err(Error::new(ErrorKind::CodeRejected(code), reply.clone()).with_link(start_again))
}

fn signed_in_for(config: &WeChatConfig, store: &AuthSession<'_>, scope: Scope) -> bool {
    store
        .signed_in(&config.settings.apps)
        .is_some_and(|user| user.scope.satisfies(scope))
}

/// 303 to the return-to, with the page's `#hash` route when the hash interstitial carried one.
/// `Referrer-Policy` keeps the callback URL (and its code) out of the `Referer` of whatever loads
/// next. The fragment is never left out: a browser carries the authorize URL's `#wechat_redirect`
/// through every redirect whose `Location` has none, and a hash-routed page would land on it.
fn back_to(config: &WeChatConfig, return_to: &str, hash: Option<&str>) -> HttpResponse {
    // A fragment cannot leave the origin; it is capped and encoded like any fragment.
    let hash = hash.filter(|h| h.len() <= 256).unwrap_or("");
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!(
                "{}{return_to}#{}",
                config.settings.site.mount_path,
                utf8_percent_encode(hash, FRAGMENT)
            ),
        ))
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

/// What a fragment may hold as is (RFC 3986 `fragment`, less what headers and HTML mind).
const FRAGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'\\')
    .add(b'^')
    .add(b'{')
    .add(b'}')
    .add(b'|');

/// WeChat's `state` alphabet and length.
fn is_state(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_code(s: &str) -> bool {
    s.len() <= 512 && s.bytes().all(|b| b.is_ascii_graphic())
}
