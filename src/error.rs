//! The one error type, and how it is shown: a page for browsers (`pages.rs`), JSON for API calls,
//! in the visitor's language.

use std::fmt;

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde::Serialize;

use crate::{
    config::{AppKind, Lang},
    negotiate::{Format, Reply},
    pages::{self, Page, PageKind},
    wire::ErrCode,
};

/// What went wrong. Messages never hold the appsecret or a token.
///
/// ```
/// use actix_web::http::StatusCode;
/// use actix_wechat_auth::{ErrCode, ErrorKind};
/// assert_eq!(ErrorKind::InvalidState.status(), StatusCode::BAD_REQUEST);
/// assert_eq!(
///     ErrorKind::WeChat { code: ErrCode::SystemBusy, errmsg: "system error".into() }.status(),
///     StatusCode::SERVICE_UNAVAILABLE
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The route needs a signed-in user (or a stronger scope) and there is none.
    #[error("sign-in required")]
    SignInRequired,
    /// The callback's `state` is missing, unknown, expired or already used.
    #[error("the sign-in request is invalid or has expired (state mismatch)")]
    InvalidState,
    /// The callback's query cannot be read (repeated or oversized parameters, bad encoding).
    #[error("malformed callback: {0}")]
    BadCallback(&'static str),
    /// The user declined on the consent page: the callback came without a `code`.
    #[error("the user declined to authorize")]
    AccessDenied,
    /// The app's sign-in hook refused this user.
    #[error("the app refused this sign-in")]
    SignInRefused,
    /// WeChat showed its snapshot page (快照页): the openid is virtual and the user is not signed in.
    #[error("the user only saw WeChat's snapshot page and has not authorized")]
    SnapshotUser,
    /// The callback's `code` was stale (used or expired) again after one fresh authorization.
    #[error("WeChat rejected the sign-in code ({0}) twice")]
    CodeRejected(ErrCode),
    /// WeChat answered with a non-zero `errcode`.
    #[error("WeChat error {code}: {errmsg}")]
    WeChat {
        /// The errcode.
        code: ErrCode,
        /// WeChat's errmsg, cut at 200 bytes. Logged, never shown on a page.
        errmsg: String,
    },
    /// WeChat did not answer within the configured deadline.
    #[error("WeChat did not answer in time")]
    UpstreamTimeout,
    /// WeChat could not be reached.
    #[error("WeChat could not be reached: {0}")]
    UpstreamUnreachable(String),
    /// WeChat's answer could not be read (bad status, not JSON, too large).
    #[error("WeChat sent an unreadable answer: {0}")]
    UpstreamInvalid(String),
    /// The session could not be read or written.
    #[error("session error: {0}")]
    Session(String),
    /// This user's upstream calls reached
    /// [`upstream_calls_per_minute`](crate::WeChatConfigBuilder::upstream_calls_per_minute) and the
    /// token has expired: answered 503 with `Retry-After`.
    #[error("too many upstream calls for this user this minute")]
    Throttled,
    /// The session store (Redis) cannot be reached: see [`session_store_guard`](crate::session_store_guard).
    #[error("the session store is unavailable")]
    SessionStoreUnavailable,
    /// The app is wired wrongly (wrap order, extractor without the middleware).
    #[error("misconfigured: {0}")]
    Misconfigured(&'static str),
}

impl ErrorKind {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ErrorKind::SignInRequired => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidState | ErrorKind::BadCallback(_) | ErrorKind::CodeRejected(_) => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::AccessDenied | ErrorKind::SnapshotUser | ErrorKind::SignInRefused => {
                StatusCode::FORBIDDEN
            }
            ErrorKind::WeChat { code, .. } if code.means_busy() => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::WeChat {
                code: ErrCode::ApiUnauthorized | ErrCode::UserUnauthorized,
                ..
            } => StatusCode::FORBIDDEN,
            ErrorKind::WeChat { .. } | ErrorKind::UpstreamInvalid(_) => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamUnreachable(_)
            | ErrorKind::SessionStoreUnavailable
            | ErrorKind::Throttled => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Session(_) | ErrorKind::Misconfigured(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A stable machine-readable name, the `error` field of JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::SignInRequired => "sign_in_required",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::BadCallback(_) => "bad_callback",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::SnapshotUser => "snapshot_user",
            ErrorKind::SignInRefused => "sign_in_refused",
            ErrorKind::CodeRejected(_) => "code_rejected",
            ErrorKind::WeChat { .. } => "wechat_error",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamUnreachable(_) => "upstream_unavailable",
            ErrorKind::UpstreamInvalid(_) => "upstream_invalid",
            ErrorKind::Session(_) => "session_error",
            ErrorKind::Throttled => "upstream_throttled",
            ErrorKind::SessionStoreUnavailable => "session_unavailable",
            ErrorKind::Misconfigured(_) => "misconfigured",
        }
    }

    /// The page that shows this error to a person.
    pub fn page_kind(&self) -> PageKind {
        match self {
            ErrorKind::SignInRequired => PageKind::SignInRequired,
            ErrorKind::InvalidState => PageKind::StateInvalid,
            ErrorKind::BadCallback(_) => PageKind::CallbackUnreadable,
            ErrorKind::AccessDenied => PageKind::Declined,
            ErrorKind::SnapshotUser => PageKind::Snapshot,
            ErrorKind::SignInRefused => PageKind::SignInRefused,
            ErrorKind::CodeRejected(_) => PageKind::CodeRejected,
            ErrorKind::WeChat { code, .. } if code.means_busy() => PageKind::WeChatBusy,
            ErrorKind::WeChat {
                code: ErrCode::ApiUnauthorized | ErrCode::UserUnauthorized,
                ..
            } => PageKind::ScopeNotGranted,
            ErrorKind::WeChat { .. } | ErrorKind::UpstreamInvalid(_) => PageKind::WeChatError,
            ErrorKind::UpstreamTimeout => PageKind::WeChatTimeout,
            ErrorKind::UpstreamUnreachable(_) => PageKind::WeChatUnreachable,
            ErrorKind::Session(_) | ErrorKind::Misconfigured(_) => PageKind::Misconfigured,
            ErrorKind::SessionStoreUnavailable | ErrorKind::Throttled => PageKind::Unavailable,
        }
    }
}

