//! The one error type, and how it is shown: a small HTML page for browsers, JSON for API calls.

use std::fmt;

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde::Serialize;

use crate::{negotiate::Format, wire::ErrCode};

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
            ErrorKind::AccessDenied | ErrorKind::SnapshotUser => StatusCode::FORBIDDEN,
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

    /// What a person is told: plain words, no upstream detail.
    fn public_message(&self) -> &'static str {
        match self {
            ErrorKind::SignInRequired => "Please sign in with WeChat to continue.",
            ErrorKind::InvalidState => {
                "This sign-in link is invalid or has expired. Please start again."
            }
            ErrorKind::BadCallback(_) => {
                "The sign-in answer could not be read. Please start again."
            }
            ErrorKind::AccessDenied => "You declined to sign in with WeChat.",
            ErrorKind::SnapshotUser => {
                "You are viewing a preview (snapshot) of this page. Tap \"Use full service\" \
                 (使用完整服务) at the bottom of the page and allow sign-in to continue."
            }
            ErrorKind::CodeRejected(_) => {
                "WeChat could not confirm this sign-in. Please try again."
            }
            ErrorKind::WeChat { code, .. } if code.means_busy() => {
                "WeChat is busy right now. Please try again in a moment."
            }
            ErrorKind::WeChat { .. } | ErrorKind::UpstreamInvalid(_) => {
                "WeChat sign-in failed. Please try again later."
            }
            ErrorKind::UpstreamTimeout | ErrorKind::UpstreamUnreachable(_) => {
                "WeChat cannot be reached right now. Please try again in a moment."
            }
            ErrorKind::Session(_) | ErrorKind::Misconfigured(_) => {
                "Sign-in is not available because of a server error."
            }
            ErrorKind::SessionStoreUnavailable | ErrorKind::Throttled => {
                "Sign-in is briefly unavailable. Please try again in a moment."
            }
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
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    format: Format,
    /// The WeChat authorize URL (401 JSON) or the page to start again from (HTML link).
    link: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, format: Format) -> Self {
        Self {
            kind,
            format,
            link: None,
        }
    }

    pub(crate) fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Consumes the error into its kind.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind, Format::Html)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
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
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
        if self.kind == ErrorKind::Throttled {
            // The per-openid budgets start over with the next minute.
            let retry_after = 60 - crate::session::unix_now() % 60;
            res.insert_header((header::RETRY_AFTER, retry_after));
        }
        let errcode = match &self.kind {
            ErrorKind::WeChat { code, .. } | ErrorKind::CodeRejected(code) => Some(code.code()),
            _ => None,
        };
        match self.format {
            Format::Json => res.json(JsonError {
                error: self.kind.code(),
                message: self.kind.public_message(),
                errcode,
                authorize_url: self.link.as_deref(),
            }),
            Format::Html => res
                .content_type(header::ContentType::html())
                .body(html_page(&self.kind, errcode, self.link.as_deref())),
        }
    }
}

fn html_page(kind: &ErrorKind, errcode: Option<i64>, link: Option<&str>) -> String {
    let status = kind.status();
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = match errcode {
        Some(code) => format!("<p class=\"code\">{} · WeChat {code}</p>", kind.code()),
        None => format!("<p class=\"code\">{}</p>", kind.code()),
    };
    let action = match (kind, link) {
        (ErrorKind::SignInRequired, Some(link)) => format!(
            "<p><a class=\"btn\" href=\"{}\">Sign in with WeChat</a></p>",
            html_escape::encode_double_quoted_attribute(link)
        ),
        (_, Some(link)) => format!(
            "<p><a class=\"btn\" href=\"{}\">Try again</a></p>",
            html_escape::encode_double_quoted_attribute(link)
        ),
        (_, None) => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{code} {title}</title><style>body{{font-family:system-ui,sans-serif;margin:0;\
         padding:3em 1.5em;text-align:center;color:#222}}h1{{font-size:1.3em}}.code{{color:#888;\
         font-size:.8em}}.btn{{display:inline-block;margin-top:1em;padding:.7em 1.6em;\
         background:#07c160;color:#fff;border-radius:6px;text-decoration:none}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p>{action}{detail}</body></html>",
        code = status.as_u16(),
        message = html_escape::encode_text(kind.public_message()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn json_for_api_html_for_pages_and_links_escaped() {
        let err = Error::new(ErrorKind::SignInRequired, Format::Json)
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

        let err = Error::new(ErrorKind::AccessDenied, Format::Html).with_link("/a?\"><script>");
        let res = err.error_response();
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers().get("referrer-policy").unwrap(), "no-referrer");
        let body = String::from_utf8(to_bytes(res.into_body()).await.unwrap().to_vec()).unwrap();
        assert!(body.contains("Try again"));
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
}
