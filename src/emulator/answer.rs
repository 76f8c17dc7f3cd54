//! What an emulated endpoint answers before it becomes an HTTP response: API bodies, WeChat's error page, redirects.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::{stream, StreamExt};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::state::random_rid;
use super::Answered;

/// How long a stalled answer ([`Fault::StallBody`](super::Fault::StallBody)) stalls before the
/// connection is dropped.
const STALL_FOR: Duration = Duration::from_secs(120);

pub(crate) const TEXT_PLAIN: &str = "text/plain";
pub(crate) const TEXT_HTML: &str = "text/html; charset=utf-8";
/// The header carrying an error page's code.
const ERROR_HEADER: &str = "x-wechat-error";

/// A complete answer, before it becomes an `HttpResponse` (normal or stalled).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// For the call log.
    pub answered: Answered,
    /// For the call log.
    pub openid: Option<String>,
}

/// The outcome of an sns API call: the JSON body and what goes to the call log.
#[derive(Debug, Clone)]
pub(crate) struct ApiOutcome {
    pub body: String,
    pub answered: Answered,
    pub openid: Option<String>,
}

impl ApiOutcome {
    pub(crate) fn ok(body: String, openid: Option<String>) -> Self {
        ApiOutcome {
            body,
            answered: Answered::Ok,
            openid,
        }
    }

    /// `{"errcode":N,"errmsg":"…, rid: …"}` (`-1` gets exactly `"system error"`).
    pub(crate) fn err(errcode: i64, openid: Option<String>) -> Self {
        let msg = if errcode == -1 {
            errmsg(errcode).to_owned()
        } else {
            format!("{}, rid: {}", errmsg(errcode), random_rid())
        };
        ApiOutcome {
            body: serde_json::json!({ "errcode": errcode, "errmsg": msg }).to_string(),
            answered: Answered::ErrCode(errcode),
            openid,
        }
    }

    /// `value` as the JSON body of a successful answer.
    pub(crate) fn json<T: serde::Serialize>(value: &T, openid: Option<String>) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => ApiOutcome::ok(body, openid),
            // Serializing the plain answer structs cannot fail; answer "busy" just in case.
            Err(_) => ApiOutcome::err(-1, openid),
        }
    }
}

/// WeChat's message for an errcode (without the `rid` suffix).
fn errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        0 => "ok",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40030 => "invalid refresh_token",
        40097 => "invalid args",
        40125 => "invalid appsecret",
        40163 => "code been used",
        41001 => "access_token missing",
        41002 => "appid missing",
        41003 => "refresh_token missing",
        41004 => "appsecret missing",
        41008 => "missing code",
        41009 => "missing openid",
        42001 => "access_token expired",
        42002 => "refresh_token expired",
        42003 => "code expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        48001 => "api unauthorized",
        50001 => "user unauthorized",
        _ => "emulated error",
    }
}

/// An authorize-page error: code and message.
#[derive(Debug, Clone)]
pub(crate) struct PageError {
    pub code: i64,
    pub message: Cow<'static, str>,
}

impl PageError {
    pub(crate) fn new(code: i64, message: impl Into<Cow<'static, str>>) -> Self {
        PageError {
            code,
            message: message.into(),
        }
    }
}

impl From<PageError> for Answer {
    fn from(e: PageError) -> Self {
        Answer::error_page(e.code, &e.message)
    }
}

impl Answer {
    /// An sns API answer: HTTP 200, `text/plain`, JSON body.
    pub(crate) fn api(outcome: ApiOutcome) -> Self {
        Answer {
            status: StatusCode::OK,
            content_type: TEXT_PLAIN,
            headers: Vec::new(),
            body: outcome.body,
            answered: outcome.answered,
            openid: outcome.openid,
        }
    }

    /// An HTML page.
    pub(crate) fn html(status: StatusCode, body: String) -> Self {
        Answer {
            status,
            content_type: TEXT_HTML,
            headers: vec![("cache-control", "no-store".to_owned())],
            body,
            answered: Answered::Ok,
            openid: None,
        }
    }

    /// A page styled like WeChat's: the phone viewport, WeChat's font, `style` and `body`.
    pub(crate) fn page(status: StatusCode, title: &str, style: &str, body: &str) -> Self {
        let html = format!(
            r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=1, user-scalable=no">
<title>{title}</title>
<style>
body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0}}
{style}</style>
</head>
<body>
{body}</body>
</html>
"#
        );
        Answer::html(status, html)
    }

    /// WeChat-like HTML error page, HTTP 400, code in `X-WeChat-Error`.
    pub(crate) fn error_page(code: i64, message: &str) -> Self {
        let body = format!(
            "<h2>Oops! Something went wrong:(</h2>\n\
             <p class=\"code\">错误码：<span id=\"errcode\">{code}</span></p>\n\
             <p id=\"errmsg\">{}</p>\n",
            text(message)
        );
        let mut answer = Answer::page(
            StatusCode::BAD_REQUEST,
            "微信网页授权",
            "body{padding:48px 24px;text-align:center;color:#353535;background:#ededed}\n\
             h2{font-weight:400}\n.code{color:#fa5151;font-size:20px}\n",
            &body,
        );
        answer.headers.push((ERROR_HEADER, code.to_string()));
        answer.answered = Answered::ErrCode(code);
        answer
    }

    /// A 302 to `location`.
    pub(crate) fn redirect(location: String) -> Self {
        let body = format!("<!DOCTYPE html><a href=\"{}\">Found</a>\n", attr(&location));
        let mut answer = Answer::html(StatusCode::FOUND, body);
        answer.headers.push(("location", location));
        answer
    }

    fn builder(&self) -> actix_web::HttpResponseBuilder {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((CONTENT_TYPE, self.content_type));
        for (name, value) in &self.headers {
            builder.append_header((*name, value.as_str()));
        }
        builder
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let mut builder = self.builder();
        if self.status == StatusCode::NO_CONTENT || self.status == StatusCode::NOT_MODIFIED {
            return builder.finish();
        }
        builder.body(self.body)
    }

    /// Headers with the full `Content-Length`, the first half of the body, then a stall and an error
    /// (the connection is dropped without completing the body).
    pub(crate) fn into_stalled_response(self) -> HttpResponse {
        let mut builder = self.builder();
        let body = Bytes::from(self.body);
        let half = body.slice(..body.len() / 2);
        let total = body.len();
        let chunks = stream::iter([Ok::<Bytes, io::Error>(half)]).chain(stream::once(async {
            actix_web::rt::time::sleep(STALL_FOR).await;
            Err(io::Error::other("WeChat emulator: stalled body abandoned"))
        }));
        builder.insert_header((CONTENT_LENGTH, total));
        builder.insert_header((CACHE_CONTROL, "no-store"));
        builder.streaming(chunks)
    }
}