/// The crate's error: a kind, plus what is needed to answer it (format and links).
///
/// Implements [`ResponseError`], so handlers can return it and the middleware answers with it:
/// HTML for browsers, `{"error": …}` JSON for API requests.
///
/// ```
/// use actix_web::ResponseError;
/// use actix_wechat_auth::{Error, ErrorKind};
/// let err = Error::from(ErrorKind::AccessDenied);
/// assert_eq!(err.status_code(), 403);
/// assert_eq!(err.kind(), &ErrorKind::AccessDenied);
/// ```
#[derive(Clone)]
pub struct Error(Box<Parts>);

/// What an [`Error`] holds: boxed, so that a `Result` carrying it (an extractor's future, every
/// `?`) stays two words wide on the path where nothing fails. (`Error`'s `Debug` lists them.)
#[derive(Clone)]
struct Parts {
    kind: ErrorKind,
    reply: Reply,
    /// For a 401 JSON: the authorize URL of each flow this browser can use.
    flows: Vec<(AppKind, String)>,
    /// The WeChat authorize URL (401 JSON) or the page to start again from (HTML link).
    link: Option<String>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Parts {
            kind,
            reply,
            flows,
            link,
        } = &*self.0;
        f.debug_struct("Error")
            .field("kind", kind)
            .field("reply", reply)
            .field("flows", flows)
            .field("link", link)
            .finish()
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, reply: Reply) -> Self {
        Self(Box::new(Parts {
            kind,
            reply,
            flows: Vec::new(),
            link: None,
        }))
    }

    pub(crate) fn with_flow(mut self, app: AppKind, url: String) -> Self {
        self.0.flows.push((app, url));
        self
    }

    pub(crate) fn with_link(mut self, link: impl Into<String>) -> Self {
        self.0.link = Some(link.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Consumes the error into its kind.
    pub fn into_kind(self) -> ErrorKind {
        self.0.kind
    }
}

impl From<ErrorKind> for Error {
    /// An error shown as the default page, in Simplified Chinese (no request to negotiate with).
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind, Reply::page(Lang::ZhCn))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.kind)
    }
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: &'static str,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url: Option<&'a str>,
    /// On a developer's machine, what to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
    /// The authorize URL of each flow this browser can use, by app kind.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    flows: std::collections::BTreeMap<&'static str, &'a str>,
}

