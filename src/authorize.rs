//! Starting a sign-in: a `state` recorded in a pending sign-in cookie, then the way to sign in
//! that this browser can use (WeChat's authorize page, the QR sign-in, or the open-in-WeChat
//! page), or for API calls a 401 JSON carrying its URL.

use actix_web::{
    dev::ServiceRequest,
    http::header::{self, CacheDirective},
    HttpResponse, ResponseError as _,
};
use url::Url;

use crate::{
    config::{AppKind, Settings, Site, WeChatConfig},
    error::{Error, ErrorKind},
    negotiate::{Browser, Flow, Format, Reply},
    pages::{self, Page, PageKind},
    pending::PendingCookies,
    return_to,
    tokens::{CsrfState, Scope},
};

/// Where a challenged request should come back to: the page itself, or for an API call the page
/// that made it (its same-origin `Referer`), else `/`.
pub(crate) fn return_to_of(site: &Site, req: &ServiceRequest, format: Format) -> String {
    match format {
        Format::Html => return_to::for_request(req.path(), req.query_string()),
        Format::Json => referring_page(site, req).unwrap_or_else(|| "/".to_owned()),
    }
}

fn referring_page(site: &Site, req: &ServiceRequest) -> Option<String> {
    let referer = Url::parse(req.headers().get(header::REFERER)?.to_str().ok()?).ok()?;
    if referer.origin().ascii_serialization() != site.public_origin {
        return None;
    }
    let path = referer.path().strip_prefix(site.mount_path.as_str())?;
    path.starts_with('/')
        .then(|| return_to::for_request(path, referer.query().unwrap_or("")))
}

/// The sign-in route's `?return_to=`: a same-origin path, else `/`.
pub(crate) fn requested_return_to(req: &ServiceRequest) -> String {
    #[derive(serde::Deserialize)]
    struct Query {
        return_to: Option<String>,
    }
    let asked = serde_urlencoded::from_str::<Query>(req.query_string())
        .ok()
        .and_then(|q| q.return_to);
    return_to::same_origin_path(asked.as_deref().unwrap_or("/")).to_owned()
}

/// The sign-in route's URL for coming back to this request's page (a page's "Sign in" link).
pub(crate) fn sign_in_link(settings: &Settings, req: &ServiceRequest) -> String {
    let back = return_to::for_request(req.path(), req.query_string());
    format!(
        "{}{}?return_to={}",
        settings.site.mount_path,
        settings.sign_in.sign_in_path,
        percent_encoding::utf8_percent_encode(&back, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A sign-in to start.
pub(crate) struct Challenge {
    /// The scope the route needs (a Website app sign-in is always `snsapi_login`, which
    /// satisfies every route).
    pub(crate) scope: Scope,
    /// A same-origin path (+query), already checked.
    pub(crate) return_to: String,
    /// How many times a stale code already restarted it.
    pub(crate) restarts: u8,
    /// Answer a page with the interstitial that carries the `#hash` route along.
    pub(crate) keep_hash: bool,
    /// How this browser signs in.
    pub(crate) flow: Flow,
    pub(crate) browser: Browser,
}

/// Records the pending sign-in(s) of `challenge` in `pending` and answers with the way to sign
/// in: a redirect, one of the sign-in pages, or for API calls a 401 JSON with the authorize URL
/// of each flow the browser can use. (The caller puts `pending`'s cookies on the answer.)
pub(crate) fn start(
    config: &WeChatConfig,
    pending: &mut PendingCookies<'_>,
    challenge: Challenge,
    reply: &Reply,
    page_url: impl FnOnce() -> String,
) -> HttpResponse {
    let Challenge {
        scope,
        return_to,
        restarts,
        keep_hash,
        flow,
        browser,
    } = challenge;
    let website = config.settings.apps.get(AppKind::Website).is_some();
    // The URL this browser can sign in with, and which app it belongs to.
    let (app, url) = if flow == Flow::OfficialAccount {
        let state = pending.challenge(AppKind::OfficialAccount, scope, return_to, restarts);
        if reply.format == Format::Html && keep_hash {
            return hash_interstitial(config, scope, &state, reply, browser);
        }
        (
            Some(AppKind::OfficialAccount),
            config.authorize_url_in(scope, &state, browser),
        )
    } else if website {
        let state = pending.challenge(AppKind::Website, Scope::Login, return_to, restarts);
        let url = config
            .qrconnect_url(&state)
            .expect("a Website app is configured");
        if flow == Flow::QrPage && reply.format == Format::Html {
            let mut page = Page::new(PageKind::QrSignIn, reply.lang).with_link(url);
            page.qr_frame = config.qr_frame_url(&state);
            return pages::show(&page, reply.pages.as_ref());
        }
        (Some(AppKind::Website), url)
    } else {
        (None, String::new())
    };
    match (reply.format, flow) {
        (Format::Json, _) => {
            let err = Error::new(ErrorKind::SignInRequired, reply.clone());
            match app {
                Some(app) => err.with_flow(app, url.clone()).with_link(url),
                None => err,
            }
            .error_response()
        }
        (Format::Html, Flow::OpenInWeChat) => {
            let mut page = Page::new(PageKind::OpenInWeChat, reply.lang);
            page.page_url = Some(page_url());
            page.link = app.map(|_| url);
            pages::show(&page, reply.pages.as_ref())
        }
        (Format::Html, _) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
            .finish(),
    }
}

/// A page that goes on to WeChat at once, adding the page's `#hash` (which the browser never
/// sent) to the `redirect_uri` as `wxh`, so that the callback can land on it. Without script, its
/// link goes on without the hash.
fn hash_interstitial(
    config: &WeChatConfig,
    scope: Scope,
    state: &CsrfState,
    reply: &Reply,
    browser: Browser,
) -> HttpResponse {
    let site = &config.settings.site;
    let authorize_url = config.authorize_url_in(scope, state, browser);
    // JSON strings are JavaScript strings; `<` is escaped so that nothing closes the script.
    let js = |s: &str| {
        serde_json::to_string(s)
            .unwrap_or_default()
            .replace('<', "\\u003c")
    };
    let nonce = CsrfState::random();
    let text = crate::pages::PageKind::SignInRequired.text(reply.lang);
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title></head><body>\
         <script nonce=\"{nonce}\">(function(){{var h=location.hash.slice(1),r={redirect};\
         if(h&&h.length<=256){{r+='?wxh='+encodeURIComponent(h);}}\
         location.replace({base}+encodeURIComponent(r)+{rest});}})();</script>\
         <noscript><a href=\"{link}\">{action}</a></noscript></body></html>",
        lang = crate::pages::html_lang(reply.lang),
        title = html_escape::encode_text(text.title),
        nonce = nonce.as_str(),
        redirect = js(&site.redirect_uri),
        base = js(&site.authorize_base),
        rest = js(&format!(
            "&response_type=code&scope={scope}{}",
            config.authorize_tail(state, browser)
        )),
        link = html_escape::encode_double_quoted_attribute(&authorize_url),
        action = html_escape::encode_text(text.action.unwrap_or(text.title)),
    );
    HttpResponse::Ok()
        .content_type(header::ContentType::html())
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; script-src 'nonce-{}'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
                nonce.as_str()
            ),
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}
