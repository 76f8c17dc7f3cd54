//! Fault injection and the call log around every endpoint call.

use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::answer::{Answer, ApiOutcome, TEXT_PLAIN};
use super::state::Shared;
use super::{Answered, Call, Endpoint, Fault};

/// Runs one endpoint call: applies a pending fault, computes the answer with `handler` when the
/// fault lets it through, logs the call.
pub(crate) async fn serve<F>(shared: &Shared, endpoint: Endpoint, handler: F) -> HttpResponse
where
    F: FnOnce() -> Answer,
{
    let at = SystemTime::now();
    let fault = shared.take_fault(endpoint);
    if let Some(answer) = fault.as_ref().and_then(|f| replacement(endpoint, f)) {
        shared.record_call(Call {
            endpoint,
            at,
            openid: None,
            answered: answer.answered.clone(),
            fault,
        });
        return answer.into_response();
    }
    if let Some(Fault::Delay(d)) = fault {
        actix_web::rt::time::sleep(d).await;
    }
    let mut answer = handler();
    let stall = fault == Some(Fault::StallBody);
    if stall {
        answer.answered = Answered::Stalled;
    }
    if fault == Some(Fault::LooseNumbers) {
        answer.body = loosen_numbers(&answer.body);
    }
    shared.record_call(Call {
        endpoint,
        at,
        openid: answer.openid.clone(),
        answered: answer.answered.clone(),
        fault,
    });
    if stall {
        answer.into_stalled_response()
    } else {
        answer.into_response()
    }
}

/// The answer for a fault that replaces the normal answer; `None` for the faults that shape the
/// normal answer instead (delay, stall, loose numbers).
fn replacement(endpoint: Endpoint, fault: &Fault) -> Option<Answer> {
    let page = endpoint == Endpoint::Authorize;
    Some(match *fault {
        Fault::Busy if page => {
            let mut a = Answer::error_page(-1, "系统繁忙，请稍后再试 (system busy)");
            a.status = StatusCode::SERVICE_UNAVAILABLE;
            a
        }
        Fault::Busy => Answer::api(ApiOutcome::err(-1, None)),
        Fault::ErrCode(code) if page => Answer::error_page(code, "emulated error"),
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
            a.answered = Answered::HttpStatus(n);
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
            a.answered = Answered::Malformed;
            a
        }
        Fault::Body(ref body) => {
            let mut a = Answer::api(ApiOutcome::ok(body.clone(), None));
            a.answered = Answered::Body;
            a
        }
        Fault::Delay(_) | Fault::StallBody | Fault::LooseNumbers => return None,
    })
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