impl Error {
    /// What to fix, shown only when the configuration says this is a developer's machine:
    /// in production a misconfiguration is only "misconfigured".
    fn hint(&self) -> Option<&'static str> {
        match self.0.kind {
            ErrorKind::Misconfigured(fix) if self.0.reply.developer => Some(fix),
            _ => None,
        }
    }

    fn errcode(&self) -> Option<i64> {
        match &self.0.kind {
            ErrorKind::WeChat { code, .. } | ErrorKind::CodeRejected(code) => Some(code.code()),
            _ => None,
        }
    }

    /// The page that shows this error, for the app's renderer or the default one.
    fn page(&self) -> Page {
        let mut page = Page::new(self.0.kind.page_kind(), self.0.reply.lang);
        page.status = self.0.kind.status();
        page.link.clone_from(&self.0.link);
        page.errcode = self.errcode();
        page.code = self.0.kind.code();
        page.hint = self.hint();
        page
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.0.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = match self.0.reply.format {
            Format::Json => HttpResponse::build(self.status_code()).json(JsonError {
                error: self.0.kind.code(),
                message: self.0.kind.page_kind().text(self.0.reply.lang).message,
                errcode: self.errcode(),
                authorize_url: self.0.link.as_deref(),
                hint: self.hint(),
                flows: self
                    .0
                    .flows
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            }),
            Format::Html => pages::show(&self.page(), self.0.reply.pages.as_ref()),
        };
        let headers = res.headers_mut();
        if self.0.reply.format == Format::Json {
            pages::keep_private(headers);
        }
        if self.0.kind == ErrorKind::Throttled {
            // The per-openid budgets start over with the next minute.
            let retry_after = 60 - crate::session::unix_now() % 60;
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn json_for_api_html_for_pages_and_links_escaped() {
        let err = Error::new(ErrorKind::SignInRequired, Reply::json(Lang::En))
            .with_link("https://open.weixin.qq.com/x?a=1&b=2#wechat_redirect");
        let res = err.error_response();
        assert_eq!(res.status(), 401);
        let body = to_bytes(res.into_body()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "sign_in_required");
        assert_eq!(
            json["authorize_url"],
            "https://open.weixin.qq.com/x?a=1&b=2#wechat_redirect"
        );

        let err =
            Error::new(ErrorKind::AccessDenied, Reply::page(Lang::En)).with_link("/a?\"><script>");
        let res = err.error_response();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers().get("referrer-policy").unwrap(), "no-referrer");
        let body = String::from_utf8(to_bytes(res.into_body()).await.unwrap().to_vec()).unwrap();
        assert!(body.contains("Authorize again"));
        assert!(!body.contains("<script>"), "{body}");
    }

    #[test]
    fn statuses() {
        let wechat = |code: i64| {
            ErrorKind::WeChat {
                code: code.into(),
                errmsg: String::new(),
            }
            .status()
        };
        assert_eq!(wechat(-1), 503);
        assert_eq!(wechat(45009), 503);
        assert_eq!(wechat(40013), 502);
        assert_eq!(wechat(48001), 403);
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::UpstreamUnreachable("x".into()).status(), 503);
        assert_eq!(ErrorKind::UpstreamInvalid("x".into()).status(), 502);
        assert_eq!(ErrorKind::Misconfigured("x").status(), 500);
    }

    #[test]
    fn each_kind_is_shown_with_its_own_status() {
        for kind in [
            ErrorKind::SignInRequired,
            ErrorKind::InvalidState,
            ErrorKind::BadCallback("x"),
            ErrorKind::AccessDenied,
            ErrorKind::SnapshotUser,
            ErrorKind::CodeRejected(ErrCode::CodeUsed),
            ErrorKind::WeChat {
                code: ErrCode::SystemBusy,
                errmsg: String::new(),
            },
            ErrorKind::WeChat {
                code: ErrCode::UserUnauthorized,
                errmsg: String::new(),
            },
            ErrorKind::UpstreamTimeout,
            ErrorKind::UpstreamUnreachable("x".into()),
            ErrorKind::UpstreamInvalid("x".into()),
            ErrorKind::Session("x".into()),
            ErrorKind::SessionStoreUnavailable,
            ErrorKind::Throttled,
            ErrorKind::Misconfigured("x"),
        ] {
            let page = Page::new(kind.page_kind(), Lang::ZhCn);
            assert_eq!(page.status, kind.status(), "{kind:?}");
        }
    }
}
