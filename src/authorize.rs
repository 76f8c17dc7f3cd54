//! Starting a sign-in: a `state` recorded in a pending sign-in cookie, then a 302 to WeChat's
//! authorize page for pages, or a 401 JSON carrying that URL for API calls.

use actix_web::{
    dev::ServiceRequest,
    http::header::{self, CacheDirective},
    HttpResponse, ResponseError as _,
};
use url::Url;

use crate::{
    config::{Site, WeChatConfig},
    error::{Error, ErrorKind},
    negotiate::{Format, Reply},
    pending::PendingCookies,
    return_to,
    tokens::Scope,
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

/// Records a pending sign-in in `pending` and answers with the way to WeChat's authorize page.
/// (The caller puts `pending`'s cookies on the answer.)
pub(crate) fn start(
    config: &WeChatConfig,
    pending: &mut PendingCookies<'_>,
    scope: Scope,
    return_to: String,
    restarts: u8,
    reply: &Reply,
) -> HttpResponse {
    let state = pending.challenge(scope, return_to, restarts);
    let authorize_url = config.authorize_url(scope, &state);
    match reply.format {
        Format::Html => HttpResponse::Found()
            .insert_header((header::LOCATION, authorize_url))
            .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
            .finish(),
        Format::Json => Error::new(ErrorKind::SignInRequired, reply.clone())
            .with_link(authorize_url)
            .error_response(),
    }
}
