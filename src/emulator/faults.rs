//! Answers, fault injection and the call log around every endpoint call.

use std::io;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::{stream, StreamExt};

use super::state::{ApiOutcome, Shared};
use super::{authorize, Call, Endpoint, Fault};

/// How long a [`Fault::StallBody`] answer stalls before the connection is dropped.
pub(crate) const STALL_FOR: Duration = Duration::from_secs(120);

pub(crate) const TEXT_PLAIN: &str = "text/plain";
pub(crate) const TEXT_HTML: &str = "text/html; charset=utf-8";

/// A complete answer, before it becomes an `HttpResponse` (normal or stalled).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// For the call log.
    pub errcode: i64,
    /// For the call log.
    pub openid: Option<String>,
}

impl Answer {
    /// An sns API answer: HTTP 200, `text/plain`, JSON body.
    pub(crate) fn api(outcome: ApiOutcome) -> Self {
        Answer {
            status: StatusCode::OK,
            content_type: TEXT_PLAIN,
            headers: Vec::new(),
            body: outcome.body,
            errcode: outcome.errcode,
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
            errcode: 0,
            openid: None,
        }
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

/// Runs one endpoint call: applies a pending fault, computes the answer with `handler` when the
/// fault lets it through, logs the call.
pub(crate) async fn serve<F>(shared: &Shared, endpoint: Endpoint, handler: F) -> HttpResponse
where
    F: FnOnce() -> Answer,
{
    let at = SystemTime::now();
    let fault = shared.take_fault(endpoint);
    let stall = match &fault {
        None | Some(Fault::LooseNumbers) => false,
        Some(Fault::Delay(d)) => {
            actix_web::rt::time::sleep(*d).await;
            false
        }
        Some(Fault::StallBody) => true,
        Some(other) => {
            let answer = fault_answer(endpoint, other);
            shared.record_call(Call {
                endpoint,
                at,
                openid: None,
                errcode: answer.errcode,
                fault,
            });
            return answer.into_response();
        }
    };
    let mut answer = handler();
    if fault == Some(Fault::LooseNumbers) {
        answer.body = loosen_numbers(&answer.body);
    }
    shared.record_call(Call {
        endpoint,
        at,
        openid: answer.openid.clone(),
        errcode: if stall {
            Call::STALL_FAULT
        } else {
            answer.errcode
        },
        fault,
    });
    if stall {
        answer.into_stalled_response()
    } else {
        answer.into_response()
    }
}

/// The answer for a fault that replaces the normal answer.
fn fault_answer(endpoint: Endpoint, fault: &Fault) -> Answer {
    let page = endpoint == Endpoint::Authorize;
    match *fault {
        Fault::Busy if page => {
            let mut a = authorize::error_page(-1, "系统繁忙，请稍后再试 (system busy)");
            a.status = StatusCode::SERVICE_UNAVAILABLE;
            a
        }
        Fault::Busy => Answer::api(ApiOutcome::err(-1, None)),
        Fault::ErrCode(code) if page => authorize::error_page(code, "emulated error"),
        Fault::ErrCode(code) => Answer::api(ApiOutcome::err(code, None)),
        Fault::HttpStatus(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.as_u16() >= 200)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            let n = status.as_u16();
            let mut a = Answer::html(
                status,
                format!(
                    "<html>\r\n<head><title>{n} {reason}</title></head>\r\n<body>\r\n<center><h1>{n} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                ),
            );
            a.errcode = Call::HTTP_STATUS_FAULT;
            a
        }
        Fault::Malformed => {
            let body = if page {
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>微信"
            } else {
                "<html><head><title>WeChat</title></head><body>upstream prematurely closed"
            };
            let mut a = Answer::html(StatusCode::OK, body.to_owned());
            if !page {
                a.content_type = TEXT_PLAIN;
            }
            a.errcode = Call::MALFORMED_FAULT;
            a
        }
        Fault::Body(ref body) => {
            let mut a = Answer::api(ApiOutcome::err(0, None));
            a.body.clone_from(body);
            a.errcode = Call::BODY_FAULT;
            a
        }
        // Not replacing faults; handled by `serve`.
        Fault::Delay(_) | Fault::StallBody | Fault::LooseNumbers => {
            Answer::api(ApiOutcome::err(-1, None))
        }
    }
}

/// The answer's JSON with every number as a string, behind a byte-order mark.
fn loosen_numbers(body: &str) -> String {
    fn loosen(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Number(n) => *value = serde_json::Value::String(n.to_string()),
            serde_json::Value::Array(items) => items.iter_mut().for_each(loosen),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(loosen),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) => {
            loosen(&mut value);
            format!("\u{feff}{value}")
        }
        Err(_) => body.to_owned(),
    }
}
