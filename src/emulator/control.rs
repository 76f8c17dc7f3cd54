//! HTTP control endpoints under `/_emulator/` for out-of-process drivers.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::state::{valid_openid, Shared};
use super::{EmulatedUser, Endpoint, Fault};

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
}

fn bad_request(error: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "error": error.to_string() }))
}

/// `POST /_emulator/users`: an [`EmulatedUser`] as JSON; answers `{"openid":"…"}`.
pub(crate) async fn add_user(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let user: EmulatedUser = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return bad_request(format_args!("invalid user JSON: {e}")),
    };
    if let Some(openid) = &user.openid {
        if !valid_openid(openid) {
            return bad_request("openid must be 1-64 characters of [A-Za-z0-9_-]");
        }
    }
    let openid = shared.add_user(user);
    HttpResponse::Ok().json(serde_json::json!({ "openid": openid }))
}

/// `GET /_emulator/users`: every user, in the order added.
pub(crate) async fn list_users(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.users())
}

/// `POST /_emulator/expire-access-tokens`.
pub(crate) async fn expire_access_tokens(shared: web::Data<Shared>) -> HttpResponse {
    shared.expire_access_tokens();
    ok()
}

/// `POST /_emulator/expire-refresh-tokens`.
pub(crate) async fn expire_refresh_tokens(shared: web::Data<Shared>) -> HttpResponse {
    shared.expire_refresh_tokens();
    ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    endpoint: Endpoint,
    fault: Fault,
    #[serde(default)]
    times: Option<u32>,
}

/// `POST /_emulator/faults`: `{"endpoint":"refresh_token","fault":"busy","times":2}`.
pub(crate) async fn inject_fault(body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    match serde_json::from_slice::<FaultRequest>(&body) {
        Ok(f) => {
            shared.inject_fault(f.endpoint, f.fault, f.times);
            ok()
        }
        Err(e) => bad_request(format_args!("invalid fault JSON: {e}")),
    }
}

/// `DELETE /_emulator/faults`.
pub(crate) async fn clear_faults(shared: web::Data<Shared>) -> HttpResponse {
    shared.clear_faults();
    ok()
}

/// `GET /_emulator/calls`.
pub(crate) async fn calls(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.calls())
}

/// `DELETE /_emulator/calls`.
pub(crate) async fn reset_calls(shared: web::Data<Shared>) -> HttpResponse {
    shared.reset_calls();
    ok()
}

/// `GET /_emulator/stats`.
pub(crate) async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    let calls: serde_json::Map<String, serde_json::Value> = Endpoint::ALL
        .iter()
        .map(|e| (e.name().to_owned(), shared.call_count(*e).into()))
        .collect();
    let users = shared.lock().users.len();
    HttpResponse::Ok().json(serde_json::json!({
        "connections": shared.connections(),
        "users": users,
        "calls": calls,
    }))
}
